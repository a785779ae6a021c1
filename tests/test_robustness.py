"""Bad checkpoints, bad data and bad input: each stops cleanly or is skipped.

User mistakes end the scripts with exit code 2 and one `error: ...` line naming the problem
(a traceback only with --debug); unusable data files are skipped with one warning. Non-finite
losses and signals: tests/test_non_finite.py.
"""

import io
import os
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import describe, run_in_process, run_scripts
from PIL import Image
from test_resume import write_generator_checkpoint

from srgan.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from srgan.commands.common import resume_command
from srgan.data.crops import load_images
from srgan.eval.protocol import load_validation_images
from srgan.run.checkpoints import prune_checkpoints
from srgan.run.folder import ORPHAN_SECONDS
from srgan.run.resume import find_resume_checkpoint
from srgan.train.stages import pretrain, train_gan

PREFIX = "srresnet_x4_tiny"


# --- checkpoint files -------------------------------------------------------------------------


def write_step_checkpoints(folder: Path, steps: list[int]) -> list[Path]:
    """Checkpoints holding a 100k-float tensor, modified in the REVERSE order of their steps,
    so any ordering by file time instead of stored step fails the tests."""
    paths = []
    for index, step in enumerate(steps):
        path = folder / f"{PREFIX}_step{step:08d}.pt"
        save_checkpoint({"step": step, "weights": torch.full((100_000,), float(step))}, path)
        os.utime(path, ns=(2 * 10**18 - index * 10**9,) * 2)
        paths.append(path)
    return paths


@pytest.mark.parametrize("damage", ["truncate", "flip a byte"])
def test_damaged_newest_checkpoint_is_reported_and_the_previous_used(
    tmp_path: Path, capsys: pytest.CaptureFixture, damage: str
) -> None:
    paths = write_step_checkpoints(tmp_path, [2, 4, 6])
    data = bytearray(paths[-1].read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # in the middle of the tensor's bytes, which torch.load reads without complaint
        data[len(data) // 2] ^= 0x10
        damaged = torch.load(io.BytesIO(bytes(data)), weights_only=True)["weights"]
        assert not torch.equal(damaged, torch.full((100_000,), 6.0))
    paths[-1].write_bytes(bytes(data))
    path, state = find_resume_checkpoint(tmp_path, PREFIX)
    assert path == paths[1] and state["step"] == 4
    reason = "is truncated or corrupt" if damage == "truncate" else "is corrupt: record"
    assert f"warning: skipping unusable checkpoint: {paths[-1]} {reason}" in capsys.readouterr().out


def test_resume_auto_without_checkpoints_starts_fresh_but_all_unusable_is_an_error(
    tmp_path: Path,
) -> None:
    assert find_resume_checkpoint(tmp_path, PREFIX) is None
    for path in write_step_checkpoints(tmp_path, [2, 4]):
        path.write_bytes(b"not a zip archive")
    with pytest.raises(CheckpointError, match=f"none of the 2 checkpoints {PREFIX}"):
        find_resume_checkpoint(tmp_path, PREFIX)


def test_prune_keeps_highest_steps_and_the_one_just_written_and_only_drops_dead_temp_files(
    tmp_path: Path,
) -> None:
    # Step 2 looks newest by file time (a restored backup, a synced copy, clock skew).
    paths = write_step_checkpoints(tmp_path, [8, 6, 4, 2])
    for tag in ("final", "best"):
        save_checkpoint({"step": 8}, tmp_path / f"{PREFIX}_{tag}.pt")
    own_temp = tmp_path / f".{PREFIX}_step00000010.pt.{os.getpid()}.abc.tmp"
    # A live writer (pid 1 always exists) keeps its file, unless it is old enough to be an
    # orphan (e.g. from another host); a dead writer's file goes.
    live_temp = tmp_path / f".{PREFIX}_step00000010.pt.1.def.tmp"
    old_temp = tmp_path / f".{PREFIX}_step00000010.pt.1.ghi.tmp"
    dead_temp = tmp_path / f".{PREFIX}_step00000010.pt.{dead_pid()}.jkl.tmp"
    for temp in (own_temp, live_temp, old_temp, dead_temp):
        temp.write_bytes(b"cut short by a kill")
    old = time.time() - ORPHAN_SECONDS - 60
    os.utime(old_temp, (old, old))
    other_run = tmp_path / "srresnet_x4_tiny2_step00000002.pt"
    save_checkpoint({"step": 2}, other_run)
    prune_checkpoints(tmp_path, PREFIX, keep=2, just_written=paths[2])  # step 4, just written
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            other_run.name,
            live_temp.name,
            f"{PREFIX}_best.pt",
            f"{PREFIX}_final.pt",
            f"{PREFIX}_step00000004.pt",
            f"{PREFIX}_step00000006.pt",
            f"{PREFIX}_step00000008.pt",
        ]
    )


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_resume_auto_takes_the_highest_stored_step_whatever_the_file_times(
    tmp_path: Path,
) -> None:
    write_step_checkpoints(tmp_path, [6, 2, 4])  # step 4 has the newest file time
    path, state = find_resume_checkpoint(tmp_path, PREFIX)
    assert state["step"] == 6 and path.name == f"{PREFIX}_step00000006.pt"


class Payload:
    """Unpickling this calls os.mkdir(marker): what a malicious checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


def write_payload_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"format": FORMAT, "generator": {}, "payload": Payload(marker)}, path)
    return path


def test_checkpoint_with_pickle_payload_is_refused_not_run(tmp_path: Path) -> None:
    checkpoint = write_payload_checkpoint(tmp_path / "evil.pt", tmp_path / "marker")
    with pytest.raises(CheckpointError, match=f"refused to load {checkpoint}: it holds Python"):
        load_checkpoint(checkpoint)
    assert not (tmp_path / "marker").exists()
    torch.load(checkpoint, weights_only=False)  # the payload is real: unsafe loading runs it
    assert (tmp_path / "marker").is_dir()


# --- bad data ---------------------------------------------------------------------------------

GRAY16 = (np.arange(40 * 48, dtype=np.uint32).reshape(40, 48) * 34).astype(np.uint16)
PALETTE = np.array([[255, 0, 0], [0, 128, 0], [20, 40, 250]], dtype=np.uint8)
SKIPPED = {
    "fake.png": "not a readable image (UnidentifiedImageError)",
    "notes.txt": "not an image file",
    "tiny.png": "10x10 is smaller than 32 px",
    "truncated.png": "failed to decode (image file is truncated",
}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four usable images in odd modes, four files to skip, and a hidden marker to ignore."""
    folder = tmp_path_factory.mktemp("bad_data")
    rng = np.random.default_rng(0)
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "fake.png").write_text("a text file with an image suffix\n")
    (folder / ".complete").write_text("{}\n")  # what scripts/download_data.py leaves
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "cut.png")
    data = (folder / "cut.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "cut.png").unlink()
    Image.fromarray(GRAY16).save(folder / "gray16.png")
    Image.new("CMYK", (48, 40), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    rgba = np.zeros((40, 48, 4), dtype=np.uint8)
    rgba[:, :24] = (10, 20, 30, 0)  # fully transparent: becomes white
    rgba[:, 24:] = (200, 100, 50, 255)
    Image.fromarray(rgba).save(folder / "rgba.png")
    palette = Image.fromarray((np.arange(40 * 48).reshape(40, 48) % 3).astype(np.uint8), "P")
    palette.putpalette(PALETTE.flatten().tolist())
    palette.save(folder / "palette.gif")
    Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(folder / "tiny.png")
    return folder


def test_bad_files_are_skipped_with_one_warning_and_odd_modes_converted(bad_folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cmyk, gray16, palette, rgba = load_images(bad_folder, min_size=32)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{bad_folder}: skipped 4 file(s): ")
    for name, reason in SKIPPED.items():
        assert f"{name}: {reason}" in message
    assert all(
        i.shape == (40, 48, 3) and i.dtype == np.uint8 for i in (cmyk, gray16, palette, rgba)
    )
    assert np.array_equal(gray16, np.repeat((GRAY16 >> 8).astype(np.uint8)[:, :, None], 3, 2))
    indices = np.arange(40 * 48).reshape(40, 48) % 3
    assert np.array_equal(palette, PALETTE[indices])
    assert (rgba[:, :24] == 255).all() and (rgba[:, 24:] == (200, 100, 50)).all()
    assert np.abs(cmyk.astype(int) - (255, 0, 0)).max() <= 8  # JPEG is lossy


def test_missing_folder_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "DIV2K_train_HR"
    with pytest.raises(FileNotFoundError, match=f"folder {folder} does not exist") as error:
        load_images(folder, min_size=32)
    assert "scripts/download_data.py" in str(error.value)


def test_empty_folder_stops_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"no usable training images .* in {tmp_path}$"):
        load_images(tmp_path, min_size=32)


def test_validation_skips_images_too_small_to_measure(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, size in (("big", 48), ("small", 16)):
        image = rng.integers(0, 256, (size, size + 2, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / f"{name}.png")
    with pytest.warns(
        UserWarning, match="small.png: 16x16 after the modcrop is smaller than the 19 px"
    ):
        images = load_validation_images(tmp_path, scale=4)
    assert [(i.name, i.hr_image.shape, i.lr_image.shape) for i in images] == [
        ("big", (48, 48, 3), (12, 12, 3))
    ]


# --- bad input through the scripts --------------------------------------------------------------


def test_resume_command_replaces_any_resume_flag() -> None:
    argv = ["scripts/train.py", "--config", "my run.json", "--resume", "x.pt", "--max-steps", "5"]
    assert resume_command(argv) == (
        "python scripts/train.py --config 'my run.json' --max-steps 5 --resume auto"
    )
    assert resume_command(["scripts/pretrain.py", "--resume=x.pt"]).endswith("py --resume auto")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    return {
        "x2": write_generator_checkpoint(folder / "x2.pt", scale=2),
        "3 blocks": write_generator_checkpoint(folder / "blocks3.pt", num_blocks=3),
        "srresnet best": write_generator_checkpoint(folder / "best.pt"),
        "payload": write_payload_checkpoint(folder / "evil.pt", folder / "marker"),
    }


@pytest.fixture(scope="module")
def script_runs(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_config_args: list[str],
    bad_folder: Path,
    checkpoints: dict[str, Path],
) -> dict[str, subprocess.CompletedProcess]:
    """The cases that need a real script process, run a few at a time."""
    folder = tmp_path_factory.mktemp("script_runs")
    missing_data = folder / "data" / "DIV2K_train_HR"
    cases = {
        "bad data": ["--set", f"data.train_dir={bad_folder}", "--max-steps", "2"],
        "missing data": ["--set", f"data.train_dir={missing_data}"],
        "x2 checkpoint": ["--resume", str(checkpoints["x2"])],
        "payload": ["--resume", str(checkpoints["payload"])],
        "debug": ["--resume", str(folder / "missing.pt"), "--debug"],
    }
    commands = {
        label: ("pretrain.py", [*tiny_config_args, "--run-dir", str(folder / label), *args])
        for label, args in cases.items()
    }
    return run_scripts(commands, cwd=folder)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_bad_data_trains_on_what_it_can_and_names_the_rest(
    script_runs: dict, bad_folder: Path
) -> None:
    result = script_runs["bad data"]
    assert result.returncode == 0, describe(result)
    assert "data: 4 training images" in result.stdout
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and f"{bad_folder}: skipped 4 file(s)" in warning[0], describe(result)
    assert all(name in warning[0] for name in SKIPPED)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("missing data", "does not exist. Dataset folder {folder}/data/DIV2K_train_HR not found. "
         "Get it with: python scripts/download_data.py div2k-train-hr"),
        ("x2 checkpoint", "holds a generator with x2, 2 blocks, 8 channels, but the config asks "
         "for x4, 2 blocks, 8 channels"),
        ("payload", "refused to load {checkpoints}/evil.pt: it holds Python objects"),
        ("debug", "error: checkpoint {folder}/missing.pt does not exist"),
    ],
)  # fmt: skip
def test_script_bad_input_exits_2_with_one_line(
    script_runs: dict, checkpoints: dict[str, Path], label: str, message: str
) -> None:
    result = script_runs[label]
    folder = Path(result.args[result.args.index("--run-dir") + 1]).parent
    expected = message.format(folder=folder, checkpoints=checkpoints["x2"].parent)
    assert result.returncode == 2, describe(result)
    assert last_line(result).startswith("error: ") and expected in last_line(result)
    # A traceback only with --debug; the payload never ran.
    assert ("Traceback" in result.stderr) == (label == "debug"), describe(result)
    assert not (checkpoints["x2"].parent / "marker").exists()


# label: (stage function, arguments, text of the error line); {c}: the checkpoints' folder,
# {d}: this test's folder.
IN_PROCESS_CASES = {
    "empty data folder": (pretrain, ["--set", "data.train_dir={d}"], "no usable training images"),
    "missing config": (pretrain, ["--config", "{d}/nope.json"], "config file {d}/nope.json does"),
    "missing resume path": (pretrain, ["--resume", "{d}/no.pt"], "checkpoint {d}/no.pt does not"),
    "best as resume": (
        pretrain,
        ["--resume", "{c}/best.pt"],
        "{c}/best.pt has no optimizers, scalers state to resume from",
    ),
    "srresnet into gan": (
        train_gan,
        ["--set", "gan.pretrained_generator={c}/best.pt", "--resume", "{c}/best.pt"],
        "{c}/best.pt is a srresnet checkpoint, but this run trains srgan",
    ),
    "pretrained with 3 blocks": (
        train_gan,
        ["--set", "gan.pretrained_generator={c}/blocks3.pt"],
        "{c}/blocks3.pt holds a generator with x4, 3 blocks, 8 channels",
    ),
    "missing pretrained": (train_gan, [], "no pretrained SRResNet found for run 'tiny'"),
}


@pytest.mark.parametrize("label", list(IN_PROCESS_CASES))
def test_bad_input_exits_2_with_one_line(
    label: str,
    tiny_config_args: list[str],
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    stage_fn, args, message = IN_PROCESS_CASES[label]
    folders = {"c": checkpoints["x2"].parent, "d": tmp_path}
    args = [arg.format(**folders) for arg in args]
    run_dir = tmp_path / "run"
    code, _, stderr = run_in_process(
        stage_fn, [*tiny_config_args, "--run-dir", str(run_dir), *args], monkeypatch, capsys
    )
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message.format(**folders) in lines[-1], stderr
    assert "Traceback" not in stderr

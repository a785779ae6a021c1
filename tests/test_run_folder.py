"""A run folder belongs to one run: fresh starts, locks, full disks, resume messages, signals
during validation. Runs go through the scripts' own entry point (`stage_main`), in process."""

import functools
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN_NAME, TinyDataset, run_in_process
from PIL import Image
from test_resume import write_generator_checkpoint

from srgan.config import load_config
from srgan.data.crops import TrainCrops, load_images
from srgan.eval.protocol import load_validation_images
from srgan.files import WriteError
from srgan.inference.export import export_safetensors
from srgan.models.generator import Generator
from srgan.run.folder import LOCK_NAME, RunLock, RunPaths
from srgan.run.metrics import MetricsLog
from srgan.run.runtime import Runtime
from srgan.run.signals import Interrupted
from srgan.train.loop import Stage, run_stage
from srgan.train.networks import Network
from srgan.train.stages import pretrain, train_gan
from srgan.train.steps import pretrain_step

PREFIX = f"srresnet_x4_{TINY_RUN_NAME}"


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def metrics_steps(run_dir: Path) -> list[tuple[str, int]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["stage"], row["step"]) for row in rows if "event" not in row]


@pytest.fixture
def tiny(tiny_config_args: list[str], tmp_path: Path) -> tuple[list[str], Path]:
    """Arguments for a 4-step tiny pretraining in tmp_path/run."""
    run_dir = tmp_path / "run"
    return [*tiny_config_args, "--set", "pretrain.epochs=4", "--run-dir", str(run_dir)], run_dir


def test_fresh_start_refuses_a_finished_run_and_fresh_moves_it_aside(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    assert run_in_process(pretrain, args, monkeypatch, capsys)[0] == 0
    folder = run_dir / "checkpoints"
    finished = {path.name: path.read_bytes() for path in folder.glob("*.pt")}
    assert f"{PREFIX}_final.pt" in finished and f"{PREFIX}_best.pt" in finished

    # A smoke test in the same folder: refused, nothing touched.
    code, _, err = run_in_process(pretrain, [*args, "--max-steps", "2"], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert "already holds a pretrain run" in last_line(err)
    assert "--resume auto" in last_line(err) and "--fresh" in last_line(err)
    assert {path.name: path.read_bytes() for path in folder.glob("*.pt")} == finished
    assert metrics_steps(run_dir) == [("pretrain", step) for step in (1, 2, 3, 4)]

    # --fresh: the old files move to old-<time>/, untouched; metrics start over. A --max-steps
    # stop is saved as a periodic checkpoint, not as _final: the stage did not finish.
    code, out, _ = run_in_process(
        pretrain, [*args, "--max-steps", "2", "--fresh"], monkeypatch, capsys
    )
    assert code == 0, out
    (archive,) = folder.glob("old-*")
    assert {path.name: path.read_bytes() for path in archive.glob("*.pt")} == finished
    assert len((archive / "metrics.jsonl").read_text().splitlines()) == 4
    assert metrics_steps(run_dir) == [("pretrain", 1), ("pretrain", 2)]
    assert sorted(path.name for path in folder.glob("*.pt")) == [
        f"{PREFIX}_best.pt",
        f"{PREFIX}_step00000002.pt",
    ]
    code, _, err = run_in_process(
        pretrain, [*args, "--resume", "auto", "--fresh"], monkeypatch, capsys
    )
    assert code == 2 and "exclude each other" in err


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_holder(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    with RunLock(run_dir):  # what the first run holds while it trains
        code, _, err = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 2, err
    assert f"run folder {run_dir} is in use by pid {os.getpid()} on host" in last_line(err)
    assert not (run_dir / "checkpoints").exists()
    assert (run_dir / LOCK_NAME).read_text() == ""  # released cleanly
    # Released: the same run now goes ahead, and leaves the lock empty again.
    code, out, _ = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 0 and "taking over" not in out
    assert (run_dir / LOCK_NAME).read_text() == ""


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    run_dir.mkdir()
    dead = {"pid": 999999, "host": "gone", "started": "yesterday", "command": "pretrain.py"}
    (run_dir / LOCK_NAME).write_text(json.dumps(dead))  # left by a SIGKILLed run: no flock
    code, out, _ = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 0, out
    assert "warning: taking over the lock of pid 999999 on host gone" in out


def test_a_full_disk_is_one_line_naming_the_file_the_cause_and_the_last_good_checkpoint(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """From the third checkpoint file on, writes go to /dev/full (ENOSPC, as a full disk)."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    args, run_dir = tiny
    real_mkstemp, written = tempfile.mkstemp, []

    def mkstemp(dir: str, prefix: str, suffix: str) -> tuple[int, str]:
        handle, name = real_mkstemp(dir=dir, prefix=prefix, suffix=suffix)
        if prefix.startswith(f".{PREFIX}_step"):
            written.append(name)
            if len(written) > 1:
                os.close(handle)
                return os.open("/dev/full", os.O_WRONLY), name
        return handle, name

    monkeypatch.setattr("srgan.files.tempfile.mkstemp", mkstemp)
    code, _, err = run_in_process(pretrain, [*args, "--checkpoint-every", "1"], monkeypatch, capsys)
    folder = run_dir / "checkpoints"
    assert code == 1 and "Traceback" not in err, err
    assert last_line(err) == (
        f"error: could not write {folder / PREFIX}_step00000002.pt: no space left on device; "
        f"the last good checkpoint is {folder / PREFIX}_step00000001.pt"
    )
    assert not list(folder.glob(".*.tmp"))  # the half-written file is gone
    assert (folder / f"{PREFIX}_step00000001.pt").is_file()


def test_metrics_write_failure_is_a_write_error(tmp_path: Path) -> None:
    (tmp_path / "not_a_folder").write_text("")
    log = MetricsLog(tmp_path / "not_a_folder" / "metrics.jsonl", "pretrain")
    with pytest.raises(WriteError, match=r"could not write .*metrics.jsonl: file exists$"):
        log.write(1, 1.0, {"loss/pixel": 0.1})


def test_resume_auto_with_nothing_to_resume_says_so(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(json.dumps({"stage": "pretrain", "step": 7}) + "\n")
    code, out, _ = run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)
    assert code == 0
    folder = run_dir / "checkpoints"
    assert (
        f"--resume auto: no checkpoint {PREFIX}_step*.pt or _final.pt in {folder}; starting "
        "pretrain from step 0"
    ) in out
    assert metrics_steps(run_dir) == [("pretrain", step) for step in (1, 2, 3, 4)]


def test_refused_resume_names_the_config_keys_that_differ(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    assert run_in_process(pretrain, [*args, "--max-steps", "2"], monkeypatch, capsys)[0] == 0
    wider = [*args, "--resume", "auto", "--set", "model.num_channels=12"]
    code, _, err = run_in_process(pretrain, wider, monkeypatch, capsys)
    assert code == 2
    assert "config keys that differ from the checkpoint's: model.num_channels: 8 -> 12" in err


def test_allowed_config_changes_on_resume_go_to_stderr_and_the_metrics(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = tiny
    assert run_in_process(pretrain, [*args, "--max-steps", "2"], monkeypatch, capsys)[0] == 0
    changed = [*args, "--resume", "auto", "--set", "data.degradation=gaussian"]
    code, _, err = run_in_process(
        pretrain, [*changed, "--set", "runtime.log_every=2"], monkeypatch, capsys
    )
    assert code == 0
    assert 'data.degradation: "bicubic" -> "gaussian"' in err
    assert "log_every" not in err  # bookkeeping keys do not change what is computed
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (event,) = [row for row in rows if "event" in row]
    assert event["event"] == "config_changed" and event["step"] == 2
    assert event["changes"] == ['data.degradation: "bicubic" -> "gaussian"']


def test_gan_resume_does_not_need_the_pretrained_file(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    pretrained = write_generator_checkpoint(tmp_path / "pretrained.pt")
    args = [*tiny_config_args, "--set", f"gan.pretrained_generator={pretrained}"]
    args += ["--run-dir", str(tmp_path / "run")]
    assert run_in_process(train_gan, [*args, "--max-steps", "2"], monkeypatch, capsys)[0] == 0
    pretrained.unlink()
    code, out, err = run_in_process(
        train_gan, [*args, "--resume", "auto", "--max-steps", "3"], monkeypatch, capsys
    )
    assert code == 0, err
    assert "resumed gan from" in out and "at step 2" in out
    assert (
        tmp_path / "run" / "checkpoints" / f"srgan_x4_{TINY_RUN_NAME}_step00000003.pt"
    ).is_file()


def test_sigterm_during_a_slow_validation_stops_within_a_second(
    tiny_dataset: TinyDataset, tmp_path: Path
) -> None:
    """Validation of 12 images that each take >= 0.5 s (6 s in all): SIGTERM 0.2 s into it
    must abandon it, save the step and stop within a second."""
    valid = tmp_path / "valid"
    valid.mkdir()
    for index in range(12):
        Image.open(next(tiny_dataset.valid_dir.glob("*.png"))).save(valid / f"{index}.png")
    config = load_config(
        None,
        [f"data.train_dir={tiny_dataset.train_dir}", f"data.valid_dir={valid}", "name=tiny"],
    )
    runtime = Runtime(torch.device("cpu"), amp_dtype=None, channels_last=False)
    generator = Generator(scale=4, num_blocks=2, num_channels=8)
    network = Network.plain(
        generator, torch.optim.Adam(generator.parameters()), runtime.grad_scaler()
    )
    sent: list[float] = []

    def slow_eval(module: torch.nn.Module, inputs: tuple) -> None:
        if not module.training:
            if not sent:  # the first validation forward: signal 0.2 s into it
                time.sleep(0.2)
                sent.append(time.perf_counter())
                os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # ten layers: >= 0.5 s per image

    for layer in list(generator.modules())[1:11]:
        layer.register_forward_pre_hook(slow_eval)
    stage = Stage(
        name="pretrain",
        kind="srresnet",
        stage_id=0,
        batch_size=2,
        epochs=4,
        validate_every=2,
        lr_at=lambda step: 1e-4,
        networks={"generator": network},
        step=functools.partial(pretrain_step, network, runtime),
    )
    paths = RunPaths(tmp_path, tmp_path / "checkpoints")
    with pytest.raises(Interrupted) as interruption:
        run_stage(
            stage,
            config=config,
            runtime=runtime,
            crops=TrainCrops(load_images(tiny_dataset.train_dir, 32), 32),
            validation=load_validation_images(valid, 4),
            paths=paths,
        )
    stopped_after = time.perf_counter() - sent[0]
    assert stopped_after < 1.0, f"{stopped_after:.2f} s from SIGTERM to stop"
    assert str(interruption.value) == "stopped by SIGTERM after step 2"
    assert interruption.value.checkpoint == paths.checkpoint_dir / f"{PREFIX}_step00000002.pt"
    assert interruption.value.checkpoint.is_file()


def test_gan_training_starts_from_a_safetensors_export(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """The shipped reference weights are an export: GAN training can start from one."""
    torch.manual_seed(0)
    export = tmp_path / "pretrained.safetensors"
    export_safetensors(Generator(scale=4, num_blocks=2, num_channels=8), export, "bicubic")
    args = [*tiny_config_args, "--set", f"gan.pretrained_generator={export}"]
    args += ["--run-dir", str(tmp_path / "run"), "--max-steps", "1"]
    code, out, err = run_in_process(train_gan, args, monkeypatch, capsys)
    assert code == 0, err
    assert f"GAN training from the SRResNet {export}" in out

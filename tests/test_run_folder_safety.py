"""Nothing of an earlier run is lost: refused starts rewrite nothing, --fresh archives every
record of the stage, a full disk at start is one line, a finished stage is not redone, damaged
checkpoints are moved aside and a metrics line that is not a row is skipped. Runs go through
the scripts' own entry point (`stage_main`), in process."""

import errno
import json
import os
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN_NAME, run_in_process
from test_robustness import write_step_checkpoints

from srgan.run.checkpoints import prune_checkpoints, stored_checkpoints
from srgan.run.metrics import MetricsLog, read_metrics
from srgan.train.stages import pretrain

PREFIX = f"srresnet_x4_{TINY_RUN_NAME}"
FULL_DISK = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


@pytest.fixture
def finished(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> tuple[list[str], Path]:
    """A finished 4-step tiny pretraining in tmp_path/run (validations, so sample strips, at
    steps 2 and 4; a checkpoint at every step) and the arguments that made it."""
    run_dir = tmp_path / "run"
    args = [*tiny_config_args, "--set", "pretrain.epochs=4", "--run-dir", str(run_dir)]
    args += ["--checkpoint-every", "1"]
    assert run_in_process(pretrain, args, monkeypatch, capsys)[0] == 0
    return args, run_dir


def test_refused_starts_rewrite_nothing_of_the_earlier_run(
    finished: tuple[list[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = finished
    before = snapshot(run_dir)
    assert "config.json" in before and "samples/pretrain_step00000004.png" in before
    other_lr = [*args, "--set", "pretrain.lr=2e-4"]
    refused = {
        "start without --resume": other_lr,
        "missing --resume PATH": [*other_lr, "--resume", str(tmp_path / "missing.pt")],
        "--resume of another width": [*args, "--resume", "auto", "--set", "model.num_channels=4"],
    }
    for label, arguments in refused.items():
        code, _, err = run_in_process(pretrain, arguments, monkeypatch, capsys)
        assert code == 2 and last_line(err).startswith("error: "), (label, err)
        assert snapshot(run_dir) == before, label


def test_fresh_moves_config_and_sample_strips_aside_too(
    finished: tuple[list[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = finished
    before = snapshot(run_dir)
    changed = [*args, "--set", "pretrain.lr=2e-4", "--max-steps", "2", "--fresh"]
    assert run_in_process(pretrain, changed, monkeypatch, capsys)[0] == 0
    (archive,) = (run_dir / "checkpoints").glob("old-*")
    archived = snapshot(archive)
    assert archived["config.json"] == before["config.json"]
    strips = ("pretrain_step00000002.png", "pretrain_step00000004.png")
    for strip in strips:  # the new run's step-2 strip did not overwrite the old one
        assert archived[f"samples/{strip}"] == before[f"samples/{strip}"]
    assert sorted(path.name for path in (run_dir / "samples").iterdir()) == [strips[0]]
    assert json.loads((run_dir / "config.json").read_text())["pretrain"]["lr"] == 2e-4


def write_to_full_disk(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Temp files for `name` (see `srgan.files.atomic_write`) are written to /dev/full."""
    real_mkstemp = tempfile.mkstemp

    def mkstemp(dir: str, prefix: str, suffix: str) -> tuple[int, str]:
        handle, path = real_mkstemp(dir=dir, prefix=prefix, suffix=suffix)
        if prefix.startswith(f".{name}."):
            os.close(handle)
            return os.open("/dev/full", os.O_WRONLY), path
        return handle, path

    monkeypatch.setattr("srgan.files.tempfile.mkstemp", mkstemp)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_at_start_keeps_the_previous_config_whole(
    finished: tuple[list[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = finished
    config = (run_dir / "config.json").read_bytes()
    write_to_full_disk(monkeypatch, "config.json")
    longer = [*args, "--set", "pretrain.epochs=5", "--resume", "auto"]
    code, _, err = run_in_process(pretrain, longer, monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err, err
    assert last_line(err) == (
        f"error: could not write {run_dir}/config.json: no space left on device"
    )
    assert (run_dir / "config.json").read_bytes() == config
    assert not list(run_dir.glob(".config.json.*"))  # no temp file left


class FullDiskFile:
    """A real file on a full disk: writes are buffered, flushing them fails with ENOSPC, and
    so does closing (which flushes again), though the file is closed."""

    def __init__(self, file) -> None:
        self._file = file

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        raise FULL_DISK

    def close(self) -> None:
        self._file.close()
        raise FULL_DISK


def test_a_full_disk_at_the_lock_is_one_line_exit_1(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run_dir = tmp_path / "run"
    monkeypatch.setattr(
        "srgan.run.folder.open",
        lambda path, mode: FullDiskFile(open(path, mode)),  # noqa: SIM115
        raising=False,
    )
    args = [*tiny_config_args, "--run-dir", str(run_dir)]
    code, _, err = run_in_process(pretrain, args, monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err, err
    assert err.strip() == f"error: could not write {run_dir}/.lock: no space left on device"
    assert not (run_dir / "config.json").exists() and not (run_dir / "checkpoints").exists()


def test_a_run_folder_that_is_a_file_is_one_line_exit_1(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    (tmp_path / "file").write_text("")
    run_dir = tmp_path / "file" / "run"
    code, _, err = run_in_process(
        pretrain, [*tiny_config_args, "--run-dir", str(run_dir)], monkeypatch, capsys
    )
    assert code == 1 and "Traceback" not in err, err
    assert err.strip() == f"error: could not write {run_dir}/.lock: not a directory"


def test_a_finished_stage_is_not_redone_nor_its_final_rewritten(
    finished: tuple[list[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = finished
    before = snapshot(run_dir)
    final = run_dir / "checkpoints" / f"{PREFIX}_final.pt"
    code, out, err = run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)
    assert code == 0, err
    assert f"pretrain already finished at step 4 ({final}): nothing to do" in out
    assert snapshot(run_dir) == before  # _final keeps its metrics; config.json is untouched


def test_a_final_missing_after_the_last_step_is_written_with_that_steps_metrics(
    finished: tuple[list[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """A kill between the last periodic checkpoint and `_final`: resuming writes `_final`
    with the metrics row of that step, not an empty one."""
    args, run_dir = finished
    final = run_dir / "checkpoints" / f"{PREFIX}_final.pt"
    metrics = torch.load(final, weights_only=True)["metrics"]
    final.unlink()
    assert run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)[0] == 0
    assert metrics["step"] == 4 and "loss/pixel" in metrics
    assert torch.load(final, weights_only=True)["metrics"] == metrics


def test_pruning_moves_damaged_checkpoints_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = write_step_checkpoints(tmp_path, [2, 4, 6, 8])
    damaged = paths[1].read_bytes()[:1000]
    paths[1].write_bytes(damaged)  # step 4: truncated, e.g. by a full disk before atomic saves
    prune_checkpoints(tmp_path, PREFIX, keep=2, just_written=paths[3])
    kept = [checkpoint.step for checkpoint in stored_checkpoints(tmp_path, PREFIX)]
    assert kept == [8, 6]  # step 2 pruned as usual
    (archive,) = tmp_path.glob("old-*")
    assert (archive / paths[1].name).read_bytes() == damaged
    assert f"warning: moved damaged checkpoint(s) {paths[1].name} to {archive}" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("line", ["[1, 2]", "42", '"text"', "null", '{"no": "step"}'])
def test_a_metrics_line_that_is_not_a_row_is_skipped_with_a_warning(
    tmp_path: Path, line: str
) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [{"stage": "pretrain", "step": step, "loss/pixel": 0.1} for step in (1, 2, 3)]
    lines = [json.dumps(rows[0]), line, json.dumps(rows[1]), '{"stage": "pre', json.dumps(rows[2])]
    path.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_metrics(path) == rows
        MetricsLog(path, "pretrain").truncate_after(2)  # what a resume does
    assert read_metrics(path) == rows[:2]
    messages = [str(warning.message) for warning in caught]
    skipped = (
        f"{path}: skipped 2 line(s) that are not metrics rows (JSON objects with their stage and "
        "step; first: line 2)"
    )
    assert messages == [skipped, skipped]  # one per read (the test's, the resume's), not per line


def test_resume_goes_on_past_a_metrics_line_that_is_not_a_row(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run_dir = tmp_path / "run"
    args = [*tiny_config_args, "--set", "pretrain.epochs=4", "--run-dir", str(run_dir)]
    assert run_in_process(pretrain, [*args, "--max-steps", "2"], monkeypatch, capsys)[0] == 0
    with (run_dir / "metrics.jsonl").open("a") as file:
        file.write("[1, 2, 3]\n")  # valid JSON, not a row: e.g. a hand edit
    skipped = r"metrics.jsonl: skipped 1 line\(s\) that are not metrics rows .*first: line 3"
    with pytest.warns(UserWarning, match=skipped):
        code, _, err = run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err, err
    steps = [row["step"] for row in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4]
    assert (run_dir / "checkpoints" / f"{PREFIX}_final.pt").is_file()

"""A resume checks what it trusts: the metrics file's bytes, the step a checkpoint stores, the run
a checkpoint belongs to, and the config keys a resume cannot change (before any work). Runs go
through the scripts' own entry point (`stage_main`), in process."""

import json
import warnings
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN_NAME, run_in_process
from test_gan_options import GAN_PREFIX, no_vgg
from test_resume import write_generator_checkpoint
from test_run_folder_safety import last_line, snapshot

import srgan.models.losses
from srgan.checkpoint import save_checkpoint
from srgan.run.metrics import MetricsLog, read_metrics
from srgan.train.stages import pretrain, train_gan

PREFIX = f"srresnet_x4_{TINY_RUN_NAME}"
ROWS = [{"stage": "pretrain", "step": step, "loss/pixel": 0.1} for step in (1, 2, 3)]


def read_with_warnings(path: Path) -> tuple[list[dict], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_metrics(path)
    return rows, [str(warning.message) for warning in caught]


@pytest.fixture
def stopped(
    tiny_config_args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> tuple[list[str], Path]:
    """A tiny pretraining of 10 steps stopped at step 4 (checkpoints at steps 2 and 4) in
    tmp_path/run, and the arguments that made it (without --max-steps)."""
    run_dir = tmp_path / "run"
    args = [*tiny_config_args, "--run-dir", str(run_dir), "--checkpoint-every", "2"]
    assert run_in_process(pretrain, [*args, "--max-steps", "4"], monkeypatch, capsys)[0] == 0
    return args, run_dir


# --- the metrics file ---------------------------------------------------------------------------


def test_a_metrics_line_that_is_not_utf8_is_skipped_with_a_warning_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(row).encode() for row in ROWS]
    path.write_bytes(b"\n".join([lines[0], b'{"stage": "pre\xfftrain"}', *lines[1:]]) + b"\n")
    rows, messages = read_with_warnings(path)
    assert rows == ROWS
    assert messages == [f"{path}: skipped 1 unreadable line(s) (not UTF-8 text; first: line 2)"]


def test_many_bad_metrics_lines_make_one_warning_and_a_resume_drops_them(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(row).encode() for row in ROWS]
    bad = [b"\xff\xfe"] * 100_000 + [b"[1, 2]", b'{"stage": "pre', b"null"]
    path.write_bytes(b"\n".join([lines[0], b"42", *bad, *lines[1:]]) + b"\n")
    rows, messages = read_with_warnings(path)
    assert rows == ROWS
    assert messages == [
        f"{path}: skipped 100000 unreadable line(s) (not UTF-8 text; first: line 3) and 4 "
        "line(s) that are not metrics rows (JSON objects with their stage and step; first: "
        "line 2)"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MetricsLog(path, "pretrain").truncate_after(2)  # what a resume does
    assert read_with_warnings(path) == (ROWS[:2], [])


@pytest.mark.parametrize("start", ["--resume auto", "--fresh"])
def test_resume_and_fresh_go_on_past_a_metrics_line_that_is_not_utf8(
    stopped: tuple[list[str], Path],
    start: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = stopped
    with (run_dir / "metrics.jsonl").open("ab") as file:
        file.write(b'{"stage": "pretrain", "step": \xff}\n')  # e.g. a bad sector, a hand edit
    damaged = (run_dir / "metrics.jsonl").read_bytes()
    with pytest.warns(UserWarning, match=r"metrics.jsonl: skipped 1 unreadable line\(s\)"):
        code, _, err = run_in_process(pretrain, [*args, *start.split()], monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err, err
    steps = [row["step"] for row in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == list(range(1, 11))
    if start == "--fresh":  # the damaged file is kept as it was, with the earlier run
        (archive,) = (run_dir / "checkpoints").glob("old-*")
        assert (archive / "metrics.jsonl").read_bytes() == damaged


# --- the step a checkpoint stores ---------------------------------------------------------------


def forge_step(folder: Path, step: int) -> Path:
    """A copy of the step-4 checkpoint whose stored step is `step` (e.g. a flipped bit there)."""
    state = torch.load(folder / f"{PREFIX}_step00000004.pt", weights_only=True)
    forged = folder / f"{PREFIX}_step00000099.pt"
    save_checkpoint({**state, "step": step}, forged)
    return forged


def test_a_checkpoint_step_beyond_the_schedule_is_refused_as_resume_path(
    stopped: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = stopped
    forged = forge_step(run_dir / "checkpoints", 10**12)
    before = snapshot(run_dir)
    code, _, err = run_in_process(pretrain, [*args, "--resume", str(forged)], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert last_line(err) == (
        f"error: {forged} holds step 1000000000000, beyond the 10 steps of this stage's "
        "schedule: it is damaged, or from a longer schedule"
    )
    assert snapshot(run_dir) == before


def test_resume_auto_skips_a_checkpoint_step_beyond_the_schedule_as_damaged(
    stopped: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = stopped
    folder = run_dir / "checkpoints"
    forged = forge_step(folder, 10**12)
    code, out, err = run_in_process(pretrain, [*args, "--resume", "auto"], monkeypatch, capsys)
    assert code == 0, err
    assert (
        f"warning: skipping unusable checkpoint: {forged} holds step 1000000000000, beyond the "
        "10 steps of this stage's schedule"
    ) in out
    assert f"resumed pretrain from {folder / PREFIX}_step00000004.pt at step 4" in out
    assert torch.load(folder / f"{PREFIX}_final.pt", weights_only=True)["step"] == 10
    assert [row["step"] for row in read_metrics(run_dir / "metrics.jsonl")] == list(range(1, 11))
    (archive,) = folder.glob("old-*")  # moved aside as a checkpoint of a later step, kept
    assert (archive / forged.name).is_file() and not forged.exists()


# --- the run a checkpoint belongs to ------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "change"),
    [("name=other", 'name: "tiny" -> "other"'), ("model.scale=2", "model.scale: 4 -> 2")],
)
def test_resume_auto_after_a_change_of_name_or_scale_is_refused_before_any_work(
    stopped: tuple[list[str], Path],
    override: str,
    change: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    args, run_dir = stopped
    before = snapshot(run_dir)
    changed = [*args, "--set", override, "--resume", "auto"]
    code, out, err = run_in_process(pretrain, changed, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err, err
    folder = run_dir / "checkpoints"
    assert last_line(err).startswith(
        f"error: --resume auto: {folder} holds srresnet checkpoints of a run with other settings "
        f"({change}) and none of this one's"
    )
    assert "use another --run-dir for this run, or --fresh" in last_line(err)
    assert "data: " not in out  # refused before loading data or building networks
    assert snapshot(run_dir) == before


def test_fresh_after_a_change_of_name_moves_the_other_runs_checkpoints_aside(
    stopped: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args, run_dir = stopped
    folder = run_dir / "checkpoints"
    earlier = sorted(path.name for path in folder.glob("*.pt"))
    changed = [*args, "--set", "name=other", "--max-steps", "2"]
    code, _, err = run_in_process(pretrain, changed, monkeypatch, capsys)
    assert code == 2 and last_line(err).startswith(
        f"error: {folder} already holds a pretrain run with another scale or name (3 "
        f"checkpoint(s), e.g. {PREFIX}_best.pt): use another --run-dir, or start over with --fresh"
    )
    assert run_in_process(pretrain, [*changed, "--fresh"], monkeypatch, capsys)[0] == 0
    (archive,) = folder.glob("old-*")
    assert sorted(path.name for path in archive.glob("*.pt")) == earlier
    assert sorted(path.name for path in folder.glob("*.pt")) == [
        "srresnet_x4_other_best.pt",
        "srresnet_x4_other_step00000002.pt",
    ]


# --- the config keys a resume cannot change -------------------------------------------------------


@pytest.mark.parametrize("resume", ["auto", "path"])
def test_a_resume_that_changes_the_content_loss_is_refused_before_any_vgg_is_built(
    tiny_config_args: list[str],
    tmp_path: Path,
    resume: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Offline, building the ImageNet VGG19 fails on its download: the refusal comes first."""
    monkeypatch.setattr(srgan.models.losses, "load_vgg_features", no_vgg)
    monkeypatch.setattr("torchvision.models.vgg19", no_vgg)
    pretrained = write_generator_checkpoint(tmp_path / "pretrained.pt")
    args = [*tiny_config_args, "--set", f"gan.pretrained_generator={pretrained}"]
    args += ["--set", "gan.vgg_weights=imagenet", "--run-dir", str(tmp_path / "run")]
    mse = [*args, "--set", "gan.content_loss=mse", "--max-steps", "2"]
    assert run_in_process(train_gan, mse, monkeypatch, capsys)[0] == 0
    checkpoint = tmp_path / "run" / "checkpoints" / f"{GAN_PREFIX}_step00000002.pt"
    target = "auto" if resume == "auto" else str(checkpoint)
    vgg54 = [*args, "--set", "gan.content_loss=vgg54", "--resume", target, "--max-steps", "3"]
    code, out, err = run_in_process(train_gan, vgg54, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert last_line(err) == (
        f"error: {checkpoint} was trained with other settings that a resume cannot change "
        '(gan.content_loss: "mse" -> "vgg54"): start a new run (in another --run-dir, or with '
        "--fresh)"
    )
    assert "data: " not in out

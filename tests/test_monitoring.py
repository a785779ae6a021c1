"""What a user sees of a run besides metrics.jsonl: sample strips, TensorBoard, curves."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_in_process
from PIL import Image

from srgan.eval.protocol import make_eval_image
from srgan.run import samples
from srgan.run.samples import SampleStrips, looks_untrained
from srgan.train.stages import pretrain


@pytest.fixture
def tiny(tiny_config_args: list[str], tmp_path: Path) -> tuple[list[str], Path]:
    """6 steps, validation every 2 (steps 2, 4, 6), in tmp_path/run."""
    run_dir = tmp_path / "run"
    return [*tiny_config_args, "--set", "pretrain.epochs=6", "--run-dir", str(run_dir)], run_dir


def test_each_validation_writes_a_sample_strip_that_shows_the_progress(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args, run_dir = tiny
    assert (
        run_in_process(pretrain, [*args, "--set", "pretrain.lr=1e-2"], monkeypatch, capsys)[0] == 0
    )
    strips = sorted((run_dir / "samples").glob("*.png"))
    assert [path.name for path in strips] == [f"pretrain_step{s:08d}.png" for s in (2, 4, 6)]
    pictures = [np.asarray(Image.open(path)) for path in strips]
    assert len({picture.shape for picture in pictures}) == 1  # the same layout every time
    assert not np.array_equal(pictures[0], pictures[-1])  # the model changed


def test_strips_show_the_same_crops_and_only_the_sr_panel_changes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hr_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    strips = SampleStrips(tmp_path, [make_eval_image("a", hr_image, 4)], scale=4, keep=2)
    early = np.asarray(strips.rows(1, {"a": hr_image // 2}, {"a": 20.0})["a"])
    late = np.asarray(strips.rows(9, {"a": hr_image}, {"a": 40.0})["a"])
    panel = 64 * 2  # the whole 64 px image, shown at 2x; panels 8 px apart
    bicubic, sr, hr = (slice(i * (panel + 8), i * (panel + 8) + panel) for i in range(3))
    assert np.array_equal(early[:panel, bicubic], late[:panel, bicubic])
    assert np.array_equal(early[:panel, hr], late[:panel, hr])
    assert np.array_equal(late[:panel, sr], late[:panel, hr])  # SR = HR here
    assert not np.array_equal(early[:panel, sr], late[:panel, sr])


def test_sample_strips_keep_the_first_and_the_newest(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hr_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    images = [make_eval_image("a", hr_image, 4), make_eval_image("b", hr_image[..., 0], 4)]
    strips = SampleStrips(tmp_path, images, scale=4, keep=2)
    for step in range(1, 6):
        rows = strips.rows(step, {"a": hr_image, "b": hr_image[..., 0]}, {"a": 30.0, "b": 31.0})
        strips.write("pretrain", step, rows, psnr=30.5)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "pretrain_step00000001.png",
        "pretrain_step00000004.png",
        "pretrain_step00000005.png",
    ]


def test_tensorboard_without_the_package_exits_2_with_one_line(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args, run_dir = tiny
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    code, _, err = run_in_process(pretrain, [*args, "--tensorboard"], monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: runtime.tensorboard needs the tensorboard package: pip install tensorboard "
        "(or pip install -e '.[tensorboard]')"
    )
    assert not (run_dir / "checkpoints").exists()


def scalar_steps(folder: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_tensorboard_holds_the_metrics_and_a_resumed_run_adds_no_duplicate_steps(
    tiny: tuple[list[str], Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args, run_dir = tiny
    args += ["--tensorboard", "--checkpoint-every", "2"]
    assert run_in_process(pretrain, [*args, "--max-steps", "5"], monkeypatch, capsys)[0] == 0
    # Resume from step 2, although steps 3-5 were logged: they are redone and logged again.
    step2 = run_dir / "checkpoints" / "srresnet_x4_tiny_step00000002.pt"
    assert run_in_process(pretrain, [*args, "--resume", str(step2)], monkeypatch, capsys)[0] == 0

    folder = run_dir / "tensorboard" / "pretrain"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {row["step"]: row["loss/pixel"] for row in rows if "loss/pixel" in row}
    pixel = scalar_steps(folder, "loss/pixel")
    assert [step for step, _ in pixel] == list(range(1, 7))  # each step once
    for step, value in pixel:
        assert value == pytest.approx(logged[step], rel=1e-6)  # the resumed run's values
    assert [step for step, _ in scalar_steps(folder, "valid/psnr_y")] == [2, 4, 6]
    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    image_tags = events.Tags()["images"]
    assert image_tags and all(tag.startswith("samples/") for tag in image_tags)
    assert [event.step for event in events.Images(image_tags[0])] == [2, 4, 6]


def test_flat_sample_is_captioned_as_not_trained_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    hr_image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cyan = np.zeros_like(hr_image) + np.array([0, 255, 255], dtype=np.uint8)
    window = (0, 0, 64, 64)
    assert looks_untrained(cyan, hr_image, window)
    assert not looks_untrained(hr_image // 2 + 64, hr_image, window)  # half the contrast

    captions = []

    def record(hr_image, panels, window):
        captions.append(panels[1][0])  # bicubic | SR | HR
        return Image.new("RGB", (1, 1))

    monkeypatch.setattr(samples, "comparison_image", record)
    strips = samples.SampleStrips(Path("unused"), [make_eval_image("a", hr_image, 4)], 4, keep=1)
    strips.rows(2, {"a": cyan}, {"a": 10.0})
    strips.rows(9, {"a": hr_image}, {"a": 40.0})
    assert captions == ["SR, step 2: flat,\nnot trained yet, 10.00 dB", "SR, step 9\n40.00 dB"]

"""scripts/gan_probes.sh: every probe's commands are valid training commands of one change."""

import os
import shlex
import subprocess
from pathlib import Path

from srgan.config import load_config

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gan_probes.sh"
PROBES = [
    "paper",
    "warmup200",
    "ramp300",
    "frozen_bn",
    "d_lr_0.25",
    "betas_0.5",
    "lr_2e-5",
    "finetuned",
    "finetuned_blur",
    "scratch",
    "scratch_icnr",
]


def dry_run(out: Path, *probes: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DRY_RUN": "1"}
    command = ["bash", str(SCRIPT), str(out), *probes]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)


def commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if not line.startswith("==")]


def config_of(command: list[str]):
    """The config a printed command trains with (every --set applied, in order)."""
    config = command[command.index("--config") + 1]
    sets = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    return load_config(REPO / config, sets, check_paths=False)


def test_every_probe_is_one_change_from_the_first(tmp_path: Path) -> None:
    result = dry_run(tmp_path, *PROBES)
    assert result.returncode == 0, result.stderr
    runs = commands(result.stdout)
    trainings = {Path(c[c.index("--run-dir") + 1]).name: c for c in runs if "train.py" in c[1]}
    assert sorted(trainings) == sorted(PROBES)
    paper = config_of(trainings["paper"])
    assert paper.gan.generator_ema_decay == 0.995 and paper.gan.content_loss == "mse"
    assert config_of(trainings["lr_2e-5"]).gan.lr_phases[0].lr == 2e-5
    assert config_of(trainings["frozen_bn"]).gan.freeze_generator_batchnorm
    blur = config_of(trainings["finetuned_blur"])
    assert blur.model.upsample_blur
    assert blur.gan.pretrained_generator == str(
        tmp_path / "finetuned_blur" / "checkpoints" / "srresnet_x4_probe_finetuned_blur_final.pt"
    )
    pretrainings = {
        Path(c[c.index("--run-dir") + 1]).name: c for c in runs if "pretrain.py" in c[1]
    }
    assert sorted(pretrainings) == ["finetuned", "finetuned_blur", "scratch", "scratch_icnr"]
    assert config_of(pretrainings["finetuned_blur"]).model.upsample_blur
    assert config_of(pretrainings["finetuned"]).pretrain.initial_generator
    assert config_of(pretrainings["scratch_icnr"]).pretrain.subpixel_init == "icnr"
    assert not config_of(pretrainings["scratch"]).pretrain.initial_generator


def test_an_unknown_probe_is_refused(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "paper", "bogus")
    assert result.returncode == 2 and "unknown probe bogus" in result.stderr

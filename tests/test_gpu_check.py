"""scripts/gpu_check.sh: its dry run on the CPU (so the script cannot rot between GPUs), and
a check that falls short making it exit non-zero."""

import json
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import REPO, SCRIPT_ENV, describe

from srgan.benchmark.device_checks import state_differences
from srgan.commands.gpu_check import CHECKS

CUDA_ONLY = {"host_syncs", "evaluation_cuda_vs_cpu", "stages_fp16"}
MUST_PASS = {"cuda_tests", "ddp_one_process", "gloo_two_ranks", "resume_deterministic"}


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    command = ["bash", str(REPO / "scripts/gpu_check.sh"), *args]
    return subprocess.run(
        command, cwd=REPO, env=SCRIPT_ENV, capture_output=True, text=True, timeout=600
    )


def test_dry_run_runs_every_check_on_the_cpu(tmp_path: Path) -> None:
    result = gpu_check("--dry-run", str(tmp_path))
    assert result.returncode == 0, describe(result)
    lines = (tmp_path / "summary.txt").read_text().splitlines()
    assert lines[0].startswith("gpu_check --dry-run ") and lines[-1] == "result: ok"
    by_name = {line.split(":")[0]: line for line in lines[1:-1]}
    assert list(by_name) == list(CHECKS)  # one line per check, in order
    results = json.loads((tmp_path / "results.json").read_text())
    for name in CUDA_ONLY:
        assert results[name]["status"] == "skipped", by_name[name]
    for name in MUST_PASS:
        log = (tmp_path / "logs" / f"{name}.log").read_text()[-3000:]
        assert results[name]["status"] == "ok", f"{by_name[name]}\n{log}"
    assert "passed" in results["cuda_tests"]["detail"]
    stages = results["stages_bf16"]
    assert stages["status"] == "figure", by_name["stages_bf16"]
    assert all(rate > 0 for rate in stages["numbers"]["it_per_s"].values())
    assert results["benchmark"]["numbers"]["gan"] > 0
    assert (tmp_path / "logs" / "stages_bf16.log").stat().st_size > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_check_that_falls_short_fails_the_run(tmp_path: Path) -> None:
    # Without --dry-run the checks expect CUDA; on this CPU the environment check says so.
    result = gpu_check("--only", "environment", str(tmp_path))
    assert result.returncode == 1, describe(result)
    lines = (tmp_path / "summary.txt").read_text().splitlines()
    assert lines[1].startswith("environment: falls short (CUDA is not available")
    assert lines[-1] == "result: falls short: environment"


def test_checkpoint_comparison_finds_one_differing_tensor(tmp_path: Path) -> None:
    state = {
        "generator": {"a": torch.zeros(3), "b": torch.ones(2)},
        "optimizers": {"generator": {"state": {0: {"step": torch.tensor(2.0)}}}},
    }
    other = {
        "generator": {"a": torch.zeros(3), "b": torch.tensor([1.0, 1.0 + 2**-20])},
        "optimizers": {"generator": {"state": {0: {"step": torch.tensor(2.0)}}}},
    }
    assert state_differences(state, state) == []
    assert state_differences(state, other) == [".generator.b"]
    changed_step = {
        **state,
        "optimizers": {"generator": {"state": {0: {"step": torch.tensor(3.0)}}}},
    }
    assert state_differences(state, changed_step) == [".optimizers.generator.state.0.step"]

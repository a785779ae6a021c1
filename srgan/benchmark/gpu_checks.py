"""The checks of `scripts/gpu_check.sh` (`srgan.commands.gpu_check` runs each in its own
process): each returns a `Finding`. On a GPU they run the paper's sizes; in a dry run, tiny
networks on the CPU, with the CUDA-only checks reported as skipped.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from srgan.benchmark.device_checks import (
    Finding,
    compare_checkpoints,
    count_host_syncs,
    evaluation_agreement,
)
from srgan.config import RuntimeConfig
from srgan.inference.shipped_models import DEFAULT_MODEL, shipped_model_path
from srgan.run.metrics import read_metrics
from srgan.run.runtime import setup_runtime

REPO = Path(__file__).resolve().parents[2]
# The paper's batch and crop on a GPU; a network small enough for seconds on a CPU otherwise.
SIZES = {
    "gpu": {
        "num_blocks": 16,
        "num_channels": 64,
        "discriminator_channels": 64,
        "crop_size": 96,
        "batch_size": 16,
        "steps": 100,
    },
    "dry": {
        "num_blocks": 2,
        "num_channels": 8,
        "discriminator_channels": 8,
        "crop_size": 32,
        "batch_size": 4,
        "steps": 4,
    },
}
# Pretraining and GAN it/s at batch 16 / 96 px that an H100/H200 should reach.
TARGETS = {"pretrain": 300.0, "gan": 100.0}
STAGE_VARIANTS = {"bf16": ("bf16", False), "fp16": ("fp16", False), "bf16_compile": ("bf16", True)}


class Check:
    """What every check knows: where it writes, its sizes, and how to run the repo's scripts."""

    def __init__(self, out: Path, work: Path, dry_run: bool) -> None:
        self.out, self.work, self.dry_run = out, work, dry_run
        self.sizes = SIZES["dry" if dry_run else "gpu"]
        self.device = "cpu" if dry_run else "cuda"
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}

    def training_args(self, run_dir: Path, steps: int, *overrides: str) -> list[str]:
        s = self.sizes
        sets = [
            f"model.num_blocks={s['num_blocks']}",
            f"model.num_channels={s['num_channels']}",
            f"model.discriminator_channels={s['discriminator_channels']}",
            f"data.crop_size={s['crop_size']}",
            f"pretrain.batch_size={s['batch_size']}",
            f"gan.batch_size={s['batch_size']}",
            f"data.train_dir={self.work / 'data/train'}",
            f"data.valid_dir={self.work / 'data/valid'}",
            "data.valid_max_size=128",
            "pretrain.validate_every=100000",
            "gan.validate_every=100000",
            'gan.lr_phases=[{"epochs": 100000, "lr": 1e-4}]',
            "gan.content_loss=vgg54",
            "gan.vgg_weights=random",
            "runtime.log_every=10",
            "runtime.keep_samples=0",
            *overrides,
        ]
        args = ["--config", str(REPO / "configs/quickstart.json"), "--device", self.device]
        args += ["--run-dir", str(run_dir), "--max-steps", str(steps)]
        return args + [item for value in sets for item in ("--set", value)]

    def run(
        self, command: list[str], log: str, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """A command of the checkout, its output appended to logs/<log>.log."""
        result = subprocess.run(
            command, cwd=REPO, env=env or self.env, capture_output=True, text=True, check=False
        )
        with (self.out / "logs" / f"{log}.log").open("a") as file:
            file.write(f"$ {' '.join(command)}\nexit {result.returncode}\n")
            file.write(result.stdout + result.stderr + "\n")
        return result

    def script(self, name: str, args: list[str], log: str, env: dict | None = None):
        return self.run([sys.executable, str(REPO / "scripts" / name), *args], log, env)


def failed(result: subprocess.CompletedProcess, what: str) -> Finding:
    """Its exit code and the line that says most: the last error line, else the last line."""
    lines = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
    errors = [line for line in lines if "Error" in line or line.startswith("error:")]
    return Finding("failed", f"{what} exited {result.returncode}: {(errors or lines)[-1][:300]}")


def last_rate(run_dir: Path, stage: str) -> float | None:
    rows = read_metrics(run_dir / "metrics.jsonl")
    rates = [
        r["steps_per_second"] for r in rows if r.get("stage") == stage and "steps_per_second" in r
    ]
    return rates[-1] if rates else None


def check_environment(check: Check) -> Finding:
    if shutil.which("nvidia-smi"):
        check.run(["nvidia-smi"], "environment")
    numbers = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
    }
    if torch.cuda.is_available():
        numbers.update(
            gpu=torch.cuda.get_device_name(0),
            cudnn=torch.backends.cudnn.version(),
            nccl=".".join(map(str, torch.cuda.nccl.version())),
            gpus=torch.cuda.device_count(),
        )
    detail = ", ".join(f"{key} {value}" for key, value in numbers.items())
    if not check.dry_run and not torch.cuda.is_available():
        return Finding("falls short", f"CUDA is not available ({detail})", numbers)
    return Finding("figure", detail, numbers)


def check_cuda_tests(check: Check) -> Finding:
    tests = ["tests/test_cuda.py", "tests/test_device_paths.py"]
    result = check.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *tests], "cuda_tests"
    )
    summary = (result.stdout.strip().splitlines() or ["no output"])[-1]
    return Finding("ok" if result.returncode == 0 else "falls short", summary)


def check_stages(check: Check, variant: str) -> Finding:
    """Both stages for `steps` steps in one precision (and compile), their it/s, and how often
    torch.compile recompiled."""
    precision, compile = STAGE_VARIANTS[variant]
    if check.dry_run:
        if precision == "fp16" or compile:
            return Finding(
                "skipped", "needs CUDA" if precision == "fp16" else "compiles for minutes on a CPU"
            )
        precision = "auto"
    run_dir, steps = check.work / f"stages_{variant}", check.sizes["steps"]
    extra = [
        f"runtime.precision={precision}",
        f"runtime.compile={str(compile).lower()}",
        "data.sample_data=true",
    ]
    env = {**check.env, "TORCH_LOGS": "recompiles"} if compile else check.env
    pretrain = check.script(
        "pretrain.py", check.training_args(run_dir, steps, *extra), variant, env
    )
    if pretrain.returncode != 0:
        return failed(pretrain, "pretrain.py")
    source = run_dir / "checkpoints" / f"srresnet_x4_quickstart_step{steps:08d}.pt"
    gan_args = check.training_args(run_dir, steps, *extra, f"gan.pretrained_generator={source}")
    gan = check.script("train.py", gan_args, variant, env)
    if gan.returncode != 0:
        return failed(gan, "train.py")
    recompiles = sum(
        line.count("Recompiling") for line in (pretrain.stderr + gan.stderr).splitlines()
    )
    rates = {stage: last_rate(run_dir, stage) for stage in ("pretrain", "gan")}
    numbers = {"it_per_s": rates, "recompiles": recompiles, "steps": steps}
    detail = f"pretrain {rates['pretrain']:.3g} it/s, GAN {rates['gan']:.3g} it/s"
    return Finding("figure", detail + (f", {recompiles} recompiles" if compile else ""), numbers)


def check_host_syncs(check: Check) -> Finding:
    if check.dry_run:
        return Finding("skipped", "needs CUDA (torch.cuda.set_sync_debug_mode)")
    runtime = setup_runtime(RuntimeConfig(device="cuda", precision="bf16"))
    return count_host_syncs(runtime, check.sizes)


def check_evaluation(check: Check) -> Finding:
    if check.dry_run:
        return Finding("skipped", "needs CUDA (compares CUDA with the CPU)")
    images = (
        sorted((check.work / "data/valid").glob("*.png"))[:1]
        + sorted((check.work / "data/train").glob("*.png"))[:2]
    )
    return evaluation_agreement(shipped_model_path(DEFAULT_MODEL), images, torch.device("cuda"))


def check_ddp_one_process(check: Check) -> Finding:
    """The DDP code path (wrapping, all-reduce of the stop flag, barriers) in one process with
    the backend the GPU box uses: NCCL (gloo in a dry run)."""
    run_dir = check.work / "ddp_one_process"
    args = check.training_args(run_dir, check.sizes["steps"] // 2, "data.sample_data=true")
    result = check.run(
        [sys.executable, "-m", "srgan.commands.gpu_check", "--one-process-ddp", *args],
        "ddp_one_process",
    )
    if result.returncode != 0:
        return failed(result, "one-process DDP run")
    if ", 1 processes" not in result.stdout:
        return Finding("falls short", "the run did not take the DDP code path")
    return Finding("ok", f"{'gloo' if check.dry_run else 'NCCL'}, world size 1, through DDP")


def check_two_gloo_ranks(check: Check) -> Finding:
    """Two ranks on one device: rank 0 validates while rank 1 waits in a collective."""
    run_dir = check.work / "gloo_two_ranks"
    steps = 12 if not check.dry_run else 8  # 6 steps an epoch: validates at step 6 (and 12)
    batch_size = check.sizes["batch_size"]
    overrides = [
        "data.sample_data=true",
        "runtime.distributed_backend=gloo",
        f"data.crops_per_image={batch_size}",
        "pretrain.validate_every=1",
    ]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = check.run(
        [
            *launcher,
            str(REPO / "scripts/pretrain.py"),
            *check.training_args(run_dir, steps, *overrides),
        ],
        "gloo_two_ranks",
    )
    if result.returncode != 0:
        return failed(result, "torchrun with two gloo ranks")
    rows = read_metrics(run_dir / "metrics.jsonl")
    validations = sum("valid/psnr_y" in row for row in rows)
    if not validations:
        return Finding("falls short", "the run never validated")
    return Finding(
        "ok", f"{steps} steps, {validations} validation(s) on rank 0 while rank 1 waited"
    )


def check_resume(check: Check) -> Finding:
    """runtime.deterministic: a run stopped halfway and resumed equals an uninterrupted one."""
    steps = max(4, check.sizes["steps"] // 5) // 2 * 2
    extra = [
        "runtime.deterministic=true",
        "data.sample_data=true",
        f"runtime.checkpoint_every={steps // 2}",
    ]
    straight, halves = check.work / "resume_straight", check.work / "resume_halves"
    for run_dir, stop, more in (
        (straight, steps, []),
        (halves, steps // 2, []),
        (halves, steps, ["--resume", "auto"]),
    ):
        result = check.script(
            "pretrain.py", [*check.training_args(run_dir, stop, *extra), *more], "resume"
        )
        if result.returncode != 0:
            return failed(result, "pretrain.py")
    name = f"srresnet_x4_quickstart_step{steps:08d}.pt"
    return compare_checkpoints(straight / "checkpoints" / name, halves / "checkpoints" / name)


def check_benchmark(check: Check) -> Finding:
    output = check.out / "benchmark.json"
    args = ["--device", check.device, "--json", str(output), "--no-compile"]
    if check.dry_run:
        args += ["--seconds", "0", "--threads", "1", "--images", "1"]
        args += ["--batch-size", "2", "--crop-size", "16"]
    else:
        args += ["--seconds", "1"]
    result = check.script("benchmark.py", args, "benchmark")
    if result.returncode != 0:
        return failed(result, "benchmark.py")
    rows = json.loads(output.read_text())["training"]
    best = {
        stage: max(r["steps_per_second"] for r in rows if r["step"] == stage) for stage in TARGETS
    }
    peak = max(r["percent_of_ceiling"] for r in rows)
    rates = f"pretrain {best['pretrain']:.3g} it/s, GAN {best['gan']:.3g} it/s"
    detail = f"{rates}, best {peak:.0f}% of peak"
    if check.dry_run:
        return Finding("figure", detail, best)
    short = [stage for stage, target in TARGETS.items() if best[stage] < target]
    targets = f" (targets: pretrain {TARGETS['pretrain']:g}, GAN {TARGETS['gan']:g} it/s)"
    return Finding("falls short" if short else "ok", detail + targets, best)

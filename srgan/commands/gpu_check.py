"""scripts/gpu_check.sh: what to run first on a GPU box, all checks in one command.

Each check runs in its own process with its own time limit; its line goes to
OUT_DIR/summary.txt as soon as it ends (`ok`, `falls short`, `skipped`, `failed`, `timed out`
or a figure), its output to OUT_DIR/logs/<check>.log, so a run cut short still leaves what it
learnt. `--dry-run` runs the same checks on the CPU at tiny sizes (the CUDA-only ones are
reported as skipped), so the script is tested without a GPU. Needs no network and no
particular torch: only this checkout and the packages it imports.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from srgan.benchmark.device_checks import Finding
from srgan.benchmark.gpu_checks import (
    REPO,
    Check,
    check_benchmark,
    check_cuda_tests,
    check_ddp_one_process,
    check_environment,
    check_evaluation,
    check_host_syncs,
    check_resume,
    check_stages,
    check_two_gloo_ranks,
)

# In the order of what matters most, so a run cut short has the essentials; (check, seconds).
CHECKS = {
    "environment": (check_environment, 60),
    "cuda_tests": (check_cuda_tests, 240),
    "stages_bf16": (lambda check: check_stages(check, "bf16"), 150),
    "host_syncs": (check_host_syncs, 90),
    "evaluation_cuda_vs_cpu": (check_evaluation, 90),
    "ddp_one_process": (check_ddp_one_process, 90),
    "gloo_two_ranks": (check_two_gloo_ranks, 120),
    "resume_deterministic": (check_resume, 120),
    "stages_fp16": (lambda check: check_stages(check, "fp16"), 150),
    "benchmark": (check_benchmark, 240),
    "stages_bf16_compile": (lambda check: check_stages(check, "bf16_compile"), 300),
}


def run_check(name: str, out: Path, work: Path, dry_run: bool) -> int:
    """Child process: one check; its finding as the last line of stdout, JSON."""
    check = Check(out, work, dry_run)
    try:
        finding = CHECKS[name][0](check)
    except Exception as error:  # a check that crashes reports it, the others still run
        finding = Finding("failed", f"{type(error).__name__}: {str(error)[:300]}")
    print(
        json.dumps({"status": finding.status, "detail": finding.detail, "numbers": finding.numbers})
    )
    return 0


def one_process_ddp() -> None:
    """Child process: a pretraining run inside a one-process group started here, so
    `setup_runtime` takes the DDP code path (NCCL on CUDA, gloo on the CPU)."""
    from srgan.commands.common import stage_main
    from srgan.train.stages import pretrain

    with socket.socket() as probe:  # a free port for the group's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = "nccl" if "cuda" in sys.argv else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(0)
    torch.distributed.init_process_group(
        backend, init_method=f"tcp://127.0.0.1:{port}", world_size=1, rank=0
    )
    sys.argv = [str(REPO / "scripts/pretrain.py"), *sys.argv[2:]]
    try:
        stage_main(pretrain, "SRResNet pretraining (one-process DDP)", __doc__)
    finally:
        torch.distributed.destroy_process_group()


def line(name: str, finding: dict) -> str:
    status, detail = finding["status"], finding["detail"]
    return f"{name}: {detail}" if status == "figure" else f"{name}: {status} ({detail})"


def run_all(out: Path, dry_run: bool, only: list[str]) -> int:
    """Every check in its own process group (a timeout kills all it started); exit 1 when one
    falls short, fails or times out."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    summary, results = out / "summary.txt", {}
    summary.write_text(
        f"gpu_check {'--dry-run ' if dry_run else ''}{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
    )
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        for name, (_, seconds) in CHECKS.items():
            if only and name not in only:
                continue
            started = time.monotonic()
            finding = run_child(name, out, work, dry_run, seconds)
            finding["seconds"] = round(time.monotonic() - started, 1)
            results[name] = finding
            with summary.open("a") as file:
                file.write(line(name, finding) + f" [{finding['seconds']:.0f} s]\n")
            (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            print(line(name, finding), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bad = [
        name for name, f in results.items() if f["status"] in ("falls short", "failed", "timed out")
    ]
    with summary.open("a") as file:
        file.write(f"result: {'falls short: ' + ', '.join(bad) if bad else 'ok'}\n")
    return 1 if bad else 0


def run_child(name: str, out: Path, work: Path, dry_run: bool, seconds: float) -> dict:
    command = [
        sys.executable,
        "-m",
        "srgan.commands.gpu_check",
        "--run-check",
        name,
        str(out),
    ]
    command += ["--work", str(work)] + (["--dry-run"] if dry_run else [])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return {"status": "timed out", "detail": f"after {seconds:g} s", "numbers": {}}
    with (out / "logs" / f"{name}.log").open("a") as file:
        file.write(stdout + stderr)
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return {
            "status": "failed",
            "detail": f"exit {process.returncode}: {last[:300]}",
            "numbers": {},
        }


def main() -> None:
    if sys.argv[1:2] == ["--one-process-ddp"]:
        one_process_ddp()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "results/gpu_check")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=list(CHECKS),
        metavar="CHECK",
        help=f"run only this check (repeatable): {', '.join(CHECKS)}",
    )
    parser.add_argument("--run-check", choices=list(CHECKS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_check:
        sys.exit(run_check(args.run_check, args.out.resolve(), args.work, args.dry_run))
    sys.exit(run_all(args.out.resolve(), args.dry_run, args.only))


if __name__ == "__main__":
    main()

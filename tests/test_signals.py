"""Signals end a run cleanly at any moment: one SIGTERM exits 143, two SIGINTs exit 130, never
a native abort (`terminate called ...`, exit -6 or 134) nor a traceback, and the run folder
resumes afterwards.

The signals land at seeded random moments of scripts/pretrain.py on the tiny data: start-up
(config, data loading, network building, resuming), steps, validation and checkpoint writes
(both every second step). Trials run in a few lanes at a time; each run of a lane resumes the
folder the one before it left (`--resume auto`), and every few trials a `--resume auto
--max-steps` run of it must finish at its step.
"""

import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import PARALLEL_SCRIPTS, SCRIPT_ENV, SCRIPTS, describe

SEED = 143
SIGTERM_TRIALS = 30
SIGINT_TRIALS = 10
CHECK_EVERY = 5  # trials of a lane between two runs that must finish
MAX_DELAY = 2.5  # seconds after the first line: start-up takes 0.8-2 s, a step about 0.05 s
MAX_SIGINT_GAP = 1.0
STARTED = "pretraining SRResNet"  # pretrain.py's first line, printed once its handler is in
TIMEOUT = 120
STOP_TIMEOUT = 30  # seconds from the signal: a stop takes under one
RUN_ENV = {**SCRIPT_ENV, "PYTHONUNBUFFERED": "1"}  # the first line shows when it is printed
RUN_OPTIONS = ["--set", "pretrain.epochs=100000", "--checkpoint-every", "2", "--resume", "auto"]


@dataclass(frozen=True)
class Trial:
    index: int
    signal_number: int  # SIGTERM: sent once; SIGINT: sent twice, `gap` seconds apart
    delay: float  # seconds after the run printed its first line
    gap: float = 0.0


def make_trials() -> list[Trial]:
    rng = random.Random(SEED)
    numbers = [signal.SIGTERM] * SIGTERM_TRIALS + [signal.SIGINT] * SIGINT_TRIALS
    rng.shuffle(numbers)
    return [
        Trial(index, number, rng.uniform(0, MAX_DELAY), rng.uniform(0, MAX_SIGINT_GAP))
        for index, number in enumerate(numbers)
    ]


def wait_for_line(process: subprocess.Popen, output: Path, text: str) -> bool:
    """Whether `process` printed `text` into `output` before it ended (polled every 2 ms)."""
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        if text in output.read_text():
            return True
        time.sleep(0.002)
    return False


def interrupt(trial: Trial, command: list[str], logs: Path) -> subprocess.CompletedProcess:
    """Run `command`, signal it as `trial` says, wait for it to end."""
    stdout, stderr = logs / f"trial{trial.index:02d}.out", logs / f"trial{trial.index:02d}.err"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=logs, env=RUN_ENV, stdout=out, stderr=err)
    try:
        if wait_for_line(process, stdout, STARTED):
            time.sleep(trial.delay)
            process.send_signal(trial.signal_number)  # a no-op once the process has ended
            if trial.signal_number == signal.SIGINT:
                time.sleep(trial.gap)
                process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):  # then it shows as exit -9
            process.wait(timeout=STOP_TIMEOUT)
    finally:
        process.kill()  # a no-op once it has ended
        process.wait()
    return subprocess.CompletedProcess(
        command, process.returncode, stdout.read_text(), stderr.read_text()
    )


def problems(trial: Trial, result: subprocess.CompletedProcess) -> list[str]:
    name = signal.Signals(trial.signal_number).name
    found = []
    if result.returncode != 128 + trial.signal_number:
        found.append(f"exit {result.returncode}, not {128 + trial.signal_number}")
    if "terminate called" in result.stderr:
        found.append("native abort")
    if "Traceback" in result.stderr:
        found.append("traceback")
    if not any(line.startswith(f"stopped by {name}") for line in result.stderr.splitlines()):
        found.append(f"no 'stopped by {name}' line")
    return found


def last_logged_step(metrics_file: Path) -> int:
    steps = [0]
    if metrics_file.is_file():
        for line in metrics_file.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut short by a kill
                steps.append(json.loads(line)["step"])
    return max(steps)


@dataclass
class LaneResult:
    failures: list[str]
    stopped_during_start_up: int
    stopped_in_loop: int
    resume_checks: int


def run_lane(folder: Path, base_command: list[str], trials: list[Trial]) -> LaneResult:
    """`trials` one after the other on one run folder, a finishing resume every CHECK_EVERY."""
    run_dir, result = folder / "run", LaneResult([], 0, 0, 0)
    command = [*base_command, "--run-dir", str(run_dir)]
    for count, trial in enumerate(trials, start=1):
        interrupted = interrupt(trial, command, folder)
        found = problems(trial, interrupted)
        if found:
            result.failures.append(f"{trial}: {', '.join(found)}\n{interrupted.stderr}")
        result.stopped_during_start_up += "during start-up" in interrupted.stderr
        result.stopped_in_loop += " after step " in interrupted.stderr
        if count % CHECK_EVERY and count < len(trials):
            continue
        # A step past every one logged: the run must load a checkpoint (or none) and train.
        end_step = last_logged_step(run_dir / "metrics.jsonl") + 2
        resumed = subprocess.run(
            [*command, "--max-steps", str(end_step)],
            cwd=folder,
            env=RUN_ENV,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        result.resume_checks += 1
        if resumed.returncode != 0 or f"done at step {end_step}:" not in resumed.stdout:
            result.failures.append(f"resume after {trial}:\n{describe(resumed)}")
    return result


def test_signals_at_random_moments_stop_cleanly_and_resume(
    tmp_path: Path, tiny_config_args: list[str]
) -> None:
    trials = make_trials()
    base_command = [sys.executable, str(SCRIPTS / "pretrain.py"), *tiny_config_args, *RUN_OPTIONS]
    lanes = [tmp_path / f"lane{lane}" for lane in range(PARALLEL_SCRIPTS)]
    with ThreadPoolExecutor(len(lanes)) as pool:
        futures = []
        for lane, folder in enumerate(lanes):
            folder.mkdir()
            lane_trials = trials[lane :: len(lanes)]
            futures.append(pool.submit(run_lane, folder, base_command, lane_trials))
        results = [future.result() for future in futures]
    failures = [failure for result in results for failure in result.failures]
    assert not failures, f"{len(failures)} failure(s) (SEED {SEED}):\n" + "\n".join(failures)
    # The moments must cover both sides of the loop's own handler, and resumes must have run.
    assert sum(result.stopped_during_start_up for result in results) > 0
    assert sum(result.stopped_in_loop for result in results) > 0
    assert sum(result.resume_checks for result in results) >= len(trials) // CHECK_EVERY


def test_a_start_up_stop_wrapped_by_other_code_is_still_a_stop() -> None:
    """Python turns an exception raised inside `__set_name__` (a class body being imported
    when the signal lands) into a RuntimeError; the stop must still exit 128+N."""
    import pytest

    from srgan.commands.common import call_main
    from srgan.run.signals import StoppedBySignal

    def main(args: object) -> int:
        try:
            raise StoppedBySignal(2)
        except StoppedBySignal as stop:
            raise RuntimeError("Error calling __set_name__") from stop

    with pytest.raises(StoppedBySignal) as raised:
        call_main(main, None)
    assert raised.value.exit_code == 130
    with pytest.raises(RuntimeError):  # any other error stays what it was
        call_main(lambda args: (_ for _ in ()).throw(RuntimeError("other")), None)

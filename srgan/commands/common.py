"""Command-line plumbing shared by the scripts: common flags and error reporting."""

import argparse
import contextlib
import math
import shlex
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from srgan.checkpoint import CheckpointError
from srgan.config import Config, ConfigError, load_config
from srgan.datasets.catalog import missing_data_hint
from srgan.files import WriteError
from srgan.models.vgg import VGGWeightsError
from srgan.run.folder import RunFolderError, RunLock, RunPaths
from srgan.run.metrics import NonFiniteLossError
from srgan.run.runtime import Runtime, setup_runtime, shutdown
from srgan.run.signals import (
    Interrupted,
    StoppedBySignal,
    ignore_signals,
    stop_behind,
    stop_on_signals,
)

# Errors a user can fix (their input, their files): one line and exit code 2, no traceback.
USER_ERRORS = (
    ConfigError,
    CheckpointError,
    RunFolderError,
    VGGWeightsError,
    FileNotFoundError,
    ValueError,
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines as written (its example commands stay one per line) and
    adds "(default: X)" to an option's help, unless the help already says what the default is
    or there is none to show (None, a flag's False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        default = action.default
        no_default = default is None or default is False or default == []
        if "default" in help_text or no_default or default is argparse.SUPPRESS:
            return action.help
        return f"{help_text} (default: %(default)s)"


def training_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    parser.add_argument("--config", default="config.json", help="JSON config file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a config key, e.g. --set pretrain.lr=2e-4 (repeatable; value is JSON)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=None,
        help="device to train on (default: runtime.device from the config)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="folder for this run's logs, with checkpoints in its checkpoints/ subfolder "
        "(default: logs/<name>/ and checkpoints/<name>/)",
    )
    _add_resume_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="a shortcut for --set seed=N")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log to logs/<name>/tensorboard/ (a shortcut for --set runtime.tensorboard=true;"
        " needs pip install tensorboard)",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def _add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a stage stops, how often it saves, and what it starts from."""
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop this stage after N optimizer steps in total (smoke tests, debugging)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        help="steps between resumable checkpoints; a shortcut for --set runtime.checkpoint_every=N",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue from a checkpoint: 'auto' takes this run's checkpoint of highest step "
        "that loads (and starts from step 0 if there is none)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start over in a folder that holds an earlier run of this stage: its files are "
        "moved to <checkpoints>/old-<time>/, never deleted",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.checkpoint_every is not None:
        overrides.append(f"runtime.checkpoint_every={args.checkpoint_every}")
    if args.tensorboard:
        overrides.append("runtime.tensorboard=true")
    config = load_config(args.config, overrides, check_paths=False)
    check_data_folders(config)
    return config


def check_data_folders(config: Config) -> None:
    """Fail before any work when a data folder is missing, with the command that fetches it."""
    if config.data.sample_data:  # written by the training scripts themselves
        return
    for key in ("train_dir", "valid_dir"):
        folder = Path(getattr(config.data, key))
        if not folder.is_dir():
            hint = missing_data_hint(folder)
            raise ConfigError(f"data.{key}: folder {folder} does not exist. {hint}")


def run_paths(config: Config, run_dir: Path | None) -> RunPaths:
    if run_dir is not None:
        return RunPaths(log_dir=run_dir, checkpoint_dir=run_dir / "checkpoints")
    return RunPaths(
        log_dir=Path("logs") / config.name, checkpoint_dir=Path("checkpoints") / config.name
    )


def describe_runtime(runtime: Runtime) -> str:
    processes = f", {runtime.world_size} processes" if runtime.distributed else ""
    layout = "channels_last" if runtime.channels_last else "NCHW"
    return f"device {runtime.device}, precision {runtime.precision}, {layout}{processes}"


def resume_command(argv: list[str]) -> str:
    """The command line `argv` (script first) with `--resume auto` in place of any --resume."""
    kept, skip_next = [], False
    for arg in argv[1:]:
        if skip_next or arg.startswith("--resume="):
            skip_next = False
            continue
        if arg == "--resume":
            skip_next = True
            continue
        kept.append(arg)
    return shlex.join(["python", argv[0], *kept, "--resume", "auto"])


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str = ""
) -> str:
    return f"warning: {message}\n"


def run_main(main: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> None:
    """Run `main(args)` and turn expected failures into a one-line message and an exit code."""
    warnings.simplefilter("default")
    warnings.formatwarning = _one_line_warning  # users need the message, not our source line
    try:
        code = call_main(main, args)
    except (Interrupted, StoppedBySignal) as stop:
        ignore_signals()  # stopping already: a further signal must not cut the report short
        code = report_stop(stop)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop, which handles its own
        ignore_signals()
        print("\ninterrupted", file=sys.stderr)
        code = 130
    except (NonFiniteLossError, WriteError) as error:  # the run failed, not the input
        code = report_error(error, args.debug, 1)
    except USER_ERRORS as error:
        code = report_error(error, args.debug, 2)
    except OSError as error:  # the environment (a disk filling up midway, ...): not the input
        if error.filename is not None and error.strerror:
            error = OSError(f"{error.filename}: {error.strerror}")
        code = report_error(error, args.debug, 1)
    sys.exit(code)


def call_main(main: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """`main(args)`, with a start-up stop that some code on the way wrapped into another
    exception (Python turns one raised in `__set_name__` into a RuntimeError) raised as itself."""
    try:
        return main(args)
    except Exception as error:
        stop = stop_behind(error)
        if stop is None:
            raise
        raise stop from None


def report_stop(stop: Interrupted | StoppedBySignal) -> int:
    """Print why a signal stopped the run; returns its exit code. A signal that came during
    the clean-up after the loop's stop is reported as that stop, which names its checkpoint."""
    if isinstance(stop.__context__, Interrupted):
        stop = stop.__context__
    if isinstance(stop, StoppedBySignal):
        print(f"\n{stop}", file=sys.stderr)
    elif stop.checkpoint is None:
        print(f"\n{stop}; no checkpoint to resume from yet", file=sys.stderr)
    else:
        print(
            f"\n{stop}; checkpoint {stop.checkpoint}\nresume with: {resume_command(sys.argv)}",
            file=sys.stderr,
        )
    return stop.exit_code


def report_error(error: BaseException, debug: bool, code: int) -> int:
    """Print `error: <message>` (the traceback too with --debug); returns `code`."""
    if debug:
        traceback.print_exc()
    print_safely(f"error: {error}", file=sys.stderr)
    return code


def print_safely(text: str, file=sys.stdout) -> None:
    """print(), but a file name that is not valid UTF-8 (held by Python as surrogates) is
    shown with backslash escapes instead of crashing the print."""
    encoding = getattr(file, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding), file=file)


def describe_best(best_psnr_y: float) -> str:
    """The best validation score for the closing line; -inf means nothing was validated yet."""
    if math.isfinite(best_psnr_y):
        return f"best validation PSNR-Y {best_psnr_y:.2f} dB"
    return "no validation yet (the stage stopped before its first; see validate_every)"


def stage_main(stage_fn: Callable, title: str, description: str) -> None:
    """The whole of scripts/pretrain.py and scripts/train.py: parse flags, run one stage."""
    stop_on_signals()  # until the loop's own handler: a signal during start-up exits 128+N
    parser = training_parser(description)
    args = parser.parse_args()
    if args.resume is not None and args.fresh:
        parser.error("--resume and --fresh exclude each other")

    def main(args: argparse.Namespace) -> int:
        config = config_from_args(args)
        runtime = setup_runtime(config.runtime, args.device)
        paths = run_paths(config, args.run_dir)
        if runtime.is_main:
            print(f"{title} x{config.model.scale} '{config.name}': {describe_runtime(runtime)}")
        # One process (rank 0) holds the run folder; the others follow its lead.
        lock = RunLock(paths.log_dir) if runtime.is_main else contextlib.nullcontext()
        finished = False
        try:
            with lock:
                result = stage_fn(
                    config,
                    runtime,
                    paths,
                    resume=args.resume,
                    fresh=args.fresh,
                    max_steps=args.max_steps,
                )
            finished = True
        finally:
            shutdown(runtime, finished)
        if runtime.is_main:
            print(
                f"{title} done at step {result['step']}: {describe_best(result['best_psnr_y'])}; "
                f"checkpoints in {paths.checkpoint_dir}, logs in {paths.log_dir}"
            )
        return 0

    run_main(main, args)

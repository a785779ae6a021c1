"""Print the validation rows of training runs as a Markdown table: per validation, PSNR-Y /
NIQE / grid % of the validated generator (the weight average when the run keeps one), of the
trained generator when it was scored too (`gan.validate_trained_generator`), and the
discriminator's mean outputs D(real) / D(fake) logged at that step.

python scripts/validation_table.py runs/probes/paper runs/probes/ramp300 [--stage gan]
"""

import argparse
import json
from pathlib import Path

from srgan.commands.common import run_main

SCORES = ("psnr_y", "niqe", "grid_percent")


def read_rows(run_dir: Path, stage: str) -> list[dict]:
    """The metrics rows of `stage` in a run folder (its metrics.jsonl), in step order."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {run_dir} a run folder?)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((row for row in rows if row.get("stage") == stage), key=lambda r: r["step"])


def scores(row: dict, prefix: str) -> str:
    values = [row.get(f"{prefix}/{key}") for key in SCORES]
    if all(value is None for value in values):
        return "–"
    return " / ".join("–" if value is None else f"{value:.2f}" for value in values)


def table(name: str, rows: list[dict]) -> list[str]:
    lines = [
        f"| {name}, step | validated PSNR-Y / NIQE / grid % | trained PSNR-Y / NIQE / grid % "
        "| D(real) / D(fake) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        if "valid/psnr_y" not in row:
            continue
        real, fake = row.get("loss/d_real"), row.get("loss/d_fake")
        outputs = "–" if real is None or fake is None else f"{real:.2f} / {fake:.2f}"
        lines.append(
            f"| {row['step']:,} | {scores(row, 'valid')} | {scores(row, 'valid_trained')} "
            f"| {outputs} |"
        )
    return lines


def table_main(args: argparse.Namespace) -> int:
    for run_dir in args.run_dirs:
        print("\n".join(table(run_dir.name, read_rows(run_dir, args.stage))) + "\n")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders (--run-dir)")
    parser.add_argument(
        "--stage",
        default="gan",
        choices=("pretrain", "gan"),
        help="whose validation rows: pretraining's or GAN training's (default: gan)",
    )
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    return parser.parse_args()


def main() -> None:
    run_main(table_main, parse_args())

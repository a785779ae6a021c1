"""Download and verify the training and benchmark datasets into data/ (see data/README.md).

python scripts/download_data.py div2k-train-hr div2k-valid-hr set5
python scripts/download_data.py all --mirror http://my-mirror.example
"""

import argparse
import sys
from pathlib import Path

# Run from a checkout without installing the package, like the other scripts in scripts/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srgan import download  # noqa: E402


def _describe_sets() -> str:
    """One help line per known set: name, archive size where published, target folder."""
    lines = ["datasets:"]
    for entry in download.DATASETS.values():
        size = f"{entry.size / 2**20:,.0f} MiB" if entry.size else "size unpublished"
        lines.append(f"  {entry.name:<18} {size:>17}  -> <root>/{entry.target}/")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; choices come from `srgan.download.DATASETS`."""
    parser = argparse.ArgumentParser(
        description=(
            "Download dataset archives, check their size and SHA-256 (or, where no hash is\n"
            "published, that every image opens), and install the images under --root.\n"
            "Interrupted downloads resume on the next run; installed sets are skipped."
        ),
        epilog=_describe_sets(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        choices=[*download.DATASETS, "all"],
        help="dataset(s) to install, or 'all' for every set listed below",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("data"),
        help="folder that receives the datasets (default: data, relative to the current folder)",
    )
    parser.add_argument(
        "--mirror",
        metavar="URL",
        help=(
            "replace the scheme and host of every download URL by this one, keeping the path "
            "(e.g. http://proxy:8080 or http://mirror.example/cache), for mirrors and proxies"
        ),
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw download progress bars"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Install each requested set; return 0 if all succeeded, 1 if any failed."""
    args = build_parser().parse_args(argv)
    names = list(download.DATASETS) if "all" in args.names else list(dict.fromkeys(args.names))
    failed = []
    # Keep going after a failure so one unreachable host does not block the other sets.
    for name in names:
        try:
            download.download_dataset(
                download.DATASETS[name], args.root, args.mirror, progress=not args.no_progress
            )
        except download.DownloadError as error:
            print(f"error: {error}", file=sys.stderr)
            failed.append(name)
        except OSError as error:  # E.g. --root is not writable.
            print(f"error: {name}: {error}", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"failed: {' '.join(failed)} (rerun the same command to retry)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Download and verify the training and benchmark datasets into data/ (see data/README.md).

python scripts/download_data.py sr291 set5 set14
python scripts/download_data.py sr291 --from /path/to/copy  # reads T91/ and BSDS200/ there
python scripts/download_data.py all --mirror http://my-mirror.example
"""

import argparse
import sys
from pathlib import Path

from srgan.datasets import catalog as datasets
from srgan.datasets import install as download


def _describe_sets() -> str:
    """One help line per known set: name, image count, how it is checked, target folders."""
    lines = ["datasets:"]
    for dataset in datasets.DATASETS.values():
        count = datasets.image_count(dataset)
        if dataset.has_manifests:
            check = "SHA-256 of each image"
        elif all(source.sha256 for source in dataset.sources):
            check = "SHA-256 of the archive"
        else:
            check = "each image opened"
        folders = " ".join(f"<root>/{folder}/" for folder in datasets.dataset_folders(dataset))
        lines.append(f"  {dataset.name:<18} {count or '?':>4} images  {check:<22} -> {folders}")
    lines.append(
        "sr291 is T91 plus BSDS200 for training; 8 BSDS200 photographs go to valid/ instead "
        "(see data/README.md)."
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; choices come from `srgan.datasets.catalog.DATASETS`."""
    parser = argparse.ArgumentParser(
        description=(
            "Download datasets, check them (against the SHA-256 manifest of each image where the\n"
            "repo has one, else the archive's SHA-256 or that every image opens), and install\n"
            "the images under --root. Interrupted downloads resume on the next run; installed\n"
            "sets are skipped. --from installs the manifest-checked sets from a local folder."
        ),
        epilog=_describe_sets(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        choices=[*datasets.DATASETS, "all"],
        help="dataset(s) to install, or 'all' for every set listed below",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("data"),
        help="folder that receives the datasets (default: data, relative to the current folder)",
    )
    origin = parser.add_mutually_exclusive_group()
    origin.add_argument(
        "--mirror",
        metavar="URL",
        help=(
            "replace the scheme and host of every download URL by this one, keeping the path "
            "(e.g. http://proxy:8080 or http://mirror.example/cache), for mirrors and proxies"
        ),
    )
    origin.add_argument(
        "--from",
        dest="local_copy",
        type=Path,
        metavar="FOLDER",
        help=(
            "copy the images from this folder instead of downloading them, checked the same way: "
            "sr291 reads FOLDER/T91/ and FOLDER/BSDS200/, set5 FOLDER/Set5/HR/, set14 "
            "FOLDER/Set14/HR/ (only for sets checked per image)"
        ),
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw download progress bars"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Install each requested set; return 0 if all succeeded, 1 if any failed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = list(datasets.DATASETS) if "all" in args.names else list(dict.fromkeys(args.names))
    if args.local_copy is not None:
        unchecked = [name for name in names if not datasets.DATASETS[name].has_manifests]
        if unchecked:
            parser.error(
                f"--from needs sets checked per image; these are not: {' '.join(unchecked)}"
            )
    failed = []
    # Keep going after a failure so one unreachable host does not block the other sets.
    for name in names:
        try:
            download.download_dataset(
                datasets.DATASETS[name],
                args.root,
                args.mirror,
                progress=not args.no_progress,
                local_copy=args.local_copy,
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

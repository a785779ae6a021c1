"""Install the datasets of `srgan.datasets.catalog`: download, check, and move into place.

For each source of a set: download its archive to `<root>/<archive>.part` (resuming if a
previous attempt was cut off) and extract the matching images, or fetch its files one by one
(both with `srgan.datasets.fetch`), or copy them from a local folder. The images are checked (where
the set has SHA-256 manifests: exactly the files listed, with those hashes, wherever they came
from) in a temporary folder inside `<root>`, which only then is renamed into place, under a
lock that lets a later run remove the folders of a killed one (`srgan.datasets.staging`). A
`.complete` marker written inside it lets later runs skip a set that is already installed.
"""

import json
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from PIL import Image
from tqdm import tqdm

from srgan.datasets.catalog import (
    IMAGE_SUFFIXES,
    Dataset,
    Source,
    dataset_folders,
    manifest_sha256,
    read_manifest,
)
from srgan.datasets.fetch import FetchError, apply_mirror, extract_images, fetch_file
from srgan.datasets.staging import (
    InstallLockedError,
    install_lock,
    remove_stale_staging,
    staging_prefix,
)
from srgan.files import file_sha256

MARKER_NAME = ".complete"


class DownloadError(Exception):
    """A dataset could not be installed; the message is one line naming the set."""


def count_images(folder: Path) -> int:
    """Number of image files directly inside `folder` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(1 for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def _fingerprint(source: Source) -> dict[str, str]:
    """What fixes the images of `source`: its manifest's own hash, else the archive URL and hash.

    Going by the manifest lets a set installed with `--from` count as installed for a network
    install too: both hold the same verified bytes.
    """
    if source.manifest:
        return {"manifest": source.manifest, "sha256": manifest_sha256(source.manifest)}
    return {"url": source.url, "sha256": source.sha256}


def is_installed(dataset: Dataset, root: Path) -> bool:
    """Whether `dataset` was installed by this module from the same sources and is still whole."""
    root = Path(root)
    try:
        marker = json.loads((root / dataset.target / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    # Markers written before a set could have several sources hold one url and sha256.
    sources = marker.get("sources", [{"url": marker.get("url"), "sha256": marker.get("sha256")}])
    files = sum(count_images(root / folder) for folder in dataset_folders(dataset))
    same_sources = sources == [_fingerprint(source) for source in dataset.sources]
    return same_sources and marker.get("files") == files


def download_dataset(
    dataset: Dataset,
    root: Path,
    mirror: str | None = None,
    progress: bool = True,
    local_copy: Path | None = None,
) -> Path:
    """Install `dataset` into `<root>/<dataset.target>` and return that folder.

    The images come from the network, or, when `local_copy` is given, from the folders
    `<local_copy>/<source.local_folder>` (only for sets with manifests). Raises `DownloadError`
    with a one-line message on any failure; whatever was already in `root` stays as it was,
    except for `.part` files that a later call can resume.
    """
    root = Path(root)
    target = root / dataset.target
    if local_copy is not None and not dataset.has_manifests:
        raise DownloadError(f"{dataset.name}: has no SHA-256 manifest, so it cannot use --from")
    if is_installed(dataset, root):
        print(f"{dataset.name}: already installed and verified in {target}, skipping")
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        # Never overwrite data this module did not install (or whose install was altered).
        raise DownloadError(
            f"{dataset.name}: {target} exists but is not a verified install; "
            "move or delete it and rerun"
        )
    root.mkdir(parents=True, exist_ok=True)
    try:
        with install_lock(root, dataset.name):
            for line in remove_stale_staging(root, dataset.name):
                print(line)
            counts = _install(dataset, root, mirror, progress, local_copy)
    except (DownloadError, FetchError, InstallLockedError) as error:
        raise DownloadError(f"{dataset.name}: {error}") from error
    except OSError as error:  # E.g. a full disk: downloaded archives are fine, so keep them.
        raise DownloadError(f"{dataset.name}: cannot install: {error}") from error
    for source in dataset.sources:
        if source.member_glob:  # Downloaded archives, now installed (or made stale by --from).
            _part_path(source, root).unlink(missing_ok=True)
    installed = ", ".join(
        f"{count} images in {target / folder}" for folder, count in counts.items()
    )
    print(f"{dataset.name}: installed {installed}")
    return target


def _install(
    dataset: Dataset, root: Path, mirror: str | None, progress: bool, local_copy: Path | None
) -> dict[str, int]:
    """Stage the checked images and marker of `dataset` in `root`, then rename them into place.

    Returns the image count of each folder, as `_arrange` does.
    """
    target = root / dataset.target
    with tempfile.TemporaryDirectory(dir=root, prefix=staging_prefix(dataset.name)) as temporary:
        staging = Path(temporary) / "images"
        staging.mkdir()
        for source in dataset.sources:
            if local_copy is not None:
                _copy_local(source, Path(local_copy), staging)
            else:
                _download_source(source, root, staging, mirror, dataset.name, progress)
        counts = _arrange(dataset, staging)
        marker = {
            "name": dataset.name,
            "sources": [_fingerprint(source) for source in dataset.sources],
            "files": sum(counts.values()),
        }
        (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            target.rmdir()  # An empty placeholder folder, see `download_dataset`.
        staging.rename(target)
    return counts


def _part_path(source: Source, root: Path) -> Path:
    """Where the archive of `source` is downloaded to before it is checked."""
    return root / (PurePosixPath(urlsplit(source.url).path).name + ".part")


def _download_source(
    source: Source, root: Path, staging: Path, mirror: str | None, label: str, progress: bool
) -> None:
    """Put the checked images of `source` into `staging`, downloading them from its URL."""
    url = apply_mirror(source.url, mirror)
    if not source.member_glob:
        _download_files(source, url, staging, label, progress)
        return
    part = _part_path(source, root)
    fetch_file(url, part, source.size, label, progress)
    try:
        _check_archive(part, source)
        names = extract_images(part, source.member_glob, staging)
        _check_images(staging, names, source)
    except (DownloadError, FetchError) as error:
        # The archive is complete but wrong, so resuming it could never succeed.
        part.unlink(missing_ok=True)
        raise DownloadError(f"{error} ({url})") from error


def _download_files(source: Source, url: str, staging: Path, label: str, progress: bool) -> None:
    """Fetch each file the manifest of `source` lists from `<url>/<file name>`, then check them.

    The files are small, so an interrupted run simply fetches them again.
    """
    names = sorted(read_manifest(source.manifest))
    for name in tqdm(names, desc=label, unit="file", disable=not progress):
        fetch_file(f"{url.rstrip('/')}/{name}", staging / name, None, name, progress=False)
    try:
        _check_images(staging, names, source)
    except DownloadError as error:
        raise DownloadError(f"{error} ({url})") from error


def _copy_local(source: Source, local_copy: Path, staging: Path) -> None:
    """Copy the images of `<local_copy>/<source.local_folder>` into `staging`, then check them."""
    folder = local_copy / source.local_folder
    if not folder.is_dir():
        raise DownloadError(
            f"{folder} is not a folder (--from expects {source.local_folder}/ in it)"
        )
    names = []
    for path in sorted(folder.iterdir()):
        # Other files (a README, SHA256SUMS) may sit next to the images; hidden ones are skipped.
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if (staging / path.name).exists():
            raise DownloadError(f"two images named {path.name} ({folder})")
        shutil.copyfile(path, staging / path.name)
        names.append(path.name)
    try:
        _check_images(staging, names, source)
    except DownloadError as error:
        raise DownloadError(f"{error} ({folder})") from error


def _arrange(dataset: Dataset, staging: Path) -> dict[str, int]:
    """Lay the images in `staging` out as installed; return the image count of each folder.

    The keys are folders relative to the installed target: "." for a set that is not split.
    """
    if not dataset.held_out:
        return {".": count_images(staging)}
    train, valid = staging / "train", staging / "valid"
    train.mkdir()
    valid.mkdir()
    for path in sorted(staging.iterdir()):
        if path.is_file():
            path.rename((valid if path.name in dataset.held_out else train) / path.name)
    return {"train": count_images(train), "valid": count_images(valid)}


def _check_archive(part: Path, source: Source) -> None:
    """Compare the downloaded archive with the published size and SHA-256, where known."""
    size = part.stat().st_size
    if source.size is not None and size != source.size:
        raise DownloadError(f"size mismatch: got {size} bytes, expected {source.size}")
    if source.sha256:
        digest = file_sha256(part)
        if digest != source.sha256:
            raise DownloadError(f"SHA-256 mismatch: got {digest}, expected {source.sha256}")


def _check_images(folder: Path, names: list[str], source: Source) -> None:
    """Check the images `names` in `folder` that `source` supplied.

    Against the manifest where there is one; otherwise their count and, when no archive hash
    vouched for them, that each one opens.
    """
    if source.manifest:
        _check_manifest(folder, names, source.manifest)
        return
    if not names:
        raise DownloadError(f"no images in the archive match {source.member_glob!r}")
    if source.image_count is not None and len(names) != source.image_count:
        raise DownloadError(f"archive holds {len(names)} images, expected {source.image_count}")
    if source.sha256:
        return
    for name in sorted(names):
        try:
            with Image.open(folder / name) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for a corrupt file.
            raise DownloadError(f"{name} is not a valid image: {error}") from error


def _check_manifest(folder: Path, names: list[str], manifest: str) -> None:
    """Fail unless the images `names` in `folder` are exactly the files `manifest` lists."""
    expected = read_manifest(manifest)
    problems = [
        f"{name} is missing ({manifest} lists it)" for name in sorted(expected.keys() - names)
    ]
    problems += [
        f"{name} is not listed in {manifest}" for name in sorted(set(names) - expected.keys())
    ]
    for name in sorted(expected.keys() & set(names)):
        digest = file_sha256(folder / name)
        if digest != expected[name]:
            problems.append(f"{name} has SHA-256 {digest}, but {manifest} lists {expected[name]}")
    if problems:
        others = f"; {len(problems) - 1} more files differ" if len(problems) > 1 else ""
        raise DownloadError(problems[0] + others)

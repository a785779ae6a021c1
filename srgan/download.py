"""Download, verify and install the datasets this repo trains and evaluates on.

Each known set is one `DatasetSource` row in `DATASETS`. Installing a set means:
download the archive to `<root>/<archive>.part` (resuming with an HTTP Range request if a
previous attempt was cut off), check its size and SHA-256, extract the matching images into a
temporary folder inside `<root>`, and only then rename that folder into place. A `.complete`
marker written inside the folder lets later runs skip a set that is already installed.
"""

import fnmatch
import gzip
import hashlib
import http.client
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

from PIL import Image
from tqdm import tqdm

# Long enough for a slow server, short enough that an offline machine fails quickly.
SOCKET_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 20
MARKER_NAME = ".complete"


@dataclass(frozen=True)
class DatasetSource:
    """Where one dataset comes from and where its images go.

    `member_glob` is matched (fnmatch, case-sensitive, `*` also crosses `/`) against each
    archive member's path; matching image files are copied flat into `<root>/<target>`, so the
    archive's inner folder structure does not matter. `size` and `sha256` are checked when set;
    leave them empty where no published value exists and every image is then opened with PIL
    instead.
    """

    name: str
    url: str
    target: str
    member_glob: str
    image_count: int | None = None
    size: int | None = None
    sha256: str = ""


class DownloadError(Exception):
    """A dataset could not be installed; the message is one line naming the set and URL."""


# Sizes and SHA-256 of the DIV2K archives are those published by TensorFlow Datasets
# (tensorflow_datasets/datasets/div2k/checksums.tsv); ETH Zurich publishes none itself.
# The benchmark sets come from the Hugging Face copies by eugenesiow, which many SR projects
# use. No SHA-256 of those archives could be confirmed from a published source (Hugging Face
# shows one on each file's page: add it here once checked), so their images are verified with
# PIL instead. Both hosts can be slow or blocked on some networks: `--mirror` is for that case.
_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_HUGGING_FACE = "https://huggingface.co/datasets/eugenesiow"
_SOURCES = [
    DatasetSource(
        name="div2k-train-hr",
        url=f"{_DIV2K}/DIV2K_train_HR.zip",
        target="DIV2K_train_HR",
        member_glob="*DIV2K_train_HR/*",
        image_count=800,
        size=3530603713,
        sha256="9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
    ),
    DatasetSource(
        name="div2k-valid-hr",
        url=f"{_DIV2K}/DIV2K_valid_HR.zip",
        target="DIV2K_valid_HR",
        member_glob="*DIV2K_valid_HR/*",
        image_count=100,
        size=448993893,
        sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
    ),
    DatasetSource(
        name="div2k-valid-lr-x4",
        url=f"{_DIV2K}/DIV2K_valid_LR_bicubic_X4.zip",
        target="DIV2K_valid_LR_bicubic/X4",
        member_glob="*X4/*",
        image_count=100,
        size=31505881,
        sha256="a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
    ),
    # "*HR/*" keeps the HR images both in these archives (Set5_HR/baby.png) and in the
    # EDSR-style benchmark layout a mirror might serve (Set5/HR/baby.png, next to LR_bicubic/).
    DatasetSource(
        name="set5",
        url=f"{_HUGGING_FACE}/Set5/resolve/main/data/Set5_HR.tar.gz",
        target="benchmarks/Set5/HR",
        member_glob="*HR/*",
        image_count=5,
    ),
    DatasetSource(
        name="set14",
        url=f"{_HUGGING_FACE}/Set14/resolve/main/data/Set14_HR.tar.gz",
        target="benchmarks/Set14/HR",
        member_glob="*HR/*",
        image_count=14,
    ),
    DatasetSource(
        name="bsd100",
        url=f"{_HUGGING_FACE}/BSD100/resolve/main/data/BSD100_HR.tar.gz",
        target="benchmarks/BSD100/HR",
        member_glob="*HR/*",
        image_count=100,
    ),
    DatasetSource(
        name="urban100",
        url=f"{_HUGGING_FACE}/Urban100/resolve/main/data/Urban100_HR.tar.gz",
        target="benchmarks/Urban100/HR",
        member_glob="*HR/*",
        image_count=100,
    ),
]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}

DATASETS: dict[str, DatasetSource] = {source.name: source for source in _SOURCES}


def apply_mirror(url: str, mirror: str | None) -> str:
    """Replace the scheme and host of `url` by those of `mirror`, keeping the path.

    A path in `mirror` is kept as a prefix, so `http://proxy/cache` turns
    `https://host/a/b.zip` into `http://proxy/cache/a/b.zip`. Redirects the mirror answers
    with are followed as they are.
    """
    if not mirror:
        return url
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return mirror.rstrip("/") + path


def count_images(folder: Path) -> int:
    """Number of image files directly inside `folder` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(1 for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def is_installed(entry: DatasetSource, root: Path) -> bool:
    """Whether `entry` was installed by this module from the same source and is still whole."""
    folder = Path(root) / entry.target
    try:
        marker = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    same_source = marker.get("url") == entry.url and marker.get("sha256") == entry.sha256
    return same_source and marker.get("files") == count_images(folder)


def download_dataset(
    entry: DatasetSource, root: Path, mirror: str | None = None, progress: bool = True
) -> Path:
    """Install `entry` into `<root>/<entry.target>` and return that folder.

    Raises `DownloadError` with a one-line message on any failure; whatever was already in
    `root` stays as it was, except for a `.part` file that a later call can resume.
    """
    root = Path(root)
    target = root / entry.target
    url = apply_mirror(entry.url, mirror)
    if is_installed(entry, root):
        print(f"{entry.name}: already installed and verified in {target}, skipping")
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        # Never overwrite data this module did not install (or whose install was altered).
        raise DownloadError(
            f"{entry.name}: {target} exists but is not a verified install; "
            f"move or delete it and rerun ({url})"
        )
    root.mkdir(parents=True, exist_ok=True)
    part = root / (PurePosixPath(urlsplit(entry.url).path).name + ".part")
    try:
        _fetch(url, part, entry.size, entry.name, progress)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{entry.name}: HTTP {error.code} {error.reason} ({url})") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"{entry.name}: cannot connect: {error.reason} ({url})") from error
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(
            f"{entry.name}: download interrupted ({error}); rerun to resume ({url})"
        ) from error
    except DownloadError as error:
        raise DownloadError(f"{entry.name}: {error} ({url})") from error
    try:
        _check_archive(part, entry)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{entry.name}-") as temporary:
            staging = Path(temporary) / "images"
            files = _extract_images(part, entry.member_glob, staging)
            _check_images(staging, files, entry)
            marker = {"name": entry.name, "url": entry.url, "sha256": entry.sha256, "files": files}
            (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                target.rmdir()  # An empty placeholder folder, checked above.
            staging.rename(target)
    except DownloadError as error:
        # The archive is complete but wrong, so resuming it could never succeed.
        part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: {error} ({url})") from error
    except OSError as error:  # E.g. a full disk: the archive itself is fine, so keep it.
        raise DownloadError(f"{entry.name}: cannot install: {error} ({url})") from error
    part.unlink()
    print(f"{entry.name}: installed {files} images in {target}")
    return target


def _fetch(url: str, part: Path, expected_size: int | None, label: str, progress: bool) -> None:
    """Download `url` into `part` with a progress bar, resuming from the bytes already there."""
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset >= expected_size:
        return  # A previous run got every byte; the checks that follow decide if they are right.
    request = urllib.request.Request(url, headers={"User-Agent": "srgan-download"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=SOCKET_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # The server has nothing past `offset`: the file is complete.
            return
        raise
    with response:
        if response.status != 206:
            offset = 0  # The server ignored the Range header and sends the whole file again.
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else expected_size
        with (
            open(part, "ab" if offset else "wb") as file,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=label,
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(CHUNK_BYTES):
                file.write(chunk)
                bar.update(len(chunk))
    received = part.stat().st_size
    # urllib returns an empty read instead of raising when a connection closes early.
    if total is not None and received < total:
        raise DownloadError(f"connection closed after {received} of {total} bytes; rerun to resume")


def _check_archive(part: Path, entry: DatasetSource) -> None:
    """Compare the downloaded archive with the published size and SHA-256, where known."""
    size = part.stat().st_size
    if entry.size is not None and size != entry.size:
        raise DownloadError(f"size mismatch: got {size} bytes, expected {entry.size}")
    if entry.sha256:
        digest = hashlib.sha256()
        with open(part, "rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
        if digest.hexdigest() != entry.sha256:
            raise DownloadError(
                f"SHA-256 mismatch: got {digest.hexdigest()}, expected {entry.sha256}"
            )


@contextmanager
def _open_archive(archive: Path) -> Iterator[list[tuple[str, Callable[[], IO[bytes]] | None]]]:
    """Open a zip or tar archive, whatever its file name says, as (member path, opener) pairs.

    The opener is None for anything but a regular file: links and devices are never followed.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            yield [
                (info.filename, None if info.is_dir() else partial(bundle.open, info))
                for info in bundle.infolist()
            ]
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as bundle:
            yield [
                (info.name, partial(bundle.extractfile, info) if info.isfile() else None)
                for info in bundle.getmembers()
            ]
    else:
        raise DownloadError("the download is neither a zip nor a tar archive")


def _extract_images(archive: Path, member_glob: str, destination: Path) -> int:
    """Copy the image members matching `member_glob` flat into `destination`; return the count."""
    destination.mkdir(parents=True)
    copied = 0
    try:
        with _open_archive(archive) as members:
            paths = [PurePosixPath(name.replace("\\", "/")) for name, _ in members]
            for path in paths:
                if path.is_absolute() or ".." in path.parts:
                    raise DownloadError(f"refusing unsafe path in archive: {str(path)!r}")
            for path, (_, opener) in zip(paths, members, strict=True):
                # Skip macOS resource forks ("__MACOSX/._x.png"), which look like images.
                if opener is None or "__MACOSX" in path.parts or path.name.startswith("."):
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if not fnmatch.fnmatchcase(str(path), member_glob):
                    continue
                output = destination / path.name
                if output.exists():
                    raise DownloadError(f"two images named {path.name} in the archive")
                with opener() as source, open(output, "wb") as handle:
                    shutil.copyfileobj(source, handle)
                copied += 1
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DownloadError(f"broken archive: {error}") from error
    return copied


def _check_images(folder: Path, files: int, entry: DatasetSource) -> None:
    """Check the extracted image count and, when no hash vouched for them, each image."""
    if files == 0:
        raise DownloadError(f"no images in the archive match {entry.member_glob!r}")
    if entry.image_count is not None and files != entry.image_count:
        raise DownloadError(f"archive holds {files} images, expected {entry.image_count}")
    if entry.sha256:
        return
    for path in sorted(folder.iterdir()):
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL raises many types for a corrupt file.
            raise DownloadError(f"{path.name} is not a valid image: {error}") from error


def missing_data_hint(folder: Path | str) -> str:
    """A message for a missing dataset folder, with the command that fetches it.

    `folder` may also be a dataset NAME from `DATASETS`. A folder that ends with a known
    target (e.g. `data/DIV2K_train_HR`) or with a parent of one (e.g. `data/benchmarks`)
    maps back to the NAMEs that fill it.
    """
    if str(folder) in DATASETS:
        entry = DATASETS[str(folder)]
        folder, names = Path("data") / entry.target, [entry.name]
    else:
        folder = Path(folder)
        parts = folder.parts
        names = []
        for entry in DATASETS.values():
            target_parts = PurePosixPath(entry.target).parts
            if any(parts[-depth:] == target_parts[:depth] for depth in range(1, len(parts) + 1)):
                names.append(entry.name)
    if not names:
        return (
            f"Dataset folder {folder} not found. Put the images there, or fetch a known set "
            f"with: python scripts/download_data.py NAME (NAME is one of: {', '.join(DATASETS)}; "
            "see data/README.md)"
        )
    return (
        f"Dataset folder {folder} not found. Get it with: "
        f"python scripts/download_data.py {' '.join(names)} "
        "(or run the quickstart: bash run_training.sh configs/quickstart.json)"
    )

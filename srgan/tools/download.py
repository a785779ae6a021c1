"""Download, verify and install the datasets this repo trains and evaluates on.

Each known set is one `Dataset` in `DATASETS`, filled from one or more `Source`s. Installing a
set means: for each source, download its archive to `<root>/<archive>.part` (resuming with an
HTTP Range request if a previous attempt was cut off) and extract the matching images, or fetch
its files one by one, or copy them from a local folder; check them; put them into a temporary
folder inside `<root>`, and only then rename that folder into place. A `.complete` marker
written inside the folder lets later runs skip a set that is already installed.

Sets with a SHA-256 manifest (`srgan/tools/manifests/`) are checked image by image: the images
must be exactly the files the manifest lists, with those hashes, wherever they came from.
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
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

from PIL import Image
from tqdm import tqdm

# Long enough for a slow server, short enough that an offline machine fails quickly.
SOCKET_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 20
MARKER_NAME = ".complete"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# The SHA-256 manifests, package data of srgan.tools (see pyproject.toml).
MANIFESTS = resources.files("srgan.tools") / "manifests"
# Limits on the bytes that extracting one archive writes, against decompression bombs (a zip of
# a few hundred KB that expands to gigabytes). Images barely shrink in an archive: PNG and JPEG
# are compressed already, and the BMPs of T91 deflate by only 1.2x, so the images of every real
# archive add up to about its own size (DIV2K train HR: 3.5 GB of zip, 3.5 GB of PNGs).
# One image: a 2040x2040 RGB image, larger than any in these sets, is 12.5 MB uncompressed.
MAX_IMAGE_BYTES = 64 << 20
# All images of one archive: this many times the archive's size, or MIN_EXTRACT_LIMIT_BYTES
# for a small archive, whichever is more.
MAX_EXPANSION = 10
MIN_EXTRACT_LIMIT_BYTES = 64 << 20
_BOMB = "; refusing what looks like a decompression bomb"


@dataclass(frozen=True)
class Source:
    """One place a dataset's images come from.

    `url` is an archive (zip or tar; its content decides, not its name) whose image members
    matching `member_glob` (fnmatch, case-sensitive, `*` also crosses `/`) are copied flat, so
    the archive's inner folder structure does not matter. With an empty `member_glob`, `url` is
    a folder instead, and each file the manifest lists is fetched from `<url>/<file name>`.

    `manifest` names a file in `srgan/tools/manifests/` listing every image with its SHA-256;
    the installed images must be exactly those. Without a manifest, `size` and `sha256` check
    the archive when set (leave them empty where no published value exists: every image is then
    opened with PIL instead). `local_folder` is where `--from FOLDER` finds the images:
    `FOLDER/<local_folder>`; only sources with a manifest can be installed from a folder.
    """

    url: str
    member_glob: str = ""
    image_count: int | None = None
    size: int | None = None
    sha256: str = ""
    manifest: str = ""
    local_folder: str = ""


@dataclass(frozen=True)
class Dataset:
    """A set the command line installs by `name` into `<root>/<target>`.

    With `held_out` file names, the images are split: those go to `<target>/valid` and all the
    others to `<target>/train`.
    """

    name: str
    target: str
    sources: tuple[Source, ...]
    held_out: tuple[str, ...] = ()

    @property
    def has_manifests(self) -> bool:
        """Whether every image is checked against a manifest (required for a local install)."""
        return all(source.manifest for source in self.sources)


class DownloadError(Exception):
    """A dataset could not be installed; the message is one line naming the set."""


# Eight BSDS200 photographs that SR291 keeps out of training, to validate on and to choose the
# best checkpoint with, so that the benchmark sets only ever measure. Fixed here so that every
# install, from any source, gives the same split.
SR291_VALID = (
    "100075.jpg",
    "134008.jpg",
    "161062.jpg",
    "188091.jpg",
    "232038.jpg",
    "277095.jpg",
    "361084.jpg",
    "56028.jpg",
)

# Sizes and SHA-256 of the DIV2K archives are those published by TensorFlow Datasets
# (tensorflow_datasets/datasets/div2k/checksums.tsv); ETH Zurich publishes none itself.
# BSD100 and Urban100 come from the Hugging Face copies by eugenesiow, which publish no hash, so
# their images are verified with PIL. T91 is the `Train` folder of the SRCNN authors' training
# code archive, BSDS200 the `images/train` folder of Berkeley's BSDS500 archive; Set5 and Set14
# are single files at pinned commits of the SwinIR and PAN repositories. These four are checked
# per image against the manifests, so no archive hash is needed. Hosts can be slow or blocked on
# some networks: `--mirror` and `--from` are for that case.
_DIV2K = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_HUGGING_FACE = "https://huggingface.co/datasets/eugenesiow"
_SRCNN_TRAIN = "http://mmlab.ie.cuhk.edu.hk/projects/SRCNN/SRCNN_train.zip"
_BSDS500 = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"
_GITHUB = "https://raw.githubusercontent.com"
_SWINIR = f"{_GITHUB}/JingyunLiang/SwinIR/6545850fbf8df298df73d81f3e8cba638787c8bd"
_PAN = f"{_GITHUB}/zhaohengyuan1/PAN/4d045d18592c5771cd3990da88f292812774e538"


_DATASETS = [
    Dataset(
        name="sr291",
        target="SR291",
        sources=(
            Source(
                url=_SRCNN_TRAIN,
                member_glob="*Train/*.bmp",
                manifest="T91.sha256",
                local_folder="T91",
            ),
            Source(
                url=_BSDS500,
                member_glob="BSR/BSDS500/data/images/train/*.jpg",
                manifest="BSDS200.sha256",
                local_folder="BSDS200",
            ),
        ),
        held_out=SR291_VALID,
    ),
    Dataset(
        name="div2k-train-hr",
        target="DIV2K_train_HR",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_train_HR.zip",
                member_glob="*DIV2K_train_HR/*",
                image_count=800,
                size=3530603713,
                sha256="9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
            ),
        ),
    ),
    Dataset(
        name="div2k-valid-hr",
        target="DIV2K_valid_HR",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_valid_HR.zip",
                member_glob="*DIV2K_valid_HR/*",
                image_count=100,
                size=448993893,
                sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
            ),
        ),
    ),
    Dataset(
        name="div2k-valid-lr-x4",
        target="DIV2K_valid_LR_bicubic/X4",
        sources=(
            Source(
                url=f"{_DIV2K}/DIV2K_valid_LR_bicubic_X4.zip",
                member_glob="*X4/*",
                image_count=100,
                size=31505881,
                sha256="a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
            ),
        ),
    ),
    Dataset(
        name="set5",
        target="benchmarks/Set5/HR",
        sources=(
            Source(
                url=f"{_SWINIR}/testsets/Set5/HR", manifest="Set5.sha256", local_folder="Set5/HR"
            ),
        ),
    ),
    Dataset(
        name="set14",
        target="benchmarks/Set14/HR",
        sources=(
            Source(
                url=f"{_PAN}/datasets/Set14/HR", manifest="Set14.sha256", local_folder="Set14/HR"
            ),
        ),
    ),
    # "*HR/*" keeps the HR images both in these archives (BSD100_HR/x.png) and in the
    # EDSR-style benchmark layout a mirror might serve (BSD100/HR/x.png, next to LR_bicubic/).
    Dataset(
        name="bsd100",
        target="benchmarks/BSD100/HR",
        sources=(
            Source(
                f"{_HUGGING_FACE}/BSD100/resolve/main/data/BSD100_HR.tar.gz",
                "*HR/*",
                image_count=100,
            ),
        ),
    ),
    Dataset(
        name="urban100",
        target="benchmarks/Urban100/HR",
        sources=(
            Source(
                f"{_HUGGING_FACE}/Urban100/resolve/main/data/Urban100_HR.tar.gz",
                "*HR/*",
                image_count=100,
            ),
        ),
    ),
]

DATASETS: dict[str, Dataset] = {dataset.name: dataset for dataset in _DATASETS}


def read_manifest(name: str) -> dict[str, str]:
    """File name -> SHA-256 from `srgan/tools/manifests/<name>` (lines `<sha256>  <file name>`)."""
    text = (MANIFESTS / name).read_text()
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {file_name: digest for digest, file_name in pairs}


def image_count(dataset: Dataset) -> int | None:
    """How many images `dataset` installs, or None where no source says."""
    counts = [
        len(read_manifest(source.manifest)) if source.manifest else source.image_count
        for source in dataset.sources
    ]
    return None if None in counts else sum(counts)


def dataset_folders(dataset: Dataset) -> list[str]:
    """The folders, relative to the install root, that hold the images of `dataset`."""
    if dataset.held_out:
        return [f"{dataset.target}/train", f"{dataset.target}/valid"]
    return [dataset.target]


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


def _fingerprint(source: Source) -> dict[str, str]:
    """What fixes the images of `source`: its manifest's own hash, else the archive URL and hash.

    Going by the manifest lets a set installed with `--from` count as installed for a network
    install too: both hold the same verified bytes.
    """
    if source.manifest:
        digest = hashlib.sha256((MANIFESTS / source.manifest).read_bytes()).hexdigest()
        return {"manifest": source.manifest, "sha256": digest}
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
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{dataset.name}-") as temporary:
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
                target.rmdir()  # An empty placeholder folder, checked above.
            staging.rename(target)
    except DownloadError as error:
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
    _download(url, part, source.size, label, progress)
    try:
        _check_archive(part, source)
        names = _extract_images(part, source.member_glob, staging)
        _check_images(staging, names, source)
    except DownloadError as error:
        # The archive is complete but wrong, so resuming it could never succeed.
        part.unlink(missing_ok=True)
        raise DownloadError(f"{error} ({url})") from error


def _download_files(source: Source, url: str, staging: Path, label: str, progress: bool) -> None:
    """Fetch each file the manifest of `source` lists from `<url>/<file name>`, then check them.

    The files are small, so an interrupted run simply fetches them again.
    """
    names = sorted(read_manifest(source.manifest))
    for name in tqdm(names, desc=label, unit="file", disable=not progress):
        _download(f"{url.rstrip('/')}/{name}", staging / name, None, name, progress=False)
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


def _download(url: str, destination: Path, size: int | None, label: str, progress: bool) -> None:
    """`_fetch`, with every network failure turned into a one-line `DownloadError` naming `url`."""
    try:
        _fetch(url, destination, size, label, progress)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"HTTP {error.code} {error.reason} ({url})") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"cannot connect: {error.reason} ({url})") from error
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"download interrupted ({error}); rerun to resume ({url})") from error
    except DownloadError as error:
        raise DownloadError(f"{error} ({url})") from error


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


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _check_archive(part: Path, source: Source) -> None:
    """Compare the downloaded archive with the published size and SHA-256, where known."""
    size = part.stat().st_size
    if source.size is not None and size != source.size:
        raise DownloadError(f"size mismatch: got {size} bytes, expected {source.size}")
    if source.sha256:
        digest = _sha256(part)
        if digest != source.sha256:
            raise DownloadError(f"SHA-256 mismatch: got {digest}, expected {source.sha256}")


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


def _extract_images(archive: Path, member_glob: str, destination: Path) -> list[str]:
    """Copy the image members matching `member_glob` flat into `destination`; return their names.

    Raises `DownloadError` once an image grows past `MAX_IMAGE_BYTES`, or all of them past
    `MAX_EXPANSION` times the archive's size (at least `MIN_EXTRACT_LIMIT_BYTES`).
    """
    total_limit = max(MAX_EXPANSION * archive.stat().st_size, MIN_EXTRACT_LIMIT_BYTES)
    copied, total = [], 0
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
                    total += _copy_limited(source, handle, path, total, total_limit)
                copied.append(path.name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DownloadError(f"broken archive: {error}") from error
    return copied


def _copy_limited(
    source: IO[bytes], handle: IO[bytes], path: PurePosixPath, total: int, total_limit: int
) -> int:
    """Copy `source`, the archive member `path`, into `handle`; return the bytes copied.

    `total` bytes of earlier images of the archive were copied already. Counts the bytes as
    they come out of the decompressor, since the sizes an archive declares may lie, and raises
    `DownloadError` instead of writing past `MAX_IMAGE_BYTES` or past `total_limit` in all.
    """
    copied = 0
    while chunk := source.read(CHUNK_BYTES):
        copied += len(chunk)
        if copied > MAX_IMAGE_BYTES:
            limit = f"the limit of {_mebibytes(MAX_IMAGE_BYTES)} for one image"
            raise DownloadError(f"extracting {path} goes past {limit}{_BOMB}")
        if total + copied > total_limit:
            limit = (
                f"the limit of {_mebibytes(total_limit)} for all images of the archive "
                f"({MAX_EXPANSION} times its size, at least {_mebibytes(MIN_EXTRACT_LIMIT_BYTES)})"
            )
            raise DownloadError(f"extracting {path} goes past {limit}{_BOMB}")
        handle.write(chunk)
    return copied


def _mebibytes(count: int) -> str:
    """`count` bytes in MiB, for messages."""
    return f"{count / (1 << 20):g} MiB"


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
        digest = _sha256(folder / name)
        if digest != expected[name]:
            problems.append(f"{name} has SHA-256 {digest}, but {manifest} lists {expected[name]}")
    if problems:
        others = f"; {len(problems) - 1} more files differ" if len(problems) > 1 else ""
        raise DownloadError(problems[0] + others)


def missing_data_hint(folder: Path | str) -> str:
    """A message for a missing dataset folder, with the command that fetches it.

    `folder` may also be a dataset NAME from `DATASETS`. A folder that ends with a folder a set
    fills (e.g. `data/DIV2K_train_HR`, `data/SR291/valid`) or with a parent of one (e.g.
    `data/benchmarks`) maps back to the NAMEs that fill it.
    """
    if str(folder) in DATASETS:
        dataset = DATASETS[str(folder)]
        folder, names = Path("data") / dataset.target, [dataset.name]
    else:
        folder = Path(folder)
        parts = folder.parts
        names = []
        for dataset in DATASETS.values():
            for filled in dataset_folders(dataset):
                filled_parts = PurePosixPath(filled).parts
                depths = range(1, len(parts) + 1)
                if any(parts[-depth:] == filled_parts[:depth] for depth in depths):
                    names.append(dataset.name)
                    break
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

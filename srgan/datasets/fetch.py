"""Bring files from places this repo does not trust onto disk, within limits.

`fetch_file` downloads a URL over HTTP, resuming a cut-off download with a Range request and
timing out on a silent server. `extract_images` copies the images of a zip or tar archive:
members with an absolute path or `..` fail the whole archive; links, devices and macOS resource
forks are skipped; the bytes written are counted as they come out of the decompressor and
capped, one image and all images of the archive, so a decompression bomb stops early instead
of filling the disk. Every failure is a `FetchError` with a one-line message.
"""

import fnmatch
import gzip
import http.client
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

from tqdm import tqdm

from srgan.datasets.catalog import IMAGE_SUFFIXES

# Long enough for a slow server, short enough that an offline machine fails quickly.
SOCKET_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 20
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


class FetchError(Exception):
    """A file could not be downloaded or extracted; the message is one line."""


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


def fetch_file(url: str, destination: Path, size: int | None, label: str, progress: bool) -> None:
    """`_fetch`, with every network failure turned into a one-line `FetchError` naming `url`."""
    try:
        _fetch(url, destination, size, label, progress)
    except urllib.error.HTTPError as error:
        raise FetchError(f"HTTP {error.code} {error.reason} ({url})") from error
    except urllib.error.URLError as error:
        raise FetchError(f"cannot connect: {error.reason} ({url})") from error
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"download interrupted ({error}); rerun to resume ({url})") from error
    except FetchError as error:
        raise FetchError(f"{error} ({url})") from error


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
        raise FetchError(f"connection closed after {received} of {total} bytes; rerun to resume")


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
        raise FetchError("the download is neither a zip nor a tar archive")


def extract_images(archive: Path, member_glob: str, destination: Path) -> list[str]:
    """Copy the image members matching `member_glob` flat into `destination`; return their names.

    Raises `FetchError` once an image grows past `MAX_IMAGE_BYTES`, or all of them past
    `MAX_EXPANSION` times the archive's size (at least `MIN_EXTRACT_LIMIT_BYTES`).
    """
    total_limit = max(MAX_EXPANSION * archive.stat().st_size, MIN_EXTRACT_LIMIT_BYTES)
    copied, total = [], 0
    try:
        with _open_archive(archive) as members:
            paths = [PurePosixPath(name.replace("\\", "/")) for name, _ in members]
            for path in paths:
                if path.is_absolute() or ".." in path.parts:
                    raise FetchError(f"refusing unsafe path in archive: {str(path)!r}")
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
                    raise FetchError(f"two images named {path.name} in the archive")
                with opener() as source, open(output, "wb") as handle:
                    total += _copy_limited(source, handle, path, total, total_limit)
                copied.append(path.name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise FetchError(f"broken archive: {error}") from error
    return copied


def _copy_limited(
    source: IO[bytes], handle: IO[bytes], path: PurePosixPath, total: int, total_limit: int
) -> int:
    """Copy `source`, the archive member `path`, into `handle`; return the bytes copied.

    `total` bytes of earlier images of the archive were copied already. Counts the bytes as
    they come out of the decompressor, since the sizes an archive declares may lie, and raises
    `FetchError` instead of writing past `MAX_IMAGE_BYTES` or past `total_limit` in all.
    """
    copied = 0
    while chunk := source.read(CHUNK_BYTES):
        copied += len(chunk)
        if copied > MAX_IMAGE_BYTES:
            limit = f"the limit of {_mebibytes(MAX_IMAGE_BYTES)} for one image"
            raise FetchError(f"extracting {path} goes past {limit}{_BOMB}")
        if total + copied > total_limit:
            limit = (
                f"the limit of {_mebibytes(total_limit)} for all images of the archive "
                f"({MAX_EXPANSION} times its size, at least {_mebibytes(MIN_EXTRACT_LIMIT_BYTES)})"
            )
            raise FetchError(f"extracting {path} goes past {limit}{_BOMB}")
        handle.write(chunk)
    return copied


def _mebibytes(count: int) -> str:
    """`count` bytes in MiB, for messages."""
    return f"{count / (1 << 20):g} MiB"

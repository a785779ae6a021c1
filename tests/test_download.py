"""Tests for srgan/datasets/install.py (with datasets.py and fetch.py) and its command line,
against a local HTTP server and local folders. The last tests install the real sets from
../shared (next to the repository) when it is there."""

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from srgan.commands import download as command
from srgan.datasets import catalog as datasets
from srgan.datasets import fetch
from srgan.datasets import install as download

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "download_data.py"
SHARED = REPO_ROOT.parent / "shared"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")
SR291 = datasets.DATASETS["sr291"]  # Kept before any test replaces the table.


def image_bytes(color: tuple[int, int, int], image_format: str = "PNG") -> bytes:
    """A tiny valid image of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format=image_format)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest_text(files: dict[str, bytes]) -> str:
    """A manifest in the format of srgan/datasets/manifests and `sha256sum`."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())


def hashes(sums_file: Path) -> dict[str, str]:
    """File name (without folders) -> SHA-256 from a `sha256sum` output file."""
    pairs = (line.split() for line in sums_file.read_text().splitlines() if line.strip())
    return {Path(name).name: digest for digest, name in pairs}


# An archive with an unusual inner layout: HR images deep inside, LR images and a text file
# next to them that must not end up in the HR folder.
HR_IMAGES = {"a.png": image_bytes((255, 0, 0)), "b.png": image_bytes((0, 255, 0))}
ARCHIVE = zip_bytes(
    {
        **{f"Toy/nested/Toy_HR/{name}": data for name, data in HR_IMAGES.items()},
        "Toy/nested/LR_bicubic/X4/ax4.png": image_bytes((0, 0, 255)),
        "Toy/readme.txt": b"not an image",
    }
)
TOY_SOURCE = datasets.Source(
    url="http://example.invalid/files/Toy.zip",
    member_glob="*HR/*",
    image_count=2,
    size=len(ARCHIVE),
    sha256=hashlib.sha256(ARCHIVE).hexdigest(),
)
ENTRY = datasets.Dataset(name="toy", target="benchmarks/Toy/HR", sources=(TOY_SOURCE,))


def toy(**changes: object) -> datasets.Dataset:
    """ENTRY with its one source changed."""
    return replace(ENTRY, sources=(replace(TOY_SOURCE, **changes),))


@dataclass
class ServerState:
    """What the test server serves and what it saw; handlers run in the server's threads."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: int | None = None  # Close the next response after this many body bytes.
    ignore_range: bool = False


class Handler(BaseHTTPRequestHandler):
    """Serves `ServerState.files` with `Range: bytes=N-` support, like a download host."""

    def do_GET(self) -> None:
        state: ServerState = self.server.state
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and not state.ignore_range:
            start = int(range_header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if state.cut_after is not None:
            payload, state.cut_after = payload[: state.cut_after], None
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy_short_timeout(monkeypatch):
    # urllib would send requests for 127.0.0.1 through a proxy set in the environment.
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(fetch, "SOCKET_TIMEOUT_SECONDS", 5)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState(files={"/files/Toy.zip": ARCHIVE})
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def main(monkeypatch):
    """The CLI's `main(argv)` with the table replaced by the test entries."""
    monkeypatch.setattr(datasets, "DATASETS", {ENTRY.name: ENTRY})
    return command.main


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """A function that writes a manifest into a temporary manifest folder the module reads."""
    folder = tmp_path / "manifests"
    folder.mkdir()
    monkeypatch.setattr(datasets, "MANIFESTS", folder)

    def write(name: str, files: dict[str, bytes]) -> None:
        (folder / name).write_text(manifest_text(files))

    return write


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for folders), to compare before/after."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_download_lands_in_layout(server, tmp_path):
    root = tmp_path / "data"
    target = download.download_dataset(ENTRY, root, mirror=server.url, progress=False)
    assert target == root / "benchmarks" / "Toy" / "HR"
    assert {path.name for path in target.iterdir()} == {"a.png", "b.png", ".complete"}
    assert (target / "a.png").read_bytes() == HR_IMAGES["a.png"]
    assert [path.name for path in root.iterdir()] == ["benchmarks"]  # No .part or temp folder.


def test_tar_archive_without_hash_is_checked_with_pil(server, tmp_path):
    server.state.files["/files/Toy.tar.gz"] = tar_gz_bytes({"./Toy_HR/a.png": HR_IMAGES["a.png"]})
    entry = toy(url="http://h/files/Toy.tar.gz", image_count=None, size=None, sha256="")
    target = download.download_dataset(entry, tmp_path, mirror=server.url, progress=False)
    assert [path.name for path in target.glob("*.png")] == ["a.png"]

    server.state.files["/files/Toy.tar.gz"] = tar_gz_bytes({"Toy_HR/c.png": b"\x89PNG broken"})
    with pytest.raises(download.DownloadError, match="c.png is not a valid image"):
        download.download_dataset(entry, tmp_path / "other", mirror=server.url, progress=False)
    assert not (tmp_path / "other" / "benchmarks").exists()
    assert list((tmp_path / "other").iterdir()) == []  # The bad archive was deleted too.


def test_interrupted_download_resumes_with_range(server, tmp_path, main, capsys):
    root = tmp_path / "data"
    half = len(ARCHIVE) // 2
    server.state.cut_after = half
    assert main(["toy", "--root", str(root), "--mirror", server.url, "--no-progress"]) == 1
    assert "toy" in capsys.readouterr().err
    part = root / "Toy.zip.part"
    assert part.stat().st_size == half
    assert not (root / ENTRY.target).exists()

    assert main(["toy", "--root", str(root), "--mirror", server.url, "--no-progress"]) == 0
    assert server.state.requests[-1] == ("/files/Toy.zip", f"bytes={half}-")
    assert not part.exists()
    assert {path.name for path in (root / ENTRY.target).glob("*.png")} == set(HR_IMAGES)


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.state.ignore_range = True
    (tmp_path / "Toy.zip.part").write_bytes(b"stale bytes")
    download.download_dataset(ENTRY, tmp_path, mirror=server.url, progress=False)
    assert server.state.requests == [("/files/Toy.zip", "bytes=11-")]
    assert download.is_installed(ENTRY, tmp_path)


def test_hash_mismatch_leaves_data_untouched(server, tmp_path, main, capsys, monkeypatch):
    root = tmp_path / "data"
    download.download_dataset(ENTRY, root, mirror=server.url, progress=False)
    (root / "notes.txt").write_text("mine")
    before = snapshot(root)
    bad = replace(toy(sha256="0" * 64), name="bad", target="benchmarks/Bad/HR")
    monkeypatch.setitem(datasets.DATASETS, "bad", bad)
    assert main(["bad", "toy", "--root", str(root), "--mirror", server.url]) == 1
    error = capsys.readouterr().err
    assert "bad: SHA-256 mismatch" in error
    assert f"{server.url}/files/Toy.zip" in error
    assert snapshot(root) == before


def test_mirror_replaces_scheme_and_host(server, tmp_path):
    download.download_dataset(ENTRY, tmp_path, mirror=server.url + "/", progress=False)
    assert server.state.requests == [("/files/Toy.zip", None)]
    assert fetch.apply_mirror("https://a.org/x/y.zip?v=1", "http://m:8/c/") == (
        "http://m:8/c/x/y.zip?v=1"
    )
    assert fetch.apply_mirror("https://a.org/x/y.zip", None) == "https://a.org/x/y.zip"


def test_second_run_skips_verified_set(server, tmp_path, main, capsys):
    arguments = ["toy", "--root", str(tmp_path), "--mirror", server.url, "--no-progress"]
    assert main(arguments) == 0
    requests = len(server.state.requests)
    assert main(arguments) == 0
    assert len(server.state.requests) == requests
    assert "skipping" in capsys.readouterr().out


def test_marker_of_an_earlier_version_still_counts(tmp_path):
    # Before sets had several sources, the marker held one url and sha256 at its top level.
    folder = write_files(tmp_path / ENTRY.target, HR_IMAGES)
    legacy = f'{{"name": "toy", "url": "{TOY_SOURCE.url}", "sha256": "{TOY_SOURCE.sha256}"'
    (folder / ".complete").write_text(legacy + ', "files": 2}\n')
    assert download.is_installed(ENTRY, tmp_path)
    assert not download.is_installed(toy(sha256="0" * 64), tmp_path)


def test_existing_unverified_folder_is_never_overwritten(server, tmp_path):
    (tmp_path / ENTRY.target).mkdir(parents=True)
    (tmp_path / ENTRY.target / "mine.png").write_bytes(HR_IMAGES["a.png"])
    with pytest.raises(download.DownloadError, match="not a verified install"):
        download.download_dataset(ENTRY, tmp_path, mirror=server.url, progress=False)
    assert server.state.requests == []


@pytest.mark.parametrize("unsafe", ["../evil.png", "/tmp/evil.png", "Toy_HR\\..\\..\\evil.png"])
def test_unsafe_member_paths_are_refused(server, tmp_path, unsafe):
    server.state.files["/files/Toy.zip"] = zip_bytes(
        {"Toy_HR/a.png": HR_IMAGES["a.png"], unsafe: b""}
    )
    entry = toy(size=None, sha256="", image_count=None)
    root = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="unsafe path"):
        download.download_dataset(entry, root, mirror=server.url, progress=False)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil.png").exists()


def zeros_zip_bytes(members: dict[str, int]) -> bytes:
    """A deflated zip whose members hold the given numbers of zero bytes (about 230:1)."""
    buffer, chunk = io.BytesIO(), bytes(1 << 20)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, size in members.items():
            with archive.open(name, "w") as member:
                for start in range(0, size, len(chunk)):
                    member.write(chunk[: size - start])
    return buffer.getvalue()


def test_zip_bomb_is_refused_with_the_real_limits(server, tmp_path):
    # 200 MiB of zeros in a 0.9 MB zip: stopped at the 64 MiB limit for one image.
    bomb = zeros_zip_bytes({"Toy_HR/bomb.png": 200 << 20})
    server.state.files["/files/Toy.zip"] = bomb
    entry = toy(size=None, sha256="", image_count=None)
    root = tmp_path / "data"
    with pytest.raises(download.DownloadError) as error:
        download.download_dataset(entry, root, mirror=server.url, progress=False)
    message = str(error.value)
    assert message.startswith(
        "toy: extracting Toy_HR/bomb.png goes past the limit of 64 MiB for one image"
    )
    assert "\n" not in message
    assert list(root.iterdir()) == []  # The staging folder and the archive are gone.


def test_tar_images_together_past_the_archive_limit_are_refused(server, tmp_path, monkeypatch):
    # Each image is under the limit for one image; together they pass the limit for the archive.
    monkeypatch.setattr(fetch, "MAX_IMAGE_BYTES", 4 << 20)
    monkeypatch.setattr(fetch, "MIN_EXTRACT_LIMIT_BYTES", 4 << 20)
    images = {f"Toy_HR/{index}.png": bytes(3 << 20) for index in range(3)}
    archive = tar_gz_bytes(images)
    assert len(archive) * fetch.MAX_EXPANSION < 4 << 20
    server.state.files["/files/Toy.tar.gz"] = archive
    entry = toy(url="http://h/files/Toy.tar.gz", size=None, sha256="", image_count=None)
    root = tmp_path / "data"
    with pytest.raises(download.DownloadError) as error:
        download.download_dataset(entry, root, mirror=server.url, progress=False)
    assert str(error.value).startswith(
        "toy: extracting Toy_HR/1.png goes past the limit of 4 MiB for all images of the "
        "archive (10 times its size, at least 4 MiB)"
    )
    assert list(root.iterdir()) == []


# A set checked per image, installed from a folder: the tests change one file at a time.
CHECKED = datasets.Dataset(
    name="checked",
    target="Checked",
    sources=(
        datasets.Source(url="http://h/files/Checked", manifest="Checked.sha256", local_folder="C"),
    ),
)


def test_local_folder_install_verifies_and_installs(tmp_path, manifests):
    manifests("Checked.sha256", HR_IMAGES)
    copy = tmp_path / "copy"
    write_files(copy / "C", HR_IMAGES)
    (copy / "C" / "SHA256SUMS").write_text(manifest_text(HR_IMAGES))  # Not an image: ignored.
    (copy / "C" / "._a.png").write_bytes(b"macOS resource fork")  # Hidden: ignored.
    root = tmp_path / "data"
    target = download.download_dataset(CHECKED, root, progress=False, local_copy=copy)
    assert target == root / "Checked"
    assert {path.name for path in target.iterdir()} == {"a.png", "b.png", ".complete"}
    assert (target / "b.png").read_bytes() == HR_IMAGES["b.png"]
    assert download.is_installed(CHECKED, root)
    assert [path.name for path in root.iterdir()] == ["Checked"]  # No temporary folder left.


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("alter", "b.png has SHA-256 "),
        ("remove", "b.png is missing (Checked.sha256 lists it)"),
        ("add", "c.png is not listed in Checked.sha256"),
    ],
)
def test_manifest_mismatch_fails_naming_the_file(
    tmp_path, manifests, main, capsys, monkeypatch, change, message
):
    manifests("Checked.sha256", HR_IMAGES)
    copy = tmp_path / "copy"
    write_files(copy / "C", HR_IMAGES)
    if change == "alter":
        (copy / "C" / "b.png").write_bytes(image_bytes((0, 255, 1)))
    elif change == "remove":
        (copy / "C" / "b.png").unlink()
    else:
        (copy / "C" / "c.png").write_bytes(image_bytes((1, 2, 3)))
    root = write_files(tmp_path / "data", {"notes.txt": b"mine"})
    before = snapshot(root)
    monkeypatch.setitem(datasets.DATASETS, "checked", CHECKED)
    assert main(["checked", "--root", str(root), "--from", str(copy)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"error: checked: {message}")
    assert lines[0].endswith(f"({copy / 'C'})")
    assert snapshot(root) == before


def test_per_file_source_is_fetched_file_by_file_and_checked(server, tmp_path, manifests):
    manifests("Checked.sha256", HR_IMAGES)
    for name, data in HR_IMAGES.items():
        server.state.files[f"/files/Checked/{name}"] = data
    root = tmp_path / "data"
    target = download.download_dataset(CHECKED, root, mirror=server.url, progress=False)
    assert {path.name for path in target.glob("*.png")} == set(HR_IMAGES)
    assert sorted(path for path, _ in server.state.requests) == [
        "/files/Checked/a.png",
        "/files/Checked/b.png",
    ]

    server.state.files["/files/Checked/a.png"] = image_bytes((9, 9, 9))
    with pytest.raises(download.DownloadError, match=r"^checked: a\.png has SHA-256 .*/Checked\)$"):
        download.download_dataset(CHECKED, tmp_path / "other", mirror=server.url, progress=False)
    assert list((tmp_path / "other").iterdir()) == []


def fake_sr291_sources(count: int) -> tuple[bytes, bytes, dict[str, bytes], dict[str, bytes]]:
    """Archives laid out like SRCNN_train.zip and BSR_bsds500.tgz, and the images they hold.

    Each also holds images that are not part of the set (SRCNN's test images, BSDS500's val and
    test splits), which the member globs must leave out.
    """
    t91 = {f"t{index}.bmp": image_bytes((index, 0, 0), "BMP") for index in range(1, count + 1)}
    bsds_names = [*datasets.SR291_VALID, *(f"{900000 + index}.jpg" for index in range(count))]
    bsds = {name: image_bytes((0, index, 0), "JPEG") for index, name in enumerate(bsds_names)}
    srcnn_zip = zip_bytes(
        {
            **{f"SRCNN/Train/{name}": data for name, data in t91.items()},
            "SRCNN/Test/Set5/baby_GT.bmp": image_bytes((1, 1, 1), "BMP"),
            "SRCNN/generate_train.m": b"% MATLAB",
        }
    )
    images = "BSR/BSDS500/data/images"
    bsds_tgz = tar_gz_bytes(
        {
            **{f"{images}/train/{name}": data for name, data in bsds.items()},
            f"{images}/train/Thumbs.db": b"windows thumbnails",
            f"{images}/val/3096.jpg": image_bytes((2, 2, 2), "JPEG"),
            f"{images}/test/2018.jpg": image_bytes((3, 3, 3), "JPEG"),
        }
    )
    return srcnn_zip, bsds_tgz, t91, bsds


SRCNN_PATH = "/projects/SRCNN/SRCNN_train.zip"
BSDS_PATH = "/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"


@pytest.fixture
def fake_sr291(server, manifests, monkeypatch):
    """The real sr291 entry, with small fake archives on the server and manifests to match."""
    srcnn_zip, bsds_tgz, t91, bsds = fake_sr291_sources(count=3)
    manifests("T91.sha256", t91)
    manifests("BSDS200.sha256", bsds)
    server.state.files[SRCNN_PATH] = srcnn_zip
    server.state.files[BSDS_PATH] = bsds_tgz
    monkeypatch.setitem(datasets.DATASETS, "sr291", SR291)
    return t91, bsds


def test_sr291_downloads_both_archives_and_splits_off_valid(server, tmp_path, main, fake_sr291):
    t91, bsds = fake_sr291
    root = tmp_path / "data"
    assert main(["sr291", "--root", str(root), "--mirror", server.url, "--no-progress"]) == 0
    train, valid = root / "SR291" / "train", root / "SR291" / "valid"
    assert sorted(path.name for path in valid.iterdir()) == sorted(datasets.SR291_VALID)
    expected_train = (set(t91) | set(bsds)) - set(datasets.SR291_VALID)
    assert {path.name for path in train.iterdir()} == expected_train
    assert (valid / "56028.jpg").read_bytes() == bsds["56028.jpg"]
    assert (train / "t2.bmp").read_bytes() == t91["t2.bmp"]
    assert sorted(path.name for path in root.iterdir()) == ["SR291"]  # Both .part files gone.
    assert datasets.missing_data_hint("data/SR291/valid").endswith(
        "download_data.py sr291 (or run the quickstart: bash run_training.sh "
        "configs/quickstart.json)"
    )


def test_sr291_rerun_keeps_the_archive_it_already_has(server, tmp_path, main, fake_sr291):
    # No archive size is pinned: a complete .part is recognised by the server's 416 answer.
    bsds_tgz = server.state.files.pop(BSDS_PATH)
    root = tmp_path / "data"
    arguments = ["sr291", "--root", str(root), "--mirror", server.url, "--no-progress"]
    assert main(arguments) == 1
    assert not (root / "SR291").exists()
    srcnn_size = (root / "SRCNN_train.zip.part").stat().st_size
    assert srcnn_size == len(server.state.files[SRCNN_PATH])

    server.state.files[BSDS_PATH] = bsds_tgz
    assert main(arguments) == 0
    assert (SRCNN_PATH, f"bytes={srcnn_size}-") in server.state.requests[-2:]
    assert len(list((root / "SR291" / "train").iterdir())) == 3 + 3


def test_sr291_split_is_fixed_and_complete():
    t91 = datasets.read_manifest("T91.sha256")
    bsds = datasets.read_manifest("BSDS200.sha256")
    assert (len(t91), len(bsds)) == (91, 200)
    assert not set(t91) & set(bsds)  # The images go into one folder: names must not clash.
    assert set(datasets.SR291_VALID) == {
        "100075.jpg", "134008.jpg", "161062.jpg", "188091.jpg",
        "232038.jpg", "277095.jpg", "361084.jpg", "56028.jpg",
    }  # fmt: skip
    assert set(datasets.SR291_VALID) <= set(bsds)
    assert SR291.held_out == datasets.SR291_VALID
    assert [source.manifest for source in SR291.sources] == ["T91.sha256", "BSDS200.sha256"]
    assert datasets.image_count(SR291) == 291
    assert datasets.dataset_folders(SR291) == ["SR291/train", "SR291/valid"]


def test_from_is_refused_for_sets_without_manifest_and_with_mirror(tmp_path, capsys):
    for arguments in (["div2k-train-hr", "--from", "x"], ["set5", "--from", "x", "--mirror", "y"]):
        with pytest.raises(SystemExit) as exit_info:
            command.main(arguments)
        assert exit_info.value.code == 2
    assert "div2k-train-hr" in capsys.readouterr().err
    with pytest.raises(download.DownloadError, match="^toy: has no SHA-256 manifest"):
        download.download_dataset(ENTRY, tmp_path / "data", local_copy=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_data_hint_names_the_command():
    hint = datasets.missing_data_hint(Path("data/DIV2K_train_HR"))
    assert "data/DIV2K_train_HR not found" in hint
    assert "python scripts/download_data.py div2k-train-hr" in hint
    assert "download_data.py set5 set14 bsd100 urban100" in datasets.missing_data_hint(
        "data/benchmarks"
    )
    assert "div2k-valid-lr-x4" in datasets.missing_data_hint("data/DIV2K_valid_LR_bicubic/X4")
    assert "download_data.py sr291 " in datasets.missing_data_hint("data/SR291/train")
    assert "download_data.py sr291 " in datasets.missing_data_hint("sr291")
    assert "NAME" in datasets.missing_data_hint("somewhere/else")


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


def test_script_help_and_bad_name():
    result = run_script("--help")
    assert result.returncode == 0
    for text in ["--root", "--mirror", "--from", "--no-progress", "sr291", "div2k-train-hr"]:
        assert text in result.stdout
    assert "urban100" in result.stdout and "all" in result.stdout
    assert run_script("no-such-set").returncode == 2


def test_script_connection_refused_fails_with_the_set_name(tmp_path):
    with socket.socket() as probe:  # A port that was free a moment ago refuses connections.
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path / "data"
    result = run_script(
        "set5", "set14", "--root", str(root), "--mirror", f"http://127.0.0.1:{port}"
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("error: set5: cannot connect") and str(port) in line for line in lines
    )
    assert any(line.startswith("error: set14:") for line in lines)  # Still attempted.
    assert not list(root.rglob("*"))


needs_shared = pytest.mark.skipif(
    not (SHARED / "train").is_dir() or not (SHARED / "benchmarks").is_dir(),
    reason="needs the shared copies of the datasets in ../shared",
)
SHARED_SUMS = {
    "T91.sha256": "train/T91/SHA256SUMS",
    "BSDS200.sha256": "train/BSDS200/SHA256SUMS",
    "Set5.sha256": "benchmarks/Set5/SHA256SUMS",
    "Set14.sha256": "benchmarks/Set14/SHA256SUMS",
}


@needs_shared
@pytest.mark.parametrize("manifest", SHARED_SUMS)
def test_manifests_equal_the_shared_sums(manifest):
    assert datasets.read_manifest(manifest) == hashes(SHARED / SHARED_SUMS[manifest])


@needs_shared
def test_install_from_shared_copies_end_to_end(tmp_path, capsys):
    root = tmp_path / "data"
    assert command.main(["sr291", "--root", str(root), "--from", str(SHARED / "train")]) == 0
    benchmarks = ["set5", "set14", "--root", str(root), "--from", str(SHARED / "benchmarks")]
    assert command.main(benchmarks) == 0
    output = capsys.readouterr().out
    assert f"installed 283 images in {root / 'SR291/train'}, 8 images in" in output
    installed = {
        "SR291/train": 283,
        "SR291/valid": 8,
        "benchmarks/Set5/HR": 5,
        "benchmarks/Set14/HR": 14,
    }
    shared = {}
    for sums in SHARED_SUMS.values():
        shared.update(hashes(SHARED / sums))
    for folder, count in installed.items():
        images = sorted(path for path in (root / folder).iterdir() if path.name != ".complete")
        assert len(images) == count
        for path in images:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shared[path.name]
    valid = sorted(path.name for path in (root / "SR291/valid").iterdir())
    assert valid == sorted(datasets.SR291_VALID)
    for name in ["sr291", "set5", "set14"]:
        assert download.is_installed(datasets.DATASETS[name], root)

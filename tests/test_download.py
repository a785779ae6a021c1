"""Tests for srgan/download.py and scripts/download_data.py against a local HTTP server."""

import hashlib
import importlib.util
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

from srgan import download

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "download_data.py"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")


def load_script():
    """Import scripts/download_data.py as a module, so `main(argv)` can run in-process."""
    spec = importlib.util.spec_from_file_location("download_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_bytes(color: tuple[int, int, int]) -> bytes:
    """A tiny valid PNG of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format="PNG")
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


# An archive with an unusual inner layout: HR images deep inside, LR images and a text file
# next to them that must not end up in the HR folder.
HR_IMAGES = {"a.png": png_bytes((255, 0, 0)), "b.png": png_bytes((0, 255, 0))}
ARCHIVE = zip_bytes(
    {
        **{f"Toy/nested/Toy_HR/{name}": data for name, data in HR_IMAGES.items()},
        "Toy/nested/LR_bicubic/X4/ax4.png": png_bytes((0, 0, 255)),
        "Toy/readme.txt": b"not an image",
    }
)
ENTRY = download.DatasetSource(
    name="toy",
    url="http://example.invalid/files/Toy.zip",
    target="benchmarks/Toy/HR",
    member_glob="*HR/*",
    image_count=2,
    size=len(ARCHIVE),
    sha256=hashlib.sha256(ARCHIVE).hexdigest(),
)


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
    monkeypatch.setattr(download, "SOCKET_TIMEOUT_SECONDS", 5)


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
    monkeypatch.setattr(download, "DATASETS", {ENTRY.name: ENTRY})
    return load_script().main


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its content (None for folders), to compare before/after."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def test_download_lands_in_layout(server, tmp_path):
    root = tmp_path / "data"
    target = download.download_dataset(ENTRY, root, mirror=server.url, progress=False)
    assert target == root / "benchmarks" / "Toy" / "HR"
    assert {path.name for path in target.iterdir()} == {"a.png", "b.png", ".complete"}
    assert (target / "a.png").read_bytes() == HR_IMAGES["a.png"]
    assert [path.name for path in root.iterdir()] == ["benchmarks"]  # No .part or temp folder.


def test_tar_archive_without_hash_is_checked_with_pil(server, tmp_path):
    server.state.files["/files/Toy.tar.gz"] = tar_gz_bytes({"./Toy_HR/a.png": HR_IMAGES["a.png"]})
    entry = replace(ENTRY, url="http://h/files/Toy.tar.gz", image_count=None, size=None, sha256="")
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
    bad = replace(ENTRY, name="bad", target="benchmarks/Bad/HR", sha256="0" * 64)
    monkeypatch.setitem(download.DATASETS, "bad", bad)
    assert main(["bad", "toy", "--root", str(root), "--mirror", server.url]) == 1
    error = capsys.readouterr().err
    assert "bad: SHA-256 mismatch" in error
    assert f"{server.url}/files/Toy.zip" in error
    assert snapshot(root) == before


def test_mirror_replaces_scheme_and_host(server, tmp_path):
    download.download_dataset(ENTRY, tmp_path, mirror=server.url + "/", progress=False)
    assert server.state.requests == [("/files/Toy.zip", None)]
    assert download.apply_mirror("https://a.org/x/y.zip?v=1", "http://m:8/c/") == (
        "http://m:8/c/x/y.zip?v=1"
    )
    assert download.apply_mirror("https://a.org/x/y.zip", None) == "https://a.org/x/y.zip"


def test_second_run_skips_verified_set(server, tmp_path, main, capsys):
    arguments = ["toy", "--root", str(tmp_path), "--mirror", server.url, "--no-progress"]
    assert main(arguments) == 0
    requests = len(server.state.requests)
    assert main(arguments) == 0
    assert len(server.state.requests) == requests
    assert "skipping" in capsys.readouterr().out


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
    entry = replace(ENTRY, size=None, sha256="", image_count=None)
    root = tmp_path / "data"
    with pytest.raises(download.DownloadError, match="unsafe path"):
        download.download_dataset(entry, root, mirror=server.url, progress=False)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil.png").exists()


def test_missing_data_hint_names_the_command():
    hint = download.missing_data_hint(Path("data/DIV2K_train_HR"))
    assert "data/DIV2K_train_HR not found" in hint
    assert "python scripts/download_data.py div2k-train-hr" in hint
    assert "download_data.py set5 set14 bsd100 urban100" in download.missing_data_hint(
        "data/benchmarks"
    )
    assert "div2k-valid-lr-x4" in download.missing_data_hint("data/DIV2K_valid_LR_bicubic/X4")
    assert "NAME" in download.missing_data_hint("somewhere/else")


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
    for text in ["--root", "--mirror", "--no-progress", "div2k-train-hr", "urban100", "all"]:
        assert text in result.stdout
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

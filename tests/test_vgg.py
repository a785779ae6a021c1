"""Where the content loss's VGG19 weights come from (srgan/models/vgg.py): the ImageNet
download and its timeouts, the "auto" fallback to random weights, and state-dict files.

No test reaches the internet: downloads go to a fake hub, or to servers on 127.0.0.1.
"""

import io
import os
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import VGG19_Weights

from srgan.models import vgg
from srgan.models.losses import ContentLoss
from srgan.models.vgg import VGGWeightsError, load_vgg_features

WEIGHTS_FILE = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")
# Downloads in these tests give up after this long without data.
TEST_TIMEOUT_SECONDS = 0.5
# A stalled server closes its connections after this long, so that a download without a
# timeout fails late instead of hanging the test suite.
STALL_SECONDS = 10.0


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """An empty torch hub cache and a download that fails as it does without internet."""
    hub_dir = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    calls: dict = {"timeouts": []}

    def offline_download(url: str, *args, **kwargs) -> dict:
        calls["timeouts"].append(socket.getdefaulttimeout())
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline_download)
    calls["cache_file"] = (
        hub_dir / "checkpoints" / os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    )
    return calls


def test_imagenet_weights_offline_raise_naming_the_cache_file(offline_hub: dict) -> None:
    assert not offline_hub["cache_file"].exists()
    with pytest.raises(VGGWeightsError) as error:
        ContentLoss(layer="vgg22", weights="imagenet")
    assert str(offline_hub["cache_file"]) in str(error.value)
    # "imagenet" waits as long as data keeps coming, but not forever for the next byte.
    assert offline_hub["timeouts"] == [vgg.DOWNLOAD_TIMEOUT_SECONDS]


def test_auto_weights_fall_back_to_random_with_warning(offline_hub: dict) -> None:
    previous_timeout = socket.getdefaulttimeout()
    with pytest.warns(UserWarning) as caught:
        loss = ContentLoss(layer="vgg22", weights="auto")
    assert any("Falling back to RANDOM" in str(warning.message) for warning in caught)
    assert loss.weights_used == "random"
    # "auto" gives the download a short timeout, then restores the previous one.
    assert offline_hub["timeouts"] == [vgg.AUTO_TIMEOUT_SECONDS] == [5.0]
    assert socket.getdefaulttimeout() == previous_timeout


@pytest.fixture
def local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache in tmp_path, no proxy, and short download timeouts.

    Returns the folder the weights are downloaded into.
    """
    for variable in PROXY_VARIABLES:  # urllib would send requests for 127.0.0.1 to a proxy.
        monkeypatch.delenv(variable, raising=False)
    hub_dir = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    monkeypatch.setattr(vgg, "DOWNLOAD_TIMEOUT_SECONDS", TEST_TIMEOUT_SECONDS)
    monkeypatch.setattr(vgg, "AUTO_TIMEOUT_SECONDS", TEST_TIMEOUT_SECONDS)
    return hub_dir / "checkpoints"


@pytest.fixture
def stalled_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The weights URL, pointed at a TCP server on 127.0.0.1 that never answers.

    The kernel completes the connections to the listening socket, and nothing ever reads from
    them or writes to them: a network that drops traffic after the handshake looks the same.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    closer = threading.Timer(STALL_SECONDS, listener.close)  # Resets the waiting connections.
    closer.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/{WEIGHTS_FILE}"
    monkeypatch.setattr(vgg, "_imagenet_url", lambda: url)
    yield url
    closer.cancel()
    listener.close()


def test_stalled_imagenet_download_fails_after_the_timeout(
    local_hub: Path, stalled_url: str
) -> None:
    previous_timeout = socket.getdefaulttimeout()
    start = time.monotonic()
    with pytest.raises(VGGWeightsError) as error:
        load_vgg_features("imagenet", 9)
    assert time.monotonic() - start < STALL_SECONDS / 2
    message = str(error.value)
    assert f"from {stalled_url} (no data for 0.5 s). Download that file" in message
    assert str(local_hub / WEIGHTS_FILE) in message and "\n" not in message
    assert socket.getdefaulttimeout() == previous_timeout
    assert not local_hub.exists() or not any(local_hub.iterdir())  # No partial file is left.


def test_stalled_auto_download_falls_back_to_random_quickly(
    local_hub: Path, stalled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-layer stand-in for VGG19, whose construction alone takes seconds on a busy CPU.
    stand_in = SimpleNamespace(features=nn.Sequential(nn.ReLU()))
    monkeypatch.setattr(torchvision.models, "vgg19", lambda weights: stand_in)
    start = time.monotonic()
    with pytest.warns(UserWarning) as caught:
        _, weights_used = load_vgg_features("auto", 9)
    assert time.monotonic() - start < STALL_SECONDS / 2
    assert weights_used == "random"
    assert any(
        "(no data for 0.5 s)" in str(warning.message)
        and "Falling back to RANDOM" in str(warning.message)
        for warning in caught
    )


class DripHandler(BaseHTTPRequestHandler):
    """Sends `server.body` in six pieces, pausing before each for less than the timeout."""

    def do_GET(self) -> None:
        body: bytes = self.server.body
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        piece = len(body) // 6 + 1
        for start in range(0, len(body), piece):
            time.sleep(TEST_TIMEOUT_SECONDS * 0.4)
            self.wfile.write(body[start : start + piece])
            self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


def test_slow_download_that_keeps_receiving_succeeds(
    local_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Takes longer in all than the timeout, which only limits each wait for data.
    state = {"weight": torch.arange(6.0).reshape(2, 3)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    server.body = buffer.getvalue()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{WEIGHTS_FILE}"
    monkeypatch.setattr(vgg, "_imagenet_url", lambda: url)
    try:
        start = time.monotonic()
        downloaded = vgg._imagenet_state_dict(TEST_TIMEOUT_SECONDS)
        assert time.monotonic() - start > 2 * TEST_TIMEOUT_SECONDS
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert torch.equal(downloaded["weight"], state["weight"])
    assert (local_hub / WEIGHTS_FILE).read_bytes() == server.body


def test_state_dict_path_with_full_vgg_keys_loads(
    content_losses: dict[str, ContentLoss], tmp_path: Path
) -> None:
    # A torchvision vgg19().state_dict() layout: "features.N.*" plus the classifier, which
    # the content loss ignores (a tiny stand-in keeps the file small).
    torch.manual_seed(2)
    features = content_losses["vgg54"].features.state_dict()
    state = {f"features.{key}": torch.randn_like(value) for key, value in features.items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path / "vgg19_full.pth"
    torch.save(state, path)
    loss = ContentLoss(layer="vgg22", weights=str(path))
    assert loss.weights_used == str(path)
    loaded = loss.features.state_dict()
    assert len(loaded) == 8  # 4 convolutions up to phi_{2,2}, weight and bias each
    for key, value in loaded.items():
        assert torch.equal(value, state[f"features.{key}"]), key

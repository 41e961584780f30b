"""Zoo downloads against a local HTTP server: success, resume, checksum, server down."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial

import pytest

from faceprior.hub import download
from faceprior.hub.zoo import ZooEntry

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD; honours 'Range: bytes=N-'; can cut the body after ``cut`` bytes."""

    cut: int | None = None
    requests: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).requests.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = type(self).cut
        if limit is not None:
            type(self).cut = None
            self.wfile.write(body[:limit])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    handler = type("Handler", (_RangeHandler,), {"cut": None, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/weights.pth"
    httpd.shutdown()
    httpd.server_close()


def _entry(url, sha256=None, size=None):
    return ZooEntry(
        name="test-model",
        architecture="gpen",
        filename="weights.pth",
        urls=(url,),
        licence="test",
        description="test",
        sha256=sha256,
        size_bytes=size,
    )


def test_download_verifies_and_caches(server):
    _, url = server
    entry = _entry(url, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    path = download.fetch(entry, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert path == download.cached_path(entry)
    assert not list(path.parent.glob("*.part"))


def test_resume_after_a_cut(server):
    handler, url = server
    handler.cut = 300_000
    entry = _entry(url, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(download.DownloadError):
        download.fetch(entry, progress=False)
    partial_file = download.cached_path(entry).with_name("weights.pth.part")
    received = partial_file.stat().st_size
    assert 0 < received < len(PAYLOAD)
    assert not download.cached_path(entry).exists()
    path = download.fetch(entry, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert handler.requests == [None, f"bytes={received}-"]


def test_checksum_mismatch_leaves_nothing_in_the_cache(server):
    _, url = server
    entry = _entry(url, sha256="0" * 64)
    with pytest.raises(download.DownloadError, match="sha256"):
        download.fetch(entry, progress=False)
    assert not any(download.weights_dir().glob("weights.pth*"))


def test_unpinned_file_records_its_hash_and_detects_later_changes(server):
    _, url = server
    entry = _entry(url, size=len(PAYLOAD))
    path = download.fetch(entry, progress=False)
    assert download.expected_hash(entry) == hashlib.sha256(PAYLOAD).hexdigest()
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(download.DownloadError, match="sha256"):
        download.fetch(entry, progress=False)


def test_server_down_gives_the_url_and_where_to_put_the_file():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = _entry(f"http://127.0.0.1:{port}/weights.pth")
    with pytest.raises(download.DownloadError) as error:
        download.fetch(entry, progress=False)
    message = str(error.value)
    assert f"127.0.0.1:{port}/weights.pth" in message
    assert str(download.cached_path(entry)) in message


def test_zoo_names_resolve_through_the_cache(server, monkeypatch):
    import torch

    import faceprior
    from faceprior.models import loading
    from faceprior.models.gpen import FullGenerator

    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.25)
    entry = _entry("unused")
    target = download.cached_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), target)
    monkeypatch.setattr(loading, "entries", partial(lambda e: {e.name: e}, entry))
    loaded = faceprior.load_model("test-model")
    assert loaded.arguments == network.arguments

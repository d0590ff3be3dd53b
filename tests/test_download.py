"""The download path, for real: a local HTTP server on 127.0.0.1 serving the mirror's files.

The loaders are pointed at it through ``SIAMLIB_MIRROR`` (a server laid out like
the data root). Nothing here touches the internet.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import siamlib as sl
from siamlib.data import mnist, omniglot

MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _Truncating(_Quiet):
    """Promises 100,000 bytes, sends 10, hangs up: a dropped connection mid-file."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve():
    """serve(folder, handler=_Quiet) -> base URL "http://127.0.0.1:PORT" of a server in a thread."""
    servers = []

    def start(folder: Path, handler=_Quiet) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a port that was free a moment ago and has nothing listening now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def served(mirror_root, tmp_path) -> Path:
    """A folder with copies of the mirror's files, flat, as a mirror server would hold them."""
    folder = tmp_path / "served"
    (folder / "MNIST" / "raw").mkdir(parents=True)
    (folder / "omniglot").mkdir()
    for f in MNIST_FILES:
        shutil.copy(mirror_root / "MNIST" / "raw" / f, folder / "MNIST" / "raw" / f)
    for f in ("images_background_small1.zip", "all_runs.zip"):
        shutil.copy(mirror_root / "omniglot" / f, folder / "omniglot" / f)
    return folder


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.mirror
def test_fetch_success_checks_md5_and_leaves_only_the_file(served, serve, tmp_path):
    base = serve(served)
    dest = tmp_path / "root" / "x" / "t10k-labels-idx1-ubyte.gz"
    out = sl.data.fetch([f"{base}/MNIST/raw/t10k-labels-idx1-ubyte.gz"], dest, md5=mnist.MD5["t10k-labels-idx1-ubyte.gz"])
    assert out == dest and dest.read_bytes() == (served / "MNIST/raw/t10k-labels-idx1-ubyte.gz").read_bytes()
    assert _files(tmp_path / "root") == [dest]  # no temporary .part file left


@pytest.mark.mirror
def test_mnist_download_success(served, serve, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_MIRROR", serve(served))
    root = tmp_path / "root"
    # the server has only the test split (like the mirror): train-* answer 404, so the loader falls back
    with pytest.warns(sl.data.MnistSubsetWarning):
        s = sl.data.load_mnist("test", root=root)
    assert s.images.shape == (2000, 28, 28)
    raw = root / "MNIST" / "raw"
    assert _files(root) == [raw / f for f in sorted(MNIST_FILES)]
    for f in MNIST_FILES:
        assert hashlib.md5((raw / f).read_bytes()).hexdigest() == mnist.MD5[f]


@pytest.mark.mirror
def test_omniglot_and_lake_download_success(served, serve, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_MIRROR", serve(served))
    root = tmp_path / "root"
    s = sl.data.load_omniglot("background_small1", root=root)
    runs = sl.data.load_lake_runs(root=root)
    assert len(s) == 2720 and len(runs) == 20
    assert _files(root) == [root / "omniglot" / "all_runs.zip", root / "omniglot" / "images_background_small1.zip"]


@pytest.mark.mirror
def test_second_mirror_is_tried_when_the_first_is_down(served, serve, closed_port_url, tmp_path):
    dest = tmp_path / "t10k-labels-idx1-ubyte.gz"
    urls = [f"{closed_port_url}/t10k-labels-idx1-ubyte.gz", f"{serve(served)}/MNIST/raw/t10k-labels-idx1-ubyte.gz"]
    sl.data.fetch(urls, dest, md5=mnist.MD5["t10k-labels-idx1-ubyte.gz"])
    assert dest.is_file()


@pytest.mark.mirror
def test_checksum_mismatch_is_an_error_and_leaves_nothing(served, serve, tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(served, corrupt)
    data = bytearray((corrupt / "MNIST/raw/t10k-images-idx3-ubyte.gz").read_bytes())
    data[5000] ^= 0xFF  # one flipped byte
    (corrupt / "MNIST/raw/t10k-images-idx3-ubyte.gz").write_bytes(bytes(data))
    base = serve(corrupt)
    monkeypatch.setenv("SIAMLIB_MIRROR", base)
    root = tmp_path / "root"
    with pytest.raises(sl.data.DataNotFoundError, match="md5") as info:
        sl.data.load_mnist("train", root=root)
    assert isinstance(info.value.cause, sl.data.ChecksumError) and info.value.__cause__ is None
    assert f"{base}/MNIST/raw/t10k-images-idx3-ubyte.gz" in str(info.value)
    # the good labels file may land; the corrupt images file must not, nor any partial file
    assert not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists()
    assert [p for p in _files(root) if p.name != "t10k-labels-idx1-ubyte.gz"] == []
    # the same through omniglot: a corrupt zip is refused
    bad_zip = bytearray((corrupt / "omniglot/all_runs.zip").read_bytes())
    bad_zip[100] ^= 0xFF
    (corrupt / "omniglot/all_runs.zip").write_bytes(bytes(bad_zip))
    with pytest.raises(sl.data.DataNotFoundError, match="published md5 e8996daecdf12afeeb4a53a179f06b19"):
        sl.data.load_lake_runs(root=root)
    assert not (root / "omniglot").exists() or _files(root / "omniglot") == []


def test_dropped_connection_leaves_no_partial_file(serve, tmp_path):
    base = serve(tmp_path, handler=_Truncating)
    dest = tmp_path / "root" / "file.gz"
    with pytest.raises(sl.data.DownloadError, match="IncompleteRead") as info:
        sl.data.fetch(f"{base}/file.gz", dest)  # no md5: the short read itself must be caught
    assert not isinstance(info.value, sl.data.ChecksumError)
    assert _files(tmp_path / "root") == []


def test_server_down_names_the_url(closed_port_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMLIB_MIRROR", closed_port_url)
    root = tmp_path / "root"
    with pytest.raises(sl.data.DataNotFoundError) as info:
        sl.data.load_mnist("test", root=root)
    msg = str(info.value)
    assert f"{closed_port_url}/MNIST/raw/t10k-images-idx3-ubyte.gz" in msg and "Connection refused" in msg
    assert str(root / "MNIST" / "raw") in msg and "SIAMLIB_DATA" in msg
    assert isinstance(info.value.cause, sl.data.DownloadError)
    assert _files(root) == []
    assert not root.exists(), "a failed download must not leave empty folders in the data root"
    with pytest.raises(sl.data.DataNotFoundError, match=f"{closed_port_url}/omniglot/images_evaluation.zip"):
        sl.data.load_omniglot("evaluation", root=root)

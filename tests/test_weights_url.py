"""Plain-URL downloads of the weights registry, against a local HTTP server (no outside network)."""

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from deepforcing import weights
from deepforcing.errors import UserError
from deepforcing.weights import WeightFile, download_url


def _torch_payload() -> bytes:
    """A real torch.save file (~10 kB): `weights verify` opens .pth files in their format."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.arange(2560, dtype=torch.float32)}, buf)
    return buf.getvalue()


PAYLOAD = _torch_payload()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("models/raft-things.pth", PAYLOAD)
        zf.writestr("models/other.pth", b"x")
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /file.bin and /models.zip, honouring single ``Range: bytes=N-`` requests; counts ranged hits."""

    files = {"/file.bin": PAYLOAD, "/models.zip": _zip_bytes()}
    ranged: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.ranged.append(self.path)
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)


def test_correct_file_lands(server, tmp_path):
    path = download_url(f"{server}/file.bin", tmp_path / "sub" / "file.bin", sha256=SHA, size=len(PAYLOAD))
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]  # no .part left


def test_wrong_sha256_is_an_error_and_leaves_nothing(server, tmp_path):
    with pytest.raises(UserError, match="sha256"):
        download_url(f"{server}/file.bin", tmp_path / "file.bin", sha256="0" * 64)
    with pytest.raises(UserError, match="bytes"):
        download_url(f"{server}/file.bin", tmp_path / "file.bin", size=3)
    assert list(tmp_path.iterdir()) == []


def test_partial_download_is_resumed(server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:1000])
    _Handler.ranged.clear()
    path = download_url(f"{server}/file.bin", tmp_path / "file.bin", sha256=SHA)
    assert path.read_bytes() == PAYLOAD and _Handler.ranged == ["/file.bin"]


def test_offline_and_unreachable_are_clear_errors(server, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="404"):
        download_url(f"{server}/missing.bin", tmp_path / "m.bin")
    with pytest.raises(UserError, match="127.0.0.1:9/file.bin failed"):
        download_url("http://127.0.0.1:9/file.bin", tmp_path / "m.bin", timeout=5)  # nothing listens on port 9
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        download_url(f"{server}/file.bin", tmp_path / "m.bin")
    assert not (tmp_path / "m.bin").exists()


def test_registry_download_of_url_and_archive_entries(server, tmp_path, monkeypatch):
    entries = [
        WeightFile(
            "test/url-file", "metrics", "x/file.bin", None, len(PAYLOAD), SHA, "test", "-", url=f"{server}/file.bin"
        ),
        WeightFile(
            "test/zip-member", "metrics", "raft/raft-things.pth", None, None, SHA, "test", "-",
            url=f"{server}/models.zip", archive_member="models/raft-things.pth",
        ),
    ]  # fmt: skip
    for e in entries:
        weights.register(e)
    try:
        paths = weights.download([e.key for e in entries], dest=tmp_path)
        assert paths == [tmp_path / "metrics/x/file.bin", tmp_path / "metrics/raft/raft-things.pth"]
        assert all(p.read_bytes() == PAYLOAD for p in paths)
        assert sorted(p.name for p in (tmp_path / "metrics/raft").iterdir()) == ["raft-things.pth"]  # zip removed
        assert weights.resolve("test/zip-member", weights_dir=tmp_path) == paths[1]
        assert all(row["ok"] for row in weights.verify([e.key for e in entries], weights_dir=tmp_path))
        # without a weights dir, plain-URL files go to <DEEPFORCING_CACHE>/weights
        monkeypatch.setenv("DEEPFORCING_CACHE", str(tmp_path / "cache"))
        assert weights.download("test/url-file") == [tmp_path / "cache/weights/metrics/x/file.bin"]
    finally:
        for e in entries:
            weights._REGISTRY.pop(e.key)

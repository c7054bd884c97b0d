"""Optional online paintings: checked by sha256, cached, pinned, clear errors; no test touches the network."""
import hashlib
import io
import json
import urllib.error

import pytest
from PIL import Image

from facestyle_utils.online import PAINTINGS, DownloadError, OnlineImage, fetch_image, load_painting


def png_bytes(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeServer:
    """Stands in for urllib: returns fixed bytes and counts the requests."""

    def __init__(self, data: bytes | Exception):
        self.data, self.calls = data, 0

    def __call__(self, url: str, timeout: float) -> bytes:
        self.calls += 1
        if isinstance(self.data, Exception):
            raise self.data
        return self.data


def test_known_digest_is_checked_and_the_file_cached(tmp_path):
    data = png_bytes()
    entry = OnlineImage("red", "https://example.org/red.png", "test", hashlib.sha256(data).hexdigest())
    server = FakeServer(data)
    path = fetch_image(entry, folder=tmp_path, fetch=server)
    assert path == tmp_path / "red.png" and path.read_bytes() == data
    assert fetch_image(entry, folder=tmp_path, fetch=server) == path and server.calls == 1  # cached
    assert not (tmp_path / "sha256.json").exists()  # nothing to pin: the digest was known


def test_wrong_digest_saves_nothing(tmp_path):
    entry = OnlineImage("red", "https://example.org/red.png", "test", "0" * 64)
    with pytest.raises(DownloadError, match="differs from the expected .* nothing was saved"):
        fetch_image(entry, folder=tmp_path, fetch=FakeServer(png_bytes()))
    assert list(tmp_path.iterdir()) == []


def test_unknown_digest_is_pinned_then_enforced(tmp_path):
    data = png_bytes()
    entry = OnlineImage("red", "https://example.org/red.png", "test")
    path = fetch_image(entry, folder=tmp_path, fetch=FakeServer(data))
    assert json.loads((tmp_path / "sha256.json").read_text()) == {"red": hashlib.sha256(data).hexdigest()}
    path.write_bytes(png_bytes((0, 0, 255)))  # the cached file changes behind our back
    with pytest.raises(DownloadError, match="red.png: sha256 .* delete it"):
        fetch_image(entry, folder=tmp_path, fetch=FakeServer(data))


def test_html_error_page_is_refused(tmp_path):
    entry = OnlineImage("red", "https://example.org/red.png", "test")
    with pytest.raises(DownloadError, match="not an image .*<html>"):
        fetch_image(entry, folder=tmp_path, fetch=FakeServer(b"<html><body>Too many requests</body></html>"))
    assert list(tmp_path.iterdir()) == []


def test_offline_gives_a_clear_message(tmp_path):
    server = FakeServer(urllib.error.URLError("no route to host"))
    with pytest.raises(DownloadError, match="could not download 'starry_night' .* runs offline"):
        fetch_image("starry_night", folder=tmp_path, fetch=server)
    with pytest.raises(KeyError, match="unknown online image 'mona'"):
        fetch_image("mona", folder=tmp_path)


def test_load_painting_returns_rgb(tmp_path):
    name = next(iter(PAINTINGS))
    image = load_painting(name, folder=tmp_path, fetch=FakeServer(png_bytes()))
    assert image.mode == "RGB" and image.size == (24, 16)
    assert all(p.url.startswith("https://") and "public domain" in p.credit for p in PAINTINGS.values())

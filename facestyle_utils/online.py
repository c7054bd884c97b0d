"""Optional online style images: public-domain paintings, downloaded once, checked by sha256.

The course never needs these: every lesson runs on the bundled samples (``sample_data``).
With internet access, :func:`load_painting` adds a few classic styles. Each download is
refused unless it decodes as an image (not an HTML error page) and its sha256 matches the
expected one; the file is then cached under ``build/paintings/`` and re-checked on every use.

Where :data:`PAINTINGS` gives no sha256 yet (the course was written without internet access),
the first good download's sha256 is pinned in ``build/paintings/sha256.json`` and every later
use must match it. Copy a pinned value into :data:`PAINTINGS` to share it with your class.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError

from . import runtime
from .files import atomic_write, sha256_file
from .image_io import load_image


class DownloadError(RuntimeError):
    """An online image could not be fetched, was not an image, or failed its sha256 check."""


@dataclass(frozen=True)
class OnlineImage:
    """One optional online image: where it is, whom to credit, and its sha256 (None: pin on first download)."""

    name: str
    url: str
    credit: str
    sha256: str | None = None


_COMMONS = "https://upload.wikimedia.org/wikipedia/commons/thumb"
PAINTINGS: dict[str, OnlineImage] = {p.name: p for p in [
    OnlineImage("starry_night", f"{_COMMONS}/e/ea/Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg/"
                "1280px-Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg",
                "The Starry Night, Vincent van Gogh, 1889 (public domain, via Wikimedia Commons)"),
    OnlineImage("great_wave", f"{_COMMONS}/0/0a/The_Great_Wave_off_Kanagawa.jpg/1280px-The_Great_Wave_off_Kanagawa.jpg",
                "The Great Wave off Kanagawa, Katsushika Hokusai, about 1831 (public domain, via Wikimedia Commons)"),
]}

Fetch = Callable[[str, float], bytes]


def _urlopen(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "facestyle-course/1.0 (teaching notebooks)"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _pins(folder: Path) -> dict[str, str]:
    path = folder / "sha256.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _pin(folder: Path, name: str, digest: str) -> None:
    pins = {**_pins(folder), name: digest}
    with atomic_write(folder / "sha256.json") as handle:
        handle.write(json.dumps(pins, indent=1, sort_keys=True).encode())


def fetch_image(image: str | OnlineImage, *, folder: str | Path | None = None, timeout: float = 20.0,
                fetch: Fetch = _urlopen) -> Path:
    """The cached file of an online image, downloading it first if needed; raises :class:`DownloadError`."""
    entry = PAINTINGS[image] if isinstance(image, str) and image in PAINTINGS else image
    if not isinstance(entry, OnlineImage):
        raise KeyError(f"unknown online image {image!r}; choose from {', '.join(PAINTINGS)}")
    folder = Path(folder) if folder is not None else runtime.output_dir("paintings")
    path = folder / f"{entry.name}{Path(entry.url).suffix or '.img'}"
    expected = entry.sha256 or _pins(folder).get(entry.name)
    if path.is_file():
        digest = sha256_file(path)
        if expected and digest != expected:
            raise DownloadError(f"{path}: sha256 {digest[:16]}... differs from the expected {expected[:16]}...; "
                                "the file changed since it was checked: delete it to download it again")
        return path
    try:
        data = fetch(entry.url, timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise DownloadError(f"could not download {entry.name!r} from {entry.url} ({err}). This is an optional "
                            "extra: the course runs offline with the bundled styles, e.g. 'hubble_deep_field'") from err
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise DownloadError(f"{entry.url}: the download's sha256 {digest[:16]}... differs from the expected "
                            f"{expected[:16]}...; nothing was saved")
    try:
        Image.open(io.BytesIO(data)).verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        start = data[:60].decode("utf-8", "replace").strip()
        raise DownloadError(f"{entry.url}: the server sent something that is not an image "
                            f"({len(data)} bytes starting {start!r}); nothing was saved") from err
    with atomic_write(path) as handle:
        handle.write(data)
    if not entry.sha256:
        _pin(folder, entry.name, digest)
    return path


def load_painting(name: str, *, max_side: int | None = 512, **fetch_options) -> Image.Image:
    """An online painting as an RGB PIL image (downloaded and checked on first use)."""
    return load_image(fetch_image(name, **fetch_options), max_side=max_side)

"""Optional online data: public-domain paintings and Labeled Faces in the Wild in colour, each checked.

The course never needs these: every lesson runs on the bundled samples (``sample_data``).
With internet access, :func:`load_painting` adds a few classic styles. Each download is
refused unless it decodes as an image (not an HTML error page) and its sha256 matches the
expected one; the file is then cached under ``build/paintings/`` and re-checked on every use.

Where :data:`PAINTINGS` gives no sha256 yet (the course was written without internet access),
the first good download's sha256 is pinned in ``build/paintings/sha256.json`` and every later
use must match it. Copy a pinned value into :data:`PAINTINGS` to share it with your class.

:func:`lfw_colour_folder` fetches Labeled Faces in the Wild (13,233 colour photos of 5,749
people; G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, University of Massachusetts
Amherst, 2007) with torchvision's downloader, verified against torchvision's own md5, and
returns a folder of photos (one subfolder per person) for ``domain_build.build_domains``;
``domains.domains_from("lfw")`` does both in one call. Every failure is a :class:`DownloadError`.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError

from . import runtime
from .files import atomic_write, sha256_file
from .image_io import IMAGE_SUFFIXES, load_image


class DownloadError(RuntimeError):
    """Online data could not be fetched or unpacked, was not what was expected, or failed its checksum.

    The message is one line: what was tried, why it failed, and how to go on without it."""


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
    folder = Path(folder) if folder is not None else runtime.download_dir("paintings")
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


# --------------------------------------------------------------------------- Labeled Faces in the Wild, in colour

#: Whom to credit for the LFW photos (show it beside any figure made from them).
LFW_CREDIT = ("Labeled Faces in the Wild: G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, University of "
              "Massachusetts Amherst, Technical Report 07-49, 2007 (http://vis-www.cs.umass.edu/lfw/)")

#: Mirrors of torchvision's LFW archives, tried before torchvision's own address (the University of
#: Massachusetts server, which stopped answering in 2025). Whichever sends the bytes, they are kept only
#: if they match torchvision's md5 for that archive. The figshare copies are the ones scikit-learn uses.
LFW_MIRRORS: dict[str, tuple[str, ...]] = {
    "lfw-funneled.tgz": ("https://ndownloader.figshare.com/files/5976015",),
    "lfw.tgz": ("https://ndownloader.figshare.com/files/5976018",),
}


def lfw_archive(image_set: str = "funneled") -> tuple[str, str, str]:
    """``(folder inside the archive, archive file name, md5)`` of one LFW image set, from torchvision's table.

    ``image_set``: ``"funneled"`` (faces roughly aligned by congealing; torchvision's default),
    ``"original"`` or ``"deepfunneled"``. Raises ValueError for another name.
    """
    from torchvision.datasets import LFWPeople

    if image_set not in LFWPeople.file_dict:
        raise ValueError(f"unknown LFW image set {image_set!r}; choose from {', '.join(LFWPeople.file_dict)}")
    return tuple(LFWPeople.file_dict[image_set])


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torchvision opens URLs without a timeout; bound every connect and read of this download to ``seconds``."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def _why(err: BaseException) -> str:
    """An error as a short phrase on one line (a URLError's reason, not its wrapper)."""
    reason = err.reason if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError) \
        else err
    text = " ".join(str(reason).split())
    return text if text and text != "None" else type(err).__name__


def _lfw_offline_hint(archive: Path, md5: str) -> str:
    return (f"LFW is optional: the course runs offline on the bundled faces (source 'bundled'); to use your own "
            f"photos pass their folder instead; a copy of {archive.name} (md5 {md5}) put at {archive} is used "
            "without downloading")


def _download_lfw(archive: Path, md5: str, timeout: float) -> None:
    """Make ``archive`` a file with torchvision's md5, downloading it with torchvision if needed."""
    from torchvision.datasets import LFWPeople
    from torchvision.datasets.utils import check_integrity, download_url

    if check_integrity(archive, md5):  # already here and verified: never downloaded again
        return
    failures = []
    if archive.is_file():  # torchvision would write over it anyway
        failures.append(f"the {archive.name} already there failed torchvision's md5 check and was removed")
        archive.unlink()
    urls = [*LFW_MIRRORS.get(archive.name, ()), f"{LFWPeople.download_url_prefix}{archive.name}"]
    for url in urls:
        try:
            with _socket_timeout(timeout):
                download_url(url, archive.parent, archive.name, md5)  # downloads, then checks the md5
            return
        except Exception as err:  # noqa: BLE001 - whatever torchvision or urllib raise becomes one clear line
            got = archive.stat().st_size if archive.is_file() else None
            archive.unlink(missing_ok=True)  # a wrong or partial file is never kept
            if got is not None and type(err) is RuntimeError:  # torchvision's md5 check failed
                failures.append(f"{url} sent {got:,} bytes that failed torchvision's md5 check "
                                f"(expected {md5}); nothing was kept")
            else:
                failures.append(f"{url}: {_why(err)}" + (f" after {got:,} bytes; nothing was kept" if got else ""))
    raise DownloadError(f"could not download LFW ({archive.name}): {'; '.join(failures)}. "
                        + _lfw_offline_hint(archive, md5))


def _unpack_lfw(archive: Path, images_dir: str, md5: str) -> Path:
    """Unpack a verified archive with torchvision next to it; the folder appears whole or not at all."""
    from torchvision.datasets.utils import extract_archive

    folder = archive.parent / images_dir
    work = Path(tempfile.mkdtemp(prefix=f".{images_dir}.unpack-", dir=archive.parent))
    try:
        extract_archive(archive, work)
        unpacked = work / images_dir
        if not unpacked.is_dir():
            raise DownloadError(f"{archive}: passed its md5 check but holds no {images_dir}/ folder; "
                                "delete it and try again")
        shutil.rmtree(folder, ignore_errors=True)  # an earlier unpacking that was never marked verified
        unpacked.rename(folder)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DownloadError(f"{archive}: could not be unpacked ({_why(err)}); "
                            "free some disk space or delete the file and try again") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    people = sum(1 for p in folder.iterdir() if p.is_dir())
    with atomic_write(_lfw_marker(folder)) as handle:
        handle.write(json.dumps({"archive": archive.name, "md5": md5, "people": people}, indent=1).encode())
    return folder


def _lfw_marker(folder: Path) -> Path:
    return folder.parent / f"{folder.name}.verified.json"


def _lfw_photos(cache: Path, image_set: str, timeout: float) -> Path:
    """The unpacked, verified photos of one image set: reused when there, else downloaded and unpacked."""
    images_dir, filename, md5 = lfw_archive(image_set)
    folder = cache / images_dir
    try:
        unpacked_from = json.loads(_lfw_marker(folder).read_text()).get("md5")
    except (OSError, ValueError):
        unpacked_from = None
    if folder.is_dir() and unpacked_from == md5:  # unpacked from a verified archive: nothing to download
        return folder
    _download_lfw(cache / filename, md5, timeout)
    return _unpack_lfw(cache / filename, images_dir, md5)


def _positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive whole number or None (all), got {value!r}")


def _person_order(name: str) -> str:
    """A fixed order of the people that mixes the alphabet, so ``max_people`` picks a spread, not only 'A' names."""
    return hashlib.sha256(name.encode()).hexdigest()


def _select_lfw(photos: Path, image_set: str, max_people: int | None, photos_per_person: int | None) -> Path:
    """A folder of links to the chosen photos (one subfolder per person), made once and then reused."""
    people = sorted((p for p in photos.iterdir() if p.is_dir()), key=lambda p: _person_order(p.name))
    people = people[:max_people] if max_people else people
    target = photos.parent / "selections" / (f"{image_set}_{max_people or 'all'}people_"
                                              f"{photos_per_person or 'all'}each")
    if target.is_dir():  # only ever created whole, by the rename below
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for person in people:
            files = sorted(f for f in person.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            for file in files[:photos_per_person] if photos_per_person else files:
                (work / person.name).mkdir(exist_ok=True)
                try:
                    os.link(file, work / person.name / file.name)  # no copy: the same bytes on disk
                except OSError:
                    shutil.copy2(file, work / person.name / file.name)
        try:
            work.rename(target)
        except OSError:
            if not target.is_dir():  # not another process having made the same selection first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def lfw_colour_folder(root: str | os.PathLike | None = None, *, image_set: str = "funneled",
                      max_people: int | None = None, photos_per_person: int | None = 1,
                      timeout: float = 60.0) -> Path:
    """Labeled Faces in the Wild in colour, as a folder of photos ready for ``domain_build.build_domains``.

    LFW: 13,233 colour JPEG photos, 250x250 px (the face about 100-120 px across, near the centre), of
    5,749 people collected from news photographs; credit G. B. Huang, M. Ramesh, T. Berg and
    E. Learned-Miller, *Labeled Faces in the Wild*, University of Massachusetts Amherst, 2007
    (:data:`LFW_CREDIT`). For research and teaching.

    On first use the archive of ``image_set`` (``lfw-funneled.tgz``, 243 MB, by default) is
    downloaded with torchvision's ``download_url`` from :data:`LFW_MIRRORS`, then torchvision's own
    address, and kept only if it matches the md5 in ``torchvision.datasets.LFWPeople.file_dict``
    (torchvision 0.29 no longer downloads LFW itself, ``LFWPeople(download=True)`` raises, but its
    table of checksums and its downloader are used here). It is unpacked with torchvision into
    ``<root>/lfw-py/`` (torchvision's layout; ``root`` defaults to ``build/datasets``), so an
    archive you downloaded yourself, put at ``<root>/lfw-py/lfw-funneled.tgz``, is verified and used
    without any download. Later calls reuse the verified photos and download nothing.

    Returns ``<root>/lfw-py/selections/<image_set>_<N>people_<K>each/``: one subfolder per person
    (``George_W_Bush/George_W_Bush_0001.jpg``), hard links to the unpacked photos (copies where links
    are impossible). ``max_people`` keeps that many people (a fixed spread of the alphabet; None:
    all 5,749), ``photos_per_person`` at most that many photos of each (None: all). The default of
    one photo per person matters: ``build_domains`` splits train/val/test per *photo*, so with one
    photo each nobody's face is in two splits. ``max_people=200`` keeps a first build small (200
    photos instead of 5,749); the download is the whole archive either way.

    Raises :class:`DownloadError` (one line: what was tried, why it failed, that the course runs
    without it, where a manual copy goes) when offline, when every address fails, when a download
    fails the md5 check (the file is deleted) or cannot be unpacked; ValueError for a bad argument.
    ``timeout`` bounds each network connect and read, in seconds.
    """
    from torchvision.datasets import LFWPeople

    _positive("max_people", max_people)
    _positive("photos_per_person", photos_per_person)
    lfw_archive(image_set)  # a bad image set fails before any folder is made
    cache = Path(root) if root is not None else runtime.download_dir("datasets")
    cache = cache / LFWPeople.base_folder
    cache.mkdir(parents=True, exist_ok=True)
    photos = _lfw_photos(cache, image_set, timeout)
    return _select_lfw(photos, image_set, max_people, photos_per_person)

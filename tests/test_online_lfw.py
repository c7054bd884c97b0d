"""Optional online LFW in colour, and domains from 'bundled' / 'lfw' / your own folder; no test touches the network.

A tiny fake LFW archive (``lfw_funneled/<Person>/<Person>_000N.jpg`` in a .tgz, as torchvision's
``LFWPeople`` expects) is served by a stand-in for ``urllib.request.urlopen``, the function torchvision's
``download_url`` calls; torchvision's md5 table is set to the fake archive's own md5, so its real
download-then-verify path runs and a corrupted archive is really refused by it.
"""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import urllib.error
import urllib.request

import pytest
from PIL import Image
from torchvision.datasets import LFWPeople

from facestyle_utils import domains as ds
from facestyle_utils import online
from facestyle_utils.online import DownloadError, lfw_archive, lfw_colour_folder
from facestyle_utils.sample_data import load_sample

MIRROR = "https://mirror.test/files/lfw-funneled.tgz"
UMASS = f"{LFWPeople.download_url_prefix}lfw-funneled.tgz"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def faces() -> dict[str, bytes]:
    """Five LFW-like photos of three people: colour JPEGs, the face near the centre (YuNet finds each)."""
    astronaut = load_sample("astronaut").crop((110, 8, 336, 234)).resize((96, 96))
    grace = load_sample("grace_hopper").crop((55, 14, 480, 439)).resize((96, 96))
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    return {"Eileen_Collins/Eileen_Collins_0001.jpg": _jpeg(astronaut),
            "Eileen_Collins/Eileen_Collins_0002.jpg": _jpeg(astronaut.transpose(flip)),
            "Grace_Hopper/Grace_Hopper_0001.jpg": _jpeg(grace),
            "Grace_Hopper/Grace_Hopper_0002.jpg": _jpeg(grace.rotate(4)),
            "Ada_Example/Ada_Example_0001.jpg": _jpeg(grace.transpose(flip))}


@pytest.fixture(scope="module")
def archive(faces) -> bytes:
    """The fake ``lfw-funneled.tgz``: its photos under ``lfw_funneled/``, plus a text file that is not a person."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [*faces.items(), ("pairs_01.txt", b"not a person\n")]:
            info = tarfile.TarInfo(f"lfw_funneled/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Response(io.BytesIO):
    """What urlopen returns, as far as torchvision reads it: the bytes, ``url`` and ``length``."""

    def __init__(self, url: str, data: bytes):
        super().__init__(data)
        self.url, self.length = url, len(data)


class FakeServer:
    """Stands in for ``urllib.request.urlopen``: answers each URL with bytes or an exception, counts requests,
    and notes the socket timeout each request ran under."""

    def __init__(self, routes: dict[str, bytes | Exception]):
        self.routes, self.requests, self.timeouts = routes, [], []

    def __call__(self, request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.requests.append(url)
        self.timeouts.append(socket.getdefaulttimeout())
        answer = self.routes.get(url, urllib.error.URLError(socket.gaierror(-2, "Name or service not known")))
        if isinstance(answer, Exception):
            raise answer
        return Response(url, answer)


@pytest.fixture
def lfw(monkeypatch, archive):
    """torchvision's LFW table pointed at the fake archive's md5, one mirror, and a server to configure."""
    monkeypatch.setattr(LFWPeople, "file_dict", {**LFWPeople.file_dict, "funneled": (
        "lfw_funneled", "lfw-funneled.tgz", hashlib.md5(archive).hexdigest())})
    monkeypatch.setattr(online, "LFW_MIRRORS", {"lfw-funneled.tgz": (MIRROR,)})

    def serve(routes: dict[str, bytes | Exception]) -> FakeServer:
        server = FakeServer(routes)
        monkeypatch.setattr(urllib.request, "urlopen", server)
        return server
    return serve


def test_the_real_table_is_torchvisions():
    assert lfw_archive() == ("lfw_funneled", "lfw-funneled.tgz", "1b42dfed7d15c9b2dd63d5e5840c86ad")
    assert lfw_archive("original")[1] == "lfw.tgz"
    assert set(online.LFW_MIRRORS) <= {name for _, name, _ in LFWPeople.file_dict.values()}
    with pytest.raises(ValueError, match="unknown LFW image set 'gray'"):
        lfw_colour_folder(image_set="gray")
    assert "Huang" in online.LFW_CREDIT and "Massachusetts Amherst" in online.LFW_CREDIT


def test_downloaded_verified_unpacked_then_never_downloaded_again(lfw, tmp_path, faces, archive):
    server = lfw({MIRROR: archive})
    folder = lfw_colour_folder(tmp_path, photos_per_person=None, timeout=7.5)
    assert server.requests and set(server.requests) == {MIRROR} and set(server.timeouts) == {7.5}
    assert socket.getdefaulttimeout() is None  # the download's timeout did not leak
    assert (tmp_path / "lfw-py" / "lfw-funneled.tgz").read_bytes() == archive  # torchvision's layout
    got = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert got == faces  # one subfolder per person, photos only
    assert sorted(p.name for p in folder.iterdir()) == ["Ada_Example", "Eileen_Collins", "Grace_Hopper"]

    asked = len(server.requests)
    assert lfw_colour_folder(tmp_path, photos_per_person=None) == folder and len(server.requests) == asked
    (tmp_path / "lfw-py" / "lfw-funneled.tgz").unlink()  # the verified photos are enough
    small = lfw_colour_folder(tmp_path, max_people=2)  # default: one photo per person
    assert len(server.requests) == asked
    assert [p.relative_to(small).as_posix() for p in sorted(small.rglob("*.jpg"))] == sorted(
        f"{p}/{p}_0001.jpg" for p in [p.name for p in small.iterdir()])
    assert len(list(small.iterdir())) == 2 and small.name == "funneled_2people_1each"


def test_a_copy_put_in_the_cache_is_verified_and_used_without_a_download(lfw, tmp_path, archive):
    server = lfw({})
    (tmp_path / "lfw-py").mkdir()
    (tmp_path / "lfw-py" / "lfw-funneled.tgz").write_bytes(archive)
    folder = lfw_colour_folder(tmp_path)
    assert server.requests == [] and len(list(folder.rglob("*.jpg"))) == 3


def test_a_corrupted_archive_is_refused_by_the_md5_check_and_not_kept(lfw, tmp_path, archive):
    corrupted = archive[:-100] + bytes(100)
    server = lfw({MIRROR: corrupted})  # torchvision's own address is unreachable
    with pytest.raises(DownloadError) as caught:
        lfw_colour_folder(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{MIRROR} sent {len(corrupted):,} bytes that failed torchvision's md5 check" in message
    assert f"{UMASS}: [Errno -2] Name or service not known" in message
    assert server.requests[-1] == UMASS  # the next address was tried after the bad one
    assert sorted(p.name for p in (tmp_path / "lfw-py").iterdir()) == []  # nothing kept, nothing unpacked


def test_an_unreachable_server_gives_one_clear_line(lfw, tmp_path):
    lfw({MIRROR: urllib.error.URLError(TimeoutError("timed out"))})
    with pytest.raises(DownloadError) as caught:
        lfw_colour_folder(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and caught.value.__traceback__ is not None
    assert message.startswith("could not download LFW (lfw-funneled.tgz): ")
    assert f"{MIRROR}: timed out; {UMASS}: [Errno -2] Name or service not known" in message
    assert "the course runs offline on the bundled faces" in message and "your own photos" in message
    assert str(tmp_path / "lfw-py" / "lfw-funneled.tgz") in message  # where a manual copy goes
    with pytest.raises(ValueError, match="max_people must be a positive whole number"):
        lfw_colour_folder(tmp_path, max_people=0)


def test_domains_from_lfw_builds_aligned_colour_faces(lfw, tmp_path, monkeypatch, archive):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path / "build"))
    lfw({MIRROR: archive})
    root = ds.domains_from("lfw", ds.DomainConfig(size=64, styles="cartoon"), progress=False)
    assert root == tmp_path / "build" / "quick" / "domains" / "lfw_funneled_allpeople_1each_64px_cartoon"
    counts = ds.domain_sizes(root)
    assert sum(counts["source"].values()) == 3 and counts["source"] == counts["target/cartoon"]
    assert all(n == 1 for n in counts["source"].values())  # three people: one each in train, val and test
    face = Image.open(next((root / "source" / "test").glob("*.png")))
    assert face.size == (64, 64) and face.mode == "RGB"


def test_domains_from_your_folder_of_mixed_formats(tmp_path):
    photos = tmp_path / "my photos"
    (photos / "holiday").mkdir(parents=True)
    load_sample("astronaut").resize((256, 256)).convert("RGBA").save(photos / "astronaut.png")
    load_sample("grace_hopper").resize((200, 234)).save(photos / "holiday" / "grace.jpg", quality=90)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    root = ds.domains_from(photos, ds.DomainConfig(size=64, styles=["cartoon"]), root=tmp_path / "d", progress=False)
    assert root == tmp_path / "d"
    manifest = ds.read_manifest(root)
    assert sum(manifest["counts"]["source"].values()) == 2
    problems = {p["path"]: p["status"] for p in manifest["problems"]}
    assert problems["broken.jpg"] == "skipped" and problems["astronaut.png"] == "converted"  # RGBA -> RGB
    assert Image.open(next((root / "source" / "train").glob("*.png"))).size == (64, 64)


def test_domains_from_names_the_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such folder; the source is 'bundled', 'lfw' or a"):
        ds.domains_from(tmp_path / "nowhere")
    (tmp_path / "face.jpg").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"face.jpg: is a file, not a folder"):
        ds.domains_from(str(tmp_path / "face.jpg"))
    with pytest.raises(KeyError, match="unknown style 'oil'"):
        ds.domains_from("lfw", ds.DomainConfig(styles="oil"))  # refused before any download
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    with pytest.raises(ds.EmptyDomainError, match=r"no usable face images among 1 file\(s\) in .*empty"):
        ds.domains_from(empty, ds.DomainConfig(size=64), root=tmp_path / "d", progress=False)


def test_domains_from_bundled_is_the_default_build(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(ds, "build_default_domains", lambda root, config, **kw: calls.append((root, config, kw))
                        or tmp_path)
    pencil = ds.DomainConfig.bundled(styles="pencil")
    assert ds.domains_from("bundled", pencil, progress=False) == tmp_path
    assert ds.domains_from() == tmp_path
    assert calls[0] == (None, pencil, {"progress": False})
    assert calls[1][1] == ds.DomainConfig.bundled(size=256)  # the bundled defaults at 256 px, every style
    assert calls[1][1].styles == tuple(ds.TARGET_STYLES) and calls[1][2] == {"progress": True}


def test_cli_photos_lfw_offline_is_one_line_and_exit_1(lfw, monkeypatch, tmp_path, capsys):
    from facestyle_utils.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "'lfw' downloads Labeled Faces in the Wild in colour" in " ".join(capsys.readouterr().out.split())
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    lfw({})
    assert main(["train", "--photos", "lfw", "--steps", "1", "--no-progress", "--out", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not download LFW (lfw-funneled.tgz): ") and "\n" not in err
    assert main(["train", "--photos", "./lfw", "--steps", "1", "--out", str(tmp_path / "m.pt")]) == 2
    assert "--photos lfw: no such folder" in capsys.readouterr().err  # ./lfw is a folder, and there is none

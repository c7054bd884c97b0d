"""Face domains on disk: align, augment, split by identity and filter faces into paired folders.

Layout written by :func:`build_domains` (``<id>`` is the same file name on both sides of a pair)::

    root/
      manifest.json                     config, splits, sha256 of every file, problem files
      source/{train,val,test}/<id>.png  aligned face crops
      target/<style>/{train,val,test}/<id>.png  the same faces through a filter (paired)
      target/<name>/{train,val,test}/*.png      a folder of your own style images (unpaired)

Splits are made per *identity* (one photo and all its augmented copies), so no copy of a
test face is ever seen in training. Inputs are only read; building twice with the same
inputs and seed writes byte-identical files. :mod:`facestyle_utils.datasets` reads them back.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from . import faces as facelib
from .files import sha256_file
from .filters import TARGET_STYLES, apply_style
from .image_io import IMAGE_SUFFIXES, ImageLoadError, load_image

FORMAT = "facestyle-domains/1"
SPLITS = ("train", "val", "test")
#: Photos whose shorter side is below this are refused (a face in them would be a few pixels).
MIN_IMAGE_SIDE = 64
#: Photos are downscaled while loading so their longer side is at most this (bounded memory).
MAX_IMAGE_SIDE = 2048
#: Images with more pixels than this are refused from their header, before decoding.
MAX_PIXELS = 120_000_000


class EmptyDomainError(ValueError):
    """A domain (or one split of it) has no usable images; the message says where and why."""


# --------------------------------------------------------------------------- reports


@dataclass
class FileIssue:
    """One input file and what happened to it: ``skipped`` (with the reason) or ``converted``."""

    path: str
    status: str  # "skipped" or "converted"
    reason: str


@dataclass
class BuildReport:
    """What a build did: files written per domain and split, and every problem input with its reason."""

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # domain -> split -> files
    issues: list[FileIssue] = field(default_factory=list)
    reused: bool = False

    @property
    def skipped(self) -> list[FileIssue]:
        return [issue for issue in self.issues if issue.status == "skipped"]

    def table(self) -> str:
        """The problem files as a plain-text table (empty string if there were none)."""
        if not self.issues:
            return ""
        width = max(len(Path(i.path).name) for i in self.issues)
        lines = [f"{'file':<{width}}  {'status':<9}  reason", "-" * (width + 40)]
        lines += [f"{Path(i.path).name:<{width}}  {i.status:<9}  {i.reason}" for i in self.issues]
        return "\n".join(lines)

    def summary(self) -> str:
        lines = [f"{domain:<22} " + "  ".join(f"{s}={n:>4}" for s, n in splits.items())
                 for domain, splits in self.counts.items()]
        if self.issues:
            lines += ["", f"{len(self.skipped)} file(s) skipped, "
                      f"{len(self.issues) - len(self.skipped)} converted:", self.table()]
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading inputs


def _header_notes(path: Path) -> list[str]:
    """What load_image will change, read from the header only (cheap); raises for oversized images."""
    with Image.open(path) as image:
        notes = []
        if image.width * image.height > MAX_PIXELS:
            raise ImageLoadError(f"{path}: {image.width}x{image.height} has more than {MAX_PIXELS:,} pixels")
        if image.mode not in ("RGB",):
            notes.append(f"converted from mode {image.mode} to RGB")
        orientation = image.getexif().get(0x0112, 1)
        if orientation not in (1, None):
            notes.append(f"rotated upright (EXIF orientation {orientation})")
        if max(image.size) > MAX_IMAGE_SIDE:
            notes.append(f"downscaled from {image.width}x{image.height} (max side {MAX_IMAGE_SIDE})")
        return notes


def load_checked(path: str | os.PathLike, *, min_side: int = MIN_IMAGE_SIDE,
                 max_side: int = MAX_IMAGE_SIDE) -> tuple[Image.Image, list[str]]:
    """Load one input image for a domain: RGB, upright, at most ``max_side``; refuses tiny images.

    Returns the image and notes on what was converted. Raises :class:`ImageLoadError` naming the
    file for anything unusable (not an image, empty, truncated, too large, smaller than ``min_side``).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        try:
            notes = _header_notes(path)
        except ImageLoadError:
            raise
        except Exception:  # unreadable header: let load_image produce its precise message
            notes = []
    else:
        notes = []
    image = load_image(path, max_side=max_side)
    if min(image.size) < min_side:
        raise ImageLoadError(f"{path}: {image.width}x{image.height} is too small (shorter side below {min_side} px)")
    return image, notes


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Every file in a folder tree except hidden ones, sorted (non-images too: the build reports them)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                          for part in p.relative_to(folder).parts))


# --------------------------------------------------------------------------- face items


@dataclass
class FaceItem:
    """One source face ready to write: an identity (for splitting), a file stem and the crop."""

    identity: str
    stem: str
    image: Image.Image
    origin: str  # where it came from, for the manifest
    gray: bool = False


def faces_from_photos(files: Iterable[str | os.PathLike], size: int, report: BuildReport, *,
                      base: Path | None = None, margin: float = facelib.DEFAULT_MARGIN,
                      backend: str | None = None, already_cropped: bool = False,
                      min_side: int = MIN_IMAGE_SIDE, variants: int = 1, seed: int = 0,
                      progress: bool = False) -> list[FaceItem]:
    """Load photos, skip and report bad or duplicate files, detect/align faces (or centre-crop crops).

    ``variants > 1`` adds augmented crops of each face (small rotation, zoom, shift, flip), all
    with the photo's identity so they land in the same split.
    """
    from tqdm.auto import tqdm

    items: list[FaceItem] = []
    seen: dict[str, str] = {}
    taken: set[str] = set()
    files = list(files)
    for path in tqdm(files, desc="faces", disable=not progress):
        path = Path(path)
        label = str(path.relative_to(base)) if base is not None else path.name
        try:
            digest = sha256_file(path)
            if digest in seen:
                report.issues.append(FileIssue(label, "skipped", f"duplicate of {seen[digest]} (same sha256)"))
                continue
            image, notes = load_checked(path, min_side=min_side)
        except (ImageLoadError, OSError) as err:
            reason = str(err).replace(str(path), "").lstrip(": ") or type(err).__name__
            report.issues.append(FileIssue(label, "skipped", reason))
            continue
        seen[digest] = label
        report.issues += [FileIssue(label, "converted", note) for note in notes]
        identity = _identity_name(label, taken)
        if already_cropped:
            boxes = [_centre_box(image)]
        else:
            boxes = facelib.detect_faces(image, backend=backend)
            if not boxes:
                report.issues.append(FileIssue(label, "skipped", "no face found (crop it by hand with align_face)"))
                continue
        for index, box in enumerate(boxes):
            name = identity if len(boxes) == 1 else f"{identity}_face{index}"
            items += augmented_crops(image, box, size, name, variants, seed=seed, margin=0.0 if already_cropped else margin,
                                     origin=label)
    return items


def _identity_name(label: str, taken: set[str]) -> str:
    """A file name made safe for output names, distinct from every name already ``taken`` (then taken).

    ``x.png`` and ``x.jpg``, or ``a b.png`` and ``a_b.png``, would otherwise write over each other's
    crops; the later one gets its extension, then a number, added.
    """
    safe = lambda text: "".join(c if c.isalnum() or c in "-_" else "_" for c in text)  # noqa: E731
    path = Path(label)
    candidates = [safe(path.with_suffix("").as_posix()), safe(path.as_posix())]
    name = next((c for c in candidates if c.casefold() not in taken), None)
    number = 2
    while name is None:
        name = f"{candidates[1]}-{number}" if f"{candidates[1]}-{number}".casefold() not in taken else None
        number += 1
    taken.add(name.casefold())
    return name


def _centre_box(image: Image.Image) -> facelib.FaceBox:
    side = min(image.size)
    return facelib.FaceBox((image.width - side) / 2, (image.height - side) / 2, side, side)


def augmented_crops(image: Image.Image, box: facelib.FaceBox, size: int, identity: str, count: int, *,
                    seed: int = 0, margin: float = facelib.DEFAULT_MARGIN, origin: str = "",
                    max_rotate: float = 10.0, zoom_range: tuple[float, float] = (0.9, 1.1),
                    max_shift: float = 0.06) -> list[FaceItem]:
    """The aligned crop plus ``count - 1`` randomly perturbed copies (rotation, zoom, shift, flip).

    Perturbations are drawn from a generator seeded by ``seed`` and the identity, so they do not
    change when other photos are added or removed.
    """
    rng = np.random.default_rng([seed, int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16)])
    items = [FaceItem(identity, f"{identity}_v000", facelib.align_face(image, box, size, margin=margin), origin)]
    for k in range(1, count):
        rotate = float(rng.uniform(-max_rotate, max_rotate))
        zoom = float(rng.uniform(*zoom_range))
        shift = (float(rng.uniform(-max_shift, max_shift)), float(rng.uniform(-max_shift, max_shift)))
        flip = bool(rng.random() < 0.5)
        crop = facelib.align_face(image, box, size, margin=margin, rotate=rotate, zoom=zoom, shift=shift, flip=flip)
        items.append(FaceItem(identity, f"{identity}_v{k:03d}", crop, origin))
    return items


def lfw_items(size: int, *, mirror: bool = True) -> list[FaceItem]:
    """The 100 bundled LFW crops (25x25, gray) upscaled to ``size``, plus mirrored copies.

    They are already face crops, so no detection; they stay gray (``gray=True`` in the manifest),
    and upscaling 5x makes them soft: useful for volume, not for detail.
    """
    from .sample_data import lfw_subset_faces

    items = []
    for index, face in enumerate(lfw_subset_faces()):
        gray = Image.fromarray((face * 255.0).round().astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        rgb = gray.convert("RGB")
        identity = f"lfw{index:03d}"
        items.append(FaceItem(identity, f"{identity}_v000", rgb, "lfw_subset", gray=True))
        if mirror:
            items.append(FaceItem(identity, f"{identity}_v001", rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                  "lfw_subset (mirrored)", gray=True))
    return items


# --------------------------------------------------------------------------- splitting and writing


def split_identities(identities: Sequence[str], seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                     pinned: dict[str, str] | None = None) -> dict[str, str]:
    """Assign each identity to train/val/test with a seeded shuffle; ``pinned`` fixes some by hand.

    With at least three free identities, val and test get one each at least; with fewer, all go to train.
    """
    pinned = dict(pinned or {})
    free = sorted(set(identities) - set(pinned))
    order = [free[i] for i in np.random.default_rng(seed).permutation(len(free))]
    n = len(order)
    n_val = n_test = 0
    if n >= 3:
        n_val = max(1, math.floor(fractions[1] * n + 0.5))
        n_test = max(1, math.floor(fractions[2] * n + 0.5))
    assignment = {ident: "val" for ident in order[:n_val]}
    assignment |= {ident: "test" for ident in order[n_val:n_val + n_test]}
    assignment |= {ident: "train" for ident in order[n_val + n_test:]}
    return assignment | pinned


def _write_png(image: Image.Image | np.ndarray, path: Path) -> str:
    """Write a PNG deterministically (no metadata) and return its sha256."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path, format="PNG", optimize=False, compress_level=6)
    return sha256_file(path)


def _is_our_build(root: Path) -> bool:
    try:
        return json.loads((root / "manifest.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def write_domains(items: Sequence[FaceItem], root: str | os.PathLike, *, styles: Sequence[str] = ("cartoon",),
                  seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  pinned: dict[str, str] | None = None, config: dict | None = None,
                  report: BuildReport | None = None, unpaired: dict[str, list[tuple[str, Image.Image]]] | None = None,
                  variants_in: Sequence[str] = ("train",), progress: bool = False) -> BuildReport:
    """Write faces and their stylized targets to ``root`` (built in a temporary folder, then moved in).

    Augmented copies are a training device: identities split outside ``variants_in`` keep only
    their first crop, so val/test measure distinct faces, not 64 near-copies of one.

    An existing ``root`` is replaced only if it is a previous build (has our manifest); anything
    else there is refused, so a wrong path can never delete your files.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    report = report or BuildReport(root)
    report.root = root
    if not items:
        raise EmptyDomainError(f"source domain for {root} is empty: no usable face images"
                               + (f"\n{report.table()}" if report.issues else ""))
    for style in styles:
        if style not in TARGET_STYLES:
            raise KeyError(f"unknown style {style!r}; choose from {', '.join(TARGET_STYLES)}")
    if root.exists() and any(root.iterdir()) and not _is_our_build(root):
        raise FileExistsError(f"{root}: exists and is not a domain build (no manifest.json of ours); "
                              "choose an empty or new folder")
    assignment = split_identities([item.identity for item in items], seed, fractions, pinned)
    first_stem: dict[str, str] = {}
    for item in items:
        first_stem.setdefault(item.identity, item.stem)
    items = [item for item in items if assignment[item.identity] in variants_in or item.stem == first_stem[item.identity]]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    files = []
    try:
        for item in tqdm(items, desc="writing domains", disable=not progress):
            split = assignment[item.identity]
            rel = Path("source", split, f"{item.stem}.png")
            entry = {"path": rel.as_posix(), "sha256": _write_png(item.image, tmp / rel), "domain": "source",
                     "split": split, "identity": item.identity, "origin": item.origin, "gray": item.gray}
            files.append(entry)
            rgb = np.asarray(item.image.convert("RGB"))
            for style in styles:
                rel = Path("target", style, split, f"{item.stem}.png")
                files.append({**entry, "path": rel.as_posix(), "domain": f"target/{style}",
                              "sha256": _write_png(apply_style(rgb, style), tmp / rel)})
        for name, images in (unpaired or {}).items():
            names = sorted(n for n, _ in images)
            target_split = split_identities(names, seed, fractions)
            for stem, image in images:
                rel = Path("target", name, target_split[stem], f"{stem}.png")
                files.append({"path": rel.as_posix(), "sha256": _write_png(image, tmp / rel), "domain": f"target/{name}",
                              "split": target_split[stem], "identity": stem, "origin": stem, "gray": False})
        counts: dict[str, dict[str, int]] = {}
        for entry in files:
            domain = counts.setdefault(entry["domain"], {s: 0 for s in SPLITS})
            domain[entry["split"]] += 1
        manifest = {
            "format": FORMAT,
            "config": config or {},
            "layout": "source/<split>/<id>.png; target/<style>/<split>/<id>.png (same <id> = a pair)",
            "styles": {s: "paired" for s in styles} | {n: "unpaired" for n in (unpaired or {})},
            "counts": counts,
            "files": sorted(files, key=lambda e: e["path"]),
            "problems": [asdict(issue) for issue in report.issues],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.counts = counts
    return report


def _style_images(folder: Path, size: int, report: BuildReport) -> list[tuple[str, Image.Image]]:
    """A learner's folder of target-style images: loaded, checked, de-duplicated, centre-cropped to ``size``."""
    items = faces_from_photos(list_images(folder), size, report, base=folder, already_cropped=True)
    return [(item.identity, item.image) for item in items]


def build_domains(photos: str | os.PathLike | Sequence[str | os.PathLike], root: str | os.PathLike, *,
                  size: int = 128, styles: Sequence[str] = ("cartoon",), seed: int = 0,
                  target_folders: dict[str, str | os.PathLike] | None = None, variants: int = 1,
                  backend: str | None = None, margin: float = facelib.DEFAULT_MARGIN,
                  already_cropped: bool = False, min_side: int = MIN_IMAGE_SIDE,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), progress: bool = True,
                  verbose: bool = True) -> BuildReport:
    """Build source and target domains from a folder (or list) of face photos; returns the report.

    Bad files are reported (and printed when ``verbose``) and skipped; the build goes on. An
    empty source domain, or an empty ``target_folders`` entry, raises :class:`EmptyDomainError`.
    """
    report = BuildReport(Path(root))
    if isinstance(photos, (str, os.PathLike)):
        base = Path(photos)
        files = list_images(base)
    else:
        files, base = [Path(p) for p in photos], None
    items = faces_from_photos(files, size, report, base=base, margin=margin, backend=backend,
                              already_cropped=already_cropped, min_side=min_side, variants=variants,
                              seed=seed, progress=progress)
    if not items:
        raise EmptyDomainError(f"no usable face images among {len(files)} file(s) in "
                               f"{photos if base is not None else 'the given list'}:\n{report.table() or '(no files)'}")
    unpaired = {}
    for name, folder in (target_folders or {}).items():
        images = _style_images(Path(folder), size, report)
        if not images:
            raise EmptyDomainError(f"target domain {name!r}: no usable images in {folder}\n{report.table()}")
        unpaired[name] = images
    config = {"size": size, "styles": list(styles), "seed": seed, "variants": variants, "margin": margin,
              "backend": backend or facelib.available_backends()[0], "already_cropped": already_cropped,
              "fractions": list(fractions), "inputs": [str(f.relative_to(base)) if base else f.name for f in files]}
    write_domains(items, root, styles=styles, seed=seed, fractions=fractions, config=config, report=report,
                  unpaired=unpaired, progress=progress)
    if verbose and report.issues:
        print(report.table())
    return report


# --------------------------------------------------------------------------- the default offline domains


def default_face_items(size: int = 128, *, variants_per_photo: int = 64, seed: int = 0,
                       backend: str | None = None, progress: bool = False) -> list[FaceItem]:
    """The bundled faces as items: each photo's face with augmented copies, then the LFW crops."""
    from .sample_data import sample_faces

    report = BuildReport(Path("."))
    items = []
    for name, photo in sample_faces().items():
        boxes = facelib.detect_faces(photo, backend=backend)
        if len(boxes) != 1:
            raise RuntimeError(f"expected one face in the bundled photo {name!r}, found {len(boxes)}")
        items += augmented_crops(photo, boxes[0], size, name, variants_per_photo, seed=seed, origin=f"sample:{name}")
    if report.issues:  # pragma: no cover - bundled data is known good
        raise RuntimeError(report.table())
    return items + lfw_items(size)


#: Where the two colour photos go: the astronaut teaches colour in training, Grace Hopper is a held-out colour face.
DEFAULT_PINNED = {"astronaut": "train", "grace_hopper": "test"}


def build_default_domains(root: str | os.PathLike | None = None, *, size: int = 128,
                          styles: str | Sequence[str] | None = None, seed: int = 0, variants_per_photo: int = 64,
                          backend: str | None = None, progress: bool = True) -> Path:
    """The offline paired dataset used by lessons 03 and 04; builds once, then reuses the build.

    Source faces: the astronaut and Grace Hopper photos (``variants_per_photo`` aligned, augmented
    crops each) and the 100 LFW crops (gray, upscaled, each also mirrored). Augmented copies are
    kept for training identities only, so the defaults give 224 train, 10 val and 11 test faces. Targets: every style in ``styles`` (default: all of ``TARGET_STYLES``). The astronaut
    is pinned to train and Grace Hopper to test; LFW faces are split 80/10/10 by identity.
    Returns the folder; an existing build is reused when its manifest's config matches.
    """
    from .runtime import output_dir

    styles = [styles] if isinstance(styles, str) else list(styles or TARGET_STYLES)
    backend = backend or facelib.available_backends()[0]
    # One folder per configuration: lessons asking for different styles must not rebuild each other's data.
    name = f"default_{size}px_{'-'.join(sorted(styles))}_v{variants_per_photo}_seed{seed}"
    root = Path(root) if root is not None else output_dir("domains") / name
    config = {"kind": "default", "size": size, "styles": sorted(styles), "seed": seed,
              "variants_per_photo": variants_per_photo, "backend": backend, "pinned": DEFAULT_PINNED}
    if _manifest_matches(root, config):
        return root
    items = default_face_items(size, variants_per_photo=variants_per_photo, seed=seed, backend=backend,
                               progress=progress)
    write_domains(items, root, styles=sorted(styles), seed=seed, pinned=DEFAULT_PINNED, config=config,
                  progress=progress)
    return root


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a build, with a clear error if ``root`` is not one."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no manifest.json here; build the domains first (build_domains)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a facestyle domain manifest (format {manifest.get('format')!r})")
    return manifest


def _manifest_matches(root: Path, config: dict) -> bool:
    try:
        manifest = read_manifest(root)
    except (FileNotFoundError, ValueError):
        return False
    if manifest["config"] != json.loads(json.dumps(config)):
        return False
    return all((root / entry["path"]).is_file() for entry in manifest["files"])


def verify_domains(root: str | os.PathLike) -> list[str]:
    """Re-hash every file listed in the manifest; returns the paths that are missing or changed."""
    root = Path(root)
    bad = []
    for entry in read_manifest(root)["files"]:
        path = root / entry["path"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            bad.append(entry["path"])
    return bad


def domain_sizes(root: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Files per domain and split, from the manifest."""
    return read_manifest(root)["counts"]

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

A folder of thousands of photos is built as a stream (:func:`build_domains`): a cheap first
pass hashes every file (duplicates skipped) and names identities; a face pass finds each photo's
faces, keeping only their boxes; the photos that gave faces are split; a write pass crops,
stylizes and writes each photo's PNGs, keeping only its manifest entries. Both passes treat one
photo at a time, in worker processes, so memory does not grow with the number of photos. The
work goes to a hidden folder next to ``root`` (``.<root>.partial-<config hash>``) with a record
per photo and pass: an interrupted build, rerun with the same configuration, skips what was
finished. The finished folder is moved into place at the end.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from . import faces as facelib
from .faces import FaceCrop
from .files import atomic_write, sha256_file
from .filters import TARGET_STYLES, apply_style, style_function
from .image_io import ImageLoadError, load_image

FORMAT = "facestyle-domains/1"
SPLITS = ("train", "val", "test")
#: Photos whose shorter side is below this are refused (a face in them would be a few pixels).
MIN_IMAGE_SIDE = 64
#: Photos are downscaled while loading so their longer side is at most this (bounded memory).
MAX_IMAGE_SIDE = 2048
#: Images with more pixels than this are refused from their header, before decoding.
MAX_PIXELS = 120_000_000
#: Default worker processes: at most this many, and one per this many photos still to process
#: (starting a process costs seconds, more than a few photos take in-process).
MAX_DEFAULT_WORKERS = 8
PHOTOS_PER_WORKER = 32
#: Inside a work folder: one JSON record per finished photo (what it wrote), dropped once the build is in place.
RECORDS = ".records"
#: Splits that keep every augmented copy; the others keep each identity's first crop only (distinct faces).
VARIANTS_IN = ("train",)


# --------------------------------------------------------------------------- the build's settings


@dataclass(frozen=True)
class DomainConfig:
    """Every setting of a domain build, checked when made; the manifest stores it as is (:func:`read_config`).

    - ``size``: side of the square face crops, pixels (at least 8).
    - ``styles``: the paired target styles (``filters.style_names()``); a single name is accepted.
    - ``seed``: the seed of the augmentation draws and of the train/val/test split (an int >= 0).
    - ``variants_per_photo``: crops per training face: the aligned crop plus ``variants_per_photo - 1``
      augmented copies (val/test keep the aligned crop only).
    - ``patches_per_photo``: sharp photo patches per bundled photo (:func:`photo_patch_items`); bundled
      build only, 0 for a folder of photos.
    - ``margin``: face sides of margin on each side of the face (:func:`faces.align_face`).
    - ``backend``: face detector (``faces.BACKENDS``); None: the first available, filled in by the build.
    - ``already_cropped``: the photos are face crops already: centre squares, no detection (folder builds).
    - ``min_side``: photos whose shorter side is below this many pixels are refused (folder builds).
    - ``fractions``: (train, val, test) shares of the identities, summing to 1.
    - ``target_folders``: name -> folder of your own style images, each an unpaired target domain
      (folder builds).

    A wrong value raises ValueError (TypeError for a wrong type) naming the field and the value.
    ``DomainConfig()`` holds the folder build's defaults (:func:`build_domains`);
    :meth:`bundled` those of the offline default build (:func:`build_default_domains`).
    """

    size: int = 128
    styles: tuple[str, ...] = ("cartoon",)
    seed: int = 0
    variants_per_photo: int = 1
    patches_per_photo: int = 0
    margin: float = facelib.DEFAULT_MARGIN
    backend: str | None = None
    already_cropped: bool = False
    min_side: int = MIN_IMAGE_SIDE
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    target_folders: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        styles = (self.styles,) if isinstance(self.styles, str) else tuple(self.styles)
        object.__setattr__(self, "styles", styles)
        object.__setattr__(self, "fractions", tuple(self.fractions))
        object.__setattr__(self, "target_folders", {str(k): str(v) for k, v in dict(self.target_folders).items()})
        _check_int(self, "size", 8)
        _check_int(self, "seed", 0)
        _check_int(self, "variants_per_photo", 1)
        _check_int(self, "patches_per_photo", 0)
        _check_int(self, "min_side", 1)
        if not all(isinstance(style, str) and style for style in styles):
            raise TypeError(f"DomainConfig.styles must be style names, got {self.styles!r}")
        if len(set(styles)) != len(styles):
            raise ValueError(f"DomainConfig.styles lists a style twice: {styles}")
        if not isinstance(self.margin, (int, float)) or isinstance(self.margin, bool) or not 0 <= self.margin <= 2:
            raise ValueError(f"DomainConfig.margin must be a number of face sides from 0 to 2, got {self.margin!r}")
        if self.backend is not None and self.backend not in facelib.BACKENDS:
            raise ValueError(f"DomainConfig.backend must be one of {facelib.BACKENDS} or None, got {self.backend!r}")
        if not isinstance(self.already_cropped, bool):
            raise TypeError(f"DomainConfig.already_cropped must be True or False, got {self.already_cropped!r}")
        shares = self.fractions
        if (len(shares) != 3 or not all(isinstance(f, (int, float)) and 0 <= f <= 1 for f in shares)
                or abs(sum(shares) - 1) > 1e-6):
            raise ValueError(f"DomainConfig.fractions must be three shares (train, val, test) from 0 to 1 adding up "
                             f"to 1, got {self.fractions!r}")
        for name in self.target_folders:
            if not name or "/" in name or "\\" in name or name in styles or name == "source":
                raise ValueError(f"DomainConfig.target_folders: {name!r} cannot name a target domain (empty, a path, "
                                 "'source' or one of the styles)")

    @classmethod
    def bundled(cls, **settings: Any) -> "DomainConfig":
        """The offline default build's settings: every style of ``TARGET_STYLES``, 64 variants and 32 patches
        per photo (16 and 8 in workshop mode, 4 and 2 in quick mode), then ``settings`` (a setting given as
        None keeps its default)."""
        from .runtime import by_mode

        defaults = cls(styles=TARGET_STYLES, variants_per_photo=by_mode(quick=4, workshop=16, full=64),
                       patches_per_photo=by_mode(quick=2, workshop=8, full=32))
        return defaults.with_settings(**settings)

    def with_settings(self, **settings: Any) -> "DomainConfig":
        """A copy with some fields changed (checked again); a setting given as None keeps this config's value.
        An unknown name is a TypeError listing the fields."""
        names = {f.name for f in fields(self)}
        if unknown := sorted(set(settings) - names):
            raise TypeError(f"DomainConfig has no setting {', '.join(unknown)}; "
                            f"its settings: {', '.join(sorted(names))}")
        return replace(self, **{k: v for k, v in settings.items() if v is not None})

    def to_json(self) -> dict:
        """The config as JSON values (tuples become lists): what the manifest stores."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, values: dict, where: str = "<config>") -> "DomainConfig":
        """The config back from :meth:`to_json`'s values; ValueError naming ``where`` if they are not a config."""
        names = {f.name for f in fields(cls)}
        if not isinstance(values, dict) or set(values) != names:
            found = sorted(values) if isinstance(values, dict) else type(values).__name__
            raise ValueError(f"{where}: not a DomainConfig (fields {found}); it was written by an older "
                             "facestyle_utils: build the domains again")
        return cls(**values)


def _check_int(config: DomainConfig, name: str, least: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"DomainConfig.{name} must be an int, got {value!r}")
    if value < least:
        raise ValueError(f"DomainConfig.{name} must be at least {least}, got {value}")


def _config(config: DomainConfig | None, settings: dict, default: DomainConfig | None = None) -> DomainConfig:
    """``config`` (or ``default``, else ``DomainConfig()``) with keyword ``settings`` applied."""
    if config is not None and not isinstance(config, DomainConfig):
        raise TypeError(f"config must be a DomainConfig, got {type(config).__name__}")
    return (config or default or DomainConfig()).with_settings(**settings)


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


# --------------------------------------------------------------------------- face crops (faces.FaceCrop)


def faces_from_photos(files: Iterable[str | os.PathLike], report: BuildReport, config: DomainConfig | None = None, *,
                      base: Path | None = None, progress: bool = False) -> list[FaceCrop]:
    """Load photos, skip and report bad or duplicate files, detect/align faces (or centre-crop crops), in memory.

    ``config.variants_per_photo > 1`` adds augmented crops of each face (small rotation, zoom, shift,
    flip), all with the photo's identity so they land in the same split. Uses ``config``'s size,
    seed, margin, backend, already_cropped and min_side (default ``DomainConfig()``).
    """
    from .runtime import progress_bar

    config = config or DomainConfig()
    items: list[FaceCrop] = []
    seen: dict[str, str] = {}
    taken: set[str] = set()
    files = list(files)
    for path in progress_bar(files, desc="faces", disable=not progress):
        path = Path(path)
        label = str(path.relative_to(base)) if base is not None else path.name
        try:
            digest = sha256_file(path)
            if digest in seen:
                report.issues.append(FileIssue(label, "skipped", f"duplicate of {seen[digest]} (same sha256)"))
                continue
            image, notes = load_checked(path, min_side=config.min_side)
        except (ImageLoadError, OSError) as err:
            report.issues.append(FileIssue(label, "skipped", _reason(err, path)))
            continue
        seen[digest] = label
        report.issues += [FileIssue(label, "converted", note) for note in notes]
        identity = _identity_name(label, taken)
        if config.already_cropped:
            boxes = [_centre_box(image)]
        else:
            boxes = facelib.detect_faces(image, backend=config.backend)
            if not boxes:
                report.issues.append(FileIssue(label, "skipped", "no face found (crop it by hand with align_face)"))
                continue
        for index, box in enumerate(boxes):
            name = identity if len(boxes) == 1 else f"{identity}_face{index}"
            items += augmented_crops(image, box, name, config, origin=label)
    return items


def _reason(err: Exception, path: Path) -> str:
    """An error's message without the file name (the report names the file in its own column)."""
    return str(err).replace(str(path), "").lstrip(": ") or type(err).__name__


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


@dataclass(frozen=True)
class Jitter:
    """How far an augmented crop may move from the aligned one: rotation (degrees, either way), zoom
    (a factor range) and shift (fractions of the face side, each axis, either way)."""

    max_rotate: float = 10.0
    zoom_range: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 0.06


def augmented_crops(image: Image.Image, box: facelib.FaceBox, identity: str, config: DomainConfig | None = None, *,
                    origin: str = "", jitter: Jitter = Jitter()) -> list[FaceCrop]:
    """The aligned crop plus ``config.variants_per_photo - 1`` randomly perturbed copies (rotation, zoom, shift, flip).

    Crops are ``config.size`` pixels square with ``config.margin`` (no margin when ``already_cropped``).
    Perturbations are drawn from a generator seeded by ``config.seed`` and the identity, so they do
    not change when other photos are added or removed.
    """
    config = config or DomainConfig()
    margin = 0.0 if config.already_cropped else config.margin
    rng = np.random.default_rng([config.seed, int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16)])
    aligned = facelib.align_face(image, box, config.size, margin=margin)
    items = [FaceCrop(identity, f"{identity}_v000", aligned, origin, box=box)]
    for k in range(1, config.variants_per_photo):
        rotate = float(rng.uniform(-jitter.max_rotate, jitter.max_rotate))
        zoom = float(rng.uniform(*jitter.zoom_range))
        shift = (float(rng.uniform(-jitter.max_shift, jitter.max_shift)),
                 float(rng.uniform(-jitter.max_shift, jitter.max_shift)))
        flip = bool(rng.random() < 0.5)
        crop = facelib.align_face(image, box, config.size, margin=margin,
                                  perturb=facelib.Perturbation(rotate, zoom, shift, flip))
        items.append(FaceCrop(identity, f"{identity}_v{k:03d}", crop, origin, box=box))
    return items


def lfw_items(size: int, *, mirror: bool = True) -> list[FaceCrop]:
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
        items.append(FaceCrop(identity, f"{identity}_v000", rgb, "lfw_subset", gray=True))
        if mirror:
            items.append(FaceCrop(identity, f"{identity}_v001", rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                  "lfw_subset (mirrored)", gray=True))
    return items


def _soften(patch: Image.Image, rng: np.random.Generator, soft_fraction: float) -> tuple[Image.Image, str]:
    """With probability ``soft_fraction``, blur the patch or shrink and re-enlarge it (as the LFW crops were)."""
    draw = float(rng.random())
    if draw < soft_fraction / 2:
        radius = float(rng.uniform(0.5, 2.0))
        return patch.filter(ImageFilter.GaussianBlur(radius)), f"blur {radius:.1f} px"
    if draw < soft_fraction:
        factor = float(rng.uniform(2.0, 5.0))
        small = max(8, round(patch.width / factor))
        soft = patch.resize((small, small), Image.Resampling.BILINEAR).resize(patch.size, Image.Resampling.BICUBIC)
        return soft, f"down-up x{factor:.1f}"
    return patch, "sharp"


def photo_patch_items(size: int, per_photo: int, *, seed: int = 0, soft_fraction: float = 0.5,
                      photos: Sequence[str] | None = None) -> list[FaceCrop]:
    """``per_photo`` random ``size``-px patches of each sharp bundled photo, at full resolution.

    The target filters are local operators: a network can learn them from any sharp photo, not
    only from faces, and these photos bring what the gray, upscaled LFW crops lack: hard edges and
    colour. A fraction ``soft_fraction`` of the patches is blurred or downscaled and re-enlarged
    first, so soft inputs (like the LFW faces) are covered too; the target is always the filter of
    the patch as written. Each photo is one identity (``photo_<name>``), for the train split only.
    Photos default to ``sample_data.PATCH_PHOTOS`` (never a held-out face). Draws are seeded by
    ``seed`` and the photo's name. ValueError if a photo is smaller than ``size``.
    """
    from .sample_data import PATCH_PHOTOS, load_sample

    items = []
    for name in photos if photos is not None else PATCH_PHOTOS:
        photo = load_sample(name)
        if min(photo.size) < size:
            raise ValueError(f"sample {name!r} ({photo.width}x{photo.height}) is smaller than a {size}-px patch")
        rng = np.random.default_rng([seed, int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)])
        for k in range(per_photo):
            x, y = (int(rng.integers(0, side - size + 1)) for side in photo.size)
            patch, how = _soften(photo.crop((x, y, x + size, y + size)), rng, soft_fraction)
            if rng.random() < 0.5:
                patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            items.append(FaceCrop(f"photo_{name}", f"photo_{name}_p{k:03d}", patch,
                                  f"sample:{name} patch at ({x}, {y}), {how}"))
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


def _refuse_foreign(root: Path) -> None:
    """Raise FileExistsError if ``root`` holds anything that is not one of our builds (never delete a user's files)."""
    if root.exists() and any(root.iterdir()) and not _is_our_build(root):
        raise FileExistsError(f"{root}: exists and is not a domain build (no manifest.json of ours); "
                              "choose an empty or new folder")


def _check_styles(styles: Sequence[str]) -> None:
    """Fail before any work for an unknown style, or a painted one whose package is missing."""
    for style in styles:
        style_function(style)


def _write_face(item: FaceCrop, split: str, styles: Sequence[str], folder: Path) -> list[dict]:
    """Write one source crop and its partner in every paired style under ``folder``; returns their manifest entries."""
    rel = Path("source", split, f"{item.stem}.png")
    entry = {"path": rel.as_posix(), "sha256": _write_png(item.image, folder / rel), "domain": "source",
             "split": split, "identity": item.identity, "origin": item.origin, "gray": item.gray}
    files = [entry]
    rgb = np.asarray(item.image.convert("RGB"))
    for style in styles:
        rel = Path("target", style, split, f"{item.stem}.png")
        files.append({**entry, "path": rel.as_posix(), "domain": f"target/{style}",
                      "sha256": _write_png(apply_style(rgb, style), folder / rel)})
    return files


def _write_manifest(folder: Path, config: DomainConfig, inputs: dict, files: list[dict],
                    issues: Sequence[FileIssue]) -> dict[str, dict[str, int]]:
    """Write ``folder/manifest.json`` (files sorted by path, so the bytes never depend on processing order).

    The manifest holds ``config`` as is (:meth:`DomainConfig.to_json`) and ``inputs``: what was built
    from (for a folder, every file's name and one digest of their contents). Returns the counts:
    domain -> split -> files, domains in the order source, paired styles, unpaired (``config.target_folders``).
    """
    styles, unpaired = config.styles, list(config.target_folders)
    order = ["source", *(f"target/{s}" for s in styles), *(f"target/{n}" for n in unpaired)]
    present = {entry["domain"] for entry in files}
    counts = {domain: {s: 0 for s in SPLITS} for domain in order if domain in present}
    for entry in files:
        counts[entry["domain"]][entry["split"]] += 1
    manifest = {
        "format": FORMAT,
        "config": config.to_json(),
        "inputs": inputs,
        "layout": "source/<split>/<id>.png; target/<style>/<split>/<id>.png (same <id> = a pair)",
        "styles": {s: "paired" for s in styles} | {n: "unpaired" for n in unpaired},
        "counts": counts,
        "files": sorted(files, key=lambda e: e["path"]),
        "problems": [asdict(issue) for issue in issues],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return counts


def _install(folder: Path, root: Path) -> None:
    """Move a finished build into place, replacing an earlier build of ours (and nothing else)."""
    _refuse_foreign(root)
    if root.exists():
        shutil.rmtree(root)
    os.replace(folder, root)


def write_domains(items: Sequence[FaceCrop], root: str | os.PathLike, config: DomainConfig | None = None, *,
                  pinned: dict[str, str] | None = None, inputs: dict | None = None,
                  progress: bool = False) -> BuildReport:
    """Write crops held in memory and their stylized targets to ``root`` (built in a temporary folder, then moved in).

    For small sets (the bundled faces); :func:`build_domains` streams a folder of photos instead.
    Uses ``config``'s styles, seed and fractions; ``pinned`` fixes some identities' splits
    (:func:`split_identities`); ``inputs`` is what the manifest records as the build's inputs.
    Augmented copies are a training device: identities split outside ``VARIANTS_IN`` keep only
    their first crop, so val/test measure distinct faces, not 64 near-copies of one.

    An existing ``root`` is replaced only if it is a previous build (has our manifest); anything
    else there is refused, so a wrong path can never delete your files. No crops is an
    :class:`EmptyDomainError`.
    """
    from .runtime import progress_bar

    root, config = Path(root), config or DomainConfig()
    report = BuildReport(root)
    if not items:
        raise EmptyDomainError(f"source domain for {root} is empty: no usable face images")
    if config.target_folders:
        raise ValueError(f"{root}: write_domains writes paired styles only; build target_folders with build_domains")
    _check_styles(config.styles)
    _refuse_foreign(root)
    assignment = split_identities([item.identity for item in items], config.seed, config.fractions, pinned)
    first_stem: dict[str, str] = {}
    for item in items:
        first_stem.setdefault(item.identity, item.stem)
    items = [item for item in items
             if assignment[item.identity] in VARIANTS_IN or item.stem == first_stem[item.identity]]
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    files = []
    try:
        for item in progress_bar(items, desc="writing domains", disable=not progress):
            files += _write_face(item, assignment[item.identity], config.styles, tmp)
        counts = _write_manifest(tmp, config, inputs or {}, files, report.issues)
        _install(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.counts = counts
    return report


# --------------------------------------------------------------------------- streaming folder builds


@dataclass(frozen=True)
class PhotoJob:
    """One input file's work; holds no pixels, so it pickles small.

    ``domain`` is ``"source"`` (a face photo: crops plus every paired style) or ``"target/<name>"``
    (an image of an unpaired target folder: one centre crop). ``order`` is the file's place in the
    build (source files first, then each target folder), which fixes the order of problems in the
    report. ``split`` and ``boxes`` are filled in after the face pass (:func:`find_faces`).
    """

    path: str  # as given (may be relative to the working directory)
    label: str  # as reported: relative to the input folder, or the file name for a list of files
    sha256: str
    identity: str  # file-name-safe and unique within the domain; also the stem of the output files
    domain: str
    order: int
    split: str = ""
    boxes: tuple[facelib.FaceBox, ...] = ()  # faces found (or the centre square), in the loaded image's pixels


@dataclass
class Faces:
    """What the face pass keeps of one photo: its face boxes (none: skipped) and what happened to the file."""

    boxes: list[facelib.FaceBox]
    issues: list[FileIssue]


@dataclass
class PhotoResult:
    """What writing one photo leaves in memory: its manifest entries (paths and hashes of the PNGs), never pixels."""

    entries: list[dict]


@dataclass
class FolderPlan:
    """The first pass over one folder: the jobs to run, the files already skipped (with their ``order``), and
    ``(domain, label, sha256)`` of every file seen, which the config digests so changed inputs are never reused."""

    domain: str
    where: str  # the folder, for messages
    jobs: list[PhotoJob] = field(default_factory=list)
    skipped: list[tuple[int, FileIssue]] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)


def _probe(path: Path, min_side: int) -> str | None:
    """Why a file cannot be used, judged from its header (cheap), or None if it looks usable.

    Only a file that already looks wrong is decoded in full, to report load_checked's exact reason.
    A file that passes may still fail later (a truncated JPEG shows only when decoded).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
        scale = min(1.0, MAX_IMAGE_SIDE / max(width, height))
        if min(width, height) * scale >= min_side and width * height <= MAX_PIXELS:
            return None
    except Exception:  # noqa: BLE001 - any header problem: let load_checked name it
        pass
    try:
        load_checked(path, min_side=min_side)
    except (ImageLoadError, OSError) as err:
        return _reason(err, path)
    return None


def plan_photos(files: Sequence[str | os.PathLike], domain: str = "source", *, base: Path | None = None,
                min_side: int = MIN_IMAGE_SIDE, start: int = 0, progress: bool = False) -> FolderPlan:
    """The cheap first pass: hash files, skip duplicates and unreadable files, give each photo its identity.

    Reads file bytes and image headers only, so thousands of photos take seconds.
    """
    from .runtime import progress_bar

    plan, digests, taken = FolderPlan(domain, str(base) if base else "the given list"), {}, set()
    for order, path in enumerate(progress_bar(files, desc=f"scanning {domain}", disable=not progress), start):
        path = Path(path)
        label = str(path.relative_to(base)) if base is not None else path.name
        try:
            digest = sha256_file(path)
            problem = f"duplicate of {digests[digest]} (same sha256)" if digest in digests else _probe(path, min_side)
        except OSError as err:
            digest, problem = "", _reason(err, path)
        plan.seen.append((domain, label, digest))
        if problem:
            plan.skipped.append((order, FileIssue(label, "skipped", problem)))
            continue
        digests[digest] = label
        plan.jobs.append(PhotoJob(str(path), label, digest, _identity_name(label, taken), domain, order))
    return plan


def _load(job: PhotoJob, config: DomainConfig) -> tuple[Image.Image, list[str]]:
    return load_checked(job.path, min_side=config.min_side if job.domain == "source" else MIN_IMAGE_SIDE)


def find_faces(job: PhotoJob, config: DomainConfig) -> Faces:
    """The face pass over one photo: load it and find its faces (a target-folder image, or an ``already_cropped``
    photo, is its centre square). Unusable files and photos without a face come back as skipped issues."""
    try:
        image, notes = _load(job, config)
    except (ImageLoadError, OSError) as err:
        return Faces([], [FileIssue(job.label, "skipped", _reason(err, Path(job.path)))])
    issues = [FileIssue(job.label, "converted", note) for note in notes]
    if job.domain != "source" or config.already_cropped:
        return Faces([_centre_box(image)], issues)
    boxes = facelib.detect_faces(image, backend=config.backend)
    if not boxes:
        issues.append(FileIssue(job.label, "skipped", "no face found (crop it by hand with align_face)"))
    return Faces(boxes, issues)


def process_photo(job: PhotoJob, config: DomainConfig, folder: Path) -> PhotoResult:
    """Load one photo again, crop its faces (``job.boxes``), stylize, and write the PNGs under ``folder``.

    Runs in a worker process. Only the result goes back: a few hundred bytes of manifest entries
    per file written, which is what keeps a build's memory independent of the number of photos.
    """
    image, _ = _load(job, config)
    if job.domain != "source":
        return PhotoResult(_write_style_image(image, job, config.size, folder))
    if job.split not in VARIANTS_IN:  # val/test keep distinct faces only
        config = replace(config, variants_per_photo=1)
    entries = []
    for index, box in enumerate(job.boxes):
        name = job.identity if len(job.boxes) == 1 else f"{job.identity}_face{index}"
        for item in augmented_crops(image, box, name, config, origin=job.label):
            entries += _write_face(item, job.split, config.styles, folder)
    return PhotoResult(entries)


def _write_style_image(image: Image.Image, job: PhotoJob, size: int, folder: Path) -> list[dict]:
    """An image of an unpaired target folder.

    Centre-cropped to ``size`` and written as ``<domain>/<split>/<id>.png``.
    """
    rel = Path(job.domain, job.split, f"{job.identity}.png")
    crop = facelib.align_face(image, job.boxes[0], size, margin=0.0)
    return [{"path": rel.as_posix(), "sha256": _write_png(crop, folder / rel), "domain": job.domain,
             "split": job.split, "identity": job.identity, "origin": job.identity, "gray": False}]


# One record per photo and pass, so a rerun knows what is finished: stage name -> what the stage returns.
STAGES = {"faces": Faces, "write": PhotoResult}


def _record_path(work: Path, stage: str, job: PhotoJob) -> Path:
    return work / RECORDS / f"{stage}-{job.sha256}-{hashlib.sha256(job.domain.encode()).hexdigest()[:8]}.json"


def _job_key(job: PhotoJob) -> dict:
    """What a record must match to be reused, as JSON gives it back (not the path: a rerun may spell it differently)."""
    return json.loads(json.dumps({k: v for k, v in asdict(job).items() if k != "path"}))


def _run_job(stage: str, job: PhotoJob, config: DomainConfig, work: Path) -> Faces | PhotoResult:
    """One stage of one photo, then its record: written last and atomically, so a record means finished."""
    result = find_faces(job, config) if stage == "faces" else process_photo(job, config, work)
    with atomic_write(_record_path(work, stage, job)) as handle:
        handle.write(json.dumps({"job": _job_key(job), **asdict(result)}).encode())
    return result


def _load_record(work: Path, stage: str, job: PhotoJob) -> Faces | PhotoResult | None:
    """A photo's stage result from an earlier run, if its record matches and every file it wrote is intact."""
    try:
        record = json.loads(_record_path(work, stage, job).read_text())
    except (OSError, ValueError):
        return None
    if record.get("job") != _job_key(job):
        return None
    if stage == "faces":
        return Faces([facelib.FaceBox(**box) for box in record["boxes"]],  # FaceBox turns JSON lists into points
                     [FileIssue(**issue) for issue in record["issues"]])
    for entry in record["entries"]:
        path = work / entry["path"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            return None
    return PhotoResult(record["entries"])


def _worker_count(workers: int | None, pending: int) -> int:
    """Processes to use: as asked (``None``: the usable cores, at most MAX_DEFAULT_WORKERS and one per
    PHOTOS_PER_WORKER photos), never more than the photos left; 1 means in this process."""
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(cores, MAX_DEFAULT_WORKERS, pending // PHOTOS_PER_WORKER)
    elif workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return max(1, min(workers, pending))


def _mp_context() -> multiprocessing.context.BaseContext:
    """Fork server where there is one (fast starts: this module is imported once, then forked; no fork of a
    threaded parent such as a Jupyter kernel), else spawn (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


def _worker_init() -> None:
    """One OpenCV thread per worker: the workers already fill the cores."""
    import cv2

    cv2.setNumThreads(1)


def run_jobs(stage: str, jobs: Sequence[PhotoJob], config: DomainConfig, work: Path, *,
             workers: int | None = None, progress: bool = False) -> dict[int, object]:
    """Results of one stage (``"faces"`` or ``"write"``) for every job, by its ``order``: finished ones read
    from their records, the rest run. ``workers > 1`` runs them in a process pool; results do not depend on it.
    ``config`` must name its backend (the build fills it in), so every worker detects with the same one."""
    from .runtime import progress_bar

    domain = jobs[0].domain if jobs else "source"
    desc = "writing domains" if stage == "write" else f"finding {'faces' if domain == 'source' else domain}"

    results, pending = {}, []
    for job in jobs:
        done = _load_record(work, stage, job)
        if done is None:
            pending.append(job)
        else:
            results[job.order] = done
    workers = _worker_count(workers, len(pending))
    with progress_bar(total=len(jobs), initial=len(results), desc=desc, disable=not progress) as bar:
        if workers == 1:
            for job in pending:
                results[job.order] = _run_job(stage, job, config, work)
                bar.update()
            return results
        pool = ProcessPoolExecutor(workers, mp_context=_mp_context(), initializer=_worker_init)
        try:
            futures = {pool.submit(_run_job, stage, job, config, work): job for job in pending}
            for future in as_completed(futures):
                results[futures[future].order] = future.result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on an error: finish running photos, drop the rest
    return results


def _prune(folder: Path, keep: set[str]) -> None:
    """Delete files under ``folder`` not in ``keep``, then empty folders.

    ``keep`` holds relative POSIX paths; the records are kept.
    """
    for path in sorted(folder.rglob("*"), reverse=True):
        rel = path.relative_to(folder).as_posix()
        if rel == RECORDS or rel.startswith(RECORDS + "/") or rel in keep:
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def _input_files(photos: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], Path | None]:
    if isinstance(photos, (str, os.PathLike)):
        return list_images(photos), Path(photos)
    return [Path(p) for p in photos], None


def _empty_error(plan: FolderPlan, report: BuildReport) -> EmptyDomainError:
    """The error for a domain left without a single usable image, with the table of why."""
    if plan.domain == "source":
        return EmptyDomainError(f"no usable face images among {len(plan.seen)} file(s) in {plan.where}:\n"
                                f"{report.table() or '(no files)'}")
    name = plan.domain.removeprefix("target/")
    return EmptyDomainError(f"target domain {name!r}: no usable images in {plan.where}\n{report.table()}")


def _plan_build(photos, report: BuildReport, config: DomainConfig, *,
                progress: bool) -> list[FolderPlan]:
    """The first pass over the photos, then every target folder; raises EmptyDomainError before any heavy work."""
    files, base = _input_files(photos)
    plans = [plan_photos(files, "source", base=base, min_side=config.min_side, progress=progress)]
    for name, folder in config.target_folders.items():
        plans.append(plan_photos(list_images(folder), f"target/{name}", base=Path(folder),
                                 start=sum(len(plan.seen) for plan in plans)))
    for plan in plans:  # problems are reported in this order: source, then each target folder
        report.issues += [issue for _, issue in plan.skipped]
        if not plan.jobs:
            raise _empty_error(plan, report)
    return plans


def _folder_inputs(plans: list[FolderPlan]) -> dict:
    """What a folder build read, for its manifest: every file's name (relative to its folder) and one digest
    of all their contents, so a build is reused only when its inputs are the same files."""
    seen = [item for plan in plans for item in plan.seen]
    return {"kind": "photos", "photos": [label for _, label, _ in plans[0].seen],
            "target_folders": {plan.domain.removeprefix("target/"): [label for _, label, _ in plan.seen]
                               for plan in plans[1:]},
            "sha256": hashlib.sha256(json.dumps(seen).encode()).hexdigest()}


def _work_folder(root: Path, config: DomainConfig, inputs: dict) -> Path:
    """Where a build with this config is assembled: next to ``root``, named by the config's hash, kept across runs."""
    digest = hashlib.sha256(json.dumps({"config": config.to_json(), "inputs": inputs},
                                       sort_keys=True).encode()).hexdigest()[:16]
    return root.parent / f".{root.name}.partial-{digest}"


def _reused(root: Path) -> BuildReport:
    """The report of a finished build, read back from its manifest (counts and problems as when it was built)."""
    manifest = read_manifest(root)
    return BuildReport(root, counts=manifest["counts"], issues=[FileIssue(**p) for p in manifest["problems"]],
                       reused=True)


def _finish(work: Path, root: Path, config: DomainConfig, inputs: dict, files: list[dict],
            issues: list[FileIssue]) -> dict[str, dict[str, int]]:
    """Write the manifest, drop anything not in it, move the build into place, remove work folders left for ``root``."""
    _prune(work, {entry["path"] for entry in files})
    counts = _write_manifest(work, config, inputs, files, issues)
    _install(work, root)
    shutil.rmtree(root / RECORDS, ignore_errors=True)
    # Unfinished builds of other configs for this root: their photos would have to be processed again anyway.
    for stale in root.parent.glob(f".{glob.escape(root.name)}.partial-" + "[0-9a-f]" * 16):
        shutil.rmtree(stale, ignore_errors=True)
    return counts


def build_domains(photos: str | os.PathLike | Sequence[str | os.PathLike], root: str | os.PathLike,
                  config: DomainConfig | None = None, *, progress: bool = True, workers: int | None = None,
                  **settings: Any) -> BuildReport:
    """Build source and target domains from a folder (or list) of face photos; returns the report.

    ``config`` (:class:`DomainConfig`, default ``DomainConfig()``) holds every setting of the build;
    keyword ``settings`` are a shorthand for some of its fields (``build_domains(folder, root,
    size=256)``). The manifest stores the config with the backend filled in.

    Streams: memory stays at a few photos whatever their number; ``workers`` processes share the
    photos (default: the cores, for builds big enough to pay for starting them; 1 = this process),
    with identical files whatever their number. An interrupted build, rerun with the same
    config, skips the photos it finished; a finished build with the same config (inputs'
    contents included) is reused as it is (``report.reused``). Bad files are reported (and, with
    ``progress``, printed as a table after the progress bars) and skipped; the build goes on. An
    empty source domain, or an empty ``target_folders`` entry, raises :class:`EmptyDomainError`; a
    ``root`` holding anything but an earlier build raises FileExistsError; a wrong setting
    raises ValueError or TypeError before any work.
    """
    root, config = Path(root), _config(config, settings)
    if config.patches_per_photo:
        raise ValueError(f"patches_per_photo={config.patches_per_photo}: photo patches belong to the bundled build "
                         "(build_default_domains); use 0 for a folder of photos")
    _check_styles(config.styles)
    _refuse_foreign(root)
    _worker_count(workers, 1)  # a bad value fails now, not after the first pass
    config = replace(config, backend=config.backend or facelib.available_backends()[0])
    report = BuildReport(root)
    plans = _plan_build(photos, report, config, progress=progress)
    if _manifest_matches(root, config, _folder_inputs(plans)):
        report = _reused(root)
    else:
        _build(plans, root, config, report, workers=workers, progress=progress)
    if progress and report.issues:
        print(report.table())
    return report


def _build(plans: list[FolderPlan], root: Path, config: DomainConfig, report: BuildReport, *,
           workers: int | None, progress: bool) -> None:
    """The face pass per folder (target folders first: they are small and may turn out empty), the split of the
    photos that gave faces, the write pass, then the build moved into place; fills ``report``."""
    inputs = _folder_inputs(plans)
    work = _work_folder(root, config, inputs)
    found: dict[int, Faces] = {}
    writes = []
    for plan in plans[1:] + plans[:1]:
        found |= run_jobs("faces", plan.jobs, config, work, workers=workers, progress=progress)
        report.issues = _issues_in_order(plans, found)
        usable = [job for job in plan.jobs if found[job.order].boxes]
        if not usable:
            shutil.rmtree(work, ignore_errors=True)  # a finished outcome, not an interruption: nothing to resume
            raise _empty_error(plan, report)
        splits = split_identities([job.identity for job in usable], config.seed, config.fractions)
        writes += [replace(job, split=splits[job.identity], boxes=tuple(found[job.order].boxes)) for job in usable]
    writes.sort(key=lambda job: job.order)
    results = run_jobs("write", writes, config, work, workers=workers, progress=progress)
    files = [entry for order in sorted(results) for entry in results[order].entries]
    report.counts = _finish(work, root, config, inputs, files, report.issues)


def _issues_in_order(plans: list[FolderPlan], found: dict[int, Faces]) -> list[FileIssue]:
    """Every problem so far, in input order (as a build that read the photos one by one would list them)."""
    ordered = [(order, issue) for plan in plans for order, issue in plan.skipped]
    ordered += [(order, issue) for order, faces in found.items() for issue in faces.issues]
    return [issue for _, issue in sorted(ordered, key=lambda pair: pair[0])]


# --------------------------------------------------------------------------- the default offline domains


def default_face_items(config: DomainConfig | None = None) -> list[FaceCrop]:
    """The bundled faces as crops: each photo's face with augmented copies (``config.variants_per_photo``
    crops of ``config.size`` px), then the LFW crops. RuntimeError if a bundled photo does not give one face."""
    from .sample_data import sample_faces

    config = config or DomainConfig.bundled()
    items = []
    for name, photo in sample_faces().items():
        boxes = facelib.detect_faces(photo, backend=config.backend)
        if len(boxes) != 1:
            raise RuntimeError(f"expected one face in the bundled photo {name!r}, found {len(boxes)}")
        items += augmented_crops(photo, boxes[0], name, config, origin=f"sample:{name}")
    return items + lfw_items(config.size)


#: Where the two colour photos go: the astronaut teaches colour in training, Grace Hopper is a held-out colour face.
DEFAULT_PINNED = {"astronaut": "train", "grace_hopper": "test"}


def build_default_domains(root: str | os.PathLike | None = None, config: DomainConfig | None = None, *,
                          progress: bool = True, **settings: Any) -> Path:
    """The offline paired dataset used by lessons 03 and 04; builds once, then reuses the build.

    ``config`` defaults to :meth:`DomainConfig.bundled`; keyword ``settings`` change some of its
    fields (a setting given as None keeps its default), e.g. ``build_default_domains(size=64,
    styles="cartoon")``. Source faces: the astronaut and Grace Hopper photos (``variants_per_photo``
    aligned, augmented crops each; default 64, 4 in quick mode) and the 100 LFW crops (gray,
    upscaled, each also mirrored). Augmented copies are kept for training identities only, so 64
    variants give 224 train, 10 val and 11 test faces. ``patches_per_photo`` sharp patches of each
    photo in ``sample_data.PATCH_PHOTOS`` join the training split (:func:`photo_patch_items`;
    default 32, 2 in quick mode; 0 for faces only). Targets: every style in ``styles`` (default:
    all of ``TARGET_STYLES``). The astronaut is pinned to train and Grace Hopper to test; LFW faces
    are split by ``fractions`` (80/10/10) by identity, with the same split whatever the patches.
    Returns the folder (default ``build/domains/default_<size>px_<styles>_v<variants>[_p<patches>]_seed<seed>``);
    an existing build is reused when its manifest's config matches. ``target_folders``,
    ``already_cropped`` or ``min_side`` set for this build are a ValueError (they are for folders of photos).
    """
    from .runtime import output_dir

    config = _config(config, settings, default=DomainConfig.bundled())
    folder_only = DomainConfig()
    for name in ("target_folders", "already_cropped", "min_side"):
        if getattr(config, name) != getattr(folder_only, name):
            raise ValueError(f"{name}={getattr(config, name)!r} is for a folder of photos (build_domains), "
                             "not for the bundled faces")
    config = replace(config, styles=tuple(sorted(config.styles)),
                     backend=config.backend or facelib.available_backends()[0])
    # One folder per configuration: lessons asking for different styles must not rebuild each other's data.
    patches = f"_p{config.patches_per_photo}" if config.patches_per_photo else ""
    name = (f"default_{config.size}px_{'-'.join(config.styles)}_v{config.variants_per_photo}{patches}"
            f"_seed{config.seed}")
    root = Path(root) if root is not None else output_dir("domains") / name
    inputs = {"kind": "bundled", "alignment": facelib.ALIGNMENT_VERSION, "pinned": DEFAULT_PINNED}
    if _manifest_matches(root, config, inputs):
        return root
    items = default_face_items(config)
    pinned = dict(DEFAULT_PINNED)
    if config.patches_per_photo:
        patch_items = photo_patch_items(config.size, config.patches_per_photo, seed=config.seed)
        pinned.update({item.identity: "train" for item in patch_items})
        items += patch_items
    write_domains(items, root, config, pinned=pinned, inputs=inputs, progress=progress)
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


def read_config(root: str | os.PathLike) -> DomainConfig:
    """The :class:`DomainConfig` a build was made with, read back from its manifest.

    FileNotFoundError / ValueError naming the file if ``root`` is not a build, or if its manifest
    was written before configs were stored whole (build it again).
    """
    return DomainConfig.from_json(read_manifest(root).get("config"), where=str(Path(root) / "manifest.json"))


def _manifest_matches(root: Path, config: DomainConfig, inputs: dict) -> bool:
    """True when ``root`` holds a finished build of this config and these inputs (an older manifest never matches)."""
    try:
        manifest = read_manifest(root)
    except (FileNotFoundError, ValueError):
        return False
    if manifest["config"] != config.to_json() or manifest.get("inputs") != json.loads(json.dumps(inputs)):
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


# --------------------------------------------------------------------------- domains_from: bundled, LFW or your photos

#: The words :func:`domains_from` understands as a source; anything else is a folder of photos.
SOURCES = ("bundled", "lfw")


def domains_from(source: str | os.PathLike = "bundled", config: DomainConfig | None = None, *,
                 root: str | os.PathLike | None = None, max_people: int | None = None,
                 photos_per_person: int | None = 1, progress: bool = True) -> Path:
    """Build (or reuse) the source and target domains from one of three sources; returns the domains root.

    ``source``:

    - ``"bundled"``: the offline default faces and sharp photo patches (:func:`build_default_domains`);
    - ``"lfw"``: Labeled Faces in the Wild in colour (G. B. Huang et al., University of Massachusetts
      Amherst, 2007), downloaded once and checked by md5 with torchvision
      (:func:`facestyle_utils.online.lfw_colour_folder`; ``max_people`` and ``photos_per_person``
      choose how much of it; other sources ignore them, so one lesson cell serves all three), then
      built with :func:`build_domains`; needs internet the first time. LFW photos are 250 px with the
      face about 110 px across, so 256-px crops of them are upsampled about 2x;
    - any other string or path: a folder of your own photos, any format the loader reads, subfolders
      included (:func:`build_domains`). A folder literally named ``lfw`` or ``bundled`` is passed as
      ``"./lfw"`` or a ``Path``.

    ``config`` defaults to 256-px crops (``size=256``) with every style of ``TARGET_STYLES``, on top
    of :meth:`DomainConfig.bundled` for ``"bundled"`` and of ``DomainConfig()`` otherwise. ``root``
    defaults to a folder under ``build/domains/`` named after the source, size and styles (for a
    folder the same one ``python -m facestyle_utils train --photos`` uses), so asking again reuses the build.

    Raises FileNotFoundError / NotADirectoryError naming the path when a folder is missing or is a
    file, :class:`EmptyDomainError` (with a table of each file and why it was skipped) when no photo
    gives a face, ``online.DownloadError`` (one line) when LFW cannot be fetched, KeyError for an
    unknown style (before any download or build).
    """
    keyword = source.strip().lower() if isinstance(source, str) and source.strip().lower() in SOURCES else None
    start = DomainConfig.bundled() if keyword == "bundled" else DomainConfig()
    config = _config(config, {}, default=start.with_settings(size=256, styles=TARGET_STYLES))
    _check_styles(config.styles)
    if keyword == "bundled":
        return build_default_domains(root, config, progress=progress)
    if keyword == "lfw":
        from .online import lfw_colour_folder

        folder = lfw_colour_folder(max_people=max_people, photos_per_person=photos_per_person)
        root = Path(root) if root is not None else photos_root(folder, config, prefix="lfw")
    else:
        folder = Path(source).expanduser()
        if not folder.exists():
            raise FileNotFoundError(f"{folder}: no such folder; the source is 'bundled', 'lfw' or a folder of photos")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder}: is a file, not a folder; put your photos in a folder and pass that")
        root = Path(root) if root is not None else photos_root(folder, config)
    build_domains(folder, root, config, progress=progress)
    return root


def photos_root(folder: str | os.PathLike, config: DomainConfig, prefix: str = "photos") -> Path:
    """Where a build of a folder of photos goes by default: ``build/domains/<prefix>_<folder name>_<size>px_<styles>``,
    the same for :func:`domains_from` and ``python -m facestyle_utils train --photos``."""
    from .runtime import output_dir

    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(folder).resolve().name)
    return output_dir("domains") / f"{prefix}_{name}_{config.size}px_{'-'.join(config.styles)}"

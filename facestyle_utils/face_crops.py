"""Where face crops come from: photos loaded with checks, faces found and aligned, augmented copies, bundled faces.

Every crop is a :class:`facestyle_utils.faces.FaceCrop`: an identity (one photo, or one person), a
stem (its output file name), the image and where it came from. The sources:

- your photos: :func:`load_checked` loads one (RGB, upright, bounded size; an empty, broken, tiny or
  huge file raises :class:`~facestyle_utils.image_io.ImageLoadError` naming it), :func:`list_images`
  lists a folder, and :func:`faces_from_photos` turns photos into crops in memory, reporting bad or
  duplicate files and photos without a face;
- augmentation (lesson 01): :func:`augmented_crops` gives the aligned crop plus randomly perturbed
  copies, rotated, zoomed, shifted and flipped within a :class:`Jitter`. The draws are seeded by the
  config's seed and the identity, so adding a photo never changes another photo's copies, and every
  copy keeps its photo's identity, so all of them land in the same split;
- the bundled faces: :func:`default_face_items` (the two colour photos with augmented copies, then the
  LFW crops of :func:`lfw_items`) and :func:`photo_patch_items` (sharp patches of bundled photos: the
  target filters are local, so any sharp photo teaches them).

The settings are a :class:`~facestyle_utils.domains.DomainConfig`. :mod:`facestyle_utils.domains`
writes crops to disk; :mod:`facestyle_utils.domain_build` uses these loaders one photo at a time.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from . import faces as facelib
from .domains import MIN_IMAGE_SIDE, BuildReport, DomainConfig, FileIssue
from .faces import FaceCrop
from .files import sha256_file
from .image_io import ImageLoadError, load_image

#: Photos are downscaled while loading so their longer side is at most this (bounded memory).
MAX_IMAGE_SIDE = 2048
#: Images with more pixels than this are refused from their header, before decoding.
MAX_PIXELS = 120_000_000


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
            report.issues.append(FileIssue(label, "skipped", file_problem(err, path)))
            continue
        seen[digest] = label
        report.issues += [FileIssue(label, "converted", note) for note in notes]
        identity = identity_name(label, taken)
        if config.already_cropped:
            boxes = [centre_box(image)]
        else:
            boxes = facelib.detect_faces(image, backend=config.backend)
            if not boxes:
                report.issues.append(FileIssue(label, "skipped", "no face found (crop it by hand with align_face)"))
                continue
        for index, box in enumerate(boxes):
            name = identity if len(boxes) == 1 else f"{identity}_face{index}"
            items += augmented_crops(image, box, name, config, origin=label)
    return items


def file_problem(err: Exception, path: Path) -> str:
    """An error's message without the file name (the report names the file in its own column)."""
    return str(err).replace(str(path), "").lstrip(": ") or type(err).__name__


def identity_name(label: str, taken: set[str]) -> str:
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


def centre_box(image: Image.Image) -> facelib.FaceBox:
    """The largest centred square of ``image`` as a face box (x, y, side, side in pixels, no landmarks): the
    "face" of a photo that is already a crop, or of an image of an unpaired target folder."""
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


# --------------------------------------------------------------------------- the bundled faces


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

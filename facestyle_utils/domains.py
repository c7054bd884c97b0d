"""Face domains on disk: the format every build writes, and the entry points that build it.

Layout written by every build (:func:`write_domains`, :func:`domain_build.build_domains`;
``<id>`` is the same file name on both sides of a pair)::

    root/
      manifest.json                     config, splits, sha256 of every file, problem files
      source/{train,val,test}/<id>.png  aligned face crops
      target/<style>/{train,val,test}/<id>.png  the same faces through a filter (paired)
      target/<name>/{train,val,test}/*.png      a folder of your own style images (unpaired)

Splits are made per *identity* (one photo and all its augmented copies), so no copy of a
test face is ever seen in training. Inputs are only read; building twice with the same
inputs and seed writes byte-identical files. :mod:`facestyle_utils.datasets` reads them back.

Here: :class:`DomainConfig` (every setting of a build, stored in the manifest as is), the build's
report and errors, :func:`split_identities`, :func:`write_domains` (crops held in memory, written with
their stylized targets and the manifest) and reading a build back (:func:`read_manifest`,
:func:`read_config`, :func:`verify_domains`, :func:`domain_sizes`); and the entry points,
:func:`domains_from` (the bundled faces, LFW or a folder of your photos) and :func:`build_default_domains`.

The crops come from :mod:`facestyle_utils.face_crops`; a folder of photos is built as a stream by
:mod:`facestyle_utils.domain_build`. Both build on this module's config, reports and writers, so at
import time the imports go one way, ``domains`` <- ``face_crops`` <- ``domain_build``, and the two
entry points here import those modules only when called.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from . import faces as facelib
from .faces import FaceCrop
from .files import sha256_file
from .filters import TARGET_STYLES, apply_style, style_function

FORMAT = "facestyle-domains/1"
SPLITS = ("train", "val", "test")
#: Photos whose shorter side is below this are refused (a face in them would be a few pixels).
MIN_IMAGE_SIDE = 64
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
    - ``patches_per_photo``: sharp photo patches per bundled photo (:func:`face_crops.photo_patch_items`); bundled
      build only, 0 for a folder of photos.
    - ``margin``: face sides of margin on each side of the face (:func:`faces.align_face`).
    - ``backend``: face detector (``faces.BACKENDS``); None: the first available, filled in by the build.
    - ``already_cropped``: the photos are face crops already: centre squares, no detection (folder builds).
    - ``min_side``: photos whose shorter side is below this many pixels are refused (folder builds).
    - ``fractions``: (train, val, test) shares of the identities, summing to 1.
    - ``target_folders``: name -> folder of your own style images, each an unpaired target domain
      (folder builds).

    A wrong value raises ValueError (TypeError for a wrong type) naming the field and the value.
    ``DomainConfig()`` holds the folder build's defaults (:func:`domain_build.build_domains`);
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


def resolve_config(config: DomainConfig | None, settings: dict, default: DomainConfig | None = None) -> DomainConfig:
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


def write_png(image: Image.Image | np.ndarray, path: Path) -> str:
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


def refuse_foreign(root: Path) -> None:
    """Raise FileExistsError if ``root`` holds anything that is not one of our builds (never delete a user's files)."""
    if root.exists() and any(root.iterdir()) and not _is_our_build(root):
        raise FileExistsError(f"{root}: exists and is not a domain build (no manifest.json of ours); "
                              "choose an empty or new folder")


def check_styles(styles: Sequence[str]) -> None:
    """Fail before any work for an unknown style, or a painted one whose package is missing."""
    for style in styles:
        style_function(style)


def write_face(item: FaceCrop, split: str, styles: Sequence[str], folder: Path) -> list[dict]:
    """Write one source crop and its partner in every paired style under ``folder``; returns their manifest entries."""
    rel = Path("source", split, f"{item.stem}.png")
    entry = {"path": rel.as_posix(), "sha256": write_png(item.image, folder / rel), "domain": "source",
             "split": split, "identity": item.identity, "origin": item.origin, "gray": item.gray}
    files = [entry]
    rgb = np.asarray(item.image.convert("RGB"))
    for style in styles:
        rel = Path("target", style, split, f"{item.stem}.png")
        files.append({**entry, "path": rel.as_posix(), "domain": f"target/{style}",
                      "sha256": write_png(apply_style(rgb, style), folder / rel)})
    return files


def write_manifest(folder: Path, config: DomainConfig, inputs: dict, files: list[dict],
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


def install_build(folder: Path, root: Path) -> None:
    """Move a finished build into place, replacing an earlier build of ours (and nothing else)."""
    refuse_foreign(root)
    if root.exists():
        shutil.rmtree(root)
    os.replace(folder, root)


def write_domains(items: Sequence[FaceCrop], root: str | os.PathLike, config: DomainConfig | None = None, *,
                  pinned: dict[str, str] | None = None, inputs: dict | None = None,
                  progress: bool = False) -> BuildReport:
    """Write crops held in memory and their stylized targets to ``root`` (built in a temporary folder, then moved in).

    For small sets (the bundled faces); :func:`domain_build.build_domains` streams a folder of photos instead.
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
    check_styles(config.styles)
    refuse_foreign(root)
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
            files += write_face(item, assignment[item.identity], config.styles, tmp)
        counts = write_manifest(tmp, config, inputs or {}, files, report.issues)
        install_build(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.counts = counts
    return report


# --------------------------------------------------------------------------- the default offline domains


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
    photo in ``sample_data.PATCH_PHOTOS`` join the training split (:func:`face_crops.photo_patch_items`;
    default 32, 2 in quick mode; 0 for faces only). Targets: every style in ``styles`` (default:
    all of ``TARGET_STYLES``). The astronaut is pinned to train and Grace Hopper to test; LFW faces
    are split by ``fractions`` (80/10/10) by identity, with the same split whatever the patches.
    Returns the folder (default ``build/domains/default_<size>px_<styles>_v<variants>[_p<patches>]_seed<seed>``);
    an existing build is reused when its manifest's config matches. ``target_folders``,
    ``already_cropped`` or ``min_side`` set for this build are a ValueError (they are for folders of photos).
    """
    from .face_crops import default_face_items, photo_patch_items
    from .runtime import output_dir

    config = resolve_config(config, settings, default=DomainConfig.bundled())
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
    if manifest_matches(root, config, inputs):
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


def manifest_matches(root: Path, config: DomainConfig, inputs: dict) -> bool:
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
      built with :func:`domain_build.build_domains`; needs internet the first time. LFW photos are 250 px with the
      face about 110 px across, so 256-px crops of them are upsampled about 2x;
    - any other string or path: a folder of your own photos, any format the loader reads, subfolders
      included (:func:`domain_build.build_domains`). A folder literally named ``lfw`` or ``bundled`` is passed as
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
    from .domain_build import build_domains

    keyword = source.strip().lower() if isinstance(source, str) and source.strip().lower() in SOURCES else None
    start = DomainConfig.bundled() if keyword == "bundled" else DomainConfig()
    config = resolve_config(config, {}, default=start.with_settings(size=256, styles=TARGET_STYLES))
    check_styles(config.styles)
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

"""The studio's pipeline (lesson 06) as plain functions: crop the face, stylize it, blend at a strength.

One click of the studio's Stylize button runs, in order::

    request = Request(...)                                  # a snapshot of the settings
    before = crop_face(photo, request.size, box)            # lesson 01: detect (or a manual box), align
    raw = stylize(request, image_to_tensor(before), model)  # a model file (lessons 03-05) or lesson 02
    after = blend_result(raw, image_to_tensor(before), strength, preserve_colour)

Nothing here imports ipywidgets: :mod:`facestyle_utils.widgets` wires these functions to the controls,
:mod:`facestyle_utils.latest_wins` keeps the app responsive, and :mod:`facestyle_utils.studio_io` finds
model files and saves results. Errors are raised as exceptions; :func:`friendly_error` turns any of them
into the one-line message the app shows.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from . import colour
from .checkpoints import CheckpointError, load_model, read_model_file
from .faces import align_face, detect_faces
from .image_io import ImageLoadError, image_to_tensor, resize_image, tensor_to_image
from .inference import Stylizer, blend
from .sample_data import load_sample

#: The method that optimises the pixels (lesson 02) instead of running a model file.
OPTIMISATION = "optimisation"
#: Model kinds that take a style image as a second input (lesson 04's DRN); the others have one style built in.
STYLE_INPUT_KINDS = frozenset({"drn"})
#: Crop modes: find the face automatically, or use a box given as fractions of the photo.
CROP_MODES = ("detect face", "manual box")
#: Uploaded photos are shrunk to this longest side on arrival (detection and cropping need no more).
UPLOAD_MAX_SIDE = 1600


class NoFaceError(ValueError):
    """Face detection found nothing in the chosen photo."""


@dataclass(frozen=True)
class Request:
    """A snapshot of every setting a result depends on, taken when the request is made.

    ``source``: the photo's key (a bundled sample name, or ``"upload:<name>"`` / ``"webcam:<name>"``);
    ``box``: (centre x, centre y, side) as fractions of the photo, used in ``"manual box"`` mode; ``size``:
    the crop's side in pixels; ``method``: a model file's path or :data:`OPTIMISATION`; ``kind``: that
    model's kind (``"dcnn"``, ``"drn"``, ``"student"``; ignored for optimisation); ``steps``: the
    optimisation's step budget.
    """

    source: str
    crop_mode: str
    box: tuple[float, float, float]
    size: int
    method: str
    style: str
    steps: int
    kind: str | None = None

    @property
    def takes_style(self) -> bool:
        """True when the style image matters: optimisation, or a model kind in :data:`STYLE_INPUT_KINDS`."""
        return self.method == OPTIMISATION or self.kind in STYLE_INPUT_KINDS

    @property
    def photo_name(self) -> str:
        """The photo's name without the ``upload:``/``webcam:`` prefix."""
        return self.source.split(":", 1)[-1]

    def how(self) -> str:
        """How the result is made, e.g. ``"model tiny.pt, style brick"``."""
        if self.method == OPTIMISATION:
            return f"optimisation, {self.steps} steps, style {self.style}"
        return f"model {Path(self.method).name}" + (f", style {self.style}" if self.takes_style else "")

    def describe(self) -> str:
        """The status line for a finished request, e.g. ``"Done: 64x64 px, model tiny.pt."``."""
        return f"Done: {self.size}x{self.size} px, {self.how()}."

    def file_stem(self) -> str:
        """A file name stem for the result: photo, then style (if it matters), then model file."""
        return "_".join([self.photo_name.rsplit(".", 1)[0].replace(" ", "-"),
                         *([self.style] if self.takes_style else []),
                         *([] if self.method == OPTIMISATION else [Path(self.method).stem])])


def crop_face(photo: Image.Image, size: int, box: Sequence[float] | None = None, *,
              faces: list | None = None, name: str = "the photo") -> Image.Image:
    """The square crop that goes into the network: an RGB PIL image ``size`` x ``size``.

    With ``box`` = (centre x, centre y, side) as fractions of the photo (side relative to its shorter
    side), that square is cut out as it is. Without it, the largest face is detected (or taken from
    ``faces``, a cached :func:`~facestyle_utils.faces.detect_faces` result) and aligned as in lesson 01.
    Raises :class:`NoFaceError` (naming ``name``) when there is no face, ValueError for a size below 8.
    """
    if box is not None:
        cx, cy, side = box
        pixels = side * min(photo.size)
        square = (cx * photo.width - pixels / 2, cy * photo.height - pixels / 2, pixels, pixels)
        return align_face(photo, square, size, margin=0.0, level_eyes=False)
    found = detect_faces(photo) if faces is None else faces
    if not found:
        raise NoFaceError(f"No face found in {name}")
    return align_face(photo, found[0], size)


def shared_vgg(device: torch.device | str = "cpu"):
    """One frozen VGG19 per device for optimisation and every VGG19-based model (building one takes seconds)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" share one
        device = torch.device("cuda", torch.cuda.current_device())
    return _vgg(str(device))


@functools.lru_cache(maxsize=2)
def _vgg(device: str):
    from .vgg import load_vgg19

    return load_vgg19(device=device)


def open_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[str, Any]:
    """(kind, runner) for a model file: a :class:`Stylizer` for one-input kinds, the bare model for a DRN.

    DCNN and DRN models with the offline Oxford VGG19 share :func:`shared_vgg`. Raises CheckpointError for
    a missing, unreadable or invalid file (what :func:`read_model_file` and :func:`load_model` raise).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file (was it moved or deleted?)")
    data = read_model_file(path)
    kind, config = data["kind"], data.get("config") or {}
    shared = kind in ("dcnn", "drn") and config.get("vgg_weights", "oxford") == "oxford"
    model = load_model(path, device=device, **({"vgg": shared_vgg(device)} if shared else {}))
    return kind, (model if kind in STYLE_INPUT_KINDS else Stylizer(model, device=device))


@functools.lru_cache(maxsize=8)
def _style_image(name: str) -> Image.Image:
    return load_sample(name, max_side=512)


def style_tensor(name: str, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The bundled style image ``name``, shorter side ``size``, as a (1, 3, H, W) tensor in [0, 1] on ``device``.

    Raises KeyError for an unknown sample name.
    """
    return image_to_tensor(resize_image(_style_image(name), size), device)


def stylize(request: Request, content: torch.Tensor, model: tuple[str, Any] | None = None,
            on_step: Callable[[int], None] | None = None) -> torch.Tensor:
    """Stylize the face crop ``content`` (1, 3, H, W) in [0, 1] as ``request`` says; same shape, in [0, 1].

    ``model`` is :func:`open_model`'s (kind, runner) for ``request.method``, None for optimisation, whose
    ``on_step(step)`` is called after each step (0-based; it may raise to stop the run).
    """
    device = content.device
    if request.method == OPTIMISATION:
        from .gatys_speed import fast_settings, stylize_fast

        coarse = (2 * request.steps) // 3
        settings = fast_settings(device, coarse_steps=coarse, steps=request.steps - coarse)
        callback = None if on_step is None else (lambda step, _image, _loss: on_step(step))
        return stylize_fast(content, style_tensor(request.style, request.size, device),
                            shared_vgg(device), settings, callback=callback, progress=False).image
    if model is None:
        raise ValueError(f"{request.method}: a model method needs the model (from open_model)")
    kind, runner = model
    if kind in STYLE_INPUT_KINDS:
        with torch.inference_mode():
            return runner(content, style_tensor(request.style, request.size, device)).float().clamp(0, 1)
    return runner.stylize_tensor(content)


def blend_result(raw: torch.Tensor, before: torch.Tensor, strength: float,
                 preserve_colour: bool = False) -> Image.Image:
    """The "after" image: ``raw`` (1, 3, H, W) mixed with the crop ``before`` (same shape), both in [0, 1].

    ``preserve_colour`` first gives ``raw`` the crop's colours (lesson 02's colour preservation); ``strength``
    in [0, 1] then blends, 0 giving the crop back (ValueError outside [0, 1]). Returns an RGB PIL image.
    """
    raw = colour.preserve_colour(raw, before) if preserve_colour else raw
    return tensor_to_image(blend(raw, before, strength))


@dataclass(frozen=True)
class Stylized:
    """A finished request: its face ``crop`` (RGB PIL) and ``raw`` stylized crop ((1, 3, H, W) CPU tensor in
    [0, 1]). Strength and colour preservation are applied afterwards, so changing them needs no new run."""

    request: Request
    crop: Image.Image
    raw: torch.Tensor

    def blend(self, strength: float, preserve_colour: bool = False) -> Image.Image:
        """The "after" image at ``strength`` in [0, 1] (:func:`blend_result`)."""
        return blend_result(self.raw, image_to_tensor(self.crop), strength, preserve_colour)


class StudioPipeline:
    """The pipeline above with what the studio remembers between requests: photos, detected faces, open models.

    ``device`` is where models run (a torch.device or its name). Photos are kept by key: a bundled
    sample's name loads itself; :meth:`add_photo` adds an upload. Not thread-safe on its own: the studio
    runs one request at a time (:class:`~facestyle_utils.latest_wins.LatestWins`).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._photos: dict[str, Image.Image] = {}  # source key -> full photo (bundled or uploaded)
        self._faces: dict[str, list] = {}  # source key -> detected faces
        self._models: dict[Path, tuple[str, Any]] = {}  # model file -> open_model's (kind, runner)

    def add_photo(self, key: str, photo: Image.Image) -> None:
        """Remember ``photo`` (RGB PIL) under ``key``, replacing an earlier photo and its detected faces."""
        self._photos[key] = photo
        self._faces.pop(key, None)

    def crop(self, request: Request) -> Image.Image:
        """The face crop for ``request`` (see :func:`crop_face`); KeyError for an unknown bundled name."""
        if request.source not in self._photos:
            self._photos[request.source] = load_sample(request.source)
        photo = self._photos[request.source]
        if request.crop_mode == "manual box":
            return crop_face(photo, request.size, request.box)
        if request.source not in self._faces:
            self._faces[request.source] = detect_faces(photo)
        return crop_face(photo, request.size, faces=self._faces[request.source], name=request.photo_name)

    def model(self, path: str | Path) -> tuple[str, Any]:
        """:func:`open_model` for ``path``, opened once; a file that has gone raises CheckpointError every time."""
        path = Path(path)
        if path not in self._models or not path.is_file():
            self._models[path] = open_model(path, self.device)
        return self._models[path]

    def run(self, request: Request, on_step: Callable[[int], None] | None = None) -> Stylized:
        """Crop, then stylize (``on_step`` as in :func:`stylize`); raises what those raise."""
        before = self.crop(request)
        model = None if request.method == OPTIMISATION else self.model(request.method)
        raw = stylize(request, image_to_tensor(before, self.device), model, on_step)
        return Stylized(request, before, raw.cpu())


def friendly_error(err: BaseException) -> str:
    """A one-line message for the status area: what went wrong and what to try."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, NoFaceError):
        return f"{text}. Choose 'manual box' under crop and place the box with the sliders."
    if isinstance(err, ImageLoadError):
        return f"Could not read the photo: {text}"
    if isinstance(err, CheckpointError):
        return f"Model file problem: {text}. Pick another model or the optimisation method."
    if isinstance(err, (FileNotFoundError, FileExistsError, ValueError, KeyError)):
        return text
    if isinstance(err, (RuntimeError, MemoryError)) and "out of memory" in text.lower():
        return "Out of memory: lower the output size."
    return f"Unexpected problem ({type(err).__name__}): {text}"

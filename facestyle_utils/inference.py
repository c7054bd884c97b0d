"""Inference: a device-agnostic :class:`Stylizer` for images, batches and folders, with speed paths.

A speed path is a way of running the *same* trained network faster; each one is checked
against the plain float32 path (:data:`TOLERANCE` says how close it must stay):

- ``plain``: float32 under ``torch.no_grad`` (the reference);
- ``inference_mode``: like ``no_grad`` but also skips autograd's version counters;
- ``channels_last``: NHWC memory layout, which oneDNN and cuDNN convolutions prefer;
- ``autocast``: bfloat16 (float16 on GPUs without bfloat16 tensor cores) for the convolutions;
- ``compile``: ``torch.compile`` fuses operations into generated kernels (falls back to
  ``channels_last`` with a warning where compilation is unavailable);
- ``onnx``: the network exported to ONNX and run by ONNX Runtime (optional extra, see export.py).
"""
from __future__ import annotations

import copy
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import colour
from .files import OutputNames
from .image_io import (
    IMAGE_SUFFIXES,
    ImageLike,
    ImageLoadError,
    image_to_tensor,
    load_image,
    save_image,
    tensor_to_image,
    to_float_batch,
)
from .runtime import FallbackWarning, autocast, compile_ready, pick_device, progress_bar

SPEED_PATHS = ("plain", "inference_mode", "channels_last", "autocast", "compile", "onnx")
#: How far each speed path may stray from the plain path, as (largest, mean) absolute pixel
#: difference for images in [0, 1]. float32 paths differ only by summation order and kernel choice
#: (on CUDA, PyTorch runs float32 convolutions in TF32 by default, ``torch.backends.cudnn.allow_tf32``, and
#: NHWC picks other kernels: channels_last strayed by up to 6.3e-4 from plain on an H200, 2026-11-30);
#: 16-bit autocast keeps 8 mantissa bits, so single pixels can move visibly while the mean stays tiny.
TOLERANCE = {"plain": (0.0, 0.0), "inference_mode": (1e-6, 1e-6), "channels_last": (1e-3, 1e-4),
             "autocast": (0.2, 0.01), "compile": (1e-3, 1e-4), "onnx": (1e-3, 1e-4)}


def unavailable_speed_paths(device: torch.device | str) -> dict[str, str]:
    """The speed paths of :data:`SPEED_PATHS` that cannot run on ``device`` here, each with the reason.

    ``compile`` needs the compiler torch.compile uses (:func:`runtime.compile_ready`); ``onnx`` needs
    onnx, onnxscript and onnxruntime (the ``[export]`` extra). An empty dict means every path can run.
    """
    from .export import onnx_available

    missing: dict[str, str] = {}
    ready, why = compile_ready(device)
    if not ready:
        missing["compile"] = why
    if not onnx_available():
        missing["onnx"] = "onnx, onnxscript or onnxruntime is not installed (pip install -e '.[export]')"
    return missing


def difference(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(largest, mean) absolute difference between two image batches."""
    gap = (output.float() - reference.float()).abs()
    return gap.max().item(), gap.mean().item()


def agrees(output: torch.Tensor, reference: torch.Tensor, speed: str, gain: float = 1.0) -> bool:
    """True when ``output`` of a speed path is within :data:`TOLERANCE` of the plain path's.

    ``gain``: how many times the model's last layers can stretch a rounding difference
    (:func:`facestyle_utils.tone_curve.steepest_slope`; 1.0 for a network without a tone curve). A
    float32 path's *largest* difference may be that many times its tolerance: a pixel on a riser of
    the curve. The mean is not scaled (few pixels sit on risers), nor is autocast's largest difference,
    which already allows a whole tone step.
    """
    if not math.isfinite(gain):
        raise ValueError(f"gain must be a finite number (a tone curve's steepest slope), not {gain}")
    largest, mean = difference(output, reference)
    stretch = max(gain, 1.0) if speed != "autocast" else 1.0
    return largest <= TOLERANCE[speed][0] * stretch and mean <= TOLERANCE[speed][1]
#: Longest image side processed per device type, so large photos do not run out of memory.
MAX_SIDE = {"cuda": 1024, "mps": 768, "cpu": 768}
#: Video files: stylized when given directly (``video.stylize_video``), never from inside a folder.
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm"}


def make_runner(model: nn.Module, speed: str, device: torch.device,
                example: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``run(batch) -> images`` that applies ``model`` on ``device`` using one speed path.

    ``batch`` is a float (N, 3, H, W) tensor in [0, 1]. The caller's model is never changed: where
    the path needs another device, eval mode or memory layout, it runs on a copy.
    """
    if speed not in SPEED_PATHS:
        raise ValueError(f"unknown speed path {speed!r}; choose from {', '.join(SPEED_PATHS)}")
    model = ready_for(model, device)
    if speed == "onnx":
        from .export import OnnxRunner

        if isinstance(model, FixedStyle):
            raise ValueError("the onnx speed path cannot run a style-taking model (lesson 04's DRN): its attention "
                             "splits large images into chunks with a loop that export freezes at one size; "
                             "use channels_last, autocast or compile")

        return OnnxRunner(model, example if example is not None else torch.rand(1, 3, 64, 64))
    if speed in ("channels_last", "compile"):
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # never the caller's model
    if speed == "compile":
        model = _compile_or_fallback(model, device, example)
    grad_off = torch.inference_mode if speed in ("inference_mode", "channels_last", "compile") else torch.no_grad

    def run(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(device)
        if speed in ("channels_last", "compile"):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with grad_off(), autocast(device, enabled=speed == "autocast"):
            return model(batch).float().contiguous()

    return run


class _CompiledOrEager:
    """Call the compiled model; if compiling fails (at once, or later for a new image size), warn once
    and run the uncompiled model from then on, so the ``compile`` path takes every size the others take."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.eager = model
        self.compiled: Callable | None = None
        ready, why = compile_ready(device)
        if not ready:  # say why at once, instead of failing tens of seconds into the first call
            warnings.warn(f"torch.compile cannot work here ({why}); using channels_last without compilation",
                          FallbackWarning, stacklevel=4)
            return
        try:
            # dynamic=False: one static graph per image size. Dynamic shapes would compile once for all
            # sizes, but the stride padding (-H % 8) makes some inductor versions fail on the second size.
            self.compiled = torch.compile(model, dynamic=False)
        except Exception as err:  # torch.compile itself unavailable
            self._give_up(err)

    def _give_up(self, err: Exception) -> None:
        reason = (str(err).strip().splitlines() or [""])[-1]
        warnings.warn(f"torch.compile is unavailable here ({type(err).__name__}: {reason}); "
                      "using channels_last without compilation", FallbackWarning, stacklevel=5)
        self.compiled = None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(batch)
            except Exception as err:  # no C++ compiler, unsupported platform or shape, ...
                self._give_up(err)
        return self.eager(batch)


def _compile_or_fallback(model: nn.Module, device: torch.device, example: torch.Tensor | None) -> _CompiledOrEager:
    """``torch.compile`` the model and run it once, so a missing compiler shows up (as a warning) at once."""
    runner = _CompiledOrEager(model, device)
    probe = example if example is not None else torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        runner(probe.to(device).contiguous(memory_format=torch.channels_last))
    return runner


def ready_for(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when it is already on ``device`` and in eval mode, else a copy that is.

    Helpers never move or switch the model they are given (a notebook may still train it).
    """
    def placed(tensor: torch.Tensor) -> bool:
        return tensor.device.type == device.type and device.index in (None, tensor.device.index)

    on_device = all(placed(t) for t in [*model.parameters(), *model.buffers()])
    if on_device and not any(module.training for module in model.modules()):
        return model
    return copy.deepcopy(model).to(device).eval()


def takes_style_image(model: nn.Module) -> bool:
    """True for models whose forward takes ``(faces, style)``, like lesson 04's DRN (``takes_style = True``)."""
    return bool(getattr(getattr(model, "_orig_mod", model), "takes_style", False))


class FixedStyle(nn.Module):
    """A style-taking model (lesson 04's DRN) with one style image fixed: faces -> stylized faces.

    With the style bound, every speed path and the folder and video helpers run it like a
    one-input model. ``style`` is a float (1, 3, H, W) tensor in [0, 1].
    """

    def __init__(self, model: nn.Module, style: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("style", style)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        # one style per face, written out: an exported graph then takes any batch size
        return self.model(faces, self.style.expand(faces.shape[0], -1, -1, -1))

    def pad_input(self, faces: torch.Tensor) -> torch.Tensor:
        """The model's own padding of the faces (ONNX export pads outside the graph with it)."""
        return self.model.pad_input(faces)


def style_image_tensor(model: nn.Module, style: ImageLike, max_side: int) -> torch.Tensor:
    """The style image as the model saw styles in training: shorter side = the model file's ``size``
    (256 when unknown), longest side at most ``max_side`` (a thin strip stays thin, never huge);
    a float (1, 3, H, W) tensor in [0, 1] on the CPU."""
    size = getattr(model, "metadata", {}).get("size", 256)
    if not isinstance(size, int) or not 16 <= size <= 4096:  # a model file's metadata is data, not a promise
        warnings.warn(f"the model file's training size {size!r} is not a whole number of pixels from 16 to 4096; "
                      "using 256",
                      stacklevel=3)
        size = 256
    image = load_image(style, max_side=4 * max_side,
                       name=None if isinstance(style, (str, os.PathLike)) else "style image")
    scale = min(size / min(image.size), max_side / max(image.size))  # shorter side = size, longest <= max_side
    width, height = (max(1, round(side * scale)) for side in image.size)
    return image_to_tensor(image.resize((width, height), Image.Resampling.LANCZOS))


def blend(stylized: torch.Tensor, original: torch.Tensor, strength: float) -> torch.Tensor:
    """Mix the stylized image with the original: 0 gives the original back, 1 the full style."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    return (strength * stylized + (1.0 - strength) * original).clamp(0, 1)


@dataclass
class FolderReport:
    """What a folder run did: files written, files skipped with the reason, and notes (resized
    images, images left in subfolders) that a user should see even when nothing failed."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.written)} image(s) stylized, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path.name}: {reason}" for path, reason in self.skipped]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def image_files(folder: Path, recursive: bool = False, exclude: Path | None = None) -> list[Path]:
    """Visible files in ``folder`` (and its subfolders when ``recursive``), sorted; ``exclude`` is a
    folder left out of the walk (the output folder, when it lies inside the input folder)."""
    pattern = "**/*" if recursive else "*"
    hidden = lambda path: any(part.startswith(".") for part in path.relative_to(folder).parts)  # noqa: E731
    skip = exclude.resolve() if exclude is not None else None
    return sorted(path for path in folder.glob(pattern) if path.is_file() and not hidden(path)
                  and (skip is None or skip not in path.resolve().parents))


def size_note(path: Path, before: tuple[int, int], after: tuple[int, int]) -> str | None:
    """A line saying an output is smaller than its input (shrunk to ``max_side``), or None."""
    if before == after:
        return None
    return (f"{path.name}: stylized at {after[0]}x{after[1]}, smaller than the input's {before[0]}x{before[1]} "
            f"(longest side capped at {max(after)} px; raise the size limit to keep more)")


class Stylizer:
    """Apply a trained image-to-image network to images, batches and folders on any device.

    ``speed`` picks a speed path; ``max_side`` caps the processed size (default per device,
    see :data:`MAX_SIDE`); larger images are shrunk first. Models that take a style image as a
    second input (lesson 04's DRN) need ``style`` (a path, PIL image, array or tensor); the
    others have their style built in and refuse one. The caller's model is never changed.

    Raises ``ValueError`` for an unknown speed path or a missing / unwanted style image.
    """

    def __init__(self, model: nn.Module, device: torch.device | str | None = None, speed: str = "plain",
                 max_side: int | None = None, example: torch.Tensor | None = None,
                 style: ImageLike | None = None) -> None:
        self.device = pick_device(device)
        if max_side is not None and max_side < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
        self.max_side = max_side or MAX_SIDE.get(self.device.type, 768)
        name = type(getattr(model, "_orig_mod", model)).__name__
        if takes_style_image(model) and style is None:
            raise ValueError(f"{name} takes a style image as a second input (lesson 04's DRN): "
                             "pass style=IMAGE (--style IMAGE on the command line)")
        if style is not None and not takes_style_image(model):
            raise ValueError(f"{name} has its style built in and takes no style image; "
                             "style= (--style) is only for models like lesson 04's DRN")
        if style is not None:
            model = FixedStyle(model, style_image_tensor(model, style, self.max_side))
        self.model = model
        self.speed = speed
        self.run = make_runner(model, speed, self.device, example)

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: torch.device | str | None = None, **options) -> "Stylizer":
        """Load a model file saved by lesson 03, 04 or 05 (``checkpoints.save_model``); errors name the file."""
        from .checkpoints import load_model

        model = load_model(path, device=pick_device(device))
        try:
            return cls(model, device=device, **options)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def prepare(self, image: ImageLike) -> torch.Tensor:
        """Image -> (1, 3, H, W) tensor on the device, shrunk to ``max_side`` if needed."""
        return image_to_tensor(load_image(image, max_side=self.max_side), self.device)

    def stylize_tensor(self, batch: torch.Tensor, *, strength: float = 1.0,
                       preserve_colour: bool = False) -> torch.Tensor:
        """(N, 3, H, W) or (3, H, W) images -> stylized float (N, 3, H, W) in [0, 1], same size, on the device.

        Float inputs are in [0, 1]; integer inputs (uint8, int64, ...) hold 0-255
        (see :func:`image_io.to_float_batch`, which raises ``ValueError`` for anything else).
        """
        batch = to_float_batch(batch.to(self.device))
        out = self.run(batch).to(self.device)
        if preserve_colour:
            out = colour.preserve_colour(out, batch)
        return blend(out, batch, strength)

    def stylize(self, image: ImageLike, *, strength: float = 1.0, preserve_colour: bool = False) -> Image.Image:
        """Stylize one image (path, bytes, PIL, array or tensor) and return a PIL image.

        The result has the input's size unless the input's longest side exceeds ``max_side``.
        """
        batch = self.prepare(image)
        return tensor_to_image(self.stylize_tensor(batch, strength=strength, preserve_colour=preserve_colour))

    def stylize_batch(self, images: list[ImageLike], size: int, **options) -> list[Image.Image]:
        """Stylize several images at once; they are resized to ``size`` x ``size`` to share a batch.

        Raises ValueError for an empty list or a size below 1 pixel.
        """
        if not images:
            raise ValueError("stylize_batch needs at least one image")
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        batch = torch.cat([F.interpolate(self.prepare(img), size=(size, size), mode="bilinear",
                                         align_corners=False, antialias=True) for img in images])
        return [tensor_to_image(t) for t in self.stylize_tensor(batch.clamp(0, 1), **options)]

    def stylize_folder(self, source: str | os.PathLike, destination: str | os.PathLike, *,
                       overwrite: bool = False, progress: bool = True, recursive: bool = False,
                       exclude: str | os.PathLike | None = None, **options) -> FolderReport:
        """Stylize every image in ``source`` into ``destination`` as ``<name>_stylized.png``.

        With ``recursive`` the subfolders are walked too and mirrored under ``destination``;
        ``destination`` and ``exclude`` (e.g. the run's whole output folder) are left out of the walk.
        Bad files are skipped and reported, never fatal; inputs are never written to; two inputs
        never share an output (``x.png`` and ``x.jpg`` give ``x_stylized.png`` and
        ``x_stylized-2.png``); ``overwrite`` only replaces results of earlier runs.
        """
        source, destination = Path(source), Path(destination)
        if not source.is_dir():
            raise NotADirectoryError(f"{source}: not a folder of images")
        if destination.resolve() == source.resolve():
            raise ValueError(f"{destination}: choose an output folder different from the input folder")
        files = [p for p in image_files(source, recursive, exclude=destination)
                 if exclude is None or Path(exclude).resolve() not in p.resolve().parents]
        names = OutputNames(reserved=files)
        report = FolderReport()
        for path in progress_bar(files, desc="stylizing folder", disable=not progress):
            if reason := _not_an_image(path):
                report.skipped.append((path, reason))
                continue
            target = names.claim(destination / path.parent.relative_to(source) / f"{path.stem}_stylized.png")
            try:
                before = load_image(path)
                result = self.stylize(before, **options)
                report.written.append(save_image(result, target, overwrite=overwrite))
            except (ImageLoadError, FileExistsError) as err:
                report.skipped.append((path, str(err).removeprefix(f"{path}: ")))
                continue
            if note := size_note(path, before.size, result.size):
                report.notes.append(note)
        if not report.written and not report.skipped and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
            report.notes += _nested_images_note(source, destination)
        return report


def _not_an_image(path: Path) -> str | None:
    """Why a file in a folder is not stylized, or None for an image (files without an extension are tried)."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES or not suffix:
        return None
    if suffix in VIDEO_SUFFIXES:
        return "a video: give videos directly as inputs, not inside a folder"
    return f"not an image file extension ({suffix})"


def _nested_images_note(source: Path, destination: Path) -> list[str]:
    """Say so when the images of a folder all sit in its subfolders or are hidden (a run that would do nothing)."""
    nested = [p for p in image_files(source, recursive=True, exclude=destination) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not nested:
        hidden = [p for p in source.rglob(".*") if p.suffix.lower() in IMAGE_SUFFIXES or p.is_dir()]
        extra = (f"; hidden files and folders (names starting with '.') are left out: {len(hidden)} here"
                 if hidden else "")
        return [f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}{extra}"]
    folders = {p.parent for p in nested}
    return [f"no image files directly in {source}, but {len(nested)} in {len(folders)} subfolder(s); "
            "pass --recursive (recursive=True) to stylize them"]

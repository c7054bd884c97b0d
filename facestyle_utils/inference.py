"""Inference: a device-agnostic :class:`Stylizer` for images, batches and folders, with speed paths.

A speed path is a way of running the *same* trained network faster; each one is checked
against the plain float32 path (:data:`TOLERANCE` says how close it must stay):

- ``plain``: float32 under ``torch.no_grad`` (the reference);
- ``inference_mode``: like ``no_grad`` but also skips autograd's version counters;
- ``channels_last``: NHWC memory layout, which oneDNN and cuDNN convolutions prefer;
- ``autocast``: bfloat16 on CPU, float16 on CUDA, for the convolutions;
- ``compile``: ``torch.compile`` fuses operations into generated kernels (falls back to
  ``channels_last`` with a warning where compilation is unavailable);
- ``onnx``: the network exported to ONNX and run by ONNX Runtime (optional extra, see export.py).
"""
from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from .colour import preserve_colour
from .gatys import autocast_context
from .image_io import ImageLike, ImageLoadError, image_to_tensor, load_image, save_image, tensor_to_image
from .runtime import pick_device

SPEED_PATHS = ("plain", "inference_mode", "channels_last", "autocast", "compile", "onnx")
#: How far each speed path may stray from the plain path, as (largest, mean) absolute pixel
#: difference for images in [0, 1]. float32 paths differ only by summation order; 16-bit
#: autocast keeps 8 mantissa bits, so single pixels can move visibly while the mean stays tiny.
TOLERANCE = {"plain": (0.0, 0.0), "inference_mode": (1e-6, 1e-6), "channels_last": (1e-4, 1e-5),
             "autocast": (0.2, 0.01), "compile": (1e-3, 1e-4), "onnx": (1e-3, 1e-4)}


def difference(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(largest, mean) absolute difference between two image batches."""
    gap = (output.float() - reference.float()).abs()
    return gap.max().item(), gap.mean().item()


def agrees(output: torch.Tensor, reference: torch.Tensor, speed: str) -> bool:
    """True when ``output`` of a speed path is within :data:`TOLERANCE` of the plain path's."""
    largest, mean = difference(output, reference)
    return largest <= TOLERANCE[speed][0] and mean <= TOLERANCE[speed][1]
#: Longest image side processed per device type, so large photos do not run out of memory.
MAX_SIDE = {"cuda": 1024, "mps": 768, "cpu": 768}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def make_runner(model: nn.Module, speed: str, device: torch.device,
                example: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``run(batch) -> images`` that applies ``model`` on ``device`` using one speed path."""
    if speed not in SPEED_PATHS:
        raise ValueError(f"unknown speed path {speed!r}; choose from {', '.join(SPEED_PATHS)}")
    model = model.to(device).eval()
    if speed == "onnx":
        from .export import OnnxRunner

        return OnnxRunner(model, example if example is not None else torch.rand(1, 3, 64, 64))
    if speed in ("channels_last", "compile"):
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # leave the caller's model as it was
    if speed == "compile":
        model = _compile_or_fallback(model, device, example)
    grad_off = torch.inference_mode if speed in ("inference_mode", "channels_last", "compile") else torch.no_grad

    def run(batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(device)
        if speed in ("channels_last", "compile"):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with grad_off(), autocast_context(device, enabled=speed == "autocast"):
            return model(batch).float().contiguous()

    return run


def _compile_or_fallback(model: nn.Module, device: torch.device, example: torch.Tensor | None) -> nn.Module:
    """``torch.compile`` the model and try it once; on any failure warn and keep it uncompiled."""
    try:
        compiled = torch.compile(model)
        probe = example if example is not None else torch.rand(1, 3, 64, 64)
        with torch.inference_mode():
            compiled(probe.to(device).contiguous(memory_format=torch.channels_last))
        return compiled
    except Exception as err:  # no compiler, unsupported platform, ...
        warnings.warn(f"torch.compile is unavailable here ({type(err).__name__}: {err}); "
                      "using channels_last without compilation", stacklevel=3)
        return model


def blend(stylized: torch.Tensor, original: torch.Tensor, strength: float) -> torch.Tensor:
    """Mix the stylized image with the original: 0 gives the original back, 1 the full style."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    return (strength * stylized + (1.0 - strength) * original).clamp(0, 1)


@dataclass
class FolderReport:
    """What a folder run did: files written, and files skipped with the reason."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.written)} image(s) stylized, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path.name}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


class Stylizer:
    """Apply a trained image-to-image network to images, batches and folders on any device.

    ``speed`` picks a speed path; ``max_side`` caps the processed size (default per device,
    see :data:`MAX_SIDE`); larger images are shrunk first.
    """

    def __init__(self, model: nn.Module, device: torch.device | str | None = None, speed: str = "plain",
                 max_side: int | None = None, example: torch.Tensor | None = None) -> None:
        self.device = pick_device(device)
        self.model = model
        self.speed = speed
        self.max_side = max_side or MAX_SIDE.get(self.device.type, 768)
        self.run = make_runner(model, speed, self.device, example)

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: torch.device | str | None = None, **options) -> "Stylizer":
        """Load a model file saved by lesson 03 or 04 (``checkpoints.save_model``)."""
        from .checkpoints import load_model

        return cls(load_model(path, device=pick_device(device)), device=device, **options)

    def prepare(self, image: ImageLike) -> torch.Tensor:
        """Image -> (1, 3, H, W) tensor on the device, shrunk to ``max_side`` if needed."""
        return image_to_tensor(load_image(image, max_side=self.max_side), self.device)

    def stylize_tensor(self, batch: torch.Tensor, *, strength: float = 1.0,
                       keep_colour: bool = False) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> stylized (N, 3, H, W) in [0, 1], same size."""
        batch = batch.to(self.device)
        out = self.run(batch).to(self.device)
        if keep_colour:
            out = preserve_colour(out, batch)
        return blend(out, batch, strength)

    def stylize(self, image: ImageLike, *, strength: float = 1.0, keep_colour: bool = False) -> Image.Image:
        """Stylize one image (path, bytes, PIL, array or tensor) and return a PIL image."""
        return tensor_to_image(self.stylize_tensor(self.prepare(image), strength=strength, keep_colour=keep_colour))

    def stylize_batch(self, images: list[ImageLike], size: int, **options) -> list[Image.Image]:
        """Stylize several images at once; they are resized to ``size`` x ``size`` to share a batch."""
        batch = torch.cat([F.interpolate(self.prepare(img), size=(size, size), mode="bilinear",
                                         align_corners=False, antialias=True) for img in images])
        return [tensor_to_image(t) for t in self.stylize_tensor(batch.clamp(0, 1), **options)]

    def stylize_folder(self, source: str | os.PathLike, destination: str | os.PathLike, *,
                       overwrite: bool = False, progress: bool = True, **options) -> FolderReport:
        """Stylize every image in ``source`` into ``destination`` as ``<name>_stylized.png``.

        Bad files are skipped and reported, never fatal; inputs are never written to.
        """
        source, destination = Path(source), Path(destination)
        if not source.is_dir():
            raise NotADirectoryError(f"{source}: not a folder of images")
        if destination.resolve() == source.resolve():
            raise ValueError(f"{destination}: choose an output folder different from the input folder")
        report = FolderReport()
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        for path in tqdm(files, desc="stylizing folder", disable=not progress):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append((path, f"not an image file extension ({path.suffix or 'none'})"))
                continue
            try:
                result = self.stylize(path, **options)
                report.written.append(save_image(result, destination / f"{path.stem}_stylized.png",
                                                 overwrite=overwrite))
            except (ImageLoadError, FileExistsError) as err:
                report.skipped.append((path, str(err).removeprefix(f"{path}: ")))
        return report

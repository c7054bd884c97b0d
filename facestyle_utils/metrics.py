"""Image quality metrics: how close is a stylized face to its known target?

- PSNR (peak signal-to-noise ratio) in dB: :math:`10 \\log_{10}(1 / \\mathrm{MSE})` for images
  in [0, 1]. +3 dB means the mean squared error halved.
- SSIM (structural similarity, Wang et al. 2004): compares local means, contrasts and
  correlations, closer to what the eye notices; 1 means identical. Computed with
  ``skimage.metrics.structural_similarity``.

Both take tensors (C, H, W) / (N, C, H, W) or arrays (H, W) / (H, W, C) / (N, H, W, C) whose
values follow the package's one rule (:func:`facestyle_utils.image_io.to_unit_float`): uint8
and other integers 0-255, uint16 0-65535, floats [0, 1] (overshoot up to 0.5 clipped).
Anything else (0-255 floats, [-1, 1] data, NaN) raises ``ImageLoadError``, a ``ValueError``.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import torch
from skimage.metrics import structural_similarity

from .benchmark import timed
from .image_io import tensor_to_image, to_float_batch, to_unit_float

ArrayLike = Union[torch.Tensor, np.ndarray]


def to_batch_array(images: ArrayLike, name: str = "<images>") -> np.ndarray:
    """Images -> a new float64 array (N, H, W, C) in [0, 1]; tensors are channels-first, arrays channels-last.

    Tensors are (C, H, W) or (N, C, H, W) on any device; arrays (H, W), (H, W, C) or
    (N, H, W, C). Values follow :func:`facestyle_utils.image_io.to_unit_float`. Raises
    ValueError naming ``name`` for other shapes, and ImageLoadError (a ValueError) naming it,
    the dtype and the range found for values outside that rule.
    """
    if isinstance(images, torch.Tensor):
        batch = images.detach().cpu()
        batch = batch[None] if batch.ndim == 3 else batch
        if batch.ndim != 4:
            raise ValueError(f"{name}: expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(images.shape)}")
        return to_unit_float(batch, name, torch.float64).numpy().transpose(0, 2, 3, 1)
    array = np.asarray(images)
    array = array[..., None] if array.ndim == 2 else array
    array = array[None] if array.ndim == 3 else array
    if array.ndim != 4:
        raise ValueError(f"{name}: expected an (H, W, C) or (N, H, W, C) array, got shape {np.shape(images)}")
    return to_unit_float(array, name, torch.float64).numpy()


def _pair(output: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_batch_array(output, "output"), to_batch_array(target, "target")
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr_per_image(output: ArrayLike, target: ArrayLike) -> np.ndarray:
    """PSNR in dB of each image of a batch (infinite for identical images)."""
    a, b = _pair(output, target)
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


def psnr(output: ArrayLike, target: ArrayLike) -> float:
    """Mean PSNR in dB over a batch (of the per-image values, as papers report it)."""
    return float(np.mean(psnr_per_image(output, target)))


def ssim_per_image(output: ArrayLike, target: ArrayLike) -> np.ndarray:
    """SSIM of each image of a batch (7x7 windows, colour channels averaged)."""
    a, b = _pair(output, target)
    if min(a.shape[1:3]) < 7:
        raise ValueError(f"SSIM needs images of at least 7x7 pixels, got {a.shape[2]}x{a.shape[1]}")
    return np.array([structural_similarity(x, y, data_range=1.0, channel_axis=-1) for x, y in zip(a, b)])


def ssim(output: ArrayLike, target: ArrayLike) -> float:
    """Mean SSIM over a batch."""
    return float(np.mean(ssim_per_image(output, target)))


Method = Callable[[torch.Tensor], torch.Tensor]


def evaluate_methods(methods: Mapping[str, Method], sources: torch.Tensor, targets: torch.Tensor,
                     batch_size: int = 8) -> list[dict[str, Union[str, float]]]:
    """Score each method (source batch -> output batch in [0, 1]) against the targets.

    Returns one row per method: mean PSNR, mean SSIM and milliseconds per image (wall clock,
    batches of ``batch_size``, no gradients). Put ``"identity": lambda x: x`` among the
    methods for the do-nothing baseline every model must beat.
    """
    if sources.shape != targets.shape:
        raise ValueError(f"sources {tuple(sources.shape)} and targets {tuple(targets.shape)} differ in shape")
    rows = []
    for name, method in methods.items():
        outputs, seconds = [], 0.0
        with torch.inference_mode():
            for start in range(0, len(sources), batch_size):
                out, took = timed(method, sources[start: start + batch_size], device=sources.device)
                seconds += took
                outputs.append(out.detach().cpu())  # values are read by psnr/ssim's rule, any dtype
        output = torch.cat(outputs)
        rows.append({"method": name, "PSNR (dB)": psnr(output, targets.cpu()), "SSIM": ssim(output, targets.cpu()),
                     "ms/image": 1000.0 * seconds / len(sources)})
    return rows


def image_filter_method(image_filter: Callable[[np.ndarray], np.ndarray]) -> Method:
    """Wrap an image filter (RGB uint8 array -> RGB uint8 array, e.g. an OpenCV style) as a batch method.

    The method takes (N, 3, H, W) images of any dtype (values as :func:`to_batch_array` reads
    them) and returns a float32 (N, 3, H, W) CPU tensor in [0, 1]; each image reaches the
    filter as a writable (H, W, 3) uint8 copy.
    """
    def method(batch: torch.Tensor) -> torch.Tensor:
        outputs = np.stack([image_filter(np.array(tensor_to_image(image, "batch"))) for image in batch])
        return to_float_batch(torch.from_numpy(outputs).permute(0, 3, 1, 2), "filter output")

    return method


def psnr_validator(sources: torch.Tensor, targets: torch.Tensor,
                   name: str = "val_psnr") -> Callable[[torch.nn.Module], dict[str, float]]:
    """A ``validate`` function for :func:`facestyle_utils.training.train`: mean PSNR of model(sources) vs targets."""
    def validate(model: torch.nn.Module) -> dict[str, float]:
        return {name: psnr(model(sources), targets)}

    return validate


def format_table(rows: Sequence[Mapping[str, Union[str, float]]], digits: int = 3) -> str:
    """Rows of dicts -> a fixed-width text table (floats rounded, infinity as 'inf', missing as '-')."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])

    def cell(value: Union[str, float]) -> str:
        if isinstance(value, float):
            return "inf" if math.isinf(value) else f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.2f}"
        return str(value)

    cells = [[cell(row.get(c, "-")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines += ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in cells]
    return "\n".join(lines)

"""Looking inside VGG19: filters, feature maps, and images rebuilt from features.

Lesson 02 uses these to show what a convolutional network keeps at each depth:
first-layer filters as little colour patches, feature maps as gray tiles, and
*feature inversion* (Mahendran and Vedaldi, 2015; Gatys et al., 2015): start from noise
and optimise the pixels until their features match a target's, either the feature maps
themselves (content) or only their Gram matrices (style, i.e. texture).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .gatys import GatysResult, GatysSettings, stylize_by_optimisation
from .image_io import to_float_batch, to_unit_float
from .vgg import VGG19Features, check_side


def sobel_kernels() -> torch.Tensor:
    """Two hand-made 3x3 edge detectors (horizontal and vertical gradients), shape (2, 1, 3, 3)."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    return torch.stack([gx, gx.T]).unsqueeze(1)


def to_gray(image: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, H, W) or (3, H, W) of any dtype -> float32 (N, 1, H, W) luminance in [0, 1] (ITU-R BT.601 weights).

    Values follow :func:`facestyle_utils.image_io.to_float_batch` (uint8 0-255, floats [0, 1], ...),
    which raises ImageLoadError (a ValueError) for another shape or range.
    """
    unit = to_float_batch(image, "image")
    weights = torch.tensor([0.299, 0.587, 0.114], device=unit.device).view(1, 3, 1, 1)
    return (unit * weights).sum(dim=1, keepdim=True)


def filter_grid(weight: torch.Tensor, ncols: int = 8, upscale: int = 8, pad: int = 1) -> np.ndarray:
    """Tile conv filters (C_out, 3, k, k) as an RGB image array, each filter stretched to [0, 1].

    ``weight`` must have 3 input channels (the first layer); each filter is scaled on its own
    so that weak and strong filters are equally visible, then enlarged ``upscale`` times.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected first-layer filters of shape (C_out, 3, k, k), got {tuple(weight.shape)}")
    w = weight.detach().float().cpu()
    low = w.amin(dim=(1, 2, 3), keepdim=True)
    high = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - low) / (high - low).clamp_min(1e-8)
    w = w.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)
    return _tile(w, ncols, pad)


def feature_grid(features: torch.Tensor, count: int = 16, ncols: int = 8, pad: int = 2,
                 order: str = "energy") -> np.ndarray:
    """Tile ``count`` channels of one feature map (1, C, H, W) as a gray image array in [0, 1].

    ``order="energy"`` shows the most active channels first (an all-black tile teaches
    little); ``"index"`` shows channels 0, 1, 2, ... Each tile is scaled on its own.
    """
    if features.ndim != 4 or features.shape[0] != 1:
        raise ValueError(f"expected one feature map of shape (1, C, H, W), got {tuple(features.shape)}")
    maps = features[0].detach().float().cpu()
    if order == "energy":
        picked = maps.flatten(1).pow(2).mean(dim=1).argsort(descending=True)[:count]
    elif order == "index":
        picked = torch.arange(min(count, maps.shape[0]))
    else:
        raise ValueError(f"order must be 'energy' or 'index', not {order!r}")
    maps = maps[picked]
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    maps = ((maps - low) / (high - low).clamp_min(1e-8)).unsqueeze(1)
    return _tile(maps, ncols, pad, fill=float("nan"))[..., 0]  # NaN gaps are drawn blank by imshow


def _tile(tiles: torch.Tensor, ncols: int, pad: int, fill: float = 1.0) -> np.ndarray:
    """(N, C, h, w) in [0, 1] -> one (rows*h, cols*w, C) array with ``fill`` (white) gaps."""
    n, c, h, w = tiles.shape
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    grid = torch.full((c, nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill)
    for index in range(n):
        row, col = divmod(index, ncols)
        grid[:, row * (h + pad):row * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = tiles[index]
    return grid.permute(1, 2, 0).numpy()


def reconstruct_content(vgg: VGG19Features, image: torch.Tensor, layer: str, steps: int = 100,
                        progress: bool = True) -> GatysResult:
    """Rebuild ``image`` from white noise using only its feature map at ``layer``.

    Shallow layers give the photo back almost exactly; deep layers keep the arrangement
    of objects but lose exact colours and fine detail. ``image`` is (1, 3, H, W) in [0, 1];
    ``result.image`` has its shape. Raises ValueError when a side is below what VGG19 needs to
    reach ``layer`` (:func:`facestyle_utils.vgg.min_side`, e.g. 8 px for relu4_1).
    """
    settings = GatysSettings(steps=steps, content_layers=(layer,), style_weight=0.0, tv_weight=0.0,
                             init="noise")
    return stylize_by_optimisation(image, None, vgg, settings, progress=progress)


def synthesise_texture(vgg: VGG19Features, style: torch.Tensor, layers: Sequence[str], size: tuple[int, int],
                       steps: int = 100, progress: bool = True) -> GatysResult:
    """Make a new ``size`` (H, W) image from noise whose Gram matrices at ``layers`` match ``style``.

    The Gram matrix forgets *where* things are, so the result is a texture: the style's
    colours and patterns, rearranged. More (and deeper) layers give larger structures.
    ``style`` is (1, 3, H', W') in [0, 1]; ``result.image`` is (1, 3, *size) in [0, 1]. Raises
    ValueError when ``size`` or the style has a side below what VGG19 needs to reach the deepest
    of ``layers`` (:func:`facestyle_utils.vgg.min_side`, e.g. 16 px for relu5_1).
    """
    blank = torch.zeros(1, 3, *size, device=style.device)
    check_side(blank, layers, "texture size")
    settings = GatysSettings(steps=steps, content_weight=0.0, style_layers=tuple(layers), style_weight=1.0,
                             tv_weight=0.0, init="noise", balance_style_layers=True)
    return stylize_by_optimisation(blank, style, vgg, settings, progress=progress)


def stretch_to_rgb(feature_map: torch.Tensor) -> torch.Tensor:
    """Stretch one-channel maps (N, 1, H, W) to [0, 1] and repeat them as RGB, ready for show_images."""
    low, high = feature_map.amin(), feature_map.amax()
    return ((feature_map - low) / (high - low).clamp_min(1e-8)).expand(-1, 3, -1, -1)


def apply_kernels(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve a gray (N, 1, H, W) image with (K, 1, k, k) kernels -> float32 (N, K, H, W) ('same' padding).

    Image values follow :func:`facestyle_utils.image_io.to_unit_float` (uint8 0-255, floats
    [0, 1], ...), which raises ImageLoadError (a ValueError) outside that rule.
    """
    if image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(f"image: expected a gray (N, 1, H, W) image, got shape {tuple(image.shape)}")
    unit = to_unit_float(image, "gray image")
    return F.conv2d(unit, kernels.to(unit), padding=kernels.shape[-1] // 2)

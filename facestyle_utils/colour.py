"""Colour handling: keep a face's own colours while taking another image's style."""
from __future__ import annotations

import torch

from .image_io import to_float_batch

# ITU-R BT.601 RGB <-> YCbCr (values in [0, 1], chroma centred on 0.5).
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]])
_OFFSET = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)


def _to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    matrix = _RGB_TO_YCBCR.to(image)
    return torch.einsum("ij,njhw->nihw", matrix, image) + _OFFSET.to(image)


def _to_rgb(image: torch.Tensor) -> torch.Tensor:
    matrix = torch.linalg.inv(_RGB_TO_YCBCR).to(image)
    return torch.einsum("ij,njhw->nihw", matrix, image - _OFFSET.to(image))


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB images (N, 3, H, W) or (3, H, W) of any dtype -> float32 YCbCr (N, 3, H, W), each channel in [0, 1].

    Y is brightness, Cb/Cr carry the colour (centred on 0.5). Values follow
    :func:`facestyle_utils.image_io.to_float_batch` (integers 0-255, uint16 0-65535, floats
    [0, 1]), which raises ImageLoadError (a ValueError) for another shape or range.
    """
    return _to_ycbcr(to_float_batch(image, "RGB image"))


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: YCbCr (N, 3, H, W) -> float32 RGB (N, 3, H, W), not clamped.

    Input values follow the same rule (floats [0, 1], chroma centred on 0.5; integers 0-255,
    chroma centred on 128, as in JPEG); ImageLoadError (a ValueError) otherwise.
    """
    return _to_rgb(to_float_batch(image, "YCbCr image"))


def preserve_colour(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Brightness from the stylized image, colour (chroma) from the original (Gatys et al., 2016).

    Both are RGB (N, 3, H, W) or (3, H, W) of the same size, of any dtype: values follow
    :func:`facestyle_utils.image_io.to_float_batch` (uint8 0-255, floats [0, 1], ...), so a
    float stylized image and a uint8 original of the same picture give that picture back.
    Returns a new float32 (N, 3, H, W) tensor in [0, 1]; the arguments are not modified.
    Raises ImageLoadError (a ValueError) naming the argument for a shape that is not an RGB
    image or a range outside the rule, and ValueError when the two shapes differ.
    """
    stylized, original = to_float_batch(stylized, "stylized image"), to_float_batch(original, "original image")
    if stylized.shape != original.shape:
        raise ValueError(f"preserve_colour: the stylized image {tuple(stylized.shape)} and the original "
                         f"{tuple(original.shape)} must have the same shape")
    luma, chroma = _to_ycbcr(stylized)[:, :1], _to_ycbcr(original)[:, 1:]
    return _to_rgb(torch.cat([luma, chroma], dim=1)).clamp(0, 1)

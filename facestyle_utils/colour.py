"""Colour handling: keep a face's own colours while taking another image's style."""
from __future__ import annotations

import torch

# ITU-R BT.601 RGB <-> YCbCr (values in [0, 1], chroma centred on 0.5).
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]])
_OFFSET = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YCbCr; Y is brightness, Cb/Cr carry the colour."""
    matrix = _RGB_TO_YCBCR.to(image)
    return torch.einsum("ij,njhw->nihw", matrix, image) + _OFFSET.to(image)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    matrix = torch.linalg.inv(_RGB_TO_YCBCR).to(image)
    return torch.einsum("ij,njhw->nihw", matrix, image - _OFFSET.to(image))


def preserve_colour(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Brightness from the stylized image, colour (chroma) from the original (Gatys et al., 2016)."""
    luma = rgb_to_ycbcr(stylized)[:, :1]
    chroma = rgb_to_ycbcr(original)[:, 1:]
    return ycbcr_to_rgb(torch.cat([luma, chroma], dim=1)).clamp(0, 1)

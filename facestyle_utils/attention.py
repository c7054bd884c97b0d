"""Attention blocks for the DRN of lesson 04.

- :class:`SelfAttention` (SAGAN, Zhang et al. 2019): every position looks at every other
  position of the same feature map; a learned ``gamma`` starts at 0 so the block begins as
  the identity and the network decides how much long-range context to mix in.
- :class:`CrossAttention` (in the manner of SANet, Park and Lee 2019): every position of the
  face looks at every position of the style image, weighted by cosine similarity of their
  normalised features, and gathers the style features it finds most alike.

Memory: an attention matrix has (H*W)^2 entries for self-attention; a 128x128 map would
need 1 GiB in float32. Both blocks therefore process queries in chunks so that no matrix
formed holds more than ``max_elements`` entries, and, if even one row of keys is too long,
average-pool the keys and values first. ``largest_matrix`` records the biggest one formed.

For figures: :meth:`CrossAttention.attention_map` gives the full matrix of a small image (with the
learned projections, or ``projected=False`` for the raw normalised features), and
:func:`attention_at_points` picks out the rows of chosen face points as style-sized heat maps.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .losses import mean_std

#: Default cap on the entries of one attention matrix: 2**24 floats = 64 MiB in float32.
DEFAULT_MAX_ELEMENTS = 2**24


def mean_variance_norm(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Features (N, C, H, W) with each channel at zero mean and unit variance over positions (same shape, dtype).

    Instance normalisation without affine, with the AdaIN statistics :func:`~facestyle_utils.losses.mean_std`
    (SANet's ``mean_variance_norm``): what is left is the *pattern* of a position's features, not their level.
    Computed in float32 and handed back in the features' dtype: the normalised values are small enough for
    float16, while the variance of raw VGG19 features, which the DRN's content loss passes here, is not
    (:func:`~facestyle_utils.losses.mean_std`). The attention blocks' own inputs are scaled down first.
    """
    mean, std = mean_std(features, eps)
    return ((features.to(mean.dtype) - mean) / std).to(features.dtype)


def attention_weights(queries: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """softmax(scale * Q^T K) for queries (N, C, Lq) and keys (N, C, Lk): (N, Lq, Lk), rows sum to one.

    Row i says how much query position i takes from each key position (Vaswani et al. 2017, without
    the 1/sqrt(C) scale: the blocks pass their own ``scale``).
    """
    return torch.softmax(scale * torch.bmm(queries.transpose(1, 2), keys), dim=-1)


def _pool_keys(keys: torch.Tensor, values: torch.Tensor, max_keys: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool (N, C, H, W) keys and values until H*W <= max_keys."""
    factor = 1
    height, width = keys.shape[2:]
    while math.ceil(height / factor) * math.ceil(width / factor) > max_keys:
        factor *= 2
    if factor == 1:
        return keys, values
    pool = lambda x: F.avg_pool2d(x, factor, ceil_mode=True)  # noqa: E731
    return pool(keys), pool(values)


def chunked_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: torch.Tensor | float,
                      max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[torch.Tensor, int]:
    """softmax(scale * Q K^T) V for queries (N, Cq, Lq), keys (N, Cq, Lk), values (N, Cv, Lk).

    Queries are processed in chunks so no (chunk x Lk) matrix exceeds ``max_elements`` per
    image. Returns the (N, Cv, Lq) result and the largest number of entries formed.
    """
    batch, _, length_q = queries.shape
    length_k = keys.shape[2]
    chunk = max(1, min(length_q, max_elements // max(1, length_k)))
    outputs, largest = [], 0
    for start in range(0, length_q, chunk):
        q = queries[:, :, start:start + chunk]
        weights = attention_weights(q, keys, scale)  # (N, chunk, Lk)
        largest = max(largest, weights.shape[1] * weights.shape[2])
        outputs.append(torch.bmm(values, weights.transpose(1, 2)))  # (N, Cv, chunk)
    return torch.cat(outputs, dim=2), largest


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attend(x)``, with ``gamma`` initialised to 0."""

    def __init__(self, channels: int, reduction: int = 8, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.max_elements = max_elements
        self.largest_matrix = 0

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The full (N, HW, HW) attention matrix, for looking at small maps only."""
        return attention_weights(self.query(x).flatten(2), self.key(x).flatten(2), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys, values = _pool_keys(self.key(x), self.value(x), self.max_elements)
        attended, self.largest_matrix = chunked_attention(
            self.query(x).flatten(2), keys.flatten(2), values.flatten(2), 1.0, self.max_elements)
        return x + self.gamma * attended.view_as(x)


class CrossAttention(nn.Module):
    """Face positions gather style features by cosine similarity, merged back residually.

    ``temperature`` sharpens the softmax: cosine similarities lie in [-1, 1], so without it
    every style position would get almost the same weight. It is learned, starting at 0.05.
    """

    def __init__(self, channels: int, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.log_inverse_temperature = nn.Parameter(torch.tensor(math.log(1 / 0.05)))
        self.max_elements = max_elements
        self.largest_matrix = 0

    def _project(self, content: torch.Tensor, style: torch.Tensor,
                 projected: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length query and key vectors, so their dot product is the cosine similarity.

        ``projected=False`` skips the learned 1x1 projections: the normalised VGG19 features themselves.
        """
        content, style = mean_variance_norm(content), mean_variance_norm(style)
        if projected:
            content, style = self.query(content), self.key(style)
        return F.normalize(content, dim=1), F.normalize(style, dim=1)

    def similarity(self, content: torch.Tensor, style: torch.Tensor, projected: bool = True) -> torch.Tensor:
        """Cosine similarities (N, Hc*Wc, Hs*Ws) in [-1, 1] between every face and every style position.

        ``content`` (N, C, Hc, Wc) and ``style`` (N, C, Hs, Ws) features; ``projected=False``: of the raw
        normalised features (what the block sees before training has shaped its projections).
        """
        q, k = self._project(content, style, projected)
        return torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2))

    def attention_map(self, content: torch.Tensor, style: torch.Tensor, projected: bool = True) -> torch.Tensor:
        """Rows: face positions; columns: where in the style image each one looks (N, Hc*Wc, Hs*Ws), rows sum to 1.

        The block's learned temperature in both cases; ``projected`` as in :meth:`similarity`. Forms the
        full matrix (no memory cap): for figures of small images.
        """
        q, k = self._project(content, style, projected)
        return attention_weights(q.flatten(2), k.flatten(2), self.log_inverse_temperature.exp())

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        q, k = self._project(content, style)
        k, v = _pool_keys(k, self.value(style), self.max_elements)
        k = F.normalize(k, dim=1)  # pooling shortens vectors; keep cosine similarities
        attended, self.largest_matrix = chunked_attention(
            q.flatten(2), k.flatten(2), v.flatten(2), self.log_inverse_temperature.exp(), self.max_elements)
        return content + self.out(attended.view_as(content))


def attention_at_points(attention: torch.Tensor, points: Mapping[str, tuple[float, float]],
                        face_shape: tuple[int, int], style_shape: tuple[int, int],
                        stride: int) -> dict[str, torch.Tensor]:
    """The attention rows of chosen face points, each as a heat map over the style image's feature map.

    ``attention`` (Hf*Wf, Hs*Ws): rows are face positions in raster order (one image of
    :meth:`CrossAttention.attention_map`, or ``DRNStylizer.attention_maps(...)["attention"]``);
    ``points`` maps a name to its (x, y) in face-image pixels (x to the right, y down; a point
    beyond the last feature position counts as the last one); ``face_shape`` (Hf, Wf) and
    ``style_shape`` (Hs, Ws) are the feature-map sizes and ``stride`` the pixels per feature position.
    Returns name -> (Hs, Ws) tensor of weights that sum to one. ValueError when the matrix does not
    match the shapes or a point lies left of or above the image.
    """
    (face_h, face_w), (style_h, style_w) = face_shape, style_shape
    if tuple(attention.shape) != (face_h * face_w, style_h * style_w):
        raise ValueError(f"attention of shape {tuple(attention.shape)} does not match face positions {face_shape} "
                         f"x style positions {style_shape}")
    rows = {}
    for name, (x, y) in points.items():
        if x < 0 or y < 0:
            raise ValueError(f"point {name!r} at ({x}, {y}) lies outside the face image")
        row, column = min(int(y) // stride, face_h - 1), min(int(x) // stride, face_w - 1)
        rows[name] = attention[row * face_w + column].reshape(style_h, style_w)
    return rows

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
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Default cap on the entries of one attention matrix: 2**24 floats = 64 MiB in float32.
DEFAULT_MAX_ELEMENTS = 2**24


def mean_variance_norm(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each channel to zero mean and unit variance over positions (instance norm without affine)."""
    mean = features.mean(dim=(2, 3), keepdim=True)
    std = (features.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return (features - mean) / std


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
        weights = torch.softmax(scale * torch.bmm(q.transpose(1, 2), keys), dim=-1)  # (N, chunk, Lk)
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
        q, k = self.query(x).flatten(2), self.key(x).flatten(2)
        return torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)

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

    def _project(self, content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length query and key vectors, so their dot product is the cosine similarity."""
        q = F.normalize(self.query(mean_variance_norm(content)), dim=1)
        k = F.normalize(self.key(mean_variance_norm(style)), dim=1)
        return q, k

    def similarity(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Cosine similarities (N, Hc*Wc, Hs*Ws) between every face and every style position."""
        q, k = self._project(content, style)
        return torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2))

    def attention_map(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Rows: face positions; columns: where in the style image each one looks (rows sum to 1)."""
        return torch.softmax(self.log_inverse_temperature.exp() * self.similarity(content, style), dim=-1)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        q, k = self._project(content, style)
        k, v = _pool_keys(k, self.value(style), self.max_elements)
        k = F.normalize(k, dim=1)  # pooling shortens vectors; keep cosine similarities
        attended, self.largest_matrix = chunked_attention(
            q.flatten(2), k.flatten(2), v.flatten(2), self.log_inverse_temperature.exp(), self.max_elements)
        return content + self.out(attended.view_as(content))

"""Lesson 04 exercises: attention rows from cosine similarities, the SAGAN block by hand, attention memory.

1. ``attention_rows(similarity, temperature)``: a softmax of ``similarity / temperature`` over the
   style positions; checked against the trained model's own attention rows.
2. ``sagan(x, block)``: a :class:`~facestyle_utils.attention.SelfAttention` block's output from its
   ``query``, ``key``, ``value`` convolutions and ``gamma``, written out. Checked on a block whose
   memory cap is so small that the library pools its keys: the exact formula differs from
   ``block(x)`` there, so calling the block itself does not pass.
3. ``attention_mib(side, stride)``: MiB of one full float32 self-attention matrix.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..attention import SelfAttention
from . import PASS, not_done


def solution_attention_rows(similarity: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine similarities (face positions, style positions) -> attention rows: softmax over style positions."""
    return torch.softmax(similarity / temperature, dim=-1)


def solution_sagan(x: torch.Tensor, block: SelfAttention) -> torch.Tensor:
    """SAGAN self-attention of ``x`` (N, C, H, W) by hand: ``x + gamma * (values weighted by softmax(q . k))``."""
    q, k, v = block.query(x).flatten(2), block.key(x).flatten(2), block.value(x).flatten(2)
    weights = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, positions, positions), rows sum to one
    return x + block.gamma * (v @ weights.transpose(1, 2)).view_as(x)


def solution_attention_mib(side: int, stride: int) -> float:
    """MiB (2**20 bytes) of one float32 self-attention matrix of a side x side image at a layer of ``stride``."""
    positions = (side // stride) ** 2
    return positions**2 * 4 / 2**20


def check_attention_rows(fn: Callable | None, similarity: torch.Tensor, temperature: float,
                         attention: torch.Tensor) -> str:
    """Exercise 1: ``fn(similarity, temperature)`` gives the model's ``attention`` rows (both (Lf, Ls))."""
    if (problem := not_done(fn, "define my_attention_rows(similarity, temperature)")) is not None:
        return problem
    rows = fn(similarity, temperature)
    if not isinstance(rows, torch.Tensor) or rows.shape != similarity.shape:
        got = tuple(rows.shape) if isinstance(rows, torch.Tensor) else type(rows).__name__
        return f"expected a tensor of shape {tuple(similarity.shape)}, got {got}"
    ones = torch.ones(rows.shape[0], device=rows.device)
    if (rows < 0).any() or not torch.allclose(rows.sum(-1), ones, atol=1e-4):
        return "each row must be non-negative and sum to one (a softmax over the style positions, dim=-1)"
    if not torch.allclose(rows, attention.to(rows.device), atol=1e-5):
        return "rows sum to one but differ from the model's: divide the similarities by the temperature"
    return PASS


def check_sagan(fn: Callable | None) -> str:
    """Exercise 2: ``fn(x, block)`` is x exactly when gamma = 0 and the written-out SAGAN formula when gamma = 0.5."""
    if (problem := not_done(fn, "define my_sagan(x, block)")) is not None:
        return problem
    with torch.random.fork_rng(devices=[]):  # the notebook's random stream stays as it was
        torch.manual_seed(0)
        block, x = SelfAttention(16, max_elements=16), torch.randn(2, 16, 5, 7)  # 35 positions: keys pooled
    with torch.no_grad():
        out = fn(x, block)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            return f"expected a tensor of the shape of x, {tuple(x.shape)}"
        if not torch.equal(out, x):
            return "with gamma = 0 the output must be exactly x"
        block.gamma.fill_(0.5)
        out, expected = fn(x, block), solution_sagan(x, block)
        if torch.allclose(out, expected, atol=1e-5):
            return PASS
        if torch.allclose(out, block(x), atol=1e-5):
            return "this is block(x), which pools its keys under its memory cap: write the formula out"
    return "with gamma = 0.5 the output differs from x + gamma * softmax(q^T k)-weighted values"


def check_attention_mib(fn: Callable | None) -> str:
    """Exercise 3: ``fn(side, stride)`` is the MiB of one full float32 self-attention matrix."""
    if (problem := not_done(fn, "define my_attention_mib(side, stride)")) is not None:
        return problem
    for side, stride in ((128, 4), (512, 4), (512, 8), (130, 4)):
        expected, got = solution_attention_mib(side, stride), fn(side, stride)
        if not isinstance(got, (int, float, torch.Tensor)) or abs(float(got) - expected) > 1e-6 * expected:
            return f"my_attention_mib({side}, {stride}) = {got}, expected about {expected:.4g} (MiB, float32)"
    return PASS


__all__ = ["check_attention_mib", "check_attention_rows", "check_sagan", "solution_attention_mib",
           "solution_attention_rows", "solution_sagan"]

"""Lesson 07 exercises: each process's share of the batch, the linear scaling rule, and averaged gradients."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from . import PASS, not_done


def solution_share() -> int:
    """``--batch 64`` on 4 GPUs: the global batch shared out, 64 / 4 images per process and step."""
    return 64 // 4


def check_share(value: int | None) -> str:
    """Exercise 1: each of the 4 processes loads a quarter of the global batch of 64: exactly 16."""
    waiting = not_done(value, "set my_share")
    if waiting:
        return waiting
    if value == 64:
        return "the --batch setting is the global batch: divide it by the processes"
    if value != solution_share():
        return f"{value!r} images per process does not add up to a global batch of 64"
    return PASS


def solution_learning_rate() -> float:
    """Global batch 8 -> 8 GPUs x 8 images = 64, 8 times larger: 8 times the learning rate 2e-3."""
    return 8 * 2e-3


def check_learning_rate(value: float | None) -> str:
    """Exercise 2: 8 GPUs x 8 images is 8 times the batch of 8, so 8 times the learning rate 2e-3 (0.016)."""
    waiting = not_done(value, "set my_learning_rate")
    if waiting:
        return waiting
    if not isinstance(value, (int, float)):
        return f"expected a number, got {type(value).__name__}"
    if abs(value - solution_learning_rate()) > 1e-9:
        return "scale the learning rate by how much the batch grew"
    return PASS


def solution_averaged(loss_fn: Callable, model: torch.nn.Module, sources: torch.Tensor, targets: torch.Tensor,
                      parameters: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients of ``loss_fn(model, (sources, targets))[0]`` with respect to ``parameters``, computed on
    four quarter-batches and averaged (what a four-process all-reduce computes). The batch size must be a
    multiple of 4."""
    quarter = len(sources) // 4
    shares = [torch.autograd.grad(loss_fn(model, (sources[s], targets[s]))[0], parameters)
              for s in (slice(i * quarter, (i + 1) * quarter) for i in range(4))]
    return [sum(grads) / 4 for grads in zip(*shares)]


def check_averaged(grads: Sequence[torch.Tensor] | None, whole: Sequence[torch.Tensor]) -> str:
    """Exercise 3: ``grads``, the average of four quarter-batch gradients, equals ``whole``, the whole-batch
    gradient, tensor by tensor within 1e-4 of the largest whole-batch gradient entry (float rounding), and is
    not ``whole``'s own tensors."""
    waiting = not_done(grads, "set my_averaged")
    if waiting:
        return waiting
    grads = list(grads)
    if len(grads) != len(whole) or any(not isinstance(g, torch.Tensor) or g.shape != w.shape
                                       for g, w in zip(grads, whole)):
        return f"expected {len(whole)} tensors shaped like the trainable parameters"
    if all(g is w for g, w in zip(grads, whole)):
        return "these are the whole-batch gradients themselves: compute four quarter-batch gradients and average them"
    gap = max((g.detach().to(w.device) - w).abs().max().item() for g, w in zip(grads, whole))
    scale = max(w.abs().max().item() for w in whole)
    if gap > 1e-4 * scale:
        return f"differs from the whole-batch gradient by {gap:.1e}: average the four gradients, do not sum them"
    return PASS


__all__ = ["check_averaged", "check_learning_rate", "check_share", "solution_averaged", "solution_learning_rate",
           "solution_share"]

"""Lesson 02 exercises: the Gram matrix, the content loss, and the L-BFGS loop written out by hand.

Each checker computes its reference here, from its own definition (not from the package function the
exercise asks the learner to rewrite), on inputs it makes itself or that the notebook already has.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from . import PASS, not_done


def solution_gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N, C, H, W) features: (N, C, C), G = F F^T / (C H W) with F of shape (N, C, H*W)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def check_gram(fn: Callable[[torch.Tensor], torch.Tensor | None]) -> str:
    """Exercise 1: ``fn(features)`` is the Gram matrix normalised by C*H*W, for any N, C and H != W."""
    torch.manual_seed(0)
    features = torch.randn(2, 4, 3, 5)
    got = fn(features)
    waiting = not_done(got, "my_gram returns None")
    if waiting:
        return waiting
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (2, 4, 4):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return f"expected shape (2, 4, 4) for features of shape (2, 4, 3, 5), got {shape}: one C x C matrix per image"
    want = solution_gram(features.double()).float()
    for factor, hint in ((4 * 3 * 5, "divide by C * H * W"), (4, "divide by C * H * W, not only by H * W"),
                         (3 * 5, "divide by C * H * W, not only by C")):
        if torch.allclose(got, want * factor, rtol=1e-4):
            return f"almost: {hint}"
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-6):
        return "values differ from G = F F^T / (C H W), with F the features reshaped to (N, C, H*W)"
    return PASS


def solution_content_loss(vgg, face: torch.Tensor, stylized: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the relu4_2 feature maps of ``stylized`` and ``face`` (a scalar)."""
    with torch.no_grad():
        return F.mse_loss(vgg(stylized, ["relu4_2"])["relu4_2"], vgg(face, ["relu4_2"])["relu4_2"])


def check_content_loss(value: float | torch.Tensor | None, vgg, face: torch.Tensor, stylized: torch.Tensor) -> str:
    """Exercise 2: ``value`` is the relu4_2 content loss (mean squared error) between ``face`` and ``stylized``,
    within 0.1 %."""
    waiting = not_done(value, "set my_content_loss")
    if waiting:
        return waiting
    try:
        value = float(value)
    except (TypeError, ValueError, RuntimeError):
        return f"my_content_loss must be one number (a float or a one-element tensor), not {type(value).__name__}"
    reference = float(solution_content_loss(vgg, face, stylized))
    with torch.no_grad():
        size = vgg(face, ["relu4_2"])["relu4_2"].numel()
    if math.isclose(value, reference * size, rel_tol=1e-3):
        return "that is the sum of the squared differences: take their mean"
    if math.isclose(value, math.sqrt(reference), rel_tol=1e-3):
        return "that is the root of the mean squared difference: leave out the square root"
    if not math.isclose(value, reference, rel_tol=1e-3):
        return "not the mean squared difference of the two relu4_2 feature maps (face and lbfgs.image)"
    return PASS


def solution_lbfgs_steps(objective, image: torch.Tensor, steps: int) -> list[float]:
    """``steps`` L-BFGS steps on ``image`` (requires grad) in place, pixels clamped to [0, 1] after each;
    returns each step's loss (measured before its update)."""
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=50)
    losses = []

    def closure():
        optimizer.zero_grad()
        loss, _ = objective(image)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(optimizer.step(closure).item())
        with torch.no_grad():
            image.clamp_(0, 1)
    return losses


def _tiny_problem(vgg):
    """A small, fast Gatys loss (24 px, shallow layers) and its starting face, on ``vgg``'s device."""
    from ..gatys import GatysLoss, GatysSettings

    device = next(vgg.parameters()).device
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    face = torch.stack([xx, yy, 1 - xx * yy]).unsqueeze(0).to(device)
    style = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)).to(device)
    settings = GatysSettings(content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))
    return GatysLoss(vgg, face, style, settings), face


def check_lbfgs_steps(fn: Callable, vgg, steps: int = 4) -> str:
    """Exercise 3: ``fn(objective, image, steps)`` runs ``steps`` L-BFGS steps (``lr=1, max_iter=1,
    history_size=50``) on ``image`` in place, clamps the pixels to [0, 1] after each step and returns the
    ``steps`` losses, each measured before its update: the same losses (within 1e-4) and image (within 1e-4)
    as the reference on a small problem this check makes."""
    objective, face = _tiny_problem(vgg)
    image = face.clone().requires_grad_(True)
    losses = fn(objective, image, steps)
    waiting = not_done(losses, "my_lbfgs_steps returns None")
    if waiting:
        return waiting
    try:
        losses = [float(loss) for loss in losses]
    except (TypeError, ValueError, RuntimeError):
        return f"return a list of {steps} losses (floats), not {type(losses).__name__}"
    reference = face.clone().requires_grad_(True)
    want = solution_lbfgs_steps(objective, reference, steps)
    if len(losses) != steps:
        return f"return one loss per step: expected {steps}, got {len(losses)}"
    if not math.isclose(losses[0], want[0], rel_tol=1e-4):
        return "the first loss must be the loss of the starting image: record what optimizer.step(closure) returns"
    if torch.equal(image.detach(), face):
        return "the pixels did not change: optimise [image] itself, in place"
    if image.min() < 0 or image.max() > 1:
        return "pixels left [0, 1]: clamp them after each step (with torch.no_grad(): image.clamp_(0, 1))"
    wrong = next((i for i, (a, b) in enumerate(zip(losses, want)) if not math.isclose(a, b, rel_tol=1e-4)), None)
    if wrong is not None or not torch.allclose(image.detach(), reference.detach(), atol=1e-4):
        where = f"from step {wrong} on" if wrong is not None else "in the final image"
        return (f"differs from the reference {where}: zero the gradients in the closure, and create "
                "LBFGS([image], lr=1, max_iter=1, history_size=50) once, before the loop")
    return PASS


__all__ = ["check_content_loss", "check_gram", "check_lbfgs_steps", "solution_content_loss", "solution_gram",
           "solution_lbfgs_steps"]

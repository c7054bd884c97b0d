"""Lesson 03 exercises: feature-map sizes, PSNR, the relative perceptual loss, one training step by hand,
and the saved model on a size that is not a multiple of 4.

None of them retrains the lesson's model: exercises 1 to 4 check against small tensors and a tiny network
built here, exercise 5 runs the model file lesson 03 saved (one forward pass).
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import PASS, not_done

#: Exercise 5: an answer passes when its mean distance from the reference output is below this fraction
#: of the reference's own mean change from the photo (another resizing method stays well within it;
#: the photo itself, at 100 %, never does).
STYLIZED_TOLERANCE = 0.25
#: Exercise 5's size: height 110, width 150 (neither is a multiple of 4).
ODD_SIZE = (110, 150)


# ----------------------------------------------------------------------------- exercise 1
def solution_vgg_side(side: int, pools: int) -> int:
    """Each 2x2 max-pool halves the side and rounds down."""
    return side // 2**pools


def check_vgg_side(fn: Callable[[int, int], int] | None, encoder: nn.Module) -> str:
    """Exercise 1: ``fn(side, pools)`` gives the side of VGG19's feature map after ``pools`` max-pools.

    Compared with the real truncated VGG19 ``encoder`` (up to relu3_1 at least) on even, odd and
    awkward sides, for 1 pool (relu2_1) and 2 pools (relu3_1).
    """
    if waiting := not_done(fn, "define vgg_side(side, pools)"):
        return waiting
    device = next(encoder.parameters()).device
    for side in (16, 33, 130, 255):
        with torch.no_grad():
            real = encoder(torch.rand(1, 3, side, side, device=device), ["relu2_1", "relu3_1"])
        for pools, layer in ((1, "relu2_1"), (2, "relu3_1")):
            if fn(side, pools) != real[layer].shape[-1]:
                return f"vgg_side({side}, {pools}) = {fn(side, pools)}, but VGG19 gives {real[layer].shape[-1]}"
    return PASS


# ----------------------------------------------------------------------------- exercise 2
def solution_psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR of each image from its own mean squared error, then the mean over the batch (as papers report it)."""
    mse = ((output.double() - target.double()) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def check_psnr(fn: Callable | None, outputs: torch.Tensor, targets: torch.Tensor) -> str:
    """Exercise 2: ``fn(output, target)`` is the mean over a batch of each image's PSNR in dB.

    ``outputs`` and ``targets``: (N, 3, H, W) in [0, 1], N >= 2 (e.g. the lesson's test outputs and
    targets). Checked on one image and on the whole batch against :func:`facestyle_utils.metrics.psnr`,
    to 1e-3 dB: the PSNR of the batch's pooled squared error is not the same number.
    """
    from ..metrics import psnr

    if waiting := not_done(fn, "define my_psnr(output, target)"):
        return waiting
    for label, output, target in (("one image", outputs[:1], targets[:1]), ("the batch", outputs, targets)):
        value, expected = float(fn(output, target)), psnr(output, target)
        if not math.isclose(value, expected, abs_tol=1e-3):
            hint = " (average the images' PSNRs, not their squared errors)" if label == "the batch" else ""
            return f"on {label} got {value:.4f} dB, expected {expected:.4f} dB{hint}"
    return PASS


# ----------------------------------------------------------------------------- exercise 3
def solution_perceptual(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: mean squared feature difference over the target's mean square; then the batch mean."""
    error = ((features - target) ** 2).mean(dim=(1, 2, 3))
    energy = (target ** 2).mean(dim=(1, 2, 3))
    return (error / energy).mean()


def check_perceptual(fn: Callable | None) -> str:
    """Exercise 3: ``fn(features, target)`` is the relative perceptual loss of
    :func:`facestyle_utils.losses.perceptual_loss` for (N, C, H, W) feature maps.

    Checked on a batch whose images have very different feature energies (so dividing the whole
    batch's error by the whole batch's energy gives another number), to a relative 1e-4.
    """
    from ..losses import perceptual_loss

    if waiting := not_done(fn, "define my_perceptual(features, target)"):
        return waiting
    generator = torch.Generator().manual_seed(3)
    scale = torch.tensor([0.1, 1.0, 10.0]).view(3, 1, 1, 1)
    target = torch.rand(3, 4, 5, 5, generator=generator) * scale
    features = torch.rand(3, 4, 5, 5, generator=generator) * scale
    checks = (("a feature map equal to its target", target.clone(), target),
              ("an all-zero output", torch.zeros_like(target), target), ("random features", features, target))
    for label, mine, goal in checks:
        value, expected = float(fn(mine, goal)), float(perceptual_loss(mine, goal))
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-7):
            return (f"for {label} got {value:.5f}, expected {expected:.5f}: divide each image's error by its own "
                    "target's mean square, then average over the images")
    return PASS


# ----------------------------------------------------------------------------- exercise 4
def solution_training_step(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                           batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The textbook step: forward and loss, clear old gradients, backward, update; returns the loss."""
    loss, _ = loss_fn(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_setup() -> tuple[nn.Module, torch.optim.Optimizer, list[tuple[torch.Tensor, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    batches = [(torch.rand(2, 3, 6, 6, generator=generator), torch.rand(2, 3, 6, 6, generator=generator))
               for _ in range(2)]
    return model, torch.optim.SGD(model.parameters(), lr=0.1), batches


def _pixel_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    output = model(batch[0])
    loss = F.l1_loss(output, batch[1])
    return loss, {"pixel": float(loss.detach())}


def check_training_step(fn: Callable | None) -> str:
    """Exercise 4: ``fn(model, loss_fn, optimizer, batch)`` makes one optimisation step and returns the loss.

    Two steps in a row on a tiny network with SGD must give exactly the reference's weights and losses:
    a missing ``zero_grad`` adds the first step's gradient to the second, a missing ``step`` changes nothing.
    """
    if waiting := not_done(fn, "define my_training_step(model, loss_fn, optimizer, batch)"):
        return waiting
    mine, mine_optimizer, batches = _step_setup()
    reference, reference_optimizer, _ = _step_setup()
    start = copy.deepcopy(mine.state_dict())
    for number, batch in enumerate(batches, start=1):
        value = fn(mine, _pixel_loss, mine_optimizer, batch)
        expected = solution_training_step(reference, _pixel_loss, reference_optimizer, batch)
        if value is None or not math.isclose(float(value), expected, rel_tol=1e-5):
            return f"step {number} returned {value}, expected the loss {expected:.5f} (as a float)"
        if number == 1 and all(torch.equal(a, b) for a, b in zip(start.values(), mine.state_dict().values())):
            return "the weights did not change: call optimizer.step() after loss.backward()"
        if not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mine.parameters(), reference.parameters())):
            return (f"after step {number} the weights differ from one SGD step's; clear the old gradients "
                    "(optimizer.zero_grad()) before loss.backward()")
    return PASS


# ----------------------------------------------------------------------------- exercise 5
def odd_sized(photo: torch.Tensor) -> torch.Tensor:
    """The (1, 3, H, W) photo resized to :data:`ODD_SIZE` by bilinear interpolation, as the exercise asks."""
    return F.interpolate(photo, size=ODD_SIZE, mode="bilinear", align_corners=False)


def solution_stylized(model_path, photo: torch.Tensor) -> torch.Tensor:
    """Load the saved model and stylize the photo at 110x150 (the model pads and crops back itself)."""
    from ..checkpoints import load_model

    model = load_model(model_path)
    with torch.no_grad():
        return model(odd_sized(photo.cpu())).cpu()


def check_stylized(image: torch.Tensor | None, model_path, photo: torch.Tensor) -> str:
    """Exercise 5: ``image`` is the model at ``model_path`` applied to ``photo`` resized to 110x150.

    A (1, 3, 110, 150) tensor in [0, 1] that differs from the (resized) photo and is within
    :data:`STYLIZED_TOLERANCE` of the model's own change from it (runs the model once).
    """
    if waiting := not_done(image, "set my_stylized"):
        return waiting
    if not isinstance(image, torch.Tensor) or tuple(image.shape) != (1, 3, *ODD_SIZE):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        return f"expected a tensor of shape (1, 3, 110, 150), got {shape}"
    image = image.detach().cpu().float()
    if image.min() < 0 or image.max() > 1:
        return "values must lie in [0, 1]"
    resized, reference = odd_sized(photo.detach().cpu().float()), solution_stylized(model_path, photo)
    change = float((reference - resized).abs().mean())
    if float((image - resized).abs().mean()) <= STYLIZED_TOLERANCE * change:
        return "this is (nearly) the photo itself: run the loaded model on it"
    gap = float((image - reference).abs().mean())
    if gap > STYLIZED_TOLERANCE * change:
        return (f"differs from the saved model's output by {gap:.4f} on average (allowed "
                f"{STYLIZED_TOLERANCE * change:.4f}): load the saved file and run it on the resized photo")
    return PASS

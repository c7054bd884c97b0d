"""Style transfer by optimisation (Gatys, Ecker and Bethge, 2016): the plain method.

Change the face's *pixels* by gradient descent until its VGG19 features match the face's content and
the style's Gram matrices: slow (VGG19 forward and backward every step), but no training. The whole
method: settings, loss (targets computed once, VGG19 run only as deep as the loss reads), one loop.
Lesson 02's optional speed lab is :mod:`facestyle_utils.gatys_speed`, which wraps this module.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .colour import preserve_colour
from .image_io import check_one_image, to_float_batch
from .losses import content_loss, gram_matrix, relative_loss, style_loss, total_variation
from .runtime import progress_bar
from .vgg import VGG19Features, check_side

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
DIVERGED = 10.0  # a loss this many times the lowest so far: the run diverged (see run_steps)
RESTARTS = 3  # non-finite losses a run survives by going back to its best image (see run_steps)
Callback = Callable[[int, torch.Tensor, float], "bool | None"]


@dataclass
class GatysSettings:
    """The method's knobs, with defaults that work on faces. A weight of 0 switches its term off."""

    steps: int = 60
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e3  # total variation: keeps the result from turning into speckle
    content_layers: Sequence[str] = CONTENT_LAYERS
    style_layers: Sequence[str] = STYLE_LAYERS
    balance_style_layers: bool = False  # each style term divided by its target Gram's mean square
    optimizer: str = "lbfgs"  # or "adam"
    learning_rate: float = 1.0  # L-BFGS step size; Adam works well near 0.02
    init: str = "content"  # start from the face, or from "noise"
    preserve_colour: bool = False  # give the result the face's colours (colour.preserve_colour)

    def __post_init__(self) -> None:
        for name, allowed in (("optimizer", ("lbfgs", "adam")), ("init", ("content", "noise"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {allowed[0]!r} or {allowed[1]!r}, not {getattr(self, name)!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, not {self.steps}")

    def replace(self, **changes) -> "GatysSettings":
        """A copy with some fields changed, e.g. ``settings.replace(steps=10)``."""
        return dataclasses.replace(self, **changes)


@dataclass
class GatysResult:
    """The stylized image, float32 (1, 3, H, W) in [0, 1]; ``losses[i]``, the total loss at step ``i`` (before
    its update); ``parts``, the last step's weighted content/style/tv terms (adding up to its loss); ``seconds``."""

    image: torch.Tensor
    losses: list[float] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def as_float_images(content: torch.Tensor, style: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The content and style images as float32 (N, 3, H, W) batches in [0, 1], detached, the style on the
    content's device (None stays None); any dtype in, as :func:`facestyle_utils.image_io.to_float_batch`
    takes it (its ImageLoadError names the image)."""
    content = to_float_batch(content.detach(), "content image")
    return content, None if style is None else to_float_batch(style.detach(), "style image").to(content.device)


class GatysLoss:
    """Total loss of an image: weighted content + style (Gram) + total variation (TV). The targets are computed
    here, once; a term of weight 0 is left out (lesson 02 rebuilds images from content or style alone).
    ``content``/``style``: (N, 3, H, W) or (3, H, W), any dtype, made float32 [0, 1] once (``to_float_batch``, whose
    ImageLoadError names the image); a call takes float [0, 1]. ValueError: an image too small for the layers."""

    def __init__(self, vgg: VGG19Features, content: torch.Tensor, style: torch.Tensor | None,
                 settings: GatysSettings):
        self.vgg, self.settings = vgg, settings
        self.content, self.style = as_float_images(content, style)
        self.content_layers = list(settings.content_layers) if settings.content_weight else []
        self.style_layers = list(settings.style_layers) if settings.style_weight and style is not None else []
        self.check_sizes()
        self.content_targets, self.style_grams = self.targets()

    def check_sizes(self) -> None:
        """Raise ValueError before any step if an image is too small for the layers."""
        check_side(self.content, [*self.content_layers, *self.style_layers], "content image")
        if self.style_layers:
            check_side(self.style, self.style_layers, "style image")

    def features(self, image: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        """VGG19 feature maps of ``image`` at ``layers`` (the network stops at the deepest)."""
        return self.vgg(image, layers) if layers else {}

    def targets(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The face's content feature maps and the style's Gram matrices, by layer."""
        with torch.no_grad():
            content = self.features(self.content, self.content_layers)
            style = self.features(self.style, self.style_layers) if self.style_layers else {}
        return ({k: content[k].float() for k in self.content_layers},
                {k: gram_matrix(style[k]) for k in self.style_layers})

    def style_term(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        """The unweighted style loss at ``layer`` (relative to the target's energy when balanced)."""
        loss = style_loss(features, self.style_grams[layer])
        return relative_loss(loss, self.style_grams[layer]) if self.settings.balance_style_layers else loss

    def terms(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each weighted term by name ("content relu4_2", "style relu1_1", ..., "tv"); they add up to the total."""
        s = self.settings
        features = self.features(image, list(dict.fromkeys([*self.content_layers, *self.style_layers])))
        terms = {f"content {k}": s.content_weight * content_loss(features[k], t)
                 for k, t in self.content_targets.items()}
        for name in self.style_layers:
            terms[f"style {name}"] = s.style_weight * self.style_term(features[name], name)
        if s.tv_weight:
            terms["tv"] = s.tv_weight * total_variation(image)
        return terms

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The total loss (to call ``backward`` on) and its weighted content, style and tv parts."""
        terms = self.terms(image)
        zero = image.new_zeros(())
        total = sum(terms.values(), zero)
        parts = {kind: float(sum((value.detach() for name, value in terms.items() if name.startswith(kind)), zero))
                 for kind in ("content", "style", "tv")}  # one float (a GPU sync) per kind, not per term
        return total, parts


def start_image(content: torch.Tensor, settings: GatysSettings) -> torch.Tensor:
    """The pixels to optimise: a copy of the face, or uniform noise in [0, 1] of its shape."""
    if settings.init == "content":
        return content.detach().clone(memory_format=torch.contiguous_format)
    return torch.rand(content.shape, device=content.device, dtype=content.dtype)


def make_optimizer(image: torch.Tensor, settings: GatysSettings, line_search: bool = False) -> torch.optim.Optimizer:
    """Adam, or L-BFGS taking one step per call; ``line_search``: strong Wolfe (never a step uphill, dearer)."""
    if settings.optimizer == "adam":
        return torch.optim.Adam([image], lr=settings.learning_rate)
    return torch.optim.LBFGS([image], lr=settings.learning_rate, max_iter=1, history_size=50,
                             line_search_fn="strong_wolfe" if line_search else None)


def run_steps(image: torch.Tensor, objective: GatysLoss, steps: int, settings: GatysSettings,
              callback: Callback | None = None, progress: bool = False) -> tuple[list[float], dict[str, float]]:
    """The loop: ``steps`` optimiser steps on the pixels of ``image`` (requires grad), in place; returns each
    step's loss and the last step's parts. ``callback`` as in :func:`stylize_by_optimisation`. L-BFGS takes
    its full step unchecked and clamping can mislead its curvature estimate: a loss over DIVERGED times the
    lowest, or a loss that is not finite (an L-BFGS step gone to inf, seen on CUDA), sends the image back to
    the lowest-loss one and restarts L-BFGS with a line search (a run that never diverges is unchanged).
    FloatingPointError if the loss is not finite at the first step or after RESTARTS restarts for it. Pixels
    left not finite by the last update (no loss measures them) are replaced by the lowest-loss image."""
    optimizer = make_optimizer(image, settings)
    losses, parts, best, restarts = [], {}, (math.inf, None), 0

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, parts_now = objective(image)
        loss.backward()
        parts.update(parts_now)
        return loss

    bar = progress_bar(range(steps), desc="stylizing", disable=not progress, leave=False)
    for step in bar:
        start = image.detach().clone()
        loss = float(optimizer.step(closure).detach())  # the loss at `start`
        with torch.no_grad():
            image.clamp_(0, 1)  # pixels stay valid
        losses.append(loss)
        finite = math.isfinite(loss)
        restarts += not finite
        if not finite and (best[1] is None or restarts > RESTARTS):
            raise FloatingPointError(f"the loss became {loss} at step {step}: lower the learning rate or the weights")
        if loss < best[0]:
            best = (loss, start)
        elif not finite or loss > DIVERGED * best[0]:
            image.detach().copy_(best[1])
            optimizer = make_optimizer(image, settings, line_search=True)
        bar.set_postfix(loss=f"{loss:.4g}")
        if callback is not None and callback(step, image.detach(), loss):
            break
    bar.close()
    if best[1] is not None and not bool(torch.isfinite(image).all()):
        image.detach().copy_(best[1])
    return losses, dict(parts)


def stylize_by_optimisation(content: torch.Tensor, style: torch.Tensor | None, vgg: VGG19Features,
                            settings: GatysSettings | None = None, callback: Callback | None = None,
                            progress: bool = True) -> GatysResult:
    """Optimise the pixels of ``content`` (1, 3, H, W) towards the style of ``style`` ((1, 3, H', W') or
    (3, H', W'), any size; None with ``style_weight=0`` rebuilds content only); returns float32 (1, 3, H, W)
    in [0, 1] with the losses. ``callback(step, image, loss)`` runs after each step (e.g. to keep snapshots);
    returning True stops. Images of any dtype, as :class:`GatysLoss` takes them; sizes are checked first."""
    settings = settings or GatysSettings()
    check_one_image(content, "content image")
    begin = time.perf_counter()
    objective = GatysLoss(vgg, content, style, settings)  # checks both sizes, computes the targets once
    image = start_image(objective.content, settings).requires_grad_(True)
    losses, parts = run_steps(image, objective, settings.steps, settings, callback, progress)
    output = image.detach()
    if settings.preserve_colour:
        output = preserve_colour(output, objective.content)
    return GatysResult(output, losses, parts, time.perf_counter() - begin)

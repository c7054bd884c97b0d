"""Style transfer by optimisation (Gatys, Ecker and Bethge, 2016).

Start from the face, then change its *pixels* by gradient descent until its VGG19
features match the face's content and the style image's Gram matrices. Slow (the whole
network runs forward and backward every step) but needs no training at all.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .colour import preserve_colour
from .losses import content_loss, gram_matrix, total_variation, weighted_style_loss
from .vgg import VGG19Features

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)


@dataclass
class GatysSettings:
    """Everything a learner may want to change, with defaults that work on faces."""

    steps: int = 60
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e3
    content_layers: Sequence[str] = CONTENT_LAYERS
    style_layers: Sequence[str] = STYLE_LAYERS
    optimizer: str = "lbfgs"  # or "adam"
    learning_rate: float = 1.0  # L-BFGS step size; Adam works well near 0.02
    init: str = "content"  # or "noise"
    preserve_colour: bool = False
    channels_last: bool = False  # faster convolutions on modern CPUs and GPUs
    autocast: bool = False  # bf16 on CPU, fp16 on CUDA


@dataclass
class GatysResult:
    """The stylized image (1, 3, H, W) in [0, 1], the loss after each step and the run time."""

    image: torch.Tensor
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


class GatysLoss:
    """Total loss of an image: weighted content + style (Gram) + total variation.

    Targets are computed once here, so each optimisation step runs VGG19 only on the image.
    """

    def __init__(self, vgg: VGG19Features, content: torch.Tensor, style: torch.Tensor, settings: GatysSettings):
        self.vgg, self.settings = vgg, settings
        self.layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
        with torch.no_grad(), _autocast(content.device, settings.autocast):
            content_features = vgg(self._prepare(content), settings.content_layers)
            style_features = vgg(self._prepare(style), settings.style_layers)
        self.content_targets = {k: v.float() for k, v in content_features.items()}
        self.style_grams = {k: gram_matrix(v) for k, v in style_features.items()}

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.settings.channels_last else image

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.settings
        with _autocast(image.device, s.autocast):
            features = self.vgg(self._prepare(image), self.layers)
        c_loss = sum(content_loss(features[k], t) for k, t in self.content_targets.items())
        s_loss = weighted_style_loss(features, self.style_grams)
        tv_loss = total_variation(image)
        total = s.content_weight * c_loss + s.style_weight * s_loss + s.tv_weight * tv_loss
        parts = {"content": c_loss.item(), "style": s_loss.item(), "tv": tv_loss.item()}
        return total, parts


def stylize_by_optimisation(
    content: torch.Tensor,
    style: torch.Tensor,
    vgg: VGG19Features,
    settings: GatysSettings | None = None,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
    progress: bool = True,
) -> GatysResult:
    """Optimise the pixels of ``content`` (1, 3, H, W) towards the style of ``style``.

    ``callback(step, image, loss)`` is called after every step, e.g. to keep snapshots.
    """
    settings = settings or GatysSettings()
    device = content.device
    style = style.to(device)
    objective = GatysLoss(vgg, content, style, settings)
    start = content.clone(memory_format=torch.contiguous_format) if settings.init == "content" else torch.rand_like(content)
    image = start.requires_grad_(True)
    result = GatysResult(image=image)
    begin = time.perf_counter()
    bar = tqdm(range(settings.steps), desc="stylizing", disable=not progress, leave=False)

    if settings.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS([image], lr=settings.learning_rate, max_iter=1, history_size=50)
    elif settings.optimizer == "adam":
        optimizer = torch.optim.Adam([image], lr=settings.learning_rate)
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', not {settings.optimizer!r}")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = objective(image)
        loss.backward()
        return loss

    for step in bar:
        loss = float(optimizer.step(closure).detach())
        with torch.no_grad():
            image.clamp_(0, 1)
        result.losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4g}")
        if callback is not None:
            callback(step, image.detach(), loss)
    result.seconds = time.perf_counter() - begin
    output = image.detach()
    if settings.preserve_colour:
        output = preserve_colour(output, content)
    result.image = output
    return result


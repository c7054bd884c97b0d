"""Style transfer by optimisation (Gatys, Ecker and Bethge, 2016).

Start from the face, then change its *pixels* by gradient descent until its VGG19
features match the face's content and the style image's Gram matrices. Slow (the whole
network runs forward and backward every step) but needs no training at all.

The speed switches in :class:`GatysSettings` are there to be measured one by one
(lesson 02): run the network only as deep as needed, compute the targets once,
channels_last memory, mixed precision, a coarse-to-fine schedule, and deep style layers
that join the loss only for the last steps.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .colour import preserve_colour
from .image_io import to_float_batch
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .runtime import autocast, mixed_precision_pays
from .vgg import VGG19Features, check_side, min_side

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
OPTIMIZERS = ("lbfgs", "adam")


@dataclass
class GatysSettings:
    """Everything a learner may want to change, with defaults that work on faces."""

    steps: int = 60
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1e3
    content_layers: Sequence[str] = CONTENT_LAYERS
    style_layers: Sequence[str] = STYLE_LAYERS
    balance_style_layers: bool = False  # weight each layer by 1 / (its target Gram's mean square)
    optimizer: str = "lbfgs"  # or "adam"
    learning_rate: float = 1.0  # L-BFGS step size; Adam works well near 0.02
    init: str = "content"  # or "noise"
    preserve_colour: bool = False
    # Speed switches (lesson 02 measures each one).
    channels_last: bool = False  # NHWC memory layout; helps some CPUs and GPUs
    autocast: bool = False  # fp16 on CUDA, bf16 elsewhere (emulated, so very slow, on CPUs without bf16 hardware)
    cache_targets: bool = True  # compute the content and style targets once, not every step
    truncate_network: bool = True  # run VGG19 only up to the deepest layer the losses use
    coarse_steps: int = 0  # >0: first optimise this many steps at coarse_scale, then upsample
    coarse_scale: float = 0.5
    late_style_layers: Sequence[str] = ()  # left out of the loss (and the network cut before them) until the end
    late_steps: int = 5  # ... that is, the last this many steps, or once the loss without them reaches target_loss
    target_loss: float | None = None  # stop as soon as the full-size total loss is this low
    snapshot_every: int = 0  # >0: keep a copy of the image every this many steps

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', not {self.optimizer!r}")
        if self.init not in ("content", "noise"):
            raise ValueError(f"init must be 'content' or 'noise', not {self.init!r}")
        if self.steps < 0 or self.coarse_steps < 0:
            raise ValueError("steps and coarse_steps must be >= 0")
        if not 0 < self.coarse_scale <= 1:
            raise ValueError(f"coarse_scale must be in (0, 1], not {self.coarse_scale}")
        unknown = [name for name in self.late_style_layers if name not in self.style_layers]
        if unknown:
            raise ValueError(f"late_style_layers must be among style_layers {tuple(self.style_layers)}, not {unknown}")
        if self.late_steps < 1:
            raise ValueError(f"late_steps must be >= 1, not {self.late_steps}")

    def replace(self, **changes) -> "GatysSettings":
        """A copy with some fields changed, e.g. ``settings.replace(steps=10)``."""
        return dataclasses.replace(self, **changes)


def fast_settings(device: torch.device | str = "cpu", **changes) -> GatysSettings:
    """The fastest combination measured in lesson 02 for ``device``.

    Everywhere: coarse-to-fine with the coarse stage at 3/8 of the size (on the course's
    2-core CPU it did better than 1/2 and 1/4; :func:`coarse_sizes` says what small images
    get), and relu5_1 as a late layer: its Gram term is under 0.1% of the total loss with the
    default weights, yet running the network on to relu5_1 costs a fifth of every step.
    Mixed precision where it pays (:func:`runtime.mixed_precision_pays`: fp16 on CUDA, bf16 on a
    CPU with bf16 hardware; emulated bf16 was 5-100x *slower* than fp32 on the course's CPU), and
    channels_last on CUDA, whose tensor cores want it.
    """
    on_cuda = torch.device(device).type == "cuda"
    base = GatysSettings(coarse_steps=40, coarse_scale=0.375, steps=20, channels_last=on_cuda,
                         autocast=mixed_precision_pays(device))
    settings = base.replace(**changes)
    if "late_style_layers" not in changes and "relu5_1" in settings.style_layers:
        settings = settings.replace(late_style_layers=("relu5_1",))
    return settings


@dataclass
class GatysResult:
    """The stylized image (1, 3, H, W) in [0, 1], and a record of the run.

    ``losses[i]`` is the total loss measured at step ``i`` (before its update) at side
    ``sizes[i]``; ``times[i]`` the seconds elapsed when it was measured. ``exact[i]`` is True
    where that loss is the whole objective at full size (not a coarse step, and no late style
    layer still left out). ``parts`` holds the weighted content/style/tv terms of the last
    step (they add up to its loss), ``snapshots`` (step, image) pairs.
    """

    image: torch.Tensor
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    @property
    def full_size_losses(self) -> list[float]:
        """Losses measured at the final image size (coarse steps left out)."""
        if not self.sizes:
            return list(self.losses)
        return [loss for loss, size in zip(self.losses, self.sizes) if size == self.sizes[-1]]

    def steps_to_reach(self, loss: float) -> int | None:
        """How many steps (coarse ones included) until the whole loss first fell to ``loss``."""
        return next((i + 1 for i, (value, exact) in enumerate(zip(self.losses, self.exact))
                     if exact and value <= loss), None)

    def seconds_to_reach(self, loss: float) -> float:
        """Seconds until the whole loss at full size first fell to ``loss`` (``inf`` if it never did)."""
        steps = self.steps_to_reach(loss)
        return math.inf if steps is None else self.times[steps - 1]


def balanced_layer_weights(style_grams: dict[str, torch.Tensor]) -> dict[str, float]:
    """One weight per layer, 1 / mean(G**2) of its target Gram matrix.

    With equal weights the deep layers' Gram matrices, whose entries are far larger, drown the
    shallow ones (colours, fine grain) and textures come out hazy; divided this way each
    layer's term is a *relative* error, about 1 when far off and 0 when matched.
    """
    return {name: 1.0 / (float(gram.pow(2).mean()) + 1e-12) for name, gram in style_grams.items()}


class GatysLoss:
    """Total loss of an image: weighted content + style (Gram) + total variation.

    With ``cache_targets`` (the default) the targets are computed once here, so each
    optimisation step runs VGG19 only on the image being optimised. A loss whose weight is
    zero or whose layer list is empty is skipped (that is how lesson 02 inverts features).
    ``settings.late_style_layers`` stay out of the loss until :meth:`add_late_layers`.
    ``content`` and ``style`` are (N, 3, H, W) or (3, H, W) images of any dtype, turned once here
    into float32 [0, 1] by :func:`facestyle_utils.image_io.to_float_batch` (uint8 0-255, floats
    [0, 1], ...); the image given to :meth:`terms` each step must already be float in [0, 1].
    Raises ImageLoadError (a ValueError) naming the image for values outside that rule, and
    ValueError, naming the image, its size and the minimum side, when ``content`` (the size
    of the image optimised) or ``style`` is too small for VGG19 to reach the loss's layers.
    """

    def __init__(self, vgg: VGG19Features, content: torch.Tensor, style: torch.Tensor | None,
                 settings: GatysSettings):
        self.vgg, self.settings = vgg, settings
        self.content, self.style = _as_images(content, style)
        content, style = self.content, self.style
        self.content_layers, self.style_layers = _loss_layers(settings, style is not None)
        self.waiting = [name for name in self.style_layers if name in settings.late_style_layers]
        check_side(content, _reach([*self.content_layers, *self.style_layers], settings), "content image")
        if self.style_layers:
            check_side(style, _reach(self.style_layers, settings), "style image")
        if settings.cache_targets:
            self.content_targets, self.style_grams, self.style_layer_weights = self._targets()

    @property
    def exact(self) -> bool:
        """True once no late style layer is left out: the loss is the whole objective."""
        return not self.waiting

    @property
    def layers(self) -> list[str]:
        """The layers the loss reads now: the network runs up to the deepest of them."""
        active = [name for name in self.style_layers if name not in self.waiting]
        return list(dict.fromkeys([*self.content_layers, *active]))

    def add_late_layers(self) -> None:
        """Bring the late style layers into the loss (the rest of the run pays for the deeper network)."""
        self.waiting = []

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.settings.channels_last else image

    def _features(self, image: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        if not layers:
            return {}
        with autocast(image.device, self.settings.autocast):
            return self.vgg(self._prepare(image), _reach(layers, self.settings))

    def _targets(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, float] | None]:
        """Content feature maps, style Gram matrices, and the per-layer style weights (None: equal)."""
        with torch.no_grad():
            content_features = self._features(self.content, self.content_layers)
            style_features = self._features(self.style, self.style_layers) if self.style_layers else {}
        content_targets = {k: content_features[k].float() for k in self.content_layers}
        style_grams = {k: gram_matrix(style_features[k]) for k in self.style_layers}
        layer_weights = balanced_layer_weights(style_grams) if self.settings.balance_style_layers else None
        return content_targets, style_grams, layer_weights

    def terms(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each weighted term of the loss of ``image`` by name ("content relu4_2", "style relu1_1",
        ..., "tv"); they add up to the total. Lesson 02 prints them to see which layers carry it."""
        s = self.settings
        content_targets, style_grams, layer_weights = (
            (self.content_targets, self.style_grams, self.style_layer_weights) if s.cache_targets else self._targets())
        features = self._features(image, self.layers)
        terms = {f"content {k}": s.content_weight * content_loss(features[k], t) for k, t in content_targets.items()}
        for name in self.layers:
            if name in style_grams:
                layer_weight = 1.0 if layer_weights is None else layer_weights[name]
                terms[f"style {name}"] = s.style_weight * layer_weight * style_loss(features[name], style_grams[name])
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


def _as_images(content: torch.Tensor, style: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Detached float32 [0, 1] copies of the content and style images (the package's value rule),
    the style moved to the content's device."""
    content = to_float_batch(content.detach(), "content image")
    style = None if style is None else to_float_batch(style.detach(), "style image").to(content.device)
    return content, style


def _loss_layers(settings: GatysSettings, has_style: bool) -> tuple[list[str], list[str]]:
    """The content and style layers a :class:`GatysLoss` reads (none for a term whose weight is zero)."""
    content = list(settings.content_layers) if settings.content_weight else []
    style = list(settings.style_layers) if settings.style_weight and has_style else []
    return content, style


def _reach(layers: list[str], settings: GatysSettings) -> list[str]:
    """The layers VGG19 runs to for ``layers``: without ``truncate_network``, the whole network (the naive way)."""
    return [*layers, "pool5"] if layers and not settings.truncate_network else layers


def _shrunk(image: torch.Tensor, scale: float, shortest: int) -> tuple[int, int]:
    """(H, W) of ``image`` shrunk by ``scale``, or by less (same aspect ratio) so no side drops below ``shortest``."""
    height, width = image.shape[-2:]
    scale = min(1.0, max(scale, shortest / min(height, width)))
    return max(shortest, round(height * scale)), max(shortest, round(width * scale))


def coarse_sizes(content: torch.Tensor, style: torch.Tensor | None, settings: GatysSettings
                 ) -> tuple[tuple[int, int], tuple[int, int] | None] | None:
    """(H, W) of the content and of the style image in the coarse stage, or None: no coarse stage.

    Each image shrinks by ``settings.coarse_scale``, or by less where a side would fall below
    what VGG19 needs for the loss's layers (:func:`facestyle_utils.vgg.min_side`: 16 px up to
    relu5_1). When the content cannot shrink at all (a face of 16 px or so), there is no coarse
    stage and :func:`stylize_by_optimisation` runs its steps at full size instead.
    """
    content_layers, style_layers = _loss_layers(settings, style is not None)
    small = _shrunk(content, settings.coarse_scale, min_side(_reach([*content_layers, *style_layers], settings)))
    if not settings.coarse_steps or all(a >= b for a, b in zip(small, content.shape[-2:])):
        return None  # no side would shrink
    return small, None if style is None else _shrunk(style, settings.coarse_scale,
                                                     min_side(_reach(style_layers, settings)))


def resize_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a (N, C, H, W) batch, antialiased when shrinking (values not clamped)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def _make_optimizer(image: torch.Tensor, settings: GatysSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "lbfgs":
        return torch.optim.LBFGS([image], lr=settings.learning_rate, max_iter=1, history_size=50)
    return torch.optim.Adam([image], lr=settings.learning_rate)


def _optimise(image: torch.Tensor, objective: GatysLoss, steps: int, settings: GatysSettings, result: GatysResult,
              begin: float, bar, callback, stop_at: float | None, full_size: bool) -> bool:
    """Run ``steps`` optimiser steps on ``image`` in place; True if ``stop_at`` was reached.

    At full size, late style layers join for the last ``settings.late_steps`` steps, or as soon
    as the loss without them reaches ``stop_at`` (it can only grow when they join, so not
    before). The optimiser keeps its memory across that switch: the loss changes very little.
    """
    optimizer = _make_optimizer(image, settings)
    parts: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, parts_now = objective(image)
        loss.backward()
        parts.update(parts_now)
        return loss

    for index in range(steps):
        if full_size and not objective.exact and index >= steps - settings.late_steps:
            objective.add_late_layers()
        step, exact = len(result.losses), full_size and objective.exact
        loss = float(optimizer.step(closure).detach())
        with torch.no_grad():
            image.clamp_(0, 1)
        result.losses.append(loss)
        result.times.append(time.perf_counter() - begin)
        result.sizes.append(image.shape[-1])
        result.exact.append(exact)
        result.parts = dict(parts)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}", side=image.shape[-1])
        if settings.snapshot_every and step % settings.snapshot_every == 0:
            result.snapshots.append((step, image.detach().clone()))
        if callback is not None:
            callback(step, image.detach(), loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at step {step}: lower the learning rate or the weights")
        if stop_at is not None and loss <= stop_at:
            if exact:
                return True
            if full_size:
                objective.add_late_layers()
    return False


def stylize_by_optimisation(
    content: torch.Tensor,
    style: torch.Tensor | None,
    vgg: VGG19Features,
    settings: GatysSettings | None = None,
    callback: Callable[[int, torch.Tensor, float], None] | None = None,
    progress: bool = True,
) -> GatysResult:
    """Optimise the pixels of ``content`` (1, 3, H, W) towards the style of ``style``.

    ``callback(step, image, loss)`` is called after every step, e.g. to keep snapshots.
    With ``settings.coarse_steps > 0`` the first steps run on images shrunk by
    ``settings.coarse_scale`` (4x cheaper at 0.5) and the result is upsampled and refined.
    ``settings.late_style_layers`` are left out until the last steps (see :func:`_optimise`).
    ``style=None`` (with ``style_weight=0``) reconstructs content only. The style
    ((1, 3, H', W') or (3, H', W')) may have any size. Both may have any dtype: values follow
    :func:`facestyle_utils.image_io.to_float_batch` (uint8 0-255, floats [0, 1], ...), applied
    once here; ImageLoadError (a ValueError) names the image outside that rule (e.g. floats
    holding 0-255). ``result.image`` is float32 (1, 3, H, W) in [0, 1].
    Sizes are checked before the first step: ValueError names the image, its size and the
    minimum side when VGG19 cannot reach the chosen layers (e.g. 16 px up to relu5_1). A face
    too small to shrink gets no coarse stage (see :func:`coarse_sizes`): its coarse steps run
    at full size, so the number of steps stays the same.
    """
    settings = settings or GatysSettings()
    if content.ndim != 4 or content.shape[:2] != (1, 3):
        raise ValueError(f"content image: expected shape (1, 3, H, W), got {tuple(content.shape)}")
    content, style = _as_images(content, style)
    device = content.device
    if settings.init == "content":
        image = content.detach().clone(memory_format=torch.contiguous_format)
    else:
        image = torch.rand(content.shape, device=device, dtype=content.dtype)
    result = GatysResult(image=image)
    begin = time.perf_counter()
    total_steps = settings.steps + settings.coarse_steps
    objective = GatysLoss(vgg, content, style, settings)  # checks both sizes before any step
    sizes = coarse_sizes(content, style, settings)
    with tqdm(total=total_steps, desc="stylizing", disable=not progress, leave=False) as bar:
        if sizes is not None:
            full = content.shape[-2:]
            small, style_size = sizes
            small_style = None if style is None else resize_tensor(style, style_size)
            small_content = resize_tensor(content, small)
            coarse = resize_tensor(image, small).requires_grad_(True)
            _optimise(coarse, GatysLoss(vgg, small_content, small_style, settings), settings.coarse_steps, settings,
                      result, begin, bar, callback, None, full_size=False)
            if settings.init == "content":
                # Upsample only what the optimisation *changed*, so the face keeps its full-size detail.
                change = resize_tensor(coarse.detach() - small_content, tuple(full))
                image = (content + change).clamp(0, 1)
            else:
                image = resize_tensor(coarse.detach(), tuple(full)).clamp(0, 1)
        image = image.requires_grad_(True)
        steps = settings.steps if sizes is not None else total_steps  # no coarse stage: its steps run here
        _optimise(image, objective, steps, settings, result, begin, bar, callback, settings.target_loss,
                  full_size=True)
    result.seconds = time.perf_counter() - begin
    output = image.detach()
    if settings.preserve_colour:
        output = preserve_colour(output, content)
    result.image = output
    return result


def total_loss(image: torch.Tensor, content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
               settings: GatysSettings | None = None) -> float:
    """The whole total loss of ``image`` under ``settings`` (fp32, full size, every style layer in):
    to compare runs fairly. Images of any dtype, values by :func:`facestyle_utils.image_io.to_float_batch`
    (ImageLoadError, a ValueError, outside that rule)."""
    settings = (settings or GatysSettings()).replace(autocast=False, channels_last=False, late_style_layers=())
    image = to_float_batch(image.detach(), "image")
    with torch.no_grad():
        loss, _ = GatysLoss(vgg, content, style, settings)(image)
    return float(loss)


@dataclass
class SpeedRow:
    """One line of a speed table: a named variant, its cost per step and its time to a target loss."""

    name: str
    seconds_per_step: float
    seconds_to_target: float
    steps_to_target: int | None
    final_loss: float
    result: GatysResult = field(repr=False)


def seconds_per_step(result: GatysResult) -> float:
    """Median time between full-size steps (the first step also builds targets, so it is skipped)."""
    last = result.sizes[-1]
    times = [t for t, s in zip(result.times, result.sizes) if s == last]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2] if gaps else (times[0] if times else math.nan)


def _warm_up(content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
             variants: Iterable[GatysSettings]) -> None:
    """One untimed forward + backward per image size and memory layout used, so that the first
    variant timed does not pay for one-off set-up (kernel selection, memory allocation)."""
    seen = set()
    for settings in variants:
        stages = [(tuple(content.shape[-2:]), tuple(style.shape[-2:])), coarse_sizes(content, style, settings)]
        for sizes in filter(None, stages):
            key = (sizes, settings.channels_last, settings.autocast)
            if key in seen:
                continue
            seen.add(key)
            image = resize_tensor(content, sizes[0]).detach().clone().requires_grad_(True)
            GatysLoss(vgg, image.detach(), resize_tensor(style, sizes[1]), settings)(image)[0].backward()


def compare_speed(content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
                  variants: dict[str, GatysSettings], target_loss: float | None = None,
                  progress: bool = True) -> list[SpeedRow]:
    """Run each named variant and measure seconds per step and seconds to reach ``target_loss``.

    Without a target, the first variant's last loss is the target (run it with plain
    settings). Variants stop as soon as they reach the target. The loss compared is always
    the total loss at full size. Each size and layout is warmed up once, untimed, first.
    Images of any dtype, as :func:`stylize_by_optimisation` takes them.
    """
    content, style = _as_images(content, style)
    _warm_up(content, style, vgg, variants.values())
    rows: list[SpeedRow] = []
    for name, settings in variants.items():
        if target_loss is not None:
            settings = settings.replace(target_loss=target_loss)
        result = stylize_by_optimisation(content, style, vgg, settings, progress=progress)
        if target_loss is None:
            target_loss = result.losses[-1]
        rows.append(SpeedRow(name, seconds_per_step(result), result.seconds_to_reach(target_loss),
                             result.steps_to_reach(target_loss), result.losses[-1], result))
    return rows

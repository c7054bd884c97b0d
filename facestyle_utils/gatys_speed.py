"""Lesson 02's speed lab (an optional section): the plain Gatys method of :mod:`facestyle_utils.gatys`,
made faster one measured switch at a time.

:class:`SpeedSettings` wraps the method's :class:`~facestyle_utils.gatys.GatysSettings` (``method``) with
the switches that lesson 02 and ``benchmarks/gatys_speed.py`` time:

- ``full_network`` and ``targets_every_step``: the *naive* loop, as a baseline (VGG19 run to pool5, and
  the face's and style's targets recomputed every step); the plain method does neither.
- ``channels_last``: NHWC memory layout. ``autocast``: mixed precision in bfloat16 only (emulated, so
  many times slower, on CPUs without bf16 hardware): in float16 the loss became NaN within two steps,
  so on a GPU with float16 tensor cores only (T4, V100) it is refused with a ValueError.
- ``fused_gram``: the Gram matrix with a hand-written backward pass (:func:`gram_matrix_fused`).
- ``late_style_layers``: style layers left out of the loss (and the network cut before them) until the
  last ``late_steps`` steps, or until the loss without them reaches ``target_loss``.
- ``coarse_steps`` at ``coarse_scale``: optimise a shrunk image first, upsample what changed, refine.
- ``target_loss``: stop once the whole loss at full size is this low; ``snapshot_every``: keep copies.

:func:`stylize_fast` runs the plain loop (:func:`facestyle_utils.gatys.run_steps`) with them and records
when, at which size and on which objective each loss was measured; :func:`compare_speed` times named
variants to a common target loss; :func:`fast_settings` is the combination that won, and
:func:`choose_fast_path` tunes it to the device and size by brief measurements: autocast and channels_last
only where a loss step is faster with them (:func:`choose_switches`), the coarse stage only where its steps
are cheaper (:func:`choose_coarse_stage`).
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .benchmark import timed
from .colour import preserve_colour
from .gatys import (
    Callback,
    GatysLoss,
    GatysResult,
    GatysSettings,
    as_float_images,
    run_steps,
    start_image,
)
from .image_io import check_one_image, to_float_batch
from .losses import at_least_float32, relative_loss
from .runtime import autocast, mixed_precision_dtype, mixed_precision_note, mixed_precision_pays
from .vgg import VGG19Features, check_side, min_side

METHOD_FIELDS = frozenset(f.name for f in dataclasses.fields(GatysSettings))


class _FusedGram(torch.autograd.Function):
    r"""Gram matrix of flat features (N, C, L) whose backward pass costs one matmul, not two.

    Autograd differentiates :math:`F F^\top` through both factors (two matmuls and a sum); by hand the
    gradient is :math:`(dG + dG^\top) F`. That saved about 3% of each Gatys step on the course's CPU.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(flat)
        ctx.scale = scale
        with torch.autocast(flat.device.type, enabled=False):  # keep the sums in float32 or better
            return torch.bmm(flat, flat.transpose(1, 2)).mul_(scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (flat,) = ctx.saved_tensors
        with torch.autocast(flat.device.type, enabled=False):
            return torch.bmm(grad + grad.transpose(1, 2), flat).mul_(ctx.scale), None


def gram_matrix_fused(features: torch.Tensor) -> torch.Tensor:
    r""":func:`facestyle_utils.losses.gram_matrix` (:math:`F F^\top / (C H W)`, (N, C, H, W) -> (N, C, C),
    float32 or float64) with the hand-written backward of :class:`_FusedGram`: same values, cheaper gradient."""
    n, c, h, w = features.shape
    flat = at_least_float32(features).reshape(n, c, h * w)
    return _FusedGram.apply(flat, 1.0 / (c * h * w))


@dataclass
class SpeedSettings:
    """The plain method's settings (``method``) plus the speed lab's switches (see the module docstring)."""

    method: GatysSettings = field(default_factory=GatysSettings)
    full_network: bool = False
    targets_every_step: bool = False
    channels_last: bool = False
    autocast: bool = False
    fused_gram: bool = False
    coarse_steps: int = 0
    coarse_scale: float = 0.5
    late_style_layers: Sequence[str] = ()
    late_steps: int = 5
    target_loss: float | None = None
    snapshot_every: int = 0

    def __post_init__(self) -> None:
        if self.coarse_steps < 0:
            raise ValueError(f"coarse_steps must be >= 0, not {self.coarse_steps}")
        if not 0 < self.coarse_scale <= 1:
            raise ValueError(f"coarse_scale must be in (0, 1], not {self.coarse_scale}")
        unknown = [name for name in self.late_style_layers if name not in self.method.style_layers]
        if unknown:
            raise ValueError(f"late_style_layers must be among style_layers {tuple(self.method.style_layers)}, "
                             f"not {unknown}")
        if self.late_steps < 1:
            raise ValueError(f"late_steps must be >= 1, not {self.late_steps}")

    def replace(self, **changes) -> "SpeedSettings":
        """A copy with some fields changed; the method's own fields (``steps=10``) go to ``method``."""
        method = {k: v for k, v in changes.items() if k in METHOD_FIELDS}
        speed = {k: v for k, v in changes.items() if k not in METHOD_FIELDS}
        base = self.method if "method" not in speed else speed.pop("method")
        return dataclasses.replace(self, method=base.replace(**method), **speed)


def as_speed(settings: SpeedSettings | GatysSettings | None) -> SpeedSettings:
    """``settings`` as :class:`SpeedSettings`: plain settings get every switch off (None: the defaults)."""
    if isinstance(settings, SpeedSettings):
        return settings
    return SpeedSettings(method=settings or GatysSettings())


def fast_settings(device: torch.device | str = "cpu", **changes) -> SpeedSettings:
    """The fastest combination measured in lesson 02 for ``device`` (``changes`` as in :meth:`SpeedSettings.replace`).

    Everywhere: coarse-to-fine with the coarse stage at 3/8 of the size (on the course's 2-core CPU it
    did better than 1/2 and 1/4; :func:`coarse_sizes` says what small images get, and
    :func:`choose_fast_path` leaves it out where it does not pay), relu5_1 as a late
    layer (its Gram term was about 0.1% of the total loss in lesson 02's runs with the default weights,
    yet running the network on to relu5_1 is about a fifth of the convolutions), and the fused Gram backward. Mixed
    precision where it pays (:func:`facestyle_utils.runtime.mixed_precision_pays`: a GPU, or a CPU with
    bf16 hardware); channels_last on CUDA, whose tensor cores want it. :func:`choose_fast_path` then keeps
    autocast, channels_last and the coarse stage only where brief measurements on the images at hand say
    they pay.
    Autocast only where it would compute in bfloat16 (:func:`bf16_autocast`): float16 fails here.
    """
    on_cuda = torch.device(device).type == "cuda"
    base = SpeedSettings(GatysSettings(steps=20), coarse_steps=40, coarse_scale=0.375, channels_last=on_cuda,
                         autocast=mixed_precision_pays(device) and bf16_autocast(device), fused_gram=True)
    settings = base.replace(**changes)
    if "late_style_layers" not in changes and "relu5_1" in settings.method.style_layers:
        settings = settings.replace(late_style_layers=("relu5_1",))
    return settings


def bf16_autocast(device: torch.device | str) -> bool:
    """True where autocast computes in bfloat16 on ``device``, the only 16-bit type a Gatys run can use.

    Why float16 fails here (VGG19's activation and loss sizes against float16's range, the NaN measured
    on an H200) is told once, in :func:`facestyle_utils.runtime.mixed_precision_dtype`. False on GPUs
    with float16 tensor cores only (T4, V100); True on every CPU, where bfloat16 may be emulated (slow:
    :func:`facestyle_utils.runtime.mixed_precision_pays` says whether it pays).
    """
    return mixed_precision_dtype(device) == torch.bfloat16


def autocast_choice(device: torch.device | str) -> str:
    """What :func:`fast_settings` chose for autocast on ``device``, and why: for tables and reports."""
    if mixed_precision_pays(device) and not bf16_autocast(device):
        return "autocast off: this GPU's 16-bit tensor cores are float16 only, and a Gatys loss became NaN in it"
    return mixed_precision_note(device)


def reach(layers: Sequence[str], settings: SpeedSettings) -> list[str]:
    """The layers VGG19 runs to for ``layers``: with ``full_network``, on to pool5 (the naive way)."""
    return [*layers, "pool5"] if layers and settings.full_network else list(layers)


class SpeedLoss(GatysLoss):
    """:class:`~facestyle_utils.gatys.GatysLoss` with the switches of :class:`SpeedSettings`.

    ``late_style_layers`` stay out of the loss (and out of the network) until :meth:`add_late_layers`;
    :attr:`exact` says whether the loss is the whole objective. The values are the plain loss's, up to
    float rounding (and autocast's precision), whatever the switches.
    """

    def __init__(self, vgg: VGG19Features, content: torch.Tensor, style: torch.Tensor | None,
                 settings: SpeedSettings):
        self.speed = settings
        if settings.autocast and not bf16_autocast(content.device):
            raise ValueError(f"autocast on {content.device} would compute in float16 (largest value 65504), "
                             "where a Gatys loss became NaN within two steps, and this GPU has no bfloat16 "
                             "tensor cores: use autocast=False")
        super().__init__(vgg, content, style, settings.method)
        self.all_style_layers = self.style_layers
        self.style_layers = [name for name in self.style_layers if name not in settings.late_style_layers]

    @property
    def exact(self) -> bool:
        """True once no late style layer is left out."""
        return self.style_layers == self.all_style_layers

    def add_late_layers(self) -> None:
        """Bring the late style layers into the loss (the rest of the run pays for the deeper network)."""
        self.style_layers = self.all_style_layers

    def check_sizes(self) -> None:
        check_side(self.content, reach([*self.content_layers, *self.style_layers], self.speed), "content image")
        if self.style_layers:
            check_side(self.style, reach(self.style_layers, self.speed), "style image")

    def features(self, image: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
        if not layers:
            return {}
        if self.speed.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast(image.device, self.speed.autocast):
            return self.vgg(image, reach(layers, self.speed))

    def style_term(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        if not self.speed.fused_gram:
            return super().style_term(features, layer)
        target = self.style_grams[layer]
        loss = F.mse_loss(gram_matrix_fused(features), target.expand(features.shape[0], -1, -1))
        return relative_loss(loss, target) if self.settings.balance_style_layers else loss

    def terms(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.speed.targets_every_step:
            self.content_targets, self.style_grams = self.targets()
        return super().terms(image)


@dataclass
class SpeedResult(GatysResult):
    """:class:`~facestyle_utils.gatys.GatysResult` plus, for each step ``i``: ``times[i]``, the seconds
    elapsed when its loss was measured; ``sizes[i]``, the image width then; ``exact[i]``, True where
    that loss was the whole objective at full size (not a coarse step, no late layer left out); and
    ``snapshots``, (step, image) pairs."""

    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    exact: list[bool] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    @property
    def full_size_losses(self) -> list[float]:
        """Losses measured at the final image size (coarse steps left out)."""
        return [loss for loss, size in zip(self.losses, self.sizes) if size == self.sizes[-1]]

    def steps_to_reach(self, loss: float) -> int | None:
        """How many steps (coarse ones included) until the whole loss first fell to ``loss``."""
        return next((i + 1 for i, (value, exact) in enumerate(zip(self.losses, self.exact))
                     if exact and value <= loss), None)

    def seconds_to_reach(self, loss: float) -> float:
        """Seconds until the whole loss at full size first fell to ``loss`` (``inf`` if it never did)."""
        steps = self.steps_to_reach(loss)
        return math.inf if steps is None else self.times[steps - 1]


def resize_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a (N, C, H, W) batch, antialiased when shrinking (values not clamped)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def _shrunk(image: torch.Tensor, scale: float, shortest: int) -> tuple[int, int]:
    """(H, W) of ``image`` shrunk by ``scale``, or by less (same aspect ratio) so no side drops below ``shortest``."""
    height, width = image.shape[-2:]
    scale = min(1.0, max(scale, shortest / min(height, width)))
    return max(shortest, round(height * scale)), max(shortest, round(width * scale))


def coarse_sizes(content: torch.Tensor, style: torch.Tensor | None, settings: SpeedSettings
                 ) -> tuple[tuple[int, int], tuple[int, int] | None] | None:
    """(H, W) of the content and of the style image in the coarse stage, or None: no coarse stage.

    Each image shrinks by ``settings.coarse_scale``, or by less where a side would fall below what
    VGG19 needs for the loss's layers (:func:`facestyle_utils.vgg.min_side`: 16 px up to relu5_1). When
    the content cannot shrink at all (a face of 16 px or so), there is no coarse stage and
    :func:`stylize_fast` runs its steps at full size instead.
    """
    method = settings.method
    content_layers = list(method.content_layers) if method.content_weight else []
    style_layers = list(method.style_layers) if method.style_weight and style is not None else []
    small = _shrunk(content, settings.coarse_scale, min_side(reach([*content_layers, *style_layers], settings)))
    if not settings.coarse_steps or all(a >= b for a, b in zip(small, content.shape[-2:])):
        return None  # no side would shrink
    return small, None if style is None else _shrunk(style, settings.coarse_scale,
                                                     min_side(reach(style_layers, settings)))


#: The coarse stage is kept only where one of its steps costs at most this fraction of a full-size step.
COARSE_PAYS_BELOW = 0.5


def seconds_per_loss_step(vgg: VGG19Features, content: torch.Tensor, style: torch.Tensor | None,
                          settings: SpeedSettings, repeats: int = 3) -> float:
    """Median seconds of one forward + backward of ``settings``' loss at the images' size, after one untimed
    call (float (1, 3, H, W) images on the network's device; the device is synchronised around each call)."""
    objective = SpeedLoss(vgg, content, style, settings)
    image = content.detach().clone().requires_grad_(True)

    def step() -> None:
        image.grad = None
        objective(image)[0].backward()

    step()
    return statistics.median(timed(step, device=content.device)[1] for _ in range(repeats))


def choose_coarse_stage(content: torch.Tensor, style: torch.Tensor | None, vgg: VGG19Features,
                        settings: SpeedSettings) -> tuple[SpeedSettings, str]:
    """``settings`` with their coarse stage where it saves time on this device at this size, else with its
    steps moved to full size; and a sentence saying which, and why.

    A coarse step works on ``coarse_scale`` squared of the pixels (a seventh at 3/8), so on a CPU it
    costs a fraction of a full-size step. A fast GPU at 256 px is not kept busy by one image: each step costs about
    the same whatever its size (on an H200 the fast path with its coarse stage was estimated no
    faster than the plain loop, 2026-11-30), and the coarse stage only adds steps. So one step is
    timed at each size (:func:`seconds_per_loss_step`, a second or two) and the coarse stage is kept
    where it costs at most :data:`COARSE_PAYS_BELOW` of a full-size step. Images as for :func:`stylize_fast`.
    """
    content, style = as_float_images(content, style)
    sizes = coarse_sizes(content, style, settings)
    if sizes is None:
        return settings, "no coarse stage: coarse_steps is 0 or the face is too small to shrink"
    (height, width), style_size = sizes
    full = seconds_per_loss_step(vgg, content, style, settings)
    coarse = seconds_per_loss_step(vgg, resize_tensor(content, (height, width)),
                                   None if style is None else resize_tensor(style, style_size), settings)
    ratio = _ratio(coarse, full)  # NaN for a timing of 0: then the stage is left out
    where = (f"a step at {width}x{height} px took {ratio:.2f}x the time of one at "
             f"{content.shape[-1]}x{content.shape[-2]} px here")  # width x height, as lesson 02 prints sizes
    if ratio <= COARSE_PAYS_BELOW:
        return settings, f"coarse-to-fine on: {where}"
    moved = settings.replace(steps=settings.method.steps + settings.coarse_steps, coarse_steps=0)
    return moved, f"coarse-to-fine off: {where} (more than {COARSE_PAYS_BELOW}), so its steps would save little"


#: autocast and channels_last are kept only where a loss step with the switch takes at most this fraction
#: of one without it (a 5 % margin, so that timing noise does not choose).
SWITCH_PAYS_BELOW = 0.95
#: The switches :func:`choose_switches` measures: each changes how a step is computed (autocast also its
#: precision), never the loss it computes.
MEASURED_SWITCHES = ("autocast", "channels_last")


def choose_switches(content: torch.Tensor, style: torch.Tensor | None, vgg: VGG19Features,
                    settings: SpeedSettings) -> tuple[SpeedSettings, str]:
    """``settings`` with each of autocast and channels_last that is on kept only where it makes a loss step
    faster on this device at this size; and a sentence per switch saying what was measured.

    :func:`fast_settings` turns them on by what the hardware has (bf16 arithmetic, tensor cores that
    prefer NHWC). Whether they pay also depends on the size: one face at 256 px does not keep a big
    GPU busy, so a step costs its kernel launches, and autocast adds a cast of every VGG19 weight to
    16 bits at every step while channels_last adds layout changes. On an H200 both made a DCNN of
    lesson 03's shape slower at 512 px (inference, float16 autocast, 2026-11-30); the Gatys loss there is untried.
    So one loss step at full size is timed with and without each switch that is on
    (:func:`seconds_per_loss_step`, a second or two on a CPU), and a switch stays on where it takes at
    most :data:`SWITCH_PAYS_BELOW` of the time without it (the coarse stage, if kept, runs with the
    same switches). Switches that are off stay off. Images as for :func:`stylize_fast`.
    """
    content, style = as_float_images(content, style)
    notes = []
    for name in MEASURED_SWITCHES:
        if not getattr(settings, name):
            continue
        without = settings.replace(**{name: False})
        ratio = _ratio(seconds_per_loss_step(vgg, content, style, settings),
                       seconds_per_loss_step(vgg, content, style, without))
        kept = ratio <= SWITCH_PAYS_BELOW  # False for NaN: a timing of 0 proves nothing
        notes.append(f"{name} {'on' if kept else 'off'}: a loss step with it took {ratio:.2f}x the time "
                     f"without it here")
        settings = settings if kept else without
    return settings, "; ".join(notes) or "autocast and channels_last are off: nothing to measure"


def choose_fast_path(content: torch.Tensor, style: torch.Tensor | None, vgg: VGG19Features,
                     settings: SpeedSettings) -> tuple[SpeedSettings, str]:
    """``settings`` (usually :func:`fast_settings`) tuned to this device and size by brief measurements:
    :func:`choose_switches`, then :func:`choose_coarse_stage` (with the switches chosen); and what each
    measured, in one line. A few seconds on a CPU at 256 px."""
    settings, switches = choose_switches(content, style, vgg, settings)
    settings, coarse = choose_coarse_stage(content, style, vgg, settings)
    return settings, f"{switches}; {coarse}"


@dataclass
class _Record:
    """What :func:`stylize_fast` keeps of each step, and the user's callback."""

    result: SpeedResult
    settings: SpeedSettings
    callback: Callback | None
    begin: float = field(default_factory=time.perf_counter)
    stopped: bool = False  # the user's callback asked to stop

    def add(self, image: torch.Tensor, loss: float, exact: bool) -> bool:
        """Record one step; True if the user's callback asks to stop."""
        step, result, every = len(self.result.losses), self.result, self.settings.snapshot_every
        result.losses.append(loss)
        result.times.append(time.perf_counter() - self.begin)
        result.sizes.append(image.shape[-1])
        result.exact.append(exact)
        if every and step % every == 0:
            result.snapshots.append((step, image.clone()))
        self.stopped = bool(self.callback is not None and self.callback(step, image, loss))
        return self.stopped


def _stage(image: torch.Tensor, objective: SpeedLoss, steps: int, record: _Record, full_size: bool,
           progress: bool) -> None:
    """Run ``steps`` plain steps on ``image`` (none once the user's callback stopped the run), recording
    each step, and the last step's parts.

    At full size, late style layers join for the last ``late_steps`` steps, or as soon as the loss
    without them reaches ``target_loss`` (a term added can only raise it, so not before); the run
    stops once the whole loss reaches it. L-BFGS keeps its memory across the switch.
    """
    settings = record.settings
    stop_at = settings.target_loss if full_size else None
    if full_size and steps <= settings.late_steps:
        objective.add_late_layers()

    def on_step(index: int, now: torch.Tensor, loss: float) -> bool:
        exact = full_size and objective.exact
        stop = record.add(now, loss, exact)
        if stop_at is not None and loss <= stop_at:
            stop = stop or exact
            objective.add_late_layers()
        if full_size and index + 1 >= steps - settings.late_steps:
            objective.add_late_layers()
        return stop

    parts = run_steps(image, objective, 0 if record.stopped else steps, settings.method, on_step, progress)[1]
    record.result.parts = parts or record.result.parts


def stylize_fast(content: torch.Tensor, style: torch.Tensor | None, vgg: VGG19Features,
                 settings: SpeedSettings | GatysSettings | None = None, callback: Callback | None = None,
                 progress: bool = True) -> SpeedResult:
    """:func:`facestyle_utils.gatys.stylize_by_optimisation` with the switches of ``settings`` (default:
    :func:`fast_settings` for the content's device), recording each step (:class:`SpeedResult`).

    With ``coarse_steps > 0`` those steps come first, on images shrunk by ``coarse_scale`` (4x cheaper at
    0.5); the change is upsampled and ``method.steps`` more steps refine it at full size. A face too small
    to shrink (:func:`coarse_sizes`) runs all its steps at full size. Images, errors and
    ``result.image`` (float32 (1, 3, H, W) in [0, 1]) as for the plain function.
    """
    settings = fast_settings(content.device) if settings is None else as_speed(settings)
    method = settings.method
    check_one_image(content, "content image")
    content, style = as_float_images(content, style)
    image = start_image(content, method)
    record = _Record(SpeedResult(image=image), settings, callback)
    objective = SpeedLoss(vgg, content, style, settings)  # checks both sizes before any step
    sizes = coarse_sizes(content, style, settings)
    if sizes is not None:
        small, style_size = sizes
        small_content = resize_tensor(content, small)
        small_style = None if style is None else resize_tensor(style, style_size)
        coarse = resize_tensor(image, small).requires_grad_(True)
        _stage(coarse, SpeedLoss(vgg, small_content, small_style, settings), settings.coarse_steps, record,
               False, progress)
        if method.init == "content":  # upsample only what the optimisation *changed*: the face keeps its detail
            image = (content + resize_tensor(coarse.detach() - small_content, tuple(content.shape[-2:]))).clamp(0, 1)
        else:
            image = resize_tensor(coarse.detach(), tuple(content.shape[-2:])).clamp(0, 1)
    image = image.requires_grad_(True)
    steps = method.steps if sizes is not None else method.steps + settings.coarse_steps
    _stage(image, objective, steps, record, True, progress)
    result = record.result
    result.seconds = time.perf_counter() - record.begin
    result.image = preserve_colour(image.detach(), content) if method.preserve_colour else image.detach()
    return result


def total_loss(image: torch.Tensor, content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
               settings: SpeedSettings | GatysSettings | None = None) -> float:
    """The plain method's whole loss of ``image`` (fp32, full size, every style layer in) under ``settings``'
    method, to compare runs fairly. Images of any dtype (ImageLoadError, a ValueError, outside the rule)."""
    image = to_float_batch(image.detach(), "image")
    with torch.no_grad():
        loss, _ = GatysLoss(vgg, content, style, as_speed(settings).method)(image)
    return float(loss)


@dataclass
class SpeedRow:
    """One line of a speed table: a named variant, its cost per step and its time to a target loss."""

    name: str
    seconds_per_step: float
    seconds_to_target: float
    steps_to_target: int | None
    final_loss: float
    result: SpeedResult = field(repr=False)


def seconds_per_step(result: SpeedResult) -> float:
    """Median time between full-size steps (the first step also builds targets, so it is skipped)."""
    last = result.sizes[-1]
    times = [t for t, s in zip(result.times, result.sizes) if s == last]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2] if gaps else (times[0] if times else math.nan)


def _warm_up(content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
             variants: Iterable[SpeedSettings]) -> None:
    """Two untimed steps of each variant (and of its coarse stage), so that no variant timed pays for
    one-off set-up: kernel selection and loading, memory allocation, the first L-BFGS steps. On an
    H200 the first row timed took 5 s for 40 steps of 0.012 s (2026-11-30), with a lighter warm-up."""
    for settings in variants:
        short = settings.replace(steps=2, coarse_steps=min(settings.coarse_steps, 2), late_steps=1,
                                 target_loss=None, snapshot_every=0)
        stylize_fast(content, style, vgg, short, progress=False)


def compare_speed(content: torch.Tensor, style: torch.Tensor, vgg: VGG19Features,
                  variants: dict[str, SpeedSettings | GatysSettings], target_loss: float | None = None,
                  progress: bool = True) -> list[SpeedRow]:
    """Run each named variant and measure seconds per step and seconds to reach ``target_loss``.

    Without a target, the first variant's last loss is the target (run it with plain settings).
    Variants stop as soon as they reach the target. The loss compared is always the whole loss at
    full size. Each variant first runs two steps untimed (:func:`_warm_up`). Images of any dtype, as
    :func:`stylize_fast` takes them.
    """
    content, style = as_float_images(content, style)
    variants = {name: as_speed(settings) for name, settings in variants.items()}
    _warm_up(content, style, vgg, variants.values())
    rows: list[SpeedRow] = []
    for name, settings in variants.items():
        if target_loss is not None:
            settings = settings.replace(target_loss=target_loss)
        result = stylize_fast(content, style, vgg, settings, progress=progress)
        if target_loss is None:  # the last loss that is a number (a NaN one sent the run back, see run_steps)
            target_loss = next((loss for loss in reversed(result.losses) if math.isfinite(loss)), math.nan)
        rows.append(SpeedRow(name, seconds_per_step(result), result.seconds_to_reach(target_loss),
                             result.steps_to_reach(target_loss), result.losses[-1], result))
    return rows


def _ratio(new: float, old: float) -> float:
    """``new / old``, NaN unless both are finite and ``old`` is not 0 (nothing to compare)."""
    return new / old if old and math.isfinite(old) and math.isfinite(new) else math.nan


def _compared(ratio: float) -> str:
    """"0.62x the time (faster)", "... (slower)" or "... (about the same)", with a 5% dead band."""
    if not math.isfinite(ratio):
        return "not comparable (a run did not reach the target)"
    verdict = "faster" if ratio < 0.95 else "slower" if ratio > 1.05 else "about the same, within 5%"
    return f"{ratio:.2f}x the time ({verdict})"


def speed_verdicts(rows: Sequence[SpeedRow], baselines: dict[str, str] | None = None) -> list[str]:
    """One sentence per row after the first, computed from the rows: its time per step and to the target
    against its baseline (``baselines[row.name]``, a row name, or else the row above); then the last row's
    time to the target against the first's. KeyError for a baseline that is not a row's name."""
    by_name = {row.name: row for row in rows}
    lines = []
    for before, row in zip(rows, rows[1:]):
        before = by_name[baselines[row.name]] if baselines and row.name in baselines else before
        lines.append(f"{row.name} vs {before.name}: per step "
                     f"{_compared(_ratio(row.seconds_per_step, before.seconds_per_step))}, to the target "
                     f"{_compared(_ratio(row.seconds_to_target, before.seconds_to_target))}")
    if len(rows) > 1:
        overall = _ratio(rows[-1].seconds_to_target, rows[0].seconds_to_target)
        lines.append(f"{rows[-1].name} vs {rows[0].name}, to the target: {_compared(overall)}")
    return lines

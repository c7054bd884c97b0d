"""A small, reusable training loop: the machinery every model in the course trains with.

:func:`train` runs ``config.steps`` optimisation steps with a progress bar showing the live
loss, a learning-rate schedule, gradient clipping, mixed precision where the device does it
well, validation every N steps and atomic checkpoints every M steps. Stopped at any point (an
interrupted kernel, a crash), it resumes from the last checkpoint and ends with exactly the
weights an uninterrupted run would have reached: the data order is a function of the seed and
the step, and every random-number generator state is saved with the weights.

:class:`PairedLoss` is the objective of lesson 03: pixel + perceptual (+ optional style).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from . import distributed
from .checkpoints import CheckpointError, CheckpointManager, load_model_state, model_state, rng_states, set_rng_states
from .losses import gram_matrix, perceptual_loss, style_loss
from .runtime import mixed_precision_dtype, mixed_precision_pays
from .vgg import LAYER_INDEX, LAYER_NAMES, VGG19Features

LossFunction = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class TrainConfig:
    """Settings of one training run (saved in every checkpoint)."""

    steps: int = 1000
    lr: float = 1e-3
    schedule: str = "cosine"  # "cosine" (warm-up then cosine decay), "step" (x0.1 at 2/3) or "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05  # cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0  # max gradient norm; None turns clipping off
    val_every: int = 100
    checkpoint_every: int = 100
    mixed_precision: str = "auto"  # "auto", "off", "fp16" or "bf16"
    channels_last: bool = True  # faster convolutions on CPU (measured: ~1.6x here) and on recent GPUs
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'constant', not {self.schedule!r}")
        if self.mixed_precision not in ("auto", "off", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be 'auto', 'off', 'fp16' or 'bf16', not {self.mixed_precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    """What happened during training: one row per step, one row per validation."""

    train: list[dict[str, float]] = field(default_factory=list)
    val: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def curve(self, key: str = "loss", split: str = "train") -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, e.g. ``curve("pixel")`` or ``curve("psnr", "val")``."""
        rows = [row for row in getattr(self, split) if key in row]
        return [int(row["step"]) for row in rows], [row[key] for row in rows]

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train, "val": self.val, "seconds": self.seconds}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.train, self.val, self.seconds = list(state["train"]), list(state["val"]), float(state["seconds"])


# ----------------------------------------------------------------------------- data
@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with Python, NumPy and torch (CPU) seeded to ``seed``, then put their states back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class BatchStream:
    """Endless, resumable batches from a dataset: the data side of exact resume.

    Epoch ``e`` visits the dataset in an order shuffled with ``seed + e``, and each sample is
    loaded with the random generators seeded from (seed, epoch, position, slot in the batch), so
    random augmentation gives the same crops and flips whether or not the run was interrupted,
    and however the batch is shared out. Its state is just (epoch, position). Loading runs in
    the main process, which on a 2-core machine costs little next to the network.

    Data parallel training (:mod:`facestyle_utils.distributed`) calls :meth:`shard`: every process
    then walks the same global order and loads only its own contiguous share of each batch, so N
    processes together see exactly the samples (and augmentations) one process would.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0,
                 collate: Callable[[list[Any]], Any] = default_collate) -> None:
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: nothing to train on")
        self.dataset, self.seed, self.collate = dataset, seed, collate
        self.batch_size = min(batch_size, len(dataset))  # drop_last with a batch larger than the data: no batches
        self.epoch, self.position = 0, 0
        self.rank, self.world_size = 0, 1
        self._order: list[int] | None = None

    def __len__(self) -> int:
        """Batches per epoch (the last, incomplete batch is dropped)."""
        return len(self.dataset) // self.batch_size

    def shard(self, rank: int, world_size: int) -> "BatchStream":
        """Load only share ``rank`` of ``world_size`` equal shares of every (global) batch; returns self."""
        if self.batch_size % world_size:
            raise ValueError(f"a global batch of {self.batch_size} cannot be split evenly over {world_size} "
                             f"processes; choose a batch size that is a multiple of {world_size}")
        self.rank, self.world_size = rank, world_size
        return self

    def _epoch_order(self) -> list[int]:
        if self._order is None:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            self._order = torch.randperm(len(self.dataset), generator=generator).tolist()
        return self._order

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> Any:
        if self.position >= len(self):
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        share = self.batch_size // self.world_size
        first = self.position * self.batch_size + self.rank * share
        samples = []
        for slot, index in enumerate(self._epoch_order()[first: first + share], start=self.rank * share):
            with seeded(((self.seed * 1_000_003 + self.epoch) * 1_000_033 + self.position * 4099 + slot) % 2**31):
                samples.append(self.dataset[index])
        self.position += 1
        return self.collate(samples)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None


# ----------------------------------------------------------------------------- pieces of the loop
def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) over the parameters that train (a frozen encoder has none)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then the chosen schedule."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "step":
        return 0.1 if step >= 2 * config.steps // 3 else 1.0
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))


def precision_for(device: torch.device, requested: str = "auto") -> torch.dtype | None:
    """The autocast dtype to train with, or None for plain float32.

    "auto" picks 16-bit autocast where it pays (:func:`runtime.mixed_precision_pays`): float16
    (with loss scaling) on CUDA, bfloat16 on a CPU with bf16 hardware, and float32 elsewhere:
    on CPUs that emulate bfloat16 a backward pass is far slower than float32 (measured on the
    course's 2-core AMD CPU: VGG19 at 192 px, 0.34 s fp32 vs 30 s bf16), and MPS autocast gains
    little for this size of model.
    """
    if requested == "off":
        return None
    if requested == "fp16":
        return torch.float16
    if requested == "bf16":
        return torch.bfloat16
    return mixed_precision_dtype(device) if mixed_precision_pays(device) else None


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.ndim == 4 else batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(item, device, channels_last) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device, channels_last) for key, value in batch.items()}
    return batch


# ----------------------------------------------------------------------------- the loop
def train(model: nn.Module, loss_fn: LossFunction, data: BatchStream, config: TrainConfig, *,
          validate: Callable[[nn.Module], dict[str, float]] | None = None,
          checkpoints: CheckpointManager | None = None, resume: bool = True,
          device: torch.device | str | None = None, progress: bool = True,
          stop_after: int | None = None, extra_config: dict[str, Any] | None = None) -> History:
    """Train ``model`` for ``config.steps`` steps; returns the :class:`History` (also of earlier, resumed steps).

    ``loss_fn(model, batch)`` returns ``(loss, {name: value})``. ``validate(model)`` returns metrics
    and runs every ``config.val_every`` steps (model in eval mode, no gradients). With
    ``checkpoints`` and ``resume=True`` training continues from the newest good checkpoint.
    ``stop_after`` ends the call early after that many steps (to demonstrate an interruption), with a
    checkpoint saved there.
    ``extra_config`` (e.g. the model and loss settings) is stored in every checkpoint.

    The model is trained in place on ``device`` (it stays there); its memory layout and
    train/eval mode are as they were when the call returns, even when ``config.channels_last``
    trained it in NHWC.

    Under ``torchrun`` (after :func:`facestyle_utils.distributed.start`) the same call trains
    data parallel: each process takes its share of every batch, DDP averages the gradients,
    rank 0 alone writes checkpoints and shows progress (see :mod:`facestyle_utils.distributed`).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    layout_before, mode_before = memory_format_of(model), model.training
    model.to(device=device, memory_format=memory_format)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    amp_dtype = precision_for(device, config.mixed_precision)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    history, step = History(), 0

    if checkpoints is not None and resume and (state := checkpoints.load_latest()) is not None:
        _check_same_settings(state, config, extra_config, checkpoints)
        load_model_state(model, state["model"], source=str(checkpoints.path_for(state["step"])))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        data.load_state_dict(state["data"])
        history.load_state_dict(state["history"])
        set_rng_states(state["rng"])
        step = int(state["step"])
        if distributed.is_main() and progress:
            print(f"resuming from {checkpoints.path_for(step).name} in {checkpoints.folder} "
                  f"(step {step} of {config.steps})" + ("; nothing left to train" if step >= config.steps else ""))
    else:
        if checkpoints is not None and not resume and distributed.is_main():
            checkpoints.clear()  # a fresh run must not mix with an older run's files
        torch.manual_seed(config.seed)
    parallel, main = distributed.active(), distributed.is_main()
    if parallel:  # under torchrun: this process's share of each batch; gradients averaged by DDP
        data.shard(distributed.rank(), distributed.world_size())
    forward = distributed.data_parallel(model, loss_fn, device) if parallel else (lambda batch: loss_fn(model, batch))

    def save() -> None:
        if checkpoints is not None and main:
            checkpoints.save({"model": model_state(model), "optimizer": optimizer.state_dict(),
                              "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                              "data": data.state_dict(), "history": history.state_dict(), "rng": rng_states(),
                              "config": {"train": config.to_dict(), **(extra_config or {})}}, step)

    last = config.steps if stop_after is None else min(config.steps, step + stop_after)
    bar = tqdm(total=config.steps, initial=step, desc="training", disable=not (progress and main), dynamic_ncols=True)
    begin = time.perf_counter() - history.seconds
    try:
        while step < last:
            model.train()
            batch = _to_device(next(data), device, config.channels_last)
            with autocast:
                loss, parts = forward(batch)
            logged = distributed.mean_across(float(loss.detach())) if parallel else float(loss.detach())
            if not math.isfinite(logged):  # the same verdict on every process
                raise FloatingPointError(f"loss became {logged} at step {step + 1}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            step += 1
            history.train.append({"step": step, "loss": logged, "lr": lr, **parts})
            bar.update(1)
            bar.set_postfix(loss=f"{history.train[-1]['loss']:.4f}", lr=f"{lr:.1e}")
            if validate is not None and (step % config.val_every == 0 or step == config.steps):
                history.val.append({"step": step, **run_validation(model, validate)})
                bar.set_postfix(loss=f"{history.train[-1]['loss']:.4f}",
                                **{k: f"{v:.3g}" for k, v in history.val[-1].items() if k != "step"})
            history.seconds = time.perf_counter() - begin
            if step % config.checkpoint_every == 0 or step == config.steps or step == last:
                save()  # also where stop_after ends the call, so the next call resumes exactly here
    except KeyboardInterrupt:
        if not main:
            raise
        saved = checkpoints.checkpoints()[-1].name if checkpoints is not None and checkpoints.checkpoints() else None
        print(f"Interrupted at step {step}. " + (f"Run it again (same cell or command) to resume from {saved}."
                                                  if saved else "No checkpoint was saved."))
        raise
    finally:
        bar.close()
        model.to(memory_format=layout_before).train(mode_before)
    return history


def memory_format_of(model: nn.Module) -> torch.memory_format:
    """``torch.channels_last`` when the model's 4-D weights are stored NHWC, else ``torch.contiguous_format``."""
    telling = [p for p in model.parameters()  # a 1x1 kernel is stored the same way in both layouts
               if p.ndim == 4 and p.is_contiguous() != p.is_contiguous(memory_format=torch.channels_last)]
    nhwc = telling and all(p.is_contiguous(memory_format=torch.channels_last) for p in telling)
    return torch.channels_last if nhwc else torch.contiguous_format


def _check_same_settings(state: Mapping[str, Any], config: TrainConfig, extra: dict[str, Any] | None,
                         checkpoints: CheckpointManager) -> None:
    """Refuse to resume a run that was started with other settings: the result would be neither run."""
    saved, current = state["config"], {"train": config.to_dict(), **(extra or {})}
    changed = sorted(key for group in set(saved) | set(current)
                     for key in set(saved.get(group, {})) | set(current.get(group, {}))
                     if saved.get(group, {}).get(key) != current.get(group, {}).get(key))
    if changed:
        raise CheckpointError(f"{checkpoints.folder}: its checkpoints were made with other settings "
                              f"(changed: {', '.join(changed)}); pass resume=False to start again, "
                              "or use another checkpoint folder")


def run_validation(model: nn.Module, validate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
    """Call ``validate`` in eval mode without gradients, leaving the random generators untouched."""
    was_training = model.training
    model.eval()
    states = rng_states()
    try:
        with torch.no_grad():
            return {key: float(value) for key, value in validate(model).items()}
    finally:
        set_rng_states(states)
        model.train(was_training)


# ----------------------------------------------------------------------------- the lesson-03 objective
@dataclass
class LossWeights:
    """How much each term counts. Pixel keeps colours right, perceptual keeps edges and texture
    sharp, style (optional, 0 = off) pulls the Gram statistics towards the target domain's."""

    pixel: float = 1.0
    perceptual: float = 0.05
    style: float = 0.0
    pixel_kind: str = "l1"  # "l1" (sharper) or "mse" (what PSNR measures)
    perceptual_layers: Sequence[str] = ("relu1_1", "relu2_1")
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["perceptual_layers"], data["style_layers"] = list(self.perceptual_layers), list(self.style_layers)
        return data


class PairedLoss:
    """Loss of a stylizer on a batch of (source, target) pairs: weighted pixel + perceptual + style.

    The target's VGG features are computed once per batch without gradients; only the output's
    features need a backward pass. Pass the stylizer's own (frozen) encoder as ``vgg`` to share it.
    """

    def __init__(self, vgg: VGG19Features, weights: LossWeights | None = None) -> None:
        self.vgg, self.weights = vgg, weights or LossWeights()
        w = self.weights
        if w.pixel_kind not in ("l1", "mse"):
            raise ValueError(f"pixel_kind must be 'l1' or 'mse', not {w.pixel_kind!r}")
        self.layers = list(dict.fromkeys([*(w.perceptual_layers if w.perceptual else ()),
                                          *(w.style_layers if w.style else ())]))
        too_deep = [name for name in self.layers if LAYER_INDEX[name] >= len(vgg.layers)]
        if too_deep:
            deepest = LAYER_NAMES[len(vgg.layers) - 1]
            raise ValueError(f"layers {too_deep} lie beyond this VGG19, which stops at {deepest}; "
                             "pass the full network from load_vgg19() or choose shallower layers")

    def __call__(self, model: nn.Module,
                 batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        source, target = batch[0], batch[1]
        output = model(source)
        return self.compare(output, target)

    def compare(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of an output against its target, and each weighted term's value."""
        w = self.weights
        pixel = F.l1_loss(output, target) if w.pixel_kind == "l1" else F.mse_loss(output, target)
        total, parts = w.pixel * pixel, {"pixel": float(pixel.detach())}
        if self.layers:
            with torch.no_grad():
                target_features = self.vgg(target, self.layers)
            features = self.vgg(output, self.layers)
            if w.perceptual:
                perceptual = sum(perceptual_loss(features[k], target_features[k]) for k in w.perceptual_layers)
                total = total + w.perceptual * perceptual
                parts["perceptual"] = float(perceptual.detach())
            if w.style:
                style = sum(style_loss(features[k], gram_matrix(target_features[k])) for k in w.style_layers)
                total = total + w.style * style
                parts["style"] = float(style.detach())
        return total, parts


class PairedRandomCrop:
    """Augmentation for learning a filter: the same random crop (no resizing) and flip on both sides.

    No rescaling and no colour jitter on purpose: the target was made by a filter at this scale
    from these exact colours, so resizing or recolouring the pair would teach a different filter.
    Takes PIL images or (3, H, W) tensors; returns tensors (3, size, size) in [0, 1].
    """

    def __init__(self, size: int, flip: float = 0.5) -> None:
        self.size, self.flip = size, flip

    def __call__(self, *images: Any) -> tuple[torch.Tensor, ...]:
        from .image_io import image_to_tensor

        tensors = [image if isinstance(image, torch.Tensor) else image_to_tensor(image)[0] for image in images]
        height, width = tensors[0].shape[-2:]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"a paired crop needs images of one size, got {[tuple(t.shape) for t in tensors]}")
        if min(height, width) < self.size:
            raise ValueError(f"crop size {self.size} is larger than the image ({width}x{height})")
        top = int(torch.randint(0, height - self.size + 1, (1,)))
        left = int(torch.randint(0, width - self.size + 1, (1,)))
        flip = bool(torch.rand(1) < self.flip)
        out = []
        for tensor in tensors:
            crop = tensor[..., top: top + self.size, left: left + self.size]
            out.append(crop.flip(-1) if flip else crop)
        return tuple(out)

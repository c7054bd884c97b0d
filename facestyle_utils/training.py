"""A small, generic training loop: the machinery every model in the course trains with.

:func:`train` runs ``config.steps`` optimisation steps. Its heart is the textbook step::

    loss, parts = loss_fn(model, batch)
    optimizer.zero_grad(); loss.backward(); optimizer.step(); scheduler.step()

around which it adds a progress bar showing the live loss, a learning-rate schedule, gradient
clipping, mixed precision where the device does it well, validation every N steps and atomic
checkpoints every M steps. Stopped at any point (an interrupted kernel, a crash), it resumes from
the last checkpoint and ends with exactly the weights an uninterrupted run would have reached:
the data order is a function of the seed and the step (:class:`BatchStream`), and every
random-number generator state is saved with the weights (:class:`TrainState`).

What it does not do (in the manner of minGPT's ``Trainer``): it knows no model, loss or data
format. The objective is any ``loss_fn(model, batch) -> (loss, parts)`` and lives beside its
model (:class:`facestyle_utils.nets.PairedLoss` for lesson 03, ``drn.UnpairedLoss`` for lesson
04, ``student.distillation_loss`` for lesson 05); datasets and augmentation are in
:mod:`facestyle_utils.datasets`. It has one optimizer (AdamW), keeps the last weights (no model
selection by validation score, no early stopping) and logs only to :class:`History` and the bar.
"""
from __future__ import annotations

import contextlib
import math
import random
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from . import distributed
from .checkpoints import (
    CheckpointError,
    CheckpointManager,
    config_fingerprint,
    load_model_state,
    model_state,
    rng_states,
    set_rng_states,
)
from .runtime import mixed_precision_dtype, mixed_precision_pays, output_dir, progress_bar

LossFunction = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]
Validator = Callable[[nn.Module], "dict[str, float]"]


@dataclass
class TrainConfig:
    """What one training run learns with (saved in every checkpoint; a resume must use the same)."""

    steps: int = 1000
    learning_rate: float = 1e-3  # the peak rate, after warm-up
    schedule: str = "cosine"  # "cosine" (warm-up then cosine decay), "step" (x0.1 at 2/3) or "constant"
    warmup_steps: int = 0
    min_learning_rate_ratio: float = 0.05  # cosine ends at learning_rate * min_learning_rate_ratio
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
class RunOptions:
    """How one call of :func:`train` runs, beside what it learns (:class:`TrainConfig`).

    ``validate(model) -> {name: value}`` runs every ``config.val_every`` steps (eval mode, no
    gradients). With ``checkpoints`` and ``resume`` training continues from the newest good
    checkpoint; ``resume=False`` deletes the folder's checkpoints first. ``device``: where to
    train (default: where the model's parameters are). ``progress``: show the bar and messages.
    ``stop_after`` ends the call early after that many steps (to demonstrate an interruption),
    with a checkpoint saved there. ``settings`` (e.g. the model and loss configs, as dicts) are
    stored in every checkpoint and, like the :class:`TrainConfig`, must match to resume.
    """

    validate: Validator | None = None
    checkpoints: CheckpointManager | None = None
    resume: bool = True
    device: torch.device | str | None = None
    progress: bool = True
    stop_after: int | None = None
    settings: dict[str, Any] | None = None


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
    """AdamW over the parameters that train (a frozen encoder has none)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then the chosen schedule."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    if config.schedule == "step":
        return 0.1 if step >= 2 * config.steps // 3 else 1.0
    span = max(1, config.steps - config.warmup_steps)
    done = min(1.0, (step - config.warmup_steps) / span)  # fraction of the decay behind us
    floor = config.min_learning_rate_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))


def precision_for(device: torch.device, requested: str = "auto") -> torch.dtype | None:
    """The autocast dtype to train with, or None for plain float32.

    "auto" picks 16-bit autocast where it pays (:func:`runtime.mixed_precision_pays`): on CUDA,
    bfloat16, or float16 with loss scaling on GPUs without bfloat16 tensor cores
    (:func:`runtime.mixed_precision_dtype`); bfloat16 on a CPU with bf16 hardware; float32 elsewhere:
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


@dataclass
class TrainState:
    """Everything that changes while training runs, and so everything a checkpoint holds."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    data: BatchStream
    history: History = field(default_factory=History)
    step: int = 0

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's contents (without the settings): weights, optimizer, schedule, data position, RNGs."""
        return {"model": model_state(self.model), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "data": self.data.state_dict(), "history": self.history.state_dict(), "rng": rng_states()}

    def load_state_dict(self, state: Mapping[str, Any], source: str) -> None:
        """Put a checkpoint's contents back, random generators included; ``source`` names it in errors."""
        load_model_state(self.model, state["model"], source=source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.data.load_state_dict(state["data"])
        self.history.load_state_dict(state["history"])
        set_rng_states(state["rng"])
        self.step = int(state["step"])


def saved_settings(config: TrainConfig, options: RunOptions) -> dict[str, Any]:
    """The settings a checkpoint stores and a resume compares: the train config and ``options.settings``."""
    return {"train": config.to_dict(), **(options.settings or {})}


def resume_or_start(state: TrainState, config: TrainConfig, options: RunOptions) -> None:
    """Continue from the newest checkpoint (same settings only), or start afresh seeded with ``config.seed``.

    Starting afresh with ``options.resume=False`` deletes the folder's older checkpoints first, so
    a fresh run never mixes with an older run's files.
    """
    checkpoints = options.checkpoints
    if checkpoints is not None and options.resume and (saved := checkpoints.load_latest()) is not None:
        saved = upgrade_checkpoint(saved)
        _check_same_settings(saved["config"], saved_settings(config, options), checkpoints)
        state.load_state_dict(saved, source=str(checkpoints.path_for(saved["step"])))
        if distributed.is_main() and options.progress:
            print(f"resuming from {checkpoints.path_for(state.step).name} in {checkpoints.folder} "
                  f"(step {state.step} of {config.steps})"
                  + ("; nothing left to train" if state.step >= config.steps else ""))
        return
    if checkpoints is not None and not options.resume and distributed.is_main():
        checkpoints.clear()
    torch.manual_seed(config.seed)


def save_checkpoint(state: TrainState, config: TrainConfig, options: RunOptions) -> None:
    """Write the training state and its settings (rank 0 only; nothing without a checkpoint folder)."""
    if options.checkpoints is not None and distributed.is_main():
        options.checkpoints.save({**state.state_dict(), "config": saved_settings(config, options)}, state.step)


def checkpoints_for(group: str, config: TrainConfig, settings: dict[str, Any] | None = None) -> CheckpointManager:
    """A checkpoint folder of its own for one set of settings: ``build/<group>/checkpoints-<fingerprint>``.

    The fingerprint (:func:`~facestyle_utils.checkpoints.config_fingerprint`) covers ``config`` and
    ``settings`` (the same dicts :func:`train` saves), so changing a loss weight starts a new run in a
    new folder instead of being refused by the old run's checkpoints; rerunning with the same settings
    finds and resumes the old run.
    """
    fingerprint = config_fingerprint(saved_settings(config, RunOptions(settings=settings)))
    return CheckpointManager(output_dir(group, f"checkpoints-{fingerprint}"))


#: Setting names of checkpoints written before the glossary's names (the new name of each).
_RENAMED = {"lr": "learning_rate", "min_lr_ratio": "min_learning_rate_ratio"}


def upgrade_checkpoint(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of an older run with today's names: ``lr`` became ``learning_rate`` in its settings
    (every group, e.g. ``train`` and ``recipe``) and in its history rows. Same format otherwise."""
    rename = lambda row: {_RENAMED.get(key, key): value for key, value in row.items()}  # noqa: E731
    config = {group: rename(values) if isinstance(values, dict) else values
              for group, values in saved["config"].items()}
    history = dict(saved["history"], train=[rename(row) for row in saved["history"]["train"]])
    return {**saved, "config": config, "history": history}


def _check_same_settings(saved: Mapping[str, Any], current: Mapping[str, Any], checkpoints: CheckpointManager) -> None:
    """Refuse to resume a run that was started with other settings: the result would be neither run."""
    changed = sorted(key for group in set(saved) | set(current)
                     for key in set(saved.get(group, {})) | set(current.get(group, {}))
                     if saved.get(group, {}).get(key) != current.get(group, {}).get(key))
    if changed:
        raise CheckpointError(f"{checkpoints.folder}: its checkpoints were made with other settings "
                              f"(changed: {', '.join(changed)}); pass resume=False to start again, "
                              "or use another checkpoint folder")


#: The smallest float16 loss scale training goes on with: float16's smallest normal number. GradScaler starts
#: at 65536 and halves the scale at every step whose gradients overflowed (that step is skipped); it doubles
#: it only after 2000 steps without one, so in the course's runs the halvings add up over the run. A few at the
#: start are normal; after 31 of them float16 cannot hold this model's gradients, and training would
#: otherwise go on without updates or lose gradients of order 1 to underflow.
MIN_LOSS_SCALE = 2.0 ** -14
#: What the float16 errors of :func:`training_step` add: the precision that does not have the problem.
FLOAT16_ADVICE = "; or train with mixed_precision='off' (float32), or 'bf16' where the device has it"


def training_step(state: TrainState, forward: Callable[[Any], tuple], batch: Any, config: TrainConfig,
                  autocast: contextlib.AbstractContextManager) -> dict[str, float]:
    """One optimisation step: forward, backward (loss-scaled under float16), clip, step, schedule.

    Returns the history row of this step: its number, the loss (averaged over processes under
    DDP), the learning rate it used and the loss parts. FloatingPointError when the loss is not finite, or
    when float16 cannot hold the gradients (:data:`MIN_LOSS_SCALE`).
    """
    with autocast:
        loss, parts = forward(batch)
    logged = distributed.mean_across(float(loss.detach())) if distributed.active() else float(loss.detach())
    optimizer, scaler = state.optimizer, state.scaler
    if not math.isfinite(logged):  # the same verdict on every process
        raise FloatingPointError(f"loss became {logged} at step {state.step + 1}; lower the learning rate"
                                 + (FLOAT16_ADVICE if scaler.is_enabled() else ""))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if config.grad_clip is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], config.grad_clip)
    scale = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)  # under float16: skipped, and the scale halved, when a gradient overflowed
    scaler.update()
    skipped = scale is not None and scaler.get_scale() < scale
    if skipped and scaler.get_scale() < MIN_LOSS_SCALE:
        raise FloatingPointError(f"float16 cannot hold this model's gradients: at step {state.step + 1} the loss "
                                 f"scale fell to {scaler.get_scale():.1e}, each halving a step skipped because a "
                                 "gradient overflowed" + FLOAT16_ADVICE)
    learning_rate = optimizer.param_groups[0]["lr"]
    step_schedule(state.scheduler, skipped)
    state.step += 1
    return {"step": state.step, "loss": logged, "learning_rate": learning_rate, **parts}


def step_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler, skipped: bool) -> None:
    """Advance the learning-rate schedule by one step, also after a step the float16 scaler ``skipped``.

    The schedule follows the step count either way (so a resumed run matches). PyTorch warns when the
    very first optimizer step was skipped, as if the two calls were in the wrong order; they are not,
    so that warning is silenced for a skipped step only.
    """
    if not skipped:
        scheduler.step()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"), UserWarning)
        scheduler.step()


# ----------------------------------------------------------------------------- the loop
def train(model: nn.Module, loss_fn: LossFunction, data: BatchStream, config: TrainConfig,
          options: RunOptions | None = None) -> History:
    """Train ``model`` for ``config.steps`` steps; returns the :class:`History` (also of earlier, resumed steps).

    ``loss_fn(model, batch)`` returns ``(loss, {name: value})``; ``data`` gives the batches;
    ``options`` (:class:`RunOptions`) says where to validate, checkpoint and train, and how much to show.

    The model is trained in place on ``options.device`` (it stays there); its memory layout and
    train/eval mode are as they were when the call returns, even when ``config.channels_last``
    trained it in NHWC.

    Under ``torchrun`` (after :func:`facestyle_utils.distributed.start`) the same call trains
    data parallel: each process takes its share of every batch, DDP averages the gradients,
    rank 0 alone writes checkpoints and shows progress (see :mod:`facestyle_utils.distributed`).
    """
    options = options or RunOptions()
    device = torch.device(options.device) if options.device is not None else next(model.parameters()).device
    layout_before, mode_before = memory_format_of(model), model.training
    model.to(device=device, memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)
    optimizer = make_optimizer(model, config)
    amp_dtype = precision_for(device, config.mixed_precision)
    state = TrainState(model, optimizer, make_scheduler(optimizer, config),
                       torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16), data)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    resume_or_start(state, config, options)
    forward = _forward(model, loss_fn, data, device)
    last = config.steps if options.stop_after is None else min(config.steps, state.step + options.stop_after)
    bar = progress_bar(total=config.steps, initial=state.step, desc="training", dynamic_ncols=True,
                       disable=not (options.progress and distributed.is_main()))
    begin = time.perf_counter() - state.history.seconds
    try:
        while state.step < last:
            model.train()
            batch = _to_device(next(data), device, config.channels_last)
            state.history.train.append(training_step(state, forward, batch, config, autocast))
            if options.validate is not None and (state.step % config.val_every == 0 or state.step == config.steps):
                state.history.val.append({"step": state.step, **run_validation(model, options.validate)})
            _show(bar, state.history)
            state.history.seconds = time.perf_counter() - begin
            if state.step % config.checkpoint_every == 0 or state.step in (config.steps, last):
                save_checkpoint(state, config, options)  # also where stop_after ends, to resume exactly here
    except KeyboardInterrupt:
        _report_interrupt(state.step, options.checkpoints)
        raise
    finally:
        bar.close()
        model.to(memory_format=layout_before).train(mode_before)
    return state.history


def _forward(model: nn.Module, loss_fn: LossFunction, data: BatchStream, device: torch.device) -> Callable:
    """``batch -> loss_fn(model, batch)``; under torchrun, this process's share of each batch through DDP."""
    if not distributed.active():
        return lambda batch: loss_fn(model, batch)
    data.shard(distributed.rank(), distributed.world_size())
    return distributed.data_parallel(model, loss_fn, device)


def _show(bar, history: History) -> None:
    """Advance the bar one step and show the loss and learning rate, or the latest validation scores."""
    bar.update(1)
    row = history.train[-1]
    if history.val and history.val[-1]["step"] == row["step"]:
        bar.set_postfix(loss=f"{row['loss']:.4f}", **{k: f"{v:.3g}" for k, v in history.val[-1].items() if k != "step"})
    else:
        bar.set_postfix(loss=f"{row['loss']:.4f}", learning_rate=f"{row['learning_rate']:.1e}")


def _report_interrupt(step: int, checkpoints: CheckpointManager | None) -> None:
    """On Ctrl-C (rank 0 only): where the run can resume from."""
    if not distributed.is_main():
        return
    saved = checkpoints.checkpoints()[-1].name if checkpoints is not None and checkpoints.checkpoints() else None
    print(f"Interrupted at step {step}. " + (f"Run it again (same cell or command) to resume from {saved}."
                                              if saved else "No checkpoint was saved."))


def memory_format_of(model: nn.Module) -> torch.memory_format:
    """``torch.channels_last`` when the model's 4-D weights are stored NHWC, else ``torch.contiguous_format``."""
    telling = [p for p in model.parameters()  # a 1x1 kernel is stored the same way in both layouts
               if p.ndim == 4 and p.is_contiguous() != p.is_contiguous(memory_format=torch.channels_last)]
    nhwc = telling and all(p.is_contiguous(memory_format=torch.channels_last) for p in telling)
    return torch.channels_last if nhwc else torch.contiguous_format


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode and without gradients, then hand it back in the mode it
    came in (also when the block raises). For validation, and for a teacher labelling photos."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def run_validation(model: nn.Module, validate: Validator) -> dict[str, float]:
    """Call ``validate`` in eval mode without gradients, leaving the random generators untouched."""
    states = rng_states()
    try:
        with evaluating(model):
            return {key: float(value) for key, value in validate(model).items()}
    finally:
        set_rng_states(states)

"""Checkpoints: save training often and safely, resume exactly, and ship small model files.

Two kinds of file:

- a *training checkpoint* (``checkpoint-0000200.pt``): everything needed to continue a run as
  if it had never stopped (trainable weights, optimiser, LR scheduler, step, random-number
  generator states, data position, history, config). Written every N steps.
- a *model file* (``dcnn.pt``): the trained weights and the config only, versioned, for the
  later lessons to load. Frozen parts (the VGG19 encoder) are left out: they are rebuilt from
  the VGG19 weights, so the file stays small.

Models wrapped by ``torch.compile`` or (Distributed)DataParallel are saved as the bare model
(:func:`unwrap_model`): same keys, same size, loadable anywhere; older files whose keys carry the
wrappers' ``_orig_mod.``/``module.`` prefixes still load.

Every file is written to a temporary file and renamed into place (``os.replace`` is atomic),
so a crash or a full disk never leaves half a checkpoint under the real name, and the
previous checkpoint is only deleted once a newer one is safely on disk. Files are read with
``torch.load(..., weights_only=True)``, which refuses to run code hidden in a pickle.
"""
from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Collection

import numpy as np
import torch
from torch import nn

from .files import atomic_write

#: Version of the training-checkpoint layout; bump when its keys change.
CHECKPOINT_VERSION = 1
#: Marker and version of the small model files read by lessons 05 and 06.
MODEL_FORMAT = "facestyle-model"
MODEL_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint or model file is missing, truncated, corrupted or of the wrong kind; names the file."""


# ----------------------------------------------------------------------------- raw files
def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, flush it to disk, then rename into place."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty (0 bytes); the save was probably interrupted")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, random bytes, an HTML page, a pickle with code in it, ...
        raise CheckpointError(f"{path}: cannot be read as a checkpoint: it is truncated or corrupted "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict inside the file, found {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------- model weights
#: Key prefixes that wrappers add to a state dict: ``torch.compile`` and (Distributed)DataParallel.
WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside ``torch.compile``, ``nn.DataParallel`` and ``DistributedDataParallel`` wrappers.

    Nested wrappers (a compiled DataParallel, ...) are all removed. The bare model shares its
    parameters with the wrappers, so loading weights into it loads them into the wrapped model.
    A model that is not wrapped is returned as it is. Nothing is copied or moved.
    """
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def strip_wrapper_prefixes(state: dict[str, torch.Tensor], expected: Collection[str] = ()) -> dict[str, torch.Tensor]:
    """A new state dict without the ``_orig_mod.``/``module.`` prefixes of a model saved while wrapped.

    A prefix is removed only when every key has it and the ``expected`` keys do not (a model may
    have a submodule really named ``module``). ``state`` itself is left unchanged.
    """
    state = dict(state)
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(key.startswith(p) for key in state)), None)
        if prefix is None or any(key.startswith(prefix) for key in expected):
            break
        state = {key[len(prefix):]: value for key, value in state.items()}
    return state


def _frozen_prefixes(model: nn.Module) -> tuple[str, ...]:
    return tuple(f"{name}." for name in getattr(model, "frozen_modules", ()))


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bare model's state dict without its frozen modules (``model.frozen_modules``), on the CPU.

    Wrappers are looked through (:func:`unwrap_model`), so a compiled or DataParallel model gives
    the same keys and tensors as the bare one. Tensors are detached copies; the model is not changed.
    """
    return {key: value.detach().cpu().clone() for key, value in _kept_state(model).items()}


def _kept_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bare model's own state dict entries (no copies) minus its frozen modules."""
    model = unwrap_model(model)
    frozen = _frozen_prefixes(model)
    return {key: value for key, value in model.state_dict().items() if not key.startswith(frozen)}


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load weights saved by :func:`model_state` into ``model`` (wrapped or not), in place.

    Files written from a wrapped model by older code load too: their ``_orig_mod.``/``module.``
    prefixes are stripped and leaked frozen weights (e.g. the VGG19 encoder) are ignored, since
    frozen modules are rebuilt, not loaded. ``state`` is not changed.

    Raises:
        CheckpointError: missing or unexpected keys, naming ``source``.
    """
    model = unwrap_model(model)
    expected = set(_kept_state(model))
    frozen = _frozen_prefixes(model)
    state = {key: value for key, value in strip_wrapper_prefixes(state, expected).items()
             if not key.startswith(frozen)}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        wrapped = any(key.startswith(WRAPPER_PREFIXES) for key in unexpected)
        cause = ("some keys carry the '_orig_mod.'/'module.' prefixes of a model saved while wrapped by "
                 "torch.compile or DataParallel; save the bare model (checkpoints.unwrap_model)" if wrapped
                 else "was it saved with another config?")
        raise CheckpointError(f"{source}: weights do not fit this model (missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]}); {cause}")
    model.load_state_dict(state, strict=False)


# ----------------------------------------------------------------------------- random states
def rng_states() -> dict[str, Any]:
    """The states of every random-number generator a training step may use (Python, NumPy, torch)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [list(item) if isinstance(item, tuple) else item for item in random.getstate()],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore generator states saved by :func:`rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


# ----------------------------------------------------------------------------- training checkpoints
def config_fingerprint(config: dict[str, Any]) -> str:
    """A short hash of a run's settings, e.g. to give each set of settings its own checkpoint folder."""
    import hashlib
    import json

    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


class CheckpointManager:
    """Periodic training checkpoints in one folder: ``checkpoint-<step>.pt``, newest ``keep`` kept.

    ``keep`` is at least 2, so the previous good checkpoint survives until a newer one is fully
    written; if the newest file turns out to be damaged, :meth:`load_latest` says so and falls
    back to the one before.
    """

    def __init__(self, folder: str | os.PathLike, keep: int = 2) -> None:
        if keep < 2:
            raise ValueError("keep must be at least 2, so a good checkpoint always survives a bad save")
        self.folder = Path(folder)
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.folder / f"checkpoint-{step:07d}.pt"

    def checkpoints(self) -> list[Path]:
        """Checkpoint files in the folder, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def save(self, state: dict[str, Any], step: int) -> Path:
        """Write the state for ``step`` atomically, then delete checkpoints beyond the newest ``keep``."""
        path = atomic_save({"version": CHECKPOINT_VERSION, "step": step, **state}, self.path_for(step))
        for old in self.checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Read one checkpoint; a damaged or foreign file raises :class:`CheckpointError` naming it."""
        data = safe_load(path)
        if data.get("version") != CHECKPOINT_VERSION or "step" not in data:
            raise CheckpointError(f"{path}: not a training checkpoint of version {CHECKPOINT_VERSION} "
                                  f"(found version {data.get('version')!r})")
        return data

    def load_latest(self) -> dict[str, Any] | None:
        """The newest readable checkpoint (with a warning for each damaged newer one), or None if there is none."""
        for path in reversed(self.checkpoints()):
            try:
                return self.load(path)
            except CheckpointError as err:
                warnings.warn(f"skipping a damaged checkpoint: {err}", stacklevel=2)
        return None

    def clear(self) -> None:
        """Delete all checkpoints in the folder (start training from scratch)."""
        for path in self.checkpoints():
            path.unlink()


# ----------------------------------------------------------------------------- small model files
#: Model kinds a model file can hold: kind -> (config class, model class). Lesson 04 adds its own.
MODEL_KINDS: dict[str, tuple[type, Callable[..., nn.Module]]] = {}


def register_model_kind(kind: str, config_class: type, model_class: Callable[..., nn.Module]) -> None:
    """Make :func:`load_model` able to rebuild models of ``kind`` (config must take keyword arguments)."""
    MODEL_KINDS[kind] = (config_class, model_class)


def _register_builtin_kinds() -> None:
    from .drn import DRNConfig, DRNStylizer
    from .nets import DCNNConfig, DCNNStylizer
    from .student import FastStudent, StudentConfig

    register_model_kind("dcnn", DCNNConfig, DCNNStylizer)
    register_model_kind("drn", DRNConfig, DRNStylizer)
    register_model_kind("student", StudentConfig, FastStudent)


_register_builtin_kinds()


def default_model_path(name: str = "dcnn_cartoon") -> Path:
    """Where lessons save and look for a trained model: ``build/models/<name>.pt``.

    Quick mode (tests, CI) uses ``<name>_quick.pt``, so a quick run never replaces a fully trained model.
    """
    from .runtime import output_dir, quick_mode

    return output_dir("models") / f"{name}{'_quick' if quick_mode() else ''}.pt"


def save_model(model: nn.Module, path: str | os.PathLike, *, kind: str = "dcnn",
               metadata: dict[str, Any] | None = None) -> Path:
    """Save trained weights + config (no frozen VGG19 weights) as a small versioned model file.

    ``model`` may be wrapped by ``torch.compile`` or (Distributed)DataParallel: the bare model is
    saved (:func:`unwrap_model`), so the file is the same as for the bare model and loads with
    :func:`load_model`. ``metadata`` (plain numbers and strings: style name, image size, PSNR, ...)
    travels along. The model is not changed.

    Raises:
        ValueError: ``kind`` is not registered (see :func:`register_model_kind`).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; registered: {', '.join(MODEL_KINDS)}")
    model = unwrap_model(model)
    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dict(vars(model.config))
    return atomic_save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "kind": kind, "config": config,
                        "state_dict": model_state(model), "metadata": dict(metadata or {})}, path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a model file's header; errors say what is wrong with which file."""
    data = safe_load(path)
    if data.get("format") != MODEL_FORMAT:
        hint = " (this is a training checkpoint; use save_model to export a model)" if "optimizer" in data else ""
        raise CheckpointError(f"{path}: not a facestyle model file{hint}")
    if data.get("version") != MODEL_VERSION:
        raise CheckpointError(f"{path}: model file version {data.get('version')!r} is not supported "
                              f"(this code reads version {MODEL_VERSION}); re-export it with save_model")
    if data.get("kind") not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {data.get('kind')!r}; known: {', '.join(MODEL_KINDS)}")
    return data


def load_model(path: str | os.PathLike, device: torch.device | str | None = None, **model_kwargs: Any) -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`, in eval mode on ``device``.

    Extra keyword arguments go to the model class (e.g. ``vgg=`` to share an already loaded VGG19).
    The file's metadata is available as ``model.metadata``.
    """
    data = read_model_file(path)
    config_class, model_class = MODEL_KINDS[data["kind"]]
    try:
        config = config_class(**data["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: config does not fit {config_class.__name__}: {err}") from None
    model = model_class(config, **model_kwargs)
    load_model_state(model, data["state_dict"], source=str(path))
    model.metadata = data.get("metadata", {})
    return model.to(device or "cpu").eval()

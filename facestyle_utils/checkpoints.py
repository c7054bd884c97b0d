"""Checkpoints: save training often and safely, resume exactly, and ship small model files.

Two kinds of file:

- a *training checkpoint* (``checkpoint-0000200.pt``): everything needed to continue a run as
  if it had never stopped (trainable weights, optimiser, LR scheduler, step, random-number
  generator states, data position, history, config). Written every N steps.
- a *model file* (``dcnn.pt``): the trained weights and the config only, versioned, for the
  later lessons to load. Frozen parts (the VGG19 encoder) are left out: they are rebuilt from
  the VGG19 weights, so the file stays small.

Models wrapped by ``torch.compile``, (Distributed)DataParallel or ``AveragedModel``, whole or in
their submodules, are saved as the bare model (:func:`unwrap_model`, :func:`model_state`): same
keys, same size, loadable anywhere; older files whose keys carry the wrappers' ``_orig_mod.``/
``module.`` hops (at any depth) still load.

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


#: Leading bytes of files that users mistake for model files: magic bytes -> what the file looks like.
FOREIGN_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
                 b"RIFF": "a WebP image, AVI video or WAV sound", b"%PDF": "a PDF document",
                 b"\x1f\x8b": "a gzip archive",
                 b"\x93NUMPY": "a NumPy array (.npy)", b"<": "an HTML or XML page, e.g. a failed download",
                 b"{": "a JSON text file"}
#: How every ``torch.save`` file begins: a zip archive (PyTorch >= 1.6) or a pickle (older, protocol >= 2).
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _sniff(path: Path) -> str | None:
    """Why ``path`` is not a PyTorch file, judging by its first bytes (:data:`FOREIGN_MAGIC`); None if it may be one."""
    with open(path, "rb") as handle:
        head = handle.read(16).lstrip(b"\xef\xbb\xbf \t\r\n")  # a UTF-8 BOM or blank lines before '<'
    if not head or head.startswith(TORCH_MAGIC):
        return None
    looks = next((what for magic, what in FOREIGN_MAGIC.items() if head.startswith(magic)), None)
    return f"not a PyTorch file ({f'looks like {looks}' if looks else f'starts with {head[:8]!r}'})"


def _load_error(path: Path, err: Exception) -> CheckpointError:
    """One line naming ``path`` and the real cause of a failed ``torch.load(weights_only=True)``."""
    text = _ANSI.sub("", str(err))
    if "Weights only load failed" in text:
        found = _GLOBAL.search(text)
        return CheckpointError(
            f"{path}: holds a pickled Python object{f' ({found.group(1)})' if found else ''}, e.g. a whole model "
            "saved with torch.save(model), which weights_only loading refuses for safety (a pickle can run code); "
            "re-save the weights with checkpoints.save_model(model, path)")
    first = re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0].splitlines()[0][:200] if text.strip() else ""
    return CheckpointError(f"{path}: cannot be read as a checkpoint: it is truncated or corrupted "
                           f"({type(err).__name__}: {first})")


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a file holding a dict, on ``map_location``.

    Raises:
        CheckpointError: one line naming the file and the cause: missing, a folder, empty, unreadable,
            not a PyTorch file (an image, an HTML page, ... recognised by its first bytes), a pickled
            Python object such as a whole model (refused for safety), truncated or corrupted, not a dict.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        empty, foreign = path.stat().st_size == 0, _sniff(path)
    except OSError as err:  # no permission, a vanished network drive, ...
        raise CheckpointError(f"{path}: cannot be read ({type(err).__name__}: {err.strerror or err})") from None
    if empty:
        raise CheckpointError(f"{path}: file is empty (0 bytes); the save was probably interrupted")
    if foreign is not None:
        raise CheckpointError(f"{path}: {foreign}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, a pickle with code in it, ...
        raise _load_error(path, err) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict inside the file, found {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------- model weights
#: Names of the attribute holding the wrapped model, which wrappers add to state-dict keys.
WRAPPER_ATTRIBUTES = ("_orig_mod", "module")
#: Wrappers whose wrapped model is ``.module``: (Distributed)DataParallel and ``AveragedModel`` (SWA, EMA).
_MODULE_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel, torch.optim.swa_utils.AveragedModel)


def _wrapped(module: nn.Module) -> tuple[str, nn.Module] | None:
    """(attribute, inner model) when ``module`` is a wrapper (``torch.compile``, DataParallel, AveragedModel)."""
    inner = getattr(module, "_orig_mod", None)
    if isinstance(inner, nn.Module):  # torch.compile's OptimizedModule
        return "_orig_mod", inner
    if isinstance(module, _MODULE_WRAPPERS):
        return "module", module.module
    return None


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside ``torch.compile``, (Distributed)DataParallel and ``AveragedModel`` wrappers.

    Nested wrappers (a compiled DataParallel, ...) are all removed. The bare model shares its
    parameters with the wrappers, so loading weights into it loads them into the wrapped model.
    A model that is not wrapped is returned as it is. Nothing is copied or moved. Wrapped
    *submodules* (``model.decoder = torch.compile(model.decoder)``) stay; :func:`model_state`
    looks through them.
    """
    while (inner := _wrapped(model)) is not None:
        model = inner[1]
    return model


def _bare_keys(model: nn.Module, keys: Collection[str]) -> dict[str, str]:
    """State-dict key -> the same entry's key without wrapped submodules' ``_orig_mod.``/``module.`` hops.

    Hops are found from the model's structure, so a submodule really named ``module`` is kept.
    A wrapper's own entries (``AveragedModel.n_averaged``) are left out.
    """
    hops, wrappers = set(), set()
    for name, module in model.named_modules(remove_duplicate=False):
        if (inner := _wrapped(module)) is not None:
            wrappers.add(name)
            hops.add(f"{name}.{inner[0]}" if name else inner[0])
    bare = {}
    for key in keys:
        parts = key.split(".")
        if ".".join(parts[:-1]) in wrappers:
            continue
        bare[key] = ".".join(part for i, part in enumerate(parts) if ".".join(parts[: i + 1]) not in hops)
    return bare


def _frozen_prefixes(model: nn.Module) -> tuple[str, ...]:
    return tuple(f"{name}." for name in getattr(model, "frozen_modules", ()))


def _kept_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Bare key -> key in ``state`` (the bare model's own state dict) for every entry not in a frozen module."""
    frozen = _frozen_prefixes(model)
    return {bare: key for key, bare in _bare_keys(model, state).items() if not bare.startswith(frozen)}


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bare model's state dict without its frozen modules (``model.frozen_modules``), on the CPU.

    Wrappers are looked through (:func:`unwrap_model`), also around submodules, so a compiled,
    DataParallel or AveragedModel model gives the same keys as the bare one. Tensors are detached
    copies; the model is not changed.
    """
    model = unwrap_model(model)
    state = model.state_dict()
    return {bare: state[key].detach().cpu().clone() for bare, key in _kept_keys(model, state).items()}


def _check_state(state: Any, source: str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a dict of named tensors."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: the weights (state dict) are {type(state).__name__}, "
                              "expected a dict of named tensors")
    bad = next((key for key, value in state.items() if not (isinstance(key, str) and torch.is_tensor(value))), None)
    if bad is not None:
        raise CheckpointError(f"{source}: the weights (state dict) hold {type(state[bad]).__name__} under {bad!r}, "
                              "expected named tensors")


def _normal_key(key: str) -> str:
    return ".".join(part for part in key.split(".") if part not in WRAPPER_ATTRIBUTES)


def _match_keys(state: dict[str, torch.Tensor], kept: Collection[str], frozen: tuple[str, ...],
                source: str) -> dict[str, torch.Tensor]:
    """``state`` under the model's bare keys: wrapper hops at any depth removed, frozen and SWA entries dropped."""
    by_normal = {_normal_key(key): key for key in kept}
    if len(by_normal) < len(kept):  # keys differ only in real submodules named 'module': match exactly
        by_normal = {}
    matched, unexpected = {}, []
    for key, value in state.items():
        target = key if key in kept else by_normal.get(_normal_key(key))
        if target is None:
            if not (_normal_key(key).startswith(frozen) or key.rsplit(".", 1)[-1] == "n_averaged"):
                unexpected.append(key)
        elif target in matched:
            raise CheckpointError(f"{source}: the weights hold {target!r} twice, with and without the "
                                  "'_orig_mod.'/'module.' prefixes of torch.compile or DataParallel")
        else:
            matched[target] = value
    missing = sorted(set(kept) - set(matched))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not fit this model (missing {missing[:5]}, unexpected "
                              f"{sorted(unexpected)[:5]}); was it saved from another kind of model or config?")
    return matched


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load weights saved by :func:`model_state` into ``model`` (wrapped or not, also in its submodules), in place.

    Files written from a wrapped model by older code load too: their ``_orig_mod.``/``module.``
    hops (at any depth, e.g. ``decoder._orig_mod.``) are removed, and leaked frozen weights (e.g.
    the VGG19 encoder) and ``AveragedModel``'s ``n_averaged`` are ignored. Tensors are copied
    into the model's own (device, dtype); ``state`` is not changed.

    Raises:
        CheckpointError: ``state`` is not a dict of tensors, keys are missing or unexpected, or a
            tensor's shape differs from the model's (naming ``source``, the first such key and both shapes).
    """
    _check_state(state, source)
    model = unwrap_model(model)
    own = model.state_dict()
    kept = _kept_keys(model, own)
    matched = _match_keys(state, kept, _frozen_prefixes(model), source)
    for bare, value in matched.items():
        if value.shape != own[kept[bare]].shape:
            raise CheckpointError(f"{source}: weights do not fit this model: {bare} has shape {list(value.shape)} "
                                  f"in the file but {list(own[kept[bare]].shape)} in the model; "
                                  "was it saved with another config?")
    model.load_state_dict({kept[bare]: value for bare, value in matched.items()}, strict=False)


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
    """Where lessons save and look for a trained model: ``build/models/<name>.pt`` in full mode.

    Quick mode (tests, CI) and workshop mode use ``build/quick/models/`` and ``build/workshop/models/``
    (:func:`~facestyle_utils.runtime.output_dir`), so neither ever replaces a fully trained model.
    """
    from .runtime import output_dir

    return output_dir("models") / f"{name}.pt"


#: Value types a model file's metadata may hold (also in lists and tuples): what JSON and the studio show.
PLAIN_TYPES = (str, int, float, bool, type(None))


def metadata_problem(metadata: Any) -> str | None:
    """Why ``metadata`` is not a dict of plain values (:data:`PLAIN_TYPES`, or lists of them), or None if it is."""
    if not isinstance(metadata, dict):
        return f"metadata is {type(metadata).__name__} {metadata!r:.40}, expected a dict of plain values"
    for key, value in metadata.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        if not isinstance(key, str) or not all(isinstance(item, PLAIN_TYPES) for item in items):
            return (f"metadata entry {key!r} holds {type(value).__name__}; expected names with strings, numbers, "
                    "booleans or None (or lists of them)")
    return None


def save_model(model: nn.Module, path: str | os.PathLike, *, kind: str = "dcnn",
               metadata: dict[str, Any] | None = None) -> Path:
    """Save trained weights + config (no frozen VGG19 weights) as a small versioned model file.

    ``model`` may be wrapped by ``torch.compile``, (Distributed)DataParallel or ``AveragedModel``
    (SWA/EMA: its averaged weights are saved), also around submodules: the bare model's weights
    are saved under bare keys (:func:`model_state`), so the file is the same as for the bare model
    and loads with :func:`load_model`. ``metadata`` (a dict of plain values: style name, image
    size, PSNR, ...) travels along. The model is not changed.

    Raises:
        ValueError: ``kind`` is not registered (see :func:`register_model_kind`), the model has no
            ``config`` (it is not one of the course's models), or ``metadata`` is not a dict of plain values.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; registered: {', '.join(MODEL_KINDS)}")
    bare = unwrap_model(model)
    if not hasattr(bare, "config"):
        raise ValueError(f"cannot save a {type(bare).__name__}: save_model needs a course model with a .config "
                         f"({', '.join(cls.__name__ for _, cls in MODEL_KINDS.values())}), wrapped or not")
    if (problem := metadata_problem(dict(metadata or {}))) is not None:
        raise ValueError(f"save_model: {problem}")
    config = bare.config.to_dict() if hasattr(bare.config, "to_dict") else dict(vars(bare.config))
    return atomic_save({"format": MODEL_FORMAT, "version": MODEL_VERSION, "kind": kind, "config": config,
                        "state_dict": model_state(bare), "metadata": dict(metadata or {})}, path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a model file and check its header, weights and metadata (``None`` metadata becomes ``{}``).

    Returns the file's dict: ``format``, ``version``, ``kind``, ``config`` (dict), ``state_dict``
    (dict of tensors, on the CPU) and ``metadata`` (dict of plain values).

    Raises:
        CheckpointError: one line naming the file and what is wrong with it (see :func:`safe_load`,
            then: not a model file, unsupported version, unknown kind, config not a dict, weights
            not a dict of tensors, metadata not a dict of plain values).
    """
    data = safe_load(path)
    if data.get("format") != MODEL_FORMAT:
        bare_weights = bool(data) and all(torch.is_tensor(value) for value in data.values())
        hint = (" (this is a training checkpoint; use save_model to export a model)" if "optimizer" in data else
                " (it holds only a state dict; save the model with save_model)" if bare_weights else "")
        raise CheckpointError(f"{path}: not a facestyle model file{hint}")
    if data.get("version") != MODEL_VERSION:
        raise CheckpointError(f"{path}: model file version {data.get('version')!r} is not supported "
                              f"(this code reads version {MODEL_VERSION}); re-export it with save_model")
    if data.get("kind") not in MODEL_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {data.get('kind')!r}; known: {', '.join(MODEL_KINDS)}")
    if not isinstance(data.get("config"), dict):
        raise CheckpointError(f"{path}: config is {type(data.get('config')).__name__}, expected a dict")
    _check_state(data.get("state_dict"), str(path))
    data["metadata"] = {} if data.get("metadata") is None else data["metadata"]
    if (problem := metadata_problem(data["metadata"])) is not None:
        raise CheckpointError(f"{path}: {problem}")
    return data


def load_model(path: str | os.PathLike, device: torch.device | str | None = None, **model_kwargs: Any) -> nn.Module:
    """Rebuild a model from a file written by :func:`save_model`, in eval mode on ``device`` (default CPU).

    Extra keyword arguments go to the model class (e.g. ``vgg=`` to share an already loaded VGG19).
    The file's metadata (a dict of plain values) is available as ``model.metadata``.

    Raises:
        CheckpointError: the file cannot be read or checked (:func:`read_model_file`), its config does not
            fit the model class, or its weights do not fit the model built from its config
            (:func:`load_model_state`); always one line naming the file.
    """
    data = read_model_file(path)
    config_class, model_class = MODEL_KINDS[data["kind"]]
    try:
        config = config_class(**data["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: config does not fit {config_class.__name__}: {err}") from None
    model = model_class(config, **model_kwargs)
    load_model_state(model, data["state_dict"], source=str(path))
    model.metadata = data["metadata"]
    return model.to(device or "cpu").eval()

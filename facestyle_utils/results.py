"""Recorded results: each training/inference lesson writes its headline numbers to one JSON file per run.

Lessons 03, 04 and 05 end by calling :func:`record_results`, which writes
``build/results/<notebook>.json`` (under ``build/quick/`` or ``build/workshop/`` in those modes, so a
quick test run never replaces the numbers of a full one). Each file says which mode and which hardware produced it,
so a table in the README, a run time quoted in a notebook or a sentence in the text can be checked
against the run it came from (:func:`read_results`).

Units are in the key names: ``_db`` decibels (PSNR), ``_ms`` milliseconds, ``_seconds``/``_s`` seconds;
SSIM is unitless in [-1, 1].
"""
from __future__ import annotations

import datetime
import json
import math
import numbers
from pathlib import Path
from typing import Any

import torch

from . import runtime
from .files import atomic_write


def results_path(notebook: str, mode: str | None = None) -> Path:
    """Where ``notebook``'s results go: ``results/<notebook>.json`` in the mode's output folder
    (:func:`runtime.output_dir`: ``build/`` in full mode, ``build/quick/``, ``build/workshop/``).

    ``notebook``: the notebook's file name with or without ``.ipynb`` (``"03_dcnn_training"``).
    ``mode``: the mode to look up (``"quick"``, ``"workshop"``, ``"full"``); None means the current one.
    """
    stem = Path(notebook).name.removesuffix(".ipynb")
    if not stem or stem in (".", ".."):
        raise ValueError(f"not a notebook name: {notebook!r}")
    return runtime.output_dir("results", mode=mode) / f"{stem}.json"


def _plain(value: Any, key: str) -> Any:
    """JSON-native copy of a result: tensors and numpy scalars become floats; NaN/inf are refused."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"result {key!r}: expected a number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"result {key!r}: {type(value).__name__} is not a number, text or table") from None
    if not math.isfinite(number):
        raise ValueError(f"result {key!r} is {number}: a run that produced it is broken, not a result")
    return int(number) if isinstance(value, numbers.Integral) else number


def record_results(notebook: str, results: dict[str, Any], device: torch.device | str) -> Path:
    """Write ``results`` with the mode, the hardware (:func:`runtime.describe_device`) and the time; returns the path.

    ``results``: names to numbers (float, int, one-element tensor), text or nested tables of them.
    The file is replaced atomically, so a crash mid-write never leaves half a file.
    ValueError for a reserved key (``mode``, ``hardware``, ``recorded``, ``notebook``) or a value that
    is not a finite number, text or table.
    """
    reserved = {"mode", "hardware", "recorded", "notebook"} & set(results)
    if reserved:
        raise ValueError(f"{', '.join(sorted(reserved))}: reserved keys, written by record_results itself")
    record = {"notebook": Path(notebook).name.removesuffix(".ipynb"),
              "mode": runtime.course_mode(),
              "hardware": runtime.describe_device(device),
              "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              **_plain(results, "results")}
    path = results_path(notebook)
    with atomic_write(path) as handle:
        handle.write((json.dumps(record, indent=2) + "\n").encode())
    return path


def read_results(notebook: str, mode: str | None = None) -> dict[str, Any]:
    """The recorded results of ``notebook`` for a mode (``"quick"``, ``"workshop"``, ``"full"``; None: the current one).

    FileNotFoundError naming the file if that notebook has not been run in that mode yet;
    ValueError naming the file if it is not a results record.
    """
    mode = runtime.course_mode() if mode is None else mode
    path = results_path(notebook, mode)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no recorded run yet; run notebooks/{path.stem}.ipynb in {mode} mode first")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a results record ({err})") from None
    if not isinstance(record, dict) or not {"mode", "hardware"} <= set(record):
        raise ValueError(f"{path}: not a results record (no mode/hardware)")
    return record

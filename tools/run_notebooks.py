"""Execute every notebook in notebooks/ top to bottom (what `make course` runs).

Executed copies go to build/notebooks/, figures to build/figures/. Full mode by default;
FACESTYLE_QUICK=1 runs the quick versions and FACESTYLE_WORKSHOP=1 the workshop versions, whose outputs go
under build/quick/ and build/workshop/ so they never replace a full run's. Pass notebook names to run only
some of them. Each notebook's run time is recorded, with the hardware, in ``run_times.json`` beside the
executed copies (the source of the lesson times quoted in README.md and TEACHING.md).

Progress bars in the executed copies are plain text (``FACESTYLE_PROGRESS=text``, read by
``facestyle_utils.runtime.progress_bar``) and each cell's stream outputs are merged with carriage returns
applied, so a copy shows a finished bar's last line: a saved widget bar would show its first state, "0%".
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import zmq
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from facestyle_utils import runtime
from facestyle_utils.files import atomic_write

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
#: What the kernels of the executed copies see (unless already set): text progress bars, see the docstring.
KERNEL_ENV_DEFAULTS = {"FACESTYLE_PROGRESS": "text"}


def run(path: Path, out_dir: Path) -> float:
    """Execute one notebook in its own folder and save the executed copy; returns seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    kernel = _kernel_manager(kernel_transport())
    client = NotebookClient(notebook, timeout=3600, kernel_name="python3", km=kernel, coalesce_streams=True,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    try:
        client.execute(env={**KERNEL_ENV_DEFAULTS, **os.environ})
    finally:
        nbformat.write(notebook, out_dir / path.name)
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
        if kernel.transport == "ipc":
            shutil.rmtree(Path(kernel.ip).parent, ignore_errors=True)
    return time.perf_counter() - start


def kernel_transport() -> str:
    """How the runner talks to its kernels without plain TCP, which makes every kernel print ipykernel's
    "Kernel is running over TCP without encryption" warning; the warning names these two remedies.

    ``"ipc"``: local sockets, where the OS has them (not Windows). ``"curve"``: TCP encrypted with
    CurveZMQ keys that jupyter_client provisions (its ``transport_encryption``, jupyter_client 8.10+).
    ``"tcp"``: neither is available, and the warning stays.
    """
    if sys.platform != "win32" and zmq.has("ipc"):
        return "ipc"
    if zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names():
        return "curve"
    return "tcp"


def _kernel_manager(transport: str) -> KernelManager:
    """A kernel manager for :func:`kernel_transport`'s answer."""
    if transport == "ipc":
        sockets = Path(tempfile.mkdtemp(prefix="facestyle-kernel-"))  # an absolute path: the kernel runs in notebooks/
        return KernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "ipc"))
    if transport == "curve":
        return KernelManager(kernel_name="python3", transport_encryption="auto")
    return KernelManager(kernel_name="python3")


def record_time(path: Path, notebook: str, seconds: float, mode: str) -> None:
    """Add one notebook's run time (seconds, wall clock) with its hardware and date to ``path`` (JSON),
    replaced atomically; a file that is not such a record is started again, with a message naming it."""
    try:
        times = json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        times = None
    if not isinstance(times, dict):
        print(f"{path}: not a run-times record; starting a new one", flush=True)
        times = {}
    times[notebook] = {"seconds": round(seconds, 1), "mode": mode,
                       "hardware": runtime.describe_device(runtime.pick_device()),
                       "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with atomic_write(path) as handle:
        handle.write((json.dumps(times, indent=2) + "\n").encode())


def main(names: list[str]) -> int:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    mode = runtime.course_mode()
    build = BUILD / runtime.mode_folder(mode)  # runtime.output_dir's rule, inside the repository
    out_dir = build / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    print(f"Running {len(paths)} notebooks in {mode} mode; executed copies go to {out_dir.relative_to(ROOT)}/")
    failed = []
    for index, path in enumerate(paths, start=1):
        print(f"[{index}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        try:
            seconds = run(path, out_dir)
            print(f"done in {seconds:.0f} s", flush=True)
            record_time(out_dir / "run_times.json", path.stem, seconds, mode)
        except CellExecutionError as err:
            print("FAILED")
            print(str(err)[-3000:], file=sys.stderr)
            failed.append(path.name)
    print(f"\nExecuted notebooks: {out_dir.relative_to(ROOT)}/   Figures: {(build / 'figures').relative_to(ROOT)}/")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)} (open the executed copy to see where)")
        return 1
    print("All notebooks ran. Open them with `make lab`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

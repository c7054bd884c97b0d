"""Lesson 05's checkers pass their reference solutions and reject the stub and typical slips."""
import pytest
import torch

from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_05 import (
    check_batch,
    check_fastest,
    check_half_strength,
    solution_batch,
    solution_fastest,
    solution_half_strength,
)
from facestyle_utils.inference import Stylizer
from facestyle_utils.sample_data import load_sample
from facestyle_utils.student import FastStudent, StudentConfig


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    return FastStudent(StudentConfig(base_channels=8, residual_blocks=1)).eval()


def test_check_half_strength(student):
    stylizer = Stylizer(student, device="cpu")
    photo = load_sample("astronaut", max_side=48)
    full = stylizer.stylize(photo)
    assert check_half_strength(None, photo, full).startswith("not done yet")
    assert check_half_strength(solution_half_strength(stylizer, photo), photo, full) == PASS
    assert "use strength=0.5" in check_half_strength(full, photo, full)
    assert "use strength=0.5" in check_half_strength(stylizer.stylize(photo, strength=0.6), photo, full)
    assert "PIL image" in check_half_strength(torch.zeros(3, 48, 48), photo, full)
    assert "size" in check_half_strength(photo.resize((24, 24)), photo, full)


ROWS = [{"path": "plain", "size": "64x64", "latency (ms)": 10.0},
        {"path": "autocast", "size": "64x64", "latency (ms)": 2.0},
        {"path": "plain", "size": "128x128", "latency (ms)": 40.0},
        {"path": "onnx", "size": "128x128", "latency (ms)": 25.0},
        {"path": "channels_last", "size": "128x128", "latency (ms)": 30.0}]


def test_check_fastest():
    assert solution_fastest(ROWS) == ("onnx", 1.6)
    assert check_fastest(None, ROWS).startswith("not done yet")
    assert check_fastest(solution_fastest(ROWS), ROWS) == PASS
    assert "not the fastest path at the largest size" in check_fastest(("autocast", 5.0), ROWS)  # smallest size
    assert "plain's latency divided by" in check_fastest(("onnx", 25 / 40), ROWS)  # the ratio upside down
    assert "pair" in check_fastest("onnx", ROWS)


def test_check_batch(student):
    faces = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert check_batch(None, student, faces).startswith("not done yet")
    assert check_batch(solution_batch(student, faces), student, faces) == PASS
    with torch.no_grad():
        assert "inference_mode" in check_batch(student(faces[:4]), student, faces)
    with torch.inference_mode():
        assert "shape (4, 3, 16, 16)" in check_batch(student(faces), student, faces)
        assert "differs from student" in check_batch(student(faces[2:]), student, faces)

"""Lesson 06's checkers pass their reference solutions and reject the stub and typical slips.

A small stand-in for the studio app holds what the checkers read (``strength``, ``result``, ``crop``,
``save``); the real app's behaviour behind them is tested in tests/test_widgets.py.
"""
from types import SimpleNamespace

import torch

from facestyle_utils import runtime
from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_06 import (
    check_blend,
    check_half,
    check_saved,
    solution_blend,
    solution_half,
    solution_saved,
)
from facestyle_utils.image_io import image_to_tensor, tensor_to_image
from facestyle_utils.studio import blend_result
from facestyle_utils.studio_io import save_new


class FakeStudio:
    """The result is the crop blended with a fixed raw stylization at the slider's strength, like the app."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.raw, before = torch.rand(1, 3, 16, 16, generator=generator), torch.rand(1, 3, 16, 16, generator=generator)
        self.crop = tensor_to_image(before)
        self.strength = SimpleNamespace(value=1.0)

    @property
    def result(self):
        return blend_result(self.raw, image_to_tensor(self.crop), self.strength.value)

    def save(self):
        return save_new(self.result, runtime.output_dir("studio"), "exercise_test")


def test_check_half():
    app = FakeStudio()
    assert check_half(None, app).startswith("not done yet")
    assert check_half(solution_half(app), app) == PASS and app.strength.value == 0.5
    app.strength.value = 0.8
    assert "not the half-way blend" in check_half(app.result, app) and app.strength.value == 0.8  # slider restored
    assert "16x16" in check_half(app.crop.resize((8, 8)), app)


def test_check_blend():
    assert check_blend(None).startswith("not done yet")
    assert check_blend(lambda stylized, face, strength: None).startswith("not done yet")
    assert check_blend(solution_blend) == PASS
    swapped = "at strength 0.0 the result should be the face"
    assert check_blend(lambda stylized, face, strength: strength * face + (1 - strength) * stylized).startswith(swapped)
    assert "tensor shaped like" in check_blend(lambda stylized, face, strength: 0.5)


def test_check_saved(tmp_path):
    app = FakeStudio()
    assert check_saved(None, app).startswith("not done yet")
    saved = solution_saved(app)
    try:
        app.strength.value = 1.0
        assert check_saved(saved, app) == PASS and app.strength.value == 1.0
        assert "use the path that app.save() returns" in check_saved(tmp_path / "missing.png", app)
        elsewhere = tmp_path / "copy.png"
        elsewhere.write_bytes(saved.read_bytes())
        assert "not under build/studio/" in check_saved(elsewhere, app)
        at_full = app.save()
        assert "not the result at strength 0.25" in check_saved(at_full, app)
        at_full.unlink()
    finally:
        saved.unlink()

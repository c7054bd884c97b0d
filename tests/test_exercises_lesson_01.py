"""Lesson 01's checkers pass their reference solutions and reject the stub and typical slips."""
import numpy as np
import pytest

from facestyle_utils.domains import DomainConfig
from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_01 import (
    check_config,
    check_crop,
    check_style,
    solution_config,
    solution_crop,
    solution_style,
)
from facestyle_utils.faces import align_face
from facestyle_utils.sample_data import load_sample


@pytest.fixture(scope="module")
def astronaut():
    return load_sample("astronaut")


def test_check_crop(astronaut):
    assert check_crop(None).startswith("not done yet")
    assert check_crop(solution_crop(astronaut)) == PASS
    assert "expected a 96x96 crop, got 128x128" in check_crop(align_face(astronaut, (175, 65, 100, 100), 128))
    assert "PIL image" in check_crop(np.asarray(solution_crop(astronaut)))
    assert "finds 0 faces" in check_crop(align_face(astronaut, (380, 380, 100, 100), 96))  # the suit, not the face
    assert "far from the centre" in check_crop(astronaut.resize((96, 96)))  # the whole photo
    assert "make the box smaller" in check_crop(align_face(astronaut, (100, 0, 250, 250), 96))
    assert "make the box larger" in check_crop(align_face(astronaut, (195, 85, 60, 60), 96))
    assert "far from the centre" in check_crop(align_face(astronaut, (125, 65, 100, 100), 96))


def test_check_style(astronaut):
    face = np.asarray(align_face(astronaut, (175, 65, 100, 100), 64))
    assert check_style(None, face).startswith("not done yet")
    assert check_style(solution_style(), face) == PASS
    assert check_style(lambda rgb: rgb.copy(), face) == "the image did not change"
    assert check_style(lambda rgb: rgb[::2], face).startswith("wrong output")  # shape changed
    assert check_style(lambda rgb: rgb.astype(np.float32) / 255, face).startswith("wrong output")  # dtype changed
    noise = np.random.default_rng()
    assert "not deterministic" in check_style(lambda rgb: (rgb ^ noise.integers(1, 255, rgb.shape, np.uint8)), face)
    assert "must be a function" in check_style("sepia", face)


def test_check_config():
    assert check_config(None).startswith("not done yet")
    assert check_config(solution_config()) == PASS
    assert check_config({"size": 96}) == "expected a DomainConfig, got dict"
    assert check_config(DomainConfig(size=96, styles="pencil", variants_per_photo=3)) == PASS  # one name is fine
    assert check_config(DomainConfig(size=96, variants_per_photo=3)) == \
        "styles is ('cartoon',), expected ('pencil',)"
    assert check_config(DomainConfig(size=128, styles="pencil", variants_per_photo=3)) == "size is 128, expected 96"
    assert check_config(DomainConfig(size=96, styles="pencil")) == "variants_per_photo is 1, expected 3"
    assert check_config(DomainConfig(size=96, styles="pencil", variants_per_photo=3, seed=1)) == "seed is 1, expected 0"

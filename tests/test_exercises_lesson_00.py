"""Lesson 00's checkers pass their reference solutions and reject the stub, the face itself and typical slips."""
import pytest
import torch

from facestyle_utils import sample_data
from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_00 import (
    check_layer,
    check_preserved,
    check_stylized,
    solution_layer,
    solution_preserved,
    solution_stylized,
)
from facestyle_utils.image_io import image_to_tensor, resize_image

STEPS = 2


@pytest.fixture(scope="module")
def images():
    faces, styles = sample_data.sample_faces(max_side=256), sample_data.sample_styles(max_side=256)
    astronaut = image_to_tensor(resize_image(faces["astronaut"], 32, multiple_of=8))
    return astronaut, image_to_tensor(resize_image(styles["brick"], 32)), \
        image_to_tensor(resize_image(styles["hubble_deep_field"], 32))


def test_check_stylized(vgg, images):
    astronaut, brick, hubble = images
    assert check_stylized(None, astronaut, brick, vgg, STEPS).startswith("not done yet")
    assert check_stylized(solution_stylized(astronaut, brick, vgg, STEPS), astronaut, brick, vgg, STEPS) == PASS
    assert "the face itself" in check_stylized(astronaut.clone(), astronaut, brick, vgg, STEPS)
    assert "shape" in check_stylized(astronaut[..., :16], astronaut, brick, vgg, STEPS)
    assert "[0, 1]" in check_stylized(astronaut * 2, astronaut, brick, vgg, STEPS)
    other_style = solution_stylized(astronaut, hubble, vgg, STEPS)
    assert "differs from the brick stylization" in check_stylized(other_style, astronaut, brick, vgg, STEPS)
    noisy = (astronaut + 0.05 * torch.randn(astronaut.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert "differs from the brick stylization" in check_stylized(noisy, astronaut, brick, vgg, STEPS)


def test_check_preserved(vgg, images):
    astronaut, brick, _ = images
    assert check_preserved(None, astronaut, brick, vgg, STEPS).startswith("not done yet")
    assert check_preserved(solution_preserved(astronaut, brick, vgg, STEPS), astronaut, brick, vgg, STEPS) == PASS
    plain = solution_stylized(astronaut, brick, vgg, STEPS)  # the usual slip: colours not kept
    assert "colours moved" in check_preserved(plain, astronaut, brick, vgg, STEPS)
    assert "the face itself" in check_preserved(astronaut.clone(), astronaut, brick, vgg, STEPS)


def test_check_layer(vgg, images):
    face = images[0]  # 32 x 32 px
    assert check_layer(None, vgg, face).startswith("not done yet")
    assert check_layer(solution_layer(), vgg, face) == PASS
    assert check_layer("relu3_4", vgg, face) == PASS  # any layer of block 3 has that shape
    assert check_layer("relu4_1", vgg, face) == "relu4_1 gives features of shape (1, 512, 4, 4), not (1, 256, 8, 8)"
    assert "not a VGG19 layer name" in check_layer("block3", vgg, face)

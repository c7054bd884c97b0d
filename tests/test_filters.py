"""The OpenCV target styles: shapes, determinism, what each style does, and errors."""
from __future__ import annotations

import numpy as np
import pytest

from facestyle_utils.filters import TARGET_STYLES, apply_style, cartoon, pencil_sketch, watercolour
from facestyle_utils.sample_data import load_sample


@pytest.fixture(scope="module")
def face():
    return np.asarray(load_sample("astronaut").crop((150, 40, 300, 190)).resize((96, 96)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


def test_styles_registry():
    assert set(TARGET_STYLES) == {"cartoon", "pencil", "watercolour"}
    assert TARGET_STYLES["cartoon"] is cartoon


@pytest.mark.parametrize("name", list(TARGET_STYLES))
def test_style_keeps_shape_is_deterministic_and_changes_the_image(face, name):
    out = TARGET_STYLES[name](face)
    assert out.shape == face.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, TARGET_STYLES[name](face.copy()))
    assert 4 < psnr(out, face) < 25  # clearly stylized, yet related to the face


def test_pencil_is_gray_and_mostly_paper(face):
    out = pencil_sketch(face)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 1], out[..., 2])
    assert np.median(out) > 200  # white paper with dark strokes


def test_cartoon_has_black_lines_and_few_colours(face):
    out = cartoon(face)
    assert (out.sum(axis=2) == 0).mean() > 0.02  # edge lines
    colours = np.unique(out.reshape(-1, 3), axis=0)
    assert len(colours) < len(np.unique(face.reshape(-1, 3), axis=0)) / 4


def test_watercolour_is_smoother_than_the_photo(face):
    out = watercolour(face).astype(float)
    interior = slice(8, -8)
    def roughness(image):
        return np.abs(np.diff(image[interior, interior], axis=1)).mean()
    assert psnr(watercolour(face), face) < 30
    assert np.median(np.abs(np.diff(out, axis=1))) <= np.median(np.abs(np.diff(face.astype(float), axis=1)))
    assert roughness(out) > 0


def test_apply_style_accepts_pil_and_names(face):
    from PIL import Image

    np.testing.assert_array_equal(apply_style(Image.fromarray(face), "cartoon"), cartoon(face))
    with pytest.raises(KeyError, match="unknown style 'anime'"):
        apply_style(face, "anime")


def test_bad_inputs_and_bad_custom_styles(face):
    with pytest.raises(ValueError, match="RGB uint8"):
        cartoon(face.astype(np.float32))
    with pytest.raises(ValueError, match="too small"):
        watercolour(face[:8, :8])
    with pytest.raises(ValueError, match="must return a uint8 array"):
        apply_style(face, lambda rgb: rgb[::2])


def test_posterize_is_the_cartoons_eight_tone_staircase():
    from facestyle_utils.filters import posterize

    staircase = posterize(np.arange(256, dtype=np.uint8))
    assert staircase.dtype == np.uint8 and staircase.shape == (256,)
    assert sorted(set(staircase.tolist())) == [16, 48, 80, 112, 144, 176, 208, 240]
    assert staircase[31] == 16 and staircase[32] == 48 and staircase[255] == 240
    assert (posterize(np.full((2, 2, 3), 200, np.uint8), tones=2) == 192).all()
    with pytest.raises(ValueError, match="uint8"):
        posterize(np.arange(256))
    with pytest.raises(ValueError, match="divide 256"):
        posterize(np.zeros(3, np.uint8), tones=3)
    with pytest.raises(ValueError, match="divide 256"):
        posterize(np.zeros(3, np.uint8), tones=8.0)

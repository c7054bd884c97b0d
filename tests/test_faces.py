"""Face detection, eye finding and alignment on the bundled photos, with both backends."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from facestyle_utils import faces as facelib
from facestyle_utils.faces import FaceBox, align_face, available_backends, crop_faces, detect_faces, draw_detections
from facestyle_utils.sample_data import load_sample

# Hand-checked from the photos: the face centre (between the eyes and the mouth) lies in these boxes.
FACE_REGIONS = {  # name: (x_min, x_max, y_min, y_max) in full-size pixels
    "astronaut": (200, 250, 90, 145),  # 512x512; face spans about x 180-265, y 65-165
    "grace_hopper": (235, 300, 185, 250),  # 512x600; face spans about x 170-365, y 110-330
}


@pytest.fixture(scope="module")
def photos():
    return {name: load_sample(name) for name in FACE_REGIONS}


def test_both_backends_are_available_here():
    assert available_backends() == ["opencv", "skimage"]


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
@pytest.mark.parametrize("name", list(FACE_REGIONS))
def test_exactly_one_face_on_the_face(photos, name, backend):
    found = detect_faces(photos[name], backend=backend)
    assert len(found) == 1, f"{backend} found {len(found)} faces in {name}"
    x_min, x_max, y_min, y_max = FACE_REGIONS[name]
    cx, cy = found[0].centre
    assert x_min <= cx <= x_max and y_min <= cy <= y_max, (cx, cy)
    assert 80 <= found[0].w <= 260  # a face, not a whole body or a button


@pytest.mark.parametrize("backend", ["opencv", "skimage"])
def test_no_face_in_a_texture(backend):
    assert detect_faces(load_sample("brick"), backend=backend) == []


def test_skimage_is_used_without_opencv_cascades(monkeypatch, photos):
    """OpenCV 5.x has no CascadeClassifier: detection falls back to the LBP cascade, eyes are unknown."""
    monkeypatch.delattr(cv2, "CascadeClassifier")
    assert available_backends() == ["skimage"]
    found = detect_faces(photos["astronaut"])
    assert len(found) == 1 and found[0].eyes is None
    with pytest.raises(RuntimeError, match="not available"):
        detect_faces(photos["astronaut"], backend="opencv")


def test_unknown_backend_is_a_clear_error(photos):
    with pytest.raises(ValueError, match="unknown face detection backend 'dlib'"):
        detect_faces(photos["astronaut"], backend="dlib")


def test_eyes_are_found_left_then_right_and_nearly_level(photos):
    face = detect_faces(photos["astronaut"], backend="opencv")[0]
    assert face.eyes is not None
    (lx, ly), (rx, ry) = face.eyes
    assert face.x < lx < face.centre[0] < rx < face.x + face.w
    assert face.y < ly < face.centre[1] and face.y < ry < face.centre[1]
    assert abs(face.eye_angle) < 8


def test_alignment_levels_a_tilted_face(photos):
    """Tilt the photo 8 degrees: the eye line follows, and the aligned crop has level eyes again."""
    tilted = photos["astronaut"].rotate(8, resample=Image.Resampling.BICUBIC, center=(224, 115))
    face = detect_faces(tilted, backend="opencv")[0]
    upright = detect_faces(photos["astronaut"], backend="opencv")[0]
    assert face.eyes is not None
    assert face.eye_angle - upright.eye_angle == pytest.approx(-8, abs=4)  # PIL rotates counter-clockwise
    crop = align_face(tilted, face, 192, margin=0.25)
    eyes = facelib.find_eyes(crop, (0, 0, 192, 192))
    assert eyes is not None
    (lx, ly), (rx, ry) = eyes
    assert abs(math.degrees(math.atan2(ry - ly, rx - lx))) < 4


def test_align_face_size_centre_margin_and_flip(photos):
    photo = photos["astronaut"]
    box = (177, 66, 95, 95)  # a hand-drawn box, as a learner would give when detection fails
    crop = align_face(photo, box, 64, margin=0.0)
    assert crop.size == (64, 64) and crop.mode == "RGB"
    reference = np.asarray(photo.crop((177, 66, 272, 161)).resize((64, 64), Image.Resampling.BICUBIC), dtype=float)
    assert np.abs(np.asarray(crop, dtype=float) - reference).mean() < 6  # margin 0 = the box itself
    flipped = align_face(photo, box, 64, margin=0.0, flip=True)
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(crop)[:, ::-1])
    matrix = facelib.face_transform(box, 64, margin=0.5)
    centre = matrix @ np.array([177 + 47.5, 66 + 47.5, 1.0])
    np.testing.assert_allclose(centre, [32, 32], atol=1e-6)
    assert matrix[0, 0] == pytest.approx(64 / (95 * 2))  # margin 0.5 doubles the crop side


def test_align_face_rejects_bad_boxes(photos):
    with pytest.raises(ValueError, match="positive size"):
        align_face(photos["astronaut"], (10, 10, 0, 5))


def test_crop_faces_lists_photos_without_faces(photos):
    crops, missed = crop_faces({"astronaut": photos["astronaut"], "brick": load_sample("brick")}, 48)
    assert [c.name for c in crops] == ["astronaut"] and missed == ["brick"]
    assert crops[0].image.size == (48, 48)


def test_draw_detections_draws_without_touching_the_photo(photos):
    photo = np.asarray(photos["astronaut"]).copy()
    face = FaceBox(100, 100, 50, 50, eyes=((110.0, 115.0), (140.0, 115.0)))
    drawn = draw_detections(photo, [face])
    assert drawn.shape == photo.shape
    assert tuple(drawn[100, 125]) == (255, 220, 0)  # top edge of the box
    np.testing.assert_array_equal(photo, np.asarray(photos["astronaut"]))

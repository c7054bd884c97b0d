"""Lesson 06 exercises: the strength blend in the app, the blend formula itself, and saving a result.

The checkers take the studio app (``widgets.build_studio``) and read what it shows: ``app.result`` (the
"after" RGB PIL image at the current strength), ``app.crop`` (the "before" face crop) and ``app.strength``
(the slider). They put the slider back where they found it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import PASS, not_done


def _result_at(app, strength: float) -> np.ndarray:
    """The app's result at ``strength`` as a float array (H, W, 3) in grey levels; the slider is restored."""
    old = app.strength.value
    app.strength.value = strength
    try:
        return np.asarray(app.result, dtype=float)
    finally:
        app.strength.value = old


def solution_half(app) -> Image.Image:
    """What the app shows at strength 0.5 (the slider is left at 0.5)."""
    app.strength.value = 0.5
    return app.result


def check_half(image: Image.Image | None, app) -> str:
    """Exercise 1: ``image`` is the app's result at strength 0.5, the mean of the face crop and the
    full-strength result, within 1 grey level everywhere (rounding)."""
    waiting = not_done(image, "set my_half")
    if waiting:
        return waiting
    full = _result_at(app, 1.0)
    half = np.asarray(image, dtype=float)
    if half.shape != full.shape:
        return f"expected an image of {full.shape[1]}x{full.shape[0]} pixels"
    gap = np.abs(half - (full + np.asarray(app.crop, dtype=float)) / 2).max()
    return PASS if gap <= 1.0 else f"not the half-way blend: off by up to {gap:.0f} grey levels"


def solution_blend(stylized: torch.Tensor, face: torch.Tensor, strength: float) -> torch.Tensor:
    """out = strength * stylized + (1 - strength) * face, for float tensors of one shape with values in [0, 1]."""
    return strength * stylized + (1 - strength) * face


def check_blend(my_blend) -> str:
    """Exercise 2: ``my_blend(stylized, face, strength)`` computes the studio's strength formula.

    Tried on random (3, 8, 8) images at strengths 0, 0.3 and 1; the result must match
    ``strength * stylized + (1 - strength) * face`` within 1e-6 and keep the shape.
    """
    generator = torch.Generator().manual_seed(0)
    stylized, face = torch.rand(3, 8, 8, generator=generator), torch.rand(3, 8, 8, generator=generator)
    for strength in (0.0, 0.3, 1.0):
        out = my_blend(stylized, face, strength) if my_blend is not None else None
        waiting = not_done(out, "my_blend still returns None")
        if waiting:
            return waiting
        if not isinstance(out, torch.Tensor) or out.shape != face.shape:
            return f"expected a tensor shaped like the inputs {tuple(face.shape)}"
        gap = float((out - solution_blend(stylized, face, strength)).abs().max())
        if gap > 1e-6:
            which = "the face" if strength == 0 else "the stylized image" if strength == 1 else "the weighted mix"
            return f"at strength {strength} the result should be {which}, but it is off by up to {gap:.2g}"
    return PASS


def solution_saved(app) -> Path:
    """Set the strength slider to 0.25 and save: the path of the new PNG."""
    app.strength.value = 0.25
    return app.save()


def check_saved(path: str | Path | None, app) -> str:
    """Exercise 3: ``path`` names a PNG the studio saved under ``build/studio/`` holding its current result at
    strength 0.25 (a quarter of the way from the face crop to the full style), within 1 grey level."""
    waiting = not_done(path, "set my_saved to the path app.save() returns")
    if waiting:
        return waiting
    from .. import runtime

    path = Path(path)
    if not path.is_file():
        return f"{path} is not a file: use the path that app.save() returns"
    if runtime.output_dir("studio").resolve() not in path.resolve().parents:
        return f"{path} is not under build/studio/, where the studio saves"
    saved = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    want = _result_at(app, 0.25)
    if saved.shape != want.shape:
        return f"the saved image is {saved.shape[1]}x{saved.shape[0]} px, not the current result's size"
    gap = np.abs(saved - want).max()
    return PASS if gap <= 1.0 else f"the saved picture is not the result at strength 0.25 (off by up to {gap:.0f})"


__all__ = ["check_blend", "check_half", "check_saved", "solution_blend", "solution_half", "solution_saved"]

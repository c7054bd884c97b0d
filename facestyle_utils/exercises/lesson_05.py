"""Lesson 05 exercises: the strength blend, reading a benchmark table, and batched inference without autograd."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from . import PASS, not_done


def solution_half_strength(stylizer, photo: Image.Image) -> Image.Image:
    """``photo`` stylized by ``stylizer`` (an ``inference.Stylizer``) at strength 0.5: a PIL image."""
    return stylizer.stylize(photo, strength=0.5)


def check_half_strength(image: Image.Image | None, photo: Image.Image, full: Image.Image) -> str:
    """Exercise 1: ``image`` lies halfway between ``photo`` and its full-strength stylization ``full``.

    All three are RGB PIL images of one size. The mean distance (in grey levels, 0-255) from the halfway image
    may be 0.6 (rounding to whole grey levels) plus 4 % of the mean distance between ``photo`` and ``full``,
    which rejects a strength of 0.4 or 0.6 whenever the style moves the photo by more than 10 grey levels.
    """
    waiting = not_done(image, "set my_half_strength")
    if waiting:
        return waiting
    if not isinstance(image, Image.Image):
        return f"expected a PIL image (what fast_student.stylize returns), got {type(image).__name__}"
    if image.size != photo.size:
        return f"expected the photo's size {photo.size[0]}x{photo.size[1]}, got {image.size[0]}x{image.size[1]}"
    photo_values, full_values = np.asarray(photo, dtype=float), np.asarray(full, dtype=float)
    gap = float(np.abs(np.asarray(image.convert("RGB"), dtype=float) - (photo_values + full_values) / 2).mean())
    allowed = 0.6 + 0.04 * float(np.abs(full_values - photo_values).mean())
    if gap > allowed:
        return f"mean distance {gap:.1f} grey levels from the halfway image (allowed {allowed:.1f}): use strength=0.5"
    return PASS


def solution_fastest(rows: list[dict]) -> tuple[str, float]:
    """The fastest path at the largest size in lesson 05's table ``rows``, and its speed-up over ``plain``."""
    from ..benchmark import latency_of

    largest = max((row["size"] for row in rows), key=lambda size: int(size.split("x")[0]))
    fastest = min((row for row in rows if row["size"] == largest), key=lambda row: row["latency (ms)"])
    return fastest["path"], latency_of(rows, "plain", largest) / fastest["latency (ms)"]


def check_fastest(answer: tuple[str, float] | None, rows: list[dict]) -> str:
    """Exercise 2: ``answer`` is ``(path, speed_up)``: the fastest path at the table's largest size and its
    plain latency divided by its own, within 1 %."""
    waiting = not_done(answer, "set my_fastest = (path name, speed-up)")
    if waiting:
        return waiting
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return "expected a pair (path name, speed-up), e.g. ('onnx', 1.5)"
    path, speed_up = answer
    want_path, want_speed_up = solution_fastest(rows)
    if path != want_path:
        return f"{path!r} is not the fastest path at the largest size: compare the latency column at that size"
    if not isinstance(speed_up, (int, float)) or abs(speed_up - want_speed_up) > 0.01 * want_speed_up:
        return f"the speed-up of {path} is plain's latency divided by {path}'s at that size, not {speed_up!r}"
    return PASS


def solution_batch(student: torch.nn.Module, faces: torch.Tensor) -> torch.Tensor:
    """The first four ``faces`` (N, 3, H, W) in [0, 1] through ``student`` in one call, without autograd."""
    with torch.inference_mode():
        return student(faces[:4])


def check_batch(output: torch.Tensor | None, student: torch.nn.Module, faces: torch.Tensor) -> str:
    """Exercise 3: ``output`` is ``student`` run once on ``faces[:4]`` under ``torch.inference_mode()``.

    A (4, 3, H, W) tensor, marked as made under inference mode (``output.is_inference()``), equal to the
    reference within 1e-4 (after clamping to [0, 1], which the student's output already satisfies).
    """
    waiting = not_done(output, "set my_batch")
    if waiting:
        return waiting
    want = tuple(faces[:4].shape)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != want:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        return f"expected a tensor of shape {want} (the first four faces in one batch), got {got}"
    if not output.is_inference():
        return "the output was not computed under `with torch.inference_mode():`"
    reference = solution_batch(student, faces).clamp(0, 1)
    gap = float((output.float().to(reference.device).clamp(0, 1) - reference).abs().max())
    if gap > 1e-4:
        return f"differs from student(faces[:4]) by up to {gap:.1e}: run the student network on the first four faces"
    return PASS


__all__ = ["check_batch", "check_fastest", "check_half_strength", "solution_batch", "solution_fastest",
           "solution_half_strength"]

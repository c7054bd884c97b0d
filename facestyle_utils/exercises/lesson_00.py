"""Lesson 00 exercises: a first stylization, the face's own colours, and VGG19's feature-map shapes.

Exercises 1 and 2 are checked against the reference stylization, computed here with the same settings as
the lesson (Gatys optimisation from the face is deterministic on a CPU): an answer passes when its mean
distance from the reference is at most 2 % of the reference's own mean change from the face. That rejects
the face itself, noise, the style image, one step more or less, and another style: in the first few
steps from the face the smoothness and content terms dominate, so other styles land close (gravel 3 %,
the Hubble deep field 9 % after 2 steps at 32 px; 10 % and 20 % after 3 steps at 64 px) but not within 2 %.
"""
from __future__ import annotations

import torch

from ..colour import rgb_to_ycbcr
from . import PASS, not_done

#: How close an answer must be to the reference, as a fraction of the reference's mean change from the face.
TOLERANCE = 0.02


def solution_stylized(content: torch.Tensor, style: torch.Tensor, vgg, steps: int) -> torch.Tensor:
    """The astronaut ``content`` (1, 3, H, W) in [0, 1] stylized with ``style`` in ``steps`` Gatys steps."""
    from ..gatys import GatysSettings, stylize_by_optimisation

    return stylize_by_optimisation(content, style, vgg, GatysSettings(steps=steps), progress=False).image


def solution_preserved(content: torch.Tensor, style: torch.Tensor, vgg, steps: int) -> torch.Tensor:
    """The same stylization with the face's own colours kept (``preserve_colour=True``)."""
    from ..gatys import GatysSettings, stylize_by_optimisation

    settings = GatysSettings(steps=steps, preserve_colour=True)
    return stylize_by_optimisation(content, style, vgg, settings, progress=False).image


def solution_layer() -> str:
    """A VGG19 layer with 256 channels at a quarter of the input side: block 3 (after two poolings)."""
    return "relu3_1"


def _image_problem(image: object, content: torch.Tensor, what: str) -> str | None:
    """What is wrong with ``image`` as a stylized version of ``content`` (shape, type, range), or None."""
    if not isinstance(image, torch.Tensor) or image.shape != content.shape:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        return f"expected {what} as a tensor of shape {tuple(content.shape)}, got {shape}"
    if image.min() < 0 or image.max() > 1:
        return "values must lie in [0, 1]"
    if torch.allclose(image.cpu(), content.cpu()):
        return "the image is the face itself: did the optimisation run?"
    return None


def _closeness(image: torch.Tensor, reference: torch.Tensor, content: torch.Tensor) -> tuple[float, float]:
    """Mean |image - reference| and the tolerance (``TOLERANCE`` times the reference's mean change)."""
    image, reference, content = image.detach().cpu(), reference.detach().cpu(), content.detach().cpu()
    return float((image - reference).abs().mean()), TOLERANCE * float((reference - content).abs().mean())


def check_stylized(image: torch.Tensor | None, content: torch.Tensor, style: torch.Tensor, vgg,
                   steps: int) -> str:
    """Exercise 1: ``image`` is ``content`` stylized with ``style`` by ``GatysSettings(steps=steps)``.

    A (1, 3, H, W) tensor in [0, 1] shaped like the face, not the face itself, and within ``TOLERANCE`` of
    the reference stylization's change (which this check computes: it takes as long as one stylization).
    """
    waiting = not_done(image, "set my_result")
    if waiting:
        return waiting
    problem = _image_problem(image, content, "my_result")
    if problem:
        return problem
    gap, tolerance = _closeness(image, solution_stylized(content, style, vgg, steps), content)
    if gap > tolerance:
        return (f"differs from the brick stylization by {gap:.4f} on average (allowed {tolerance:.4f}): stylize "
                "the astronaut with the brick style and GatysSettings(steps=STEPS), at the size of `astronaut`")
    return PASS


def check_preserved(image: torch.Tensor | None, content: torch.Tensor, style: torch.Tensor, vgg,
                    steps: int) -> str:
    """Exercise 2: ``image`` is exercise 1's stylization with ``preserve_colour=True``.

    Its colour (the Cb and Cr channels) must be the face's, within 0.005 on average (only clipping to
    [0, 1] moves it), and the image within ``TOLERANCE`` of the reference stylization's change.
    """
    waiting = not_done(image, "set my_preserved")
    if waiting:
        return waiting
    problem = _image_problem(image, content, "my_preserved")
    if problem:
        return problem
    chroma_gap = float((rgb_to_ycbcr(image.detach().cpu())[:, 1:] - rgb_to_ycbcr(content.cpu())[:, 1:]).abs().mean())
    if chroma_gap > 0.005:
        return (f"the colours moved away from the face's by {chroma_gap:.3f} on average (Cb/Cr): "
                "use GatysSettings(steps=STEPS, preserve_colour=True)")
    gap, tolerance = _closeness(image, solution_preserved(content, style, vgg, steps), content)
    if gap > tolerance:
        return (f"the colours are the face's, but the picture differs from the brick stylization by {gap:.4f} on "
                f"average (allowed {tolerance:.4f}): use the brick style and STEPS steps")
    return PASS


def check_layer(name: str | None, vgg, face: torch.Tensor) -> str:
    """Exercise 3: ``name`` is a VGG19 layer whose features for ``face`` (1, 3, H, W) have 256 channels at a
    quarter of its height and width (H/4 x W/4, each of the two poolings before it halving the side)."""
    waiting = not_done(name, "set my_layer to a layer name such as 'relu1_1'")
    if waiting:
        return waiting
    from ..vgg import LAYER_NAMES

    if name not in LAYER_NAMES:
        return f"{name!r} is not a VGG19 layer name; the names are {', '.join(LAYER_NAMES)}"
    with torch.no_grad():
        shape = tuple(vgg(face, [name])[name].shape)
    want = (1, 256, face.shape[-2] // 4, face.shape[-1] // 4)
    return PASS if shape == want else f"{name} gives features of shape {shape}, not {want}"


__all__ = ["check_layer", "check_preserved", "check_stylized", "solution_layer", "solution_preserved",
           "solution_stylized"]

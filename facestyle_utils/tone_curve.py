"""A learned tone curve: one piecewise-linear function per colour channel, applied to every pixel.

Why a network needs one. Lesson 01's cartoon filter posterizes: every channel is snapped to one
of 8 tones (:func:`facestyle_utils.filters.posterize`), a staircase; its edge lines are black, a
ninth value, which is why a learned curve dips below the staircase near 0. A decoder of 3x3 convolutions and ReLUs
draws smooth functions of its input; it can only approximate each step by a steep ramp, and near
a step it predicts the average of the two tones. A curve with one knot per 8-bit level draws a
step exactly with a handful of its numbers, and learns them by gradient descent like any other
weight: each knot moves towards the targets of the pixels that land next to it.

The maths, for channel ``c`` with knots ``v[c, 0 .. K-1]``, the curve's values at the evenly
spaced inputs ``0, 1/(K-1), ..., 1``, and a value ``x`` in [0, 1] with ``t = x (K - 1)`` and
``k = min(floor(t), K - 2)`` (the segment ``x`` falls in; ``x = 1`` uses the last one)::

    curve_c(x) = v[c, k] + (v[c, k + 1] - v[c, k]) * (t - k)

It starts as the identity (``v[c, k] = k / (K - 1)``), so adding one to a trained network's
output changes nothing until it learns. The gradient reaches the knots and ``x`` (the slope
between the two knots). Once the curve has learned flat steps, that slope is about 0 on a step
and large on a riser, so the network before it learns mostly where its values sit near a riser.

The same idea, image-adaptive and in 3D, is the look-up table of image-enhancement networks:
Zeng et al., 2020, *Learning Image-adaptive 3D Lookup Tables for High Performance Photo
Enhancement in Real-time*; one curve per channel is what photo editors call "Curves".
"""
from __future__ import annotations

import torch
from torch import nn

#: Knots of the course's curves: one per 8-bit level, so a step can be one level wide.
DEFAULT_KNOTS = 256


class ToneCurve(nn.Module):
    """A learned curve per channel: (N, C, H, W) values in [0, 1] -> the same shape, in [0, 1].

    ``knot_count``: points per curve (an int, at least 2), evenly spaced over [0, 1]; ``channels``:
    C (3 for RGB). The knots, :attr:`knots` of shape (channels, knot_count), are the only parameters
    and start as the identity. Inputs outside [0, 1] are clamped first; the output is clamped to
    [0, 1]; a NaN input gives NaN at that value (and no indexing error).

    The lookup runs in float32 whatever the input dtype, and the result is cast back to the input's
    dtype: bfloat16 keeps 8 significant bits, so ``t = 255 x`` loses its fraction above 128 and
    values near a riser would land on the wrong knot. Raises ValueError for a ``knot_count`` or
    ``channels`` that is not an int, fewer than 2 knots or channels < 1 (at construction), and for
    an input that is not 4-D with ``channels`` channels or is not floating point.
    """

    def __init__(self, knot_count: int = DEFAULT_KNOTS, channels: int = 3) -> None:
        super().__init__()
        if not (isinstance(knot_count, int) and isinstance(channels, int)) or knot_count < 2 or channels < 1:
            raise ValueError(f"a tone curve needs an int knot_count >= 2 and channels >= 1, "
                             f"got knot_count={knot_count!r}, channels={channels!r}")
        self.knots = nn.Parameter(torch.linspace(0.0, 1.0, knot_count).repeat(channels, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        channels, count = self.knots.shape
        if image.dim() != 4 or image.shape[1] != channels or not image.is_floating_point():
            raise ValueError(f"ToneCurve expects float (N, {channels}, H, W) values in [0, 1], "
                             f"got a {image.dtype} tensor of shape {tuple(image.shape)}")
        t = image.float().clamp(0, 1) * (count - 1)  # position on the knot grid
        # left knot of each value's segment; a NaN input indexes knot 0 and stays NaN through (t - k)
        k = torch.nan_to_num(t.detach()).floor().clamp(0, count - 2).long()
        channel = torch.arange(channels, device=image.device).view(1, channels, 1, 1)
        left, right = self.knots[channel, k], self.knots[channel, k + 1]
        curved = left + (right - left) * (t - k)
        return curved.clamp(0, 1).to(image.dtype)

    def extra_repr(self) -> str:
        channels, count = self.knots.shape
        return f"knot_count={count}, channels={channels}"


def steepest_slope(model: nn.Module) -> float:
    """How many times the tone curves in ``model`` can stretch a small change of their input: the steepest
    segment of any :class:`ToneCurve` among its modules (knot difference times ``knot_count - 1``), or 1.0
    where it has none or every curve is flatter than the identity (a float >= 1).

    A trained cartoon curve draws 8 tone steps with risers up to about 26 times steeper than the
    identity (lessons 03 and 05, 2026-12-01), so a rounding difference before it, of another kernel or
    of TF32 on a GPU, can come out up to that many times larger on a pixel that sits on a riser.
    :func:`facestyle_utils.inference.agrees` allows for it.
    """
    slopes = [float((curve.knots.detach().diff(dim=1).abs() * (curve.knots.shape[1] - 1)).max())
              for curve in model.modules() if isinstance(curve, ToneCurve)]
    return max([1.0, *slopes])

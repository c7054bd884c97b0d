"""Figures of lesson 04's attention: where chosen face points look in the style image, and the similarity matrix.

The numbers come from :meth:`facestyle_utils.drn.DRNStylizer.attention_maps` and
:func:`facestyle_utils.attention.attention_at_points`; this module only draws them, at a size
that stays readable on a projected slide (large fonts, few panels per row).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from .image_io import ImageLike, to_array

#: Colours of the points, in order (readable on faces and on the inferno heat maps).
POINT_COLOURS = ("yellow", "red", "cyan", "lime", "magenta", "orange")


def plot_attention_points(face: ImageLike, style: ImageLike, rows: Mapping[str, Mapping[str, torch.Tensor]],
                          points: Mapping[str, tuple[float, float]], *, size: float = 3.4) -> plt.Figure:
    """One row of panels per attention kind: the face with its points, then each point's heat map on the style.

    ``rows`` maps a row label (e.g. "trained DRN") to ``{point name: (Hs, Ws) weights}`` as
    :func:`~facestyle_utils.attention.attention_at_points` returns them; ``points`` maps each name to
    its (x, y) in face pixels. Each heat map is scaled to its own maximum and drawn as a square root
    (weak weights stay visible); a cross marks the largest weight, whose value is in the title.
    ``size``: inches per panel. Returns the figure; ValueError when a row lacks a point.
    """
    names = list(points)
    for label, heats in rows.items():
        missing = [name for name in names if name not in heats]
        if missing:
            raise ValueError(f"attention row {label!r} has no heat map for {missing}")
    face_rgb, style_rgb = to_array(face), to_array(style)
    colours = dict(zip(names, POINT_COLOURS * math.ceil(len(names) / len(POINT_COLOURS))))
    width, height = size * (len(names) + 1), (0.9 * size + 1.1) * len(rows)
    figure, axes = plt.subplots(len(rows), len(names) + 1, figsize=(width, height), squeeze=False)
    for row_axes, (label, heats) in zip(axes, rows.items()):
        _draw_face_with_points(row_axes[0], face_rgb, points, colours, f"{label}:\nface points")
        for ax, name in zip(row_axes[1:], names):
            _draw_heat(ax, style_rgb, heats[name], colours[name])
            ax.set_title(f"{name}\ntop weight {float(heats[name].max()):.3f}", fontsize=14)
    figure.tight_layout()
    return figure


def _draw_face_with_points(ax: plt.Axes, rgb, points, colours, title: str) -> None:
    ax.imshow(rgb)
    for name, (x, y) in points.items():
        ax.plot(x, y, "o", color=colours[name], markersize=11, markeredgecolor="black", markeredgewidth=1.5)
        right_half = x > rgb.shape[1] / 2  # label towards the middle, so it stays on the picture
        ax.annotate(name, (x, y), xytext=(-8 if right_half else 8, -8), textcoords="offset points",
                    ha="right" if right_half else "left", color=colours[name], fontsize=13, fontweight="bold",
                    path_effects=_outline())
    ax.set_title(title, fontsize=14)
    ax.axis("off")


def _draw_heat(ax: plt.Axes, style_rgb, heat: torch.Tensor, colour: str) -> None:
    """The style image, the heat map stretched over it, a cross on the peak, a frame in the point's colour."""
    height, width = style_rgb.shape[:2]
    heat = heat.detach().float().cpu()
    ax.imshow(style_rgb)
    ax.imshow((heat / heat.max()).sqrt(), cmap="inferno", alpha=0.65, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
              interpolation="bilinear")
    peak_row, peak_column = divmod(int(heat.argmax()), heat.shape[1])
    ax.plot((peak_column + 0.5) * width / heat.shape[1] - 0.5, (peak_row + 0.5) * height / heat.shape[0] - 0.5, "+",
            color=colour, markersize=22, markeredgewidth=3)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(4)


def _outline():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=3, foreground="black")]


def plot_similarity(similarity: torch.Tensor, face_shape: Sequence[int], style_shape: Sequence[int], *,
                    face_row: int, style_row: int, max_cells: int = 256) -> plt.Figure:
    """The cosine-similarity matrix three ways: all of it (block means), one row pair zoomed in, and a histogram.

    ``similarity`` (Hf*Wf, Hs*Ws) in [-1, 1], rows face positions and columns style positions in
    raster order; ``face_shape`` (Hf, Wf) and ``style_shape`` (Hs, Ws) the feature-map sizes.
    Left: the whole matrix averaged over square blocks so it has at most ``max_cells`` cells a
    side (a 1024 x 1024 matrix squeezed into a few hundred screen pixels would otherwise alias
    into moiré). Middle: the exact entries between face feature row ``face_row`` and style feature
    row ``style_row`` (Wf x Ws entries; outlined on the left). Right: the distribution of all
    similarities and of each face position's best match. Colours run symmetrically from -m (blue) to
    +m (red), m the largest absolute similarity. ValueError for shapes that do not match.
    """
    (face_h, face_w), (style_h, style_w) = face_shape, style_shape
    if tuple(similarity.shape) != (face_h * face_w, style_h * style_w):
        raise ValueError(f"similarity of shape {tuple(similarity.shape)} does not match face positions "
                         f"{tuple(face_shape)} x style positions {tuple(style_shape)}")
    if not (0 <= face_row < face_h and 0 <= style_row < style_h):
        raise ValueError(f"face_row {face_row} and style_row {style_row} must lie within {face_h} and {style_h} rows")
    similarity = similarity.detach().float().cpu()
    factor = max(1, math.ceil(max(similarity.shape) / max_cells))
    pooled = F.avg_pool2d(similarity[None, None], factor, ceil_mode=True)[0, 0] if factor > 1 else similarity
    figure, (whole, zoom, hist) = plt.subplots(1, 3, figsize=(17, 5.4), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    limit = float(similarity.abs().max())  # symmetric colours around 0, as wide as the data
    style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit, "interpolation": "nearest"}
    extent = (-0.5, similarity.shape[1] - 0.5, similarity.shape[0] - 0.5, -0.5)
    whole.imshow(pooled, extent=extent, **style)
    blocks = f"means of {factor}x{factor} blocks" if factor > 1 else "every entry"
    whole.set_title(f"all {similarity.shape[0]} x {similarity.shape[1]} pairs\n({blocks})", fontsize=14)
    whole.set_xlabel("style position (raster order)", fontsize=12)
    whole.set_ylabel("face position (raster order)", fontsize=12)
    whole.add_patch(Rectangle((style_row * style_w - 0.5, face_row * face_w - 0.5), style_w, face_w, fill=False,
                              edgecolor="black", linewidth=2))
    part = similarity[face_row * face_w:(face_row + 1) * face_w, style_row * style_w:(style_row + 1) * style_w]
    shown = zoom.imshow(part, **style)
    zoom.set_title(f"zoom: face row {face_row} x style row {style_row}\n(each square one pair)", fontsize=14)
    zoom.set_xlabel("style column", fontsize=12)
    zoom.set_ylabel("face column", fontsize=12)
    figure.colorbar(shown, ax=zoom, fraction=0.046, label="cosine similarity")
    hist.hist(similarity.flatten().numpy(), bins=60, color="grey", label="all pairs")
    hist.hist(similarity.max(dim=1).values.numpy(), bins=60, color="tab:red", alpha=0.7,
              label="best match of each face position")
    hist.set_title("distribution of similarities", fontsize=14)
    hist.set_xlabel("cosine similarity", fontsize=12)
    hist.set_ylabel("count", fontsize=12)
    hist.set_yscale("log")
    hist.set_ylim(top=hist.get_ylim()[1] * 30)  # room for the legend above the bars
    hist.legend(fontsize=11, loc="upper left")
    for ax in (whole, zoom, hist):
        ax.tick_params(labelsize=11)
    figure.tight_layout()
    return figure


__all__ = ["POINT_COLOURS", "plot_attention_points", "plot_similarity"]

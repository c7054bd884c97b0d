"""Plotting: image grids and loss curves, saved under build/figures so they can be opened later."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .image_io import ImageLike, to_array
from .runtime import output_dir

if TYPE_CHECKING:
    import torch


def show_images(images: Sequence[ImageLike], titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 3.0, suptitle: str | None = None) -> plt.Figure:
    """Draw images in a grid with optional titles and return the figure."""
    images = list(images)
    if not images:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = ncols or min(len(images), 6)
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(to_array(images[index]))
            if titles is not None:
                ax.set_title(titles[index], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict[str, Sequence[float]], *, xlabel: str = "step", ylabel: str = "loss",
                log: bool = True, title: str | None = None) -> plt.Figure:
    """Plot one or more named curves (losses, metrics) on shared axes."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), list(values), label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Mean of every ``window`` consecutive values: ``len(values) - window + 1`` values ("valid" positions).

    Value ``i`` averages ``values[i : i + window]``, so it belongs to step ``steps[i + window - 1]``:
    draw it against ``steps[window - 1:]``. ValueError for a window below 1 or longer than the values.
    """
    if not 1 <= window <= len(values):
        raise ValueError(f"window must be between 1 and the number of values ({len(values)}), not {window}")
    sums = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=np.float64)]))
    return ((sums[window:] - sums[:-window]) / window).tolist()


def plot_smoothed(ax: plt.Axes, steps: Sequence[int], values: Sequence[float], *, pieces: int = 20,
                  label: str | None = None) -> int:
    """Draw a noisy training curve faintly and its moving average (:func:`moving_average`) over it.

    The window is ``len(values) // pieces`` steps (at least 1), so the smoothing looks the same
    for a short and a long run. Returns the window used; the legend names it.
    """
    window = max(1, len(values) // pieces)
    ax.plot(steps, values, alpha=0.3, label="per step" if label is None else f"{label}, per step")
    smooth_label = f"moving average ({window})" if label is None else f"{label}, moving average ({window})"
    ax.plot(list(steps)[window - 1:], moving_average(values, window), label=smooth_label)
    return window


def plot_tone_curves(knots: np.ndarray | torch.Tensor, reference: Sequence[float] | None = None, *,
                     reference_label: str = "reference", title: str | None = None) -> plt.Figure:
    """Draw learned tone curves (:class:`~facestyle_utils.tone_curve.ToneCurve`): output against input.

    ``knots``: (C, K) values in [0, 1], one row per channel (a tensor or array, e.g.
    ``model.tone_curve.knots``); three rows are drawn red, green and blue. ``reference``: K values
    drawn dashed in black (e.g. the filter's own staircase). ValueError for ``knots`` that are not
    2-D, or a reference of another length.
    """
    values = knots.detach().cpu().numpy() if hasattr(knots, "detach") else np.asarray(knots)
    if values.ndim != 2:
        raise ValueError(f"knots must be (channels, knots), got shape {values.shape}")
    inputs = np.linspace(0, 1, values.shape[1])
    fig, ax = plt.subplots(figsize=(4.2, 4))
    colours = ["tab:red", "tab:green", "tab:blue"] if len(values) == 3 else [None] * len(values)
    for row, (curve, colour) in enumerate(zip(values, colours)):
        name = "RGB"[row] if len(values) == 3 else f"channel {row}"
        ax.plot(inputs, curve, color=colour, alpha=0.8, label=f"learned, {name}")
    if reference is not None:
        if len(reference) != values.shape[1]:
            raise ValueError(f"reference has {len(reference)} values, the curves {values.shape[1]} knots")
        ax.plot(inputs, list(reference), "k--", linewidth=1, label=reference_label)
    ax.set(xlabel="network output before the curve", ylabel="after the curve", xlim=(0, 1), ylim=(0, 1))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, name: str, *, folder: str = "figures") -> Path:
    """Save a figure as ``build/<folder>/<name>.png`` (replacing an older run's copy) and return the path.

    Quick and workshop mode write under ``build/quick/`` and ``build/workshop/`` instead
    (:func:`~facestyle_utils.runtime.output_dir`), so a test run never replaces the figures of a full run.
    """
    path = output_dir(folder) / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def show_landmarks(images: Sequence[ImageLike], faces: Sequence[Sequence], titles: Sequence[str] | None = None, *,
                   template: Sequence[Sequence[float]] | None = None, around: float | None = None,
                   ncols: int | None = None, size: float = 3.0, suptitle: str | None = None) -> plt.Figure:
    """Images with each face's box and five landmarks (``faces.LANDMARK_NAMES``, one colour per part, legend
    below), and optionally ``template`` points (e.g. ``faces.template_points(side)``) as open circles.

    ``faces[i]`` is the list of :class:`~facestyle_utils.faces.FaceBox` found in ``images[i]``; a face without
    landmarks shows its box (and eyes, if known) only. ``around`` zooms each panel in on its faces: their
    boxes with that fraction of a box side added on each side (None: the whole image). ``ncols``
    (default up to 6), ``size`` (inches per panel) and ``suptitle`` as in
    :func:`show_images`. ValueError if the lists differ in length. Returns the figure.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from .faces import LANDMARK_COLOURS, LANDMARK_NAMES

    images, faces = list(images), list(faces)
    if len(faces) != len(images):
        raise ValueError(f"got face lists for {len(faces)} images, expected {len(images)}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    colours = [tuple(c / 255 for c in colour) for colour in LANDMARK_COLOURS]
    ncols = ncols or min(len(images), 6)
    nrows = math.ceil(len(images) / ncols)
    legend = 0.3 * math.ceil((len(LANDMARK_NAMES) + (template is not None)) / (2 * ncols)) + 0.2  # inches
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + legend + (0.4 if suptitle else 0)),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        rgb = to_array(images[index])
        ax.imshow(rgb)
        dot = max(12.0, 30.0 * size / 3.0)
        for face in faces[index]:
            ax.add_patch(Rectangle((face.x, face.y), face.w, face.h, fill=False, edgecolor=(1, 0.86, 0), linewidth=1.5))
            points = face.landmarks if face.landmarks is not None else (face.eyes or ())
            for (px, py), colour in zip(points, colours):
                ax.scatter([px], [py], s=dot, color=colour, edgecolors="white", linewidths=0.5, zorder=3)
        if template is not None:
            for (px, py), colour in zip(template, colours):
                ax.scatter([px], [py], s=dot * 2.5, facecolors="none", edgecolors=[colour], linewidths=1.5, zorder=2)
        x0, y0, x1, y1 = -0.5, -0.5, rgb.shape[1] - 0.5, rgb.shape[0] - 0.5
        if around is not None and faces[index]:
            pad = around * max(max(face.w, face.h) for face in faces[index])
            x0 = max(x0, min(face.x for face in faces[index]) - pad)
            y0 = max(y0, min(face.y for face in faces[index]) - pad)
            x1 = min(x1, max(face.x + face.w for face in faces[index]) + pad)
            y1 = min(y1, max(face.y + face.h for face in faces[index]) + pad)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        if titles is not None:
            ax.set_title(titles[index], fontsize=10)
    handles = [Line2D([], [], linestyle="", marker="o", color=colour, label=name)
               for name, colour in zip(LANDMARK_NAMES, colours)]
    if template is not None:
        handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="none", color="gray",
                              label="template"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 2 * ncols), fontsize=9, frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, legend / fig.get_figheight(), 1, 1))
    return fig

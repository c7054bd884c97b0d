"""Plotting: image grids and loss curves, saved under build/figures so they can be opened later."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt

from .image_io import ImageLike, to_array
from .runtime import output_dir


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


def save_figure(fig: plt.Figure, name: str, *, folder: str = "figures") -> Path:
    """Save a figure as ``build/<folder>/<name>.png`` (replacing an older run's copy) and return the path."""
    path = output_dir(folder) / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path

"""Image grids and curves draw what they are given and save PNGs under build/figures."""
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.plotting import plot_curves, save_figure, show_images


def test_show_images_lays_out_a_grid_of_mixed_inputs():
    images = [np.zeros((8, 8, 3), np.uint8), Image.new("RGB", (8, 8)), torch.rand(1, 3, 8, 8)]
    fig = show_images(images, ["array", "pil", "tensor"], ncols=2)
    axes = fig.get_axes()
    assert len(axes) == 4  # 2x2 grid, the last cell empty
    assert [ax.get_title() for ax in axes[:3]] == ["array", "pil", "tensor"]
    assert axes[2].images[0].get_array().shape == (8, 8, 3)
    assert not axes[3].images


def test_show_images_checks_its_arguments():
    with pytest.raises(ValueError, match="at least one"):
        show_images([])
    with pytest.raises(ValueError, match="2 titles for 1 images"):
        show_images([np.zeros((4, 4, 3), np.uint8)], ["a", "b"])


def test_plot_curves_and_save_figure(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    fig = plot_curves({"train": [3, 2, 1], "val": [4, 3]})
    lines = fig.get_axes()[0].get_lines()
    assert [line.get_label() for line in lines] == ["train", "val"]
    assert list(lines[0].get_ydata()) == [3, 2, 1]
    path = save_figure(fig, "curves")
    assert path == tmp_path / "figures" / "curves.png"
    assert Image.open(path).size[0] > 100


def test_quick_mode_figures_never_replace_full_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    full = save_figure(plot_curves({"train": [3, 2, 1]}), "same_name")
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    quick = save_figure(plot_curves({"train": [1, 1, 1]}), "same_name")
    assert full == tmp_path / "figures" / "same_name.png"
    assert quick == tmp_path / "figures_quick" / "same_name.png"
    assert full.read_bytes() != quick.read_bytes()

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
    assert quick == tmp_path / "quick" / "figures" / "same_name.png"
    assert full.read_bytes() != quick.read_bytes()


def test_attention_points_figure_draws_a_row_per_kind_and_a_panel_per_point():
    from facestyle_utils.plotting_attention import plot_attention_points

    heat = torch.zeros(4, 5)
    heat[1, 3] = 1.0  # the peak: feature row 1, column 3 of a 16 x 20 style image (stride 4)
    points = {"eye": (3, 4), "lips": (10, 12)}
    rows = {"trained": {"eye": heat, "lips": heat / 2}, "raw": {"eye": heat, "lips": heat}}
    fig = plot_attention_points(torch.rand(3, 16, 16), torch.rand(3, 16, 20), rows, points)
    axes = fig.get_axes()
    assert len(axes) == 6 and axes[0].get_title() == "trained:\nface points"
    assert axes[1].get_title() == "eye\ntop weight 1.000" and axes[2].get_title() == "lips\ntop weight 0.500"
    cross = axes[1].lines[0]
    assert (cross.get_xdata()[0], cross.get_ydata()[0]) == (13.5, 5.5)  # centre of pixels 12-15 and 4-7
    with pytest.raises(ValueError, match=r"attention row 'raw' has no heat map for \['lips'\]"):
        plot_attention_points(torch.rand(3, 16, 16), torch.rand(3, 16, 20), {"raw": {"eye": heat}}, points)


def test_similarity_figure_pools_the_whole_matrix_and_zooms_on_one_row_pair():
    from facestyle_utils.plotting_attention import plot_similarity

    similarity = torch.linspace(-0.5, 0.5, 64 * 48).reshape(64, 48)  # face 8 x 8, style 6 x 8 positions
    fig = plot_similarity(similarity, (8, 8), (6, 8), face_row=2, style_row=5, max_cells=16)
    whole, zoom = fig.get_axes()[:2]
    assert whole.images[0].get_array().shape == (16, 12)  # 4 x 4 block means
    assert "means of 4x4 blocks" in whole.get_title()
    assert np.allclose(zoom.images[0].get_array(), similarity[16:24, 40:48].numpy())
    assert whole.images[0].get_clim() == pytest.approx((-0.5, 0.5))
    with pytest.raises(ValueError, match="does not match face positions"):
        plot_similarity(similarity, (8, 7), (6, 8), face_row=0, style_row=0)


def test_plot_tone_curves_draws_each_channel_and_the_reference():
    from facestyle_utils.plotting import plot_tone_curves
    from facestyle_utils.tone_curve import ToneCurve

    curve = ToneCurve(knot_count=16)
    fig = plot_tone_curves(curve.knots, reference=np.linspace(0, 1, 16) ** 2, reference_label="squares", title="t")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["learned, R", "learned, G", "learned, B", "squares"]
    assert np.allclose(lines[0].get_ydata(), np.linspace(0, 1, 16), atol=1e-6)  # a new curve is the identity
    with pytest.raises(ValueError, match="reference has 3 values"):
        plot_tone_curves(curve.knots, reference=[0, 0.5, 1])
    with pytest.raises(ValueError, match="channels, knots"):
        plot_tone_curves(np.zeros(5))

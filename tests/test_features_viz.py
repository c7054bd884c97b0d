"""Filter and feature-map grids, edge kernels, and feature inversion (content and texture)."""
import numpy as np
import pytest
import torch

from facestyle_utils.features_viz import (apply_kernels, feature_grid, filter_grid, reconstruct_content,
                                          sobel_kernels, synthesise_texture, to_gray)


def test_sobel_finds_a_vertical_edge():
    image = torch.zeros(1, 1, 8, 8)
    image[..., 4:] = 1.0
    response = apply_kernels(image, sobel_kernels())
    assert response.shape == (1, 2, 8, 8)
    assert response[0, 0, 4, 3:5].abs().min() == 4  # x-gradient fires at the edge
    assert response[0, 1, 2:6, 2:6].abs().max() == 0  # y-gradient sees nothing inside


def test_to_gray_weights_sum_to_one():
    assert torch.allclose(to_gray(torch.ones(1, 3, 2, 2)), torch.ones(1, 1, 2, 2))


def test_filter_grid_shape_and_range(vgg):
    grid = filter_grid(vgg.layers[0].weight, ncols=8, upscale=4, pad=1)
    assert grid.shape == (8 * 13 - 1, 8 * 13 - 1, 3)  # 64 filters of 3x3 enlarged to 12x12
    assert grid.min() >= 0 and grid.max() <= 1
    with pytest.raises(ValueError, match="first-layer"):
        filter_grid(torch.zeros(4, 64, 3, 3))


def test_feature_grid_orders_by_energy():
    maps = torch.zeros(1, 4, 5, 5)
    maps[0, 2] = torch.arange(25.0).reshape(5, 5)  # the only active channel
    grid = feature_grid(maps, count=2, ncols=2, pad=1)
    assert grid.shape == (5, 11)
    assert grid[:, :5].max() == 1 and grid[:, 6:].max() == 0
    assert np.isnan(grid[:, 5]).all()  # the gap between tiles is blank
    with pytest.raises(ValueError, match="order"):
        feature_grid(maps, order="random")


def test_content_reconstruction_moves_noise_towards_the_image(vgg):
    torch.manual_seed(0)
    image = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    result = reconstruct_content(vgg, image, "relu1_1", steps=8, progress=False)
    assert result.losses[-1] < 0.2 * result.losses[0]
    start_error = (torch.rand_like(image) - image).abs().mean()
    assert (result.image - image).abs().mean() < start_error


def test_texture_synthesis_matches_grams(vgg):
    torch.manual_seed(0)
    style = torch.rand(1, 3, 32, 32)
    result = synthesise_texture(vgg, style, ["relu1_1", "relu2_1"], size=(24, 40), steps=6, progress=False)
    assert result.image.shape == (1, 3, 24, 40)
    assert result.losses[-1] < result.losses[0]


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (3, 200), (200, 7)])
def test_content_reconstruction_refuses_images_too_small_for_the_layer(vgg, size):
    with pytest.raises(ValueError) as error:
        reconstruct_content(vgg, torch.rand(1, 3, *size), "relu4_1", steps=1, progress=False)
    assert str(error.value) == (f"content image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu4_1 pass 3 poolings and need at least 8 px on each side")


@pytest.mark.parametrize("size, layer", [((12, 12), "relu4_1"), ((15, 17), "relu4_1"), ((8, 9), "relu4_1"),
                                         ((1, 7), "relu1_1"), ((3, 5), "relu2_1")])
def test_content_reconstruction_keeps_small_sizes_that_fit(vgg, size, layer):
    result = reconstruct_content(vgg, torch.rand(1, 3, *size), layer, steps=1, progress=False)
    assert result.image.shape == (1, 3, *size)


@pytest.mark.parametrize("size", [(1, 1), (12, 12), (15, 17), (3, 200)])
def test_texture_synthesis_refuses_a_size_too_small_for_the_layers(vgg, size):
    with pytest.raises(ValueError) as error:
        synthesise_texture(vgg, torch.rand(1, 3, 32, 32), ["relu1_1", "relu5_1"], size=size, steps=1,
                           progress=False)
    assert str(error.value) == (f"texture size is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")


def test_texture_synthesis_checks_the_style_and_takes_small_sizes_that_fit(vgg):
    with pytest.raises(ValueError, match=r"^style image is 1x9 px \(height x width\); .* up to relu2_1 pass 1 "
                                         r"pooling and need at least 2 px on each side$"):
        synthesise_texture(vgg, torch.rand(1, 3, 1, 9), ["relu1_1", "relu2_1"], size=(8, 8), steps=1,
                           progress=False)
    result = synthesise_texture(vgg, torch.rand(1, 3, 2, 9), ["relu1_1", "relu2_1"], size=(3, 7), steps=1,
                                progress=False)
    assert result.image.shape == (1, 3, 3, 7)

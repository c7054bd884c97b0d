"""Filter and feature-map grids, edge kernels, and feature inversion (content and texture)."""
import numpy as np
import pytest
import torch

from facestyle_utils.features_viz import (
    apply_kernels,
    feature_grid,
    filter_grid,
    reconstruct_content,
    sobel_kernels,
    synthesise_texture,
    to_gray,
)
from facestyle_utils.image_io import ImageLoadError


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


# Issue #14 (F5, F7): images of any dtype follow image_io's value rule.
def test_to_gray_reads_uint8_as_0_255_and_keeps_float_results():
    gray8 = to_gray(torch.full((1, 3, 2, 2), 128, dtype=torch.uint8))
    assert gray8.dtype == torch.float32
    assert torch.allclose(gray8, torch.full((1, 1, 2, 2), 128 / 255))
    assert torch.allclose(to_gray(torch.full((3, 2, 2), 0.25, dtype=torch.float64)), torch.full((1, 1, 2, 2), 0.25))


def test_to_gray_and_apply_kernels_refuse_values_outside_the_rule():
    with pytest.raises(ImageLoadError, match=r"^image: torch.float32 values span 200\.\.200"):
        to_gray(torch.full((1, 3, 2, 2), 200.0))
    with pytest.raises(ImageLoadError, match=r"^gray image: torch.float32 values span -1\.\.-1"):
        apply_kernels(torch.full((1, 1, 4, 4), -1.0), sobel_kernels())
    with pytest.raises(ValueError, match=r"gray \(N, 1, H, W\)"):
        apply_kernels(torch.rand(1, 3, 4, 4), sobel_kernels())


def test_apply_kernels_reads_uint8_as_0_255():
    image = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    image[..., 4:] = 255
    response = apply_kernels(image, sobel_kernels())
    assert response.dtype == torch.float32 and response[0, 0, 4, 3:5].abs().min() == 4


def test_inversion_and_texture_take_uint8_images_as_the_same_picture(vgg):
    torch.manual_seed(4)
    picture8 = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    picture = picture8.float() / 255
    results = []
    for image in (picture, picture8, picture8.long()):
        torch.manual_seed(5)
        results.append(reconstruct_content(vgg, image, "relu1_1", steps=2, progress=False).image)
        torch.manual_seed(6)
        results.append(synthesise_texture(vgg, image, ["relu1_1"], (8, 8), steps=2, progress=False).image)
    for index, result in enumerate(results[2:]):
        assert torch.allclose(result, results[index % 2], atol=1e-5)


@pytest.mark.parametrize("value", [127.5, -0.8])
def test_inversion_and_texture_refuse_floats_outside_0_1(vgg, value):
    with pytest.raises(ImageLoadError, match="content image: torch.float32 values span"):
        reconstruct_content(vgg, torch.full((1, 3, 16, 16), value), "relu1_1", steps=1, progress=False)
    with pytest.raises(ImageLoadError, match="style image: torch.float32 values span"):
        synthesise_texture(vgg, torch.full((1, 3, 16, 16), value), ["relu1_1"], (8, 8), steps=1, progress=False)

"""Colour preservation keeps the face's chroma and the stylized image's brightness."""
import pytest
import torch

from facestyle_utils.colour import preserve_colour, rgb_to_ycbcr, ycbcr_to_rgb
from facestyle_utils.image_io import ImageLoadError


def test_ycbcr_round_trip_and_gray_has_neutral_chroma():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 5, 7)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(image)), image, atol=1e-5)
    gray = rgb_to_ycbcr(torch.full((1, 3, 2, 2), 0.3))
    assert torch.allclose(gray[:, 0], torch.full((1, 2, 2), 0.3), atol=1e-6)
    assert torch.allclose(gray[:, 1:], torch.full((1, 2, 2, 2), 0.5), atol=1e-6)


def test_preserve_colour_keeps_chroma_of_original_and_luma_of_stylized():
    torch.manual_seed(1)
    original = 0.35 + 0.3 * torch.rand(1, 3, 8, 8)  # mild colours: no clamping needed
    stylized = 0.35 + 0.3 * torch.rand(1, 3, 8, 8).mean(dim=1, keepdim=True).expand(1, 3, 8, 8)
    out = preserve_colour(stylized, original)
    assert out.shape == original.shape
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(original)[:, 1:], atol=1e-4)
    assert torch.allclose(rgb_to_ycbcr(out)[:, :1], rgb_to_ycbcr(stylized)[:, :1], atol=1e-4)
    assert not torch.allclose(out, stylized, atol=1e-2)


def test_preserve_colour_output_stays_in_range():
    torch.manual_seed(2)
    out = preserve_colour(torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6))
    assert out.min() >= 0 and out.max() <= 1


# Issue #14 (F7): any dtype follows image_io's value rule (uint8 0-255, floats [0, 1]).
def test_preserve_colour_reads_uint8_as_0_255():
    half, half8 = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 128, dtype=torch.uint8)
    gray = torch.full((1, 3, 4, 4), 128 / 255)
    assert torch.allclose(preserve_colour(half, half8), torch.full((1, 3, 4, 4), 0.5), atol=1e-5)
    both8 = preserve_colour(half8, half8)
    assert both8.dtype == torch.float32 and torch.allclose(both8, gray, atol=1e-5)
    assert torch.equal(half8, torch.full((1, 3, 4, 4), 128, dtype=torch.uint8))  # input untouched


def test_preserve_colour_matches_float_for_the_same_pictures_in_other_dtypes():
    torch.manual_seed(3)
    stylized8, original8 = (torch.randint(0, 256, (2, 3, 5, 6), dtype=torch.uint8) for _ in range(2))
    expected = preserve_colour(stylized8.float() / 255, original8.float() / 255)
    for stylized, original in [(stylized8, original8), (stylized8.long(), original8.double() / 255),
                               (stylized8.float().div(255).half(), original8)]:
        assert torch.allclose(preserve_colour(stylized, original), expected, atol=2e-3)
    assert torch.allclose(rgb_to_ycbcr(original8), rgb_to_ycbcr(original8.float() / 255), atol=1e-6)


def test_preserve_colour_refuses_out_of_range_floats_and_shape_mismatches():
    x = torch.full((1, 3, 4, 4), 0.5)
    with pytest.raises(ImageLoadError, match=r"^original image: torch.float32 values span 127.5\.\.127.5"):
        preserve_colour(x, x * 255)
    with pytest.raises(ImageLoadError, match=r"^stylized image: torch.float32 values span -1\.\.-1"):
        preserve_colour(torch.full((1, 3, 4, 4), -1.0), x)
    with pytest.raises(ValueError, match="same shape"):
        preserve_colour(x, torch.full((1, 3, 4, 5), 0.5))

"""Colour preservation keeps the face's chroma and the stylized image's brightness."""
import torch

from facestyle_utils.colour import preserve_colour, rgb_to_ycbcr, ycbcr_to_rgb


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

"""PSNR and SSIM on tensors and arrays, and the evaluation table."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from facestyle_utils.metrics import (
    evaluate_methods,
    format_table,
    image_filter_method,
    psnr,
    psnr_per_image,
    psnr_validator,
    ssim,
    ssim_per_image,
)


def test_psnr_of_a_known_error():
    target = torch.zeros(2, 3, 8, 8)
    output = torch.full((2, 3, 8, 8), 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(output, target) == pytest.approx(20.0)
    output[1] = 0.01  # MSE 1e-4 -> 40 dB; the mean is over images
    assert psnr_per_image(output, target) == pytest.approx([20.0, 40.0])
    assert psnr(output, target) == pytest.approx(30.0)


def test_identical_images_have_infinite_psnr_and_ssim_one():
    image = torch.rand(1, 3, 16, 16)
    assert math.isinf(psnr(image, image))
    assert ssim(image, image) == pytest.approx(1.0)


def test_tensors_and_arrays_agree():
    torch.manual_seed(0)
    a, b = torch.rand(3, 12, 10), torch.rand(3, 12, 10)
    a_uint8 = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    b_uint8 = (b.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert psnr(a, b) == pytest.approx(psnr(a_uint8, b_uint8), abs=0.05)
    assert psnr(a, b) == pytest.approx(psnr(a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy()))
    assert ssim(a, b) == pytest.approx(ssim(a_uint8, b_uint8), abs=0.01)


def test_ssim_matches_skimage_and_falls_with_noise():
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32, 3))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    noisier = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1)
    expected = structural_similarity(clean, noisy, data_range=1.0, channel_axis=-1)
    assert ssim(noisy, clean) == pytest.approx(expected)
    assert ssim(noisier, clean) < ssim(noisy, clean) < 1.0
    assert ssim_per_image(np.stack([noisy, noisier]), np.stack([clean, clean])).shape == (2,)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="tensor"):
        psnr(torch.rand(8), torch.rand(8))


def test_evaluate_methods_scores_each_method_against_the_targets():
    torch.manual_seed(0)
    sources = torch.rand(5, 3, 16, 16)
    targets = (sources * 0.5).clamp(0, 1)
    rows = evaluate_methods({"identity": lambda x: x, "perfect": lambda x: x * 0.5}, sources, targets, batch_size=2)
    assert [row["method"] for row in rows] == ["identity", "perfect"]
    assert rows[0]["PSNR (dB)"] == pytest.approx(psnr(sources, targets))
    assert rows[0]["SSIM"] == pytest.approx(ssim(sources, targets))
    assert math.isinf(rows[1]["PSNR (dB)"]) and rows[1]["SSIM"] == pytest.approx(1.0)
    assert all(row["ms/image"] >= 0 for row in rows)
    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["method", "PSNR", "(dB)", "SSIM", "ms/image"]
    assert lines[2].startswith("perfect") and " inf " in lines[2]
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate_methods({"identity": lambda x: x}, sources, targets[:2])


def test_image_filter_method_runs_a_uint8_filter_on_a_batch():
    batch = torch.rand(3, 3, 8, 10)
    method = image_filter_method(lambda rgb: 255 - rgb)
    out = method(batch)
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert torch.allclose(out, 1 - batch, atol=1 / 255)


def test_psnr_validator_scores_a_model():
    sources = torch.rand(2, 3, 8, 8)
    validate = psnr_validator(sources, sources * 0.5)
    assert validate(lambda x: x * 0.5) == {"val_psnr": float("inf")}
    assert validate(lambda x: x)["val_psnr"] == pytest.approx(psnr(sources, sources * 0.5))


def test_format_table_marks_missing_values():
    table = format_table([{"path": "plain", "ms": 2.0, "images/s @ batch 8": 4.0}, {"path": "autocast", "ms": 9.0}])
    last = table.splitlines()[-1].split()
    assert last == ["autocast", "9.00", "-"]


# --- Value ranges: integers mean 0-255, floats [0, 1], whatever the container (issue #14) ----------------

def _uint8_pair():
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (2, 3, 12, 10), dtype=torch.uint8, generator=generator)
    b = torch.randint(0, 256, (2, 3, 12, 10), dtype=torch.uint8, generator=generator)
    return a, b


def test_uint8_tensors_mean_0_to_255():
    a, b = _uint8_pair()
    expected_psnr = psnr(a.double() / 255, b.double() / 255)
    assert psnr(a, b) == pytest.approx(expected_psnr, rel=1e-12)  # once clamped to 0/1 -> ~0 dB
    assert psnr(a, b) == pytest.approx(psnr(a.float() / 255, b.float() / 255), rel=1e-6)
    assert ssim(a, b) == pytest.approx(ssim(a.double() / 255, b.double() / 255), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64])
def test_other_integer_tensors_mean_0_to_255(dtype):
    a, b = _uint8_pair()
    assert psnr(a.to(dtype), b.to(dtype)) == pytest.approx(psnr(a, b), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32])
def test_integer_arrays_mean_0_to_255(dtype):  # once refused outright
    a, b = (x.permute(0, 2, 3, 1).numpy() for x in _uint8_pair())
    assert psnr(a.astype(dtype), b.astype(dtype)) == pytest.approx(psnr(a, b), rel=1e-12)
    assert ssim(a.astype(dtype), b) == pytest.approx(ssim(a, b), rel=1e-12)


def test_sixteen_bit_arrays_are_read_by_their_high_byte():
    a, b = (x.permute(0, 2, 3, 1).numpy() for x in _uint8_pair())
    a16, b16 = a.astype(np.uint16) * 256 + 17, b.astype(np.uint16) * 256 + 200
    assert psnr(a16, b16) == pytest.approx(psnr(a, b), rel=1e-12)


def test_overshoot_is_clipped_but_other_ranges_are_refused():
    ones = torch.ones(1, 3, 8, 8)
    assert math.isinf(psnr(ones * 1.2, ones))  # overshoot up to 0.5 is clipped
    with pytest.raises(ValueError, match=r"output: float64 values span 200..200.*divide 0-255 data by 255"):
        psnr(np.full((8, 8, 3), 200.0), np.zeros((8, 8, 3)))  # once silently clipped to 1
    with pytest.raises(ValueError, match=r"target: torch.float32 values span -1..1"):
        ssim(ones, torch.linspace(-1, 1, 192).reshape(1, 3, 8, 8))  # [-1, 1] data
    with pytest.raises(ValueError, match=r"output: torch.int32 values span 0..300.*uint16"):
        psnr(torch.linspace(0, 300, 192).int().reshape(1, 3, 8, 8), ones)
    with pytest.raises(ValueError, match="NaN"):
        psnr(torch.full((1, 3, 8, 8), float("nan")), ones)


def test_evaluate_methods_reads_uint8_outputs_as_0_to_255():
    torch.manual_seed(0)
    sources = torch.rand(3, 3, 16, 16)
    as_uint8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    rows = evaluate_methods({"uint8": as_uint8, "float": lambda x: as_uint8(x).float() / 255}, sources, sources)
    assert rows[0]["PSNR (dB)"] == pytest.approx(rows[1]["PSNR (dB)"], rel=1e-5) and rows[0]["PSNR (dB)"] > 40


def test_image_filter_method_takes_integer_batches():
    batch = torch.full((2, 3, 8, 8), 100, dtype=torch.int64)
    out = image_filter_method(lambda rgb: 255 - rgb)(batch)
    assert out.dtype == torch.float32 and torch.allclose(out, torch.full_like(out, 155 / 255))
    assert batch.dtype == torch.int64 and (batch == 100).all()

"""PSNR and SSIM on tensors and arrays, and the evaluation table."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from facestyle_utils.metrics import (evaluate_methods, format_table, image_filter_method, psnr, psnr_per_image,
                                    psnr_validator, ssim, ssim_per_image)


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

"""Lesson 03's checkers pass their reference solutions and reject the stub and typical slips."""
import pytest
import torch

from facestyle_utils.checkpoints import save_model
from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_03 import (
    check_perceptual,
    check_psnr,
    check_stylized,
    check_training_step,
    check_vgg_side,
    odd_sized,
    solution_perceptual,
    solution_psnr,
    solution_stylized,
    solution_training_step,
    solution_vgg_side,
)
from facestyle_utils.nets import DCNNConfig, DCNNStylizer, truncated_vgg


def test_check_vgg_side(vgg):
    encoder = truncated_vgg("relu3_1", vgg)
    assert check_vgg_side(None, encoder).startswith("not done yet")
    assert check_vgg_side(solution_vgg_side, encoder) == PASS
    assert "vgg_side(33, 1) = 16.5" in check_vgg_side(lambda side, pools: side / 2**pools, encoder)
    assert "but VGG19 gives" in check_vgg_side(lambda side, pools: round(side / 2**pools), encoder)


def test_check_psnr():
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(4, 3, 8, 8, generator=generator)
    outputs = (targets + 0.1 * torch.rand(4, 3, 8, 8, generator=generator) * torch.arange(1, 5).view(4, 1, 1, 1))
    outputs = outputs.clamp(0, 1)
    assert check_psnr(None, outputs, targets).startswith("not done yet")
    assert check_psnr(solution_psnr, outputs, targets) == PASS
    pooled = lambda o, t: float(10 * torch.log10(1 / ((o - t) ** 2).mean()))  # noqa: E731
    assert "on the batch" in check_psnr(pooled, outputs, targets)  # right for one image, wrong for a batch
    mean_abs = lambda o, t: float(10 * torch.log10(1 / (o - t).abs().mean()))  # noqa: E731
    assert "on one image" in check_psnr(mean_abs, outputs, targets)


def test_check_perceptual():
    assert check_perceptual(None).startswith("not done yet")
    assert check_perceptual(solution_perceptual) == PASS
    whole_batch = lambda f, t: ((f - t) ** 2).mean() / (t ** 2).mean()  # noqa: E731
    assert "divide each image's error by its own" in check_perceptual(whole_batch)
    assert "all-zero output" in check_perceptual(lambda f, t: ((f - t) ** 2).mean())


def test_check_training_step():
    assert check_training_step(None).startswith("not done yet")
    assert check_training_step(solution_training_step) == PASS

    def no_zero_grad(model, loss_fn, optimizer, batch):
        loss, _ = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    def no_step(model, loss_fn, optimizer, batch):
        loss, _ = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        return loss.item()

    def returns_nothing(model, loss_fn, optimizer, batch):
        solution_training_step(model, loss_fn, optimizer, batch)

    assert "zero_grad" in check_training_step(no_zero_grad)
    assert "optimizer.step()" in check_training_step(no_step)
    assert "returned None" in check_training_step(returns_nothing)


@pytest.fixture
def model_file(tmp_path, vgg):
    torch.manual_seed(0)
    return save_model(DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25), vgg=vgg), tmp_path / "m.pt")


def test_check_stylized(model_file):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert check_stylized(None, model_file, photo).startswith("not done yet")
    answer = solution_stylized(model_file, photo)
    assert answer.shape == (1, 3, 110, 150)
    assert check_stylized(answer, model_file, photo) == PASS
    assert "the photo itself" in check_stylized(odd_sized(photo), model_file, photo)
    assert "shape (1, 3, 110, 150)" in check_stylized(answer[..., :100, :], model_file, photo)
    assert "[0, 1]" in check_stylized(answer * 2, model_file, photo)
    flipped = answer.flip(-1)  # the right pixels in the wrong places
    assert "differs from the saved model's output" in check_stylized(flipped, model_file, photo)

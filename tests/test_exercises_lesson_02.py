"""Lesson 02's checkers pass their reference solutions and reject the stub and typical slips."""
import copy

import pytest
import torch
import torch.nn.functional as F

from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_02 import (
    check_content_loss,
    check_gram,
    check_lbfgs_steps,
    solution_content_loss,
    solution_gram,
    solution_lbfgs_steps,
)
from facestyle_utils.losses import gram_matrix


def test_check_gram():
    assert check_gram(lambda features: None) == "not done yet: my_gram returns None"
    assert check_gram(solution_gram) == PASS
    assert check_gram(gram_matrix) == PASS  # the package's definition agrees
    unscaled = lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2)  # noqa: E731
    assert check_gram(unscaled) == "almost: divide by C * H * W"
    per_pixel = lambda f: unscaled(f) / (f.shape[2] * f.shape[3])  # noqa: E731
    assert check_gram(per_pixel) == "almost: divide by C * H * W, not only by H * W"
    pixels = lambda f: f.flatten(2).transpose(1, 2) @ f.flatten(2) / f[0].numel()  # noqa: E731 (HW x HW)
    assert check_gram(pixels).startswith("expected shape (2, 4, 4)")
    wrong_axes = lambda f: solution_gram(f.transpose(2, 3).reshape(f.shape))  # noqa: E731 (scrambled pixels: same)
    assert check_gram(wrong_axes) == PASS  # the Gram matrix forgets where things are
    shifted = lambda f: solution_gram(f - f.mean())  # noqa: E731
    assert check_gram(shifted).startswith("values differ")


@pytest.fixture(scope="module")
def pictures():
    torch.manual_seed(1)
    face = torch.rand(1, 3, 32, 32)
    return face, (face + 0.2 * torch.rand(1, 3, 32, 32)).clamp(0, 1)


def test_check_content_loss(vgg, pictures):
    face, stylized = pictures
    assert check_content_loss(None, vgg, face, stylized) == "not done yet: set my_content_loss"
    right = solution_content_loss(vgg, face, stylized)
    assert check_content_loss(right, vgg, face, stylized) == PASS
    assert check_content_loss(float(right), vgg, face, stylized) == PASS
    with torch.no_grad():
        a, b = vgg(stylized, ["relu4_2"])["relu4_2"], vgg(face, ["relu4_2"])["relu4_2"]
        other = vgg(stylized, ["relu3_1"])["relu3_1"], vgg(face, ["relu3_1"])["relu3_1"]
    assert check_content_loss(F.mse_loss(a, b, reduction="sum"), vgg, face, stylized).startswith("that is the sum")
    assert check_content_loss(F.mse_loss(a, b).sqrt(), vgg, face, stylized).startswith("that is the root")
    assert check_content_loss(F.mse_loss(*other), vgg, face, stylized).startswith("not the mean squared")
    assert check_content_loss("big", vgg, face, stylized).startswith("my_content_loss must be one number")


def test_check_lbfgs_steps(vgg):
    assert check_lbfgs_steps(lambda objective, image, steps: None, vgg) == "not done yet: my_lbfgs_steps returns None"
    assert check_lbfgs_steps(solution_lbfgs_steps, vgg) == PASS

    def lbfgs_loop(objective, image, steps, clamp, **lbfgs_options):
        """A learner's L-BFGS loop; ``clamp`` says whether pixels are clamped after each step."""
        optimizer = torch.optim.LBFGS([image], lr=1.0, history_size=50, **lbfgs_options)
        losses = []
        for _ in range(steps):
            def closure():
                optimizer.zero_grad()
                loss, _ = objective(image)
                loss.backward()
                return loss
            losses.append(optimizer.step(closure).item())
            if clamp:
                with torch.no_grad():
                    image.clamp_(0, 1)
        return losses

    def no_clamp(objective, image, steps):
        losses = lbfgs_loop(objective, image, steps, clamp=False, max_iter=1)
        with torch.no_grad():
            image.add_(2.0)  # and the pixels are left outside [0, 1]
        return losses

    assert check_lbfgs_steps(no_clamp, vgg).startswith("pixels left [0, 1]")

    def many_iterations(objective, image, steps):  # LBFGS's default max_iter=20: 20 evaluations per step
        return lbfgs_loop(objective, image, steps, clamp=True)

    assert check_lbfgs_steps(many_iterations, vgg).startswith("differs from the reference from step 1 on")

    def after_update(objective, image, steps):  # the loss measured after the update
        solution_lbfgs_steps(objective, image, steps)
        return [float(objective(image)[0])] * steps

    assert check_lbfgs_steps(after_update, vgg).startswith("the first loss must be the loss of the starting image")
    assert check_lbfgs_steps(lambda objective, image, steps: [1.0] * (steps - 1), vgg).startswith(
        "return one loss per step")
    untouched = lambda objective, image, steps: [float(objective(image)[0])] * steps  # noqa: E731
    assert check_lbfgs_steps(untouched, vgg).startswith("the pixels did not change")


def test_the_lbfgs_check_builds_its_problem_on_the_networks_device(vgg, monkeypatch):
    """On a GPU the check built its face on the CPU for a CUDA VGG19 (H200, 2026-11-30)."""
    from facestyle_utils import gatys
    from facestyle_utils.exercises import lesson_02

    made = {}
    monkeypatch.setattr(gatys, "GatysLoss", lambda net, face, style, settings: made.update(face=face, style=style))
    lesson_02._tiny_problem(copy.deepcopy(vgg).to("meta"))
    assert made["face"].device.type == "meta" and made["style"].device.type == "meta"

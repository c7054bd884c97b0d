"""Lesson 07's checkers pass their reference solutions and reject the stub and typical slips."""
import torch

from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_07 import (
    check_averaged,
    check_learning_rate,
    check_share,
    solution_averaged,
    solution_learning_rate,
    solution_share,
)


def test_check_share_and_lr():
    assert check_share(None).startswith("not done yet") and check_learning_rate(None).startswith("not done yet")
    assert check_share(solution_share()) == PASS and check_learning_rate(solution_learning_rate()) == PASS
    assert "global batch" in check_share(64)
    assert "does not add up" in check_share(8)
    assert check_learning_rate(2e-3) == "scale the learning rate by how much the batch grew"
    assert check_learning_rate(0.016) == PASS
    assert "number" in check_learning_rate("0.016")


def test_check_averaged():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 3, 3, padding=1)

    def loss_fn(net, batch):
        sources, targets = batch
        return (net(sources) - targets).abs().mean(), {}

    sources, targets = torch.rand(8, 3, 6, 6), torch.rand(8, 3, 6, 6)
    parameters = list(model.parameters())
    whole = torch.autograd.grad(loss_fn(model, (sources, targets))[0], parameters)
    averaged = solution_averaged(loss_fn, model, sources, targets, parameters)
    assert check_averaged(None, whole).startswith("not done yet")
    assert check_averaged(averaged, whole) == PASS
    assert "do not sum" in check_averaged([4 * g for g in averaged], whole)
    assert "whole-batch gradients themselves" in check_averaged(whole, whole)
    assert "tensors shaped like" in check_averaged(averaged[:1], whole)
    first_quarter = torch.autograd.grad(loss_fn(model, (sources[:2], targets[:2]))[0], parameters)
    assert "differs from the whole-batch gradient" in check_averaged(first_quarter, whole)

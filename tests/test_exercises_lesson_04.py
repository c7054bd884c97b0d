"""Lesson 04's checkers pass their reference solutions and reject the stub and typical slips."""
import math

import torch

from facestyle_utils.attention import CrossAttention
from facestyle_utils.exercises import PASS
from facestyle_utils.exercises.lesson_04 import (
    check_attention_mib,
    check_attention_rows,
    check_sagan,
    solution_attention_mib,
    solution_attention_rows,
    solution_sagan,
)


def _maps():
    torch.manual_seed(0)
    block = CrossAttention(8)
    face, style = torch.randn(1, 8, 4, 5), torch.randn(1, 8, 3, 3)
    with torch.no_grad():
        block.log_inverse_temperature.add_(0.7)  # a learned temperature, not the starting one
        similarity, attention = block.similarity(face, style)[0], block.attention_map(face, style)[0]
    return similarity, 1 / block.log_inverse_temperature.exp().item(), attention


def test_check_attention_rows():
    similarity, temperature, attention = _maps()
    assert check_attention_rows(None, similarity, temperature, attention).startswith("not done yet")
    assert check_attention_rows(solution_attention_rows, similarity, temperature, attention) == PASS
    times = lambda s, t: torch.softmax(s * t, dim=-1)  # noqa: E731  (temperature multiplied, not divided)
    assert "differ from the model's" in check_attention_rows(times, similarity, temperature, attention)
    over_faces = lambda s, t: torch.softmax(s / t, dim=0)  # noqa: E731
    assert "sum to one" in check_attention_rows(over_faces, similarity, temperature, attention)
    assert "shape" in check_attention_rows(lambda s, t: (s / t).softmax(-1)[:3], similarity, temperature, attention)


def _attended(x, block, dim=-1):
    q, k, v = block.query(x).flatten(2), block.key(x).flatten(2), block.value(x).flatten(2)
    return (v @ torch.softmax(q.transpose(1, 2) @ k, dim=dim).transpose(1, 2)).view_as(x)


def test_check_sagan():
    assert check_sagan(None).startswith("not done yet")
    assert check_sagan(solution_sagan) == PASS
    assert "block(x)" in check_sagan(lambda x, block: block(x))  # the capped library forward, not the formula
    assert "exactly x" in check_sagan(lambda x, block: x + _attended(x, block))  # no gate
    assert "exactly x" in check_sagan(lambda x, block: block.gamma * _attended(x, block))  # no residual
    assert "differs" in check_sagan(lambda x, block: x + block.gamma * _attended(x, block, dim=1))  # wrong softmax dim
    assert "shape" in check_sagan(lambda x, block: x.flatten(2))


def test_check_sagan_leaves_the_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_sagan(solution_sagan)
    assert torch.equal(torch.rand(3), expected)


def test_check_attention_mib():
    assert check_attention_mib(None).startswith("not done yet")
    assert check_attention_mib(solution_attention_mib) == PASS
    assert solution_attention_mib(128, 4) == 4.0  # 1024 positions: 1024**2 entries of 4 bytes
    assert "expected" in check_attention_mib(lambda side, stride: (side // stride) ** 2 * 4 / 2**20)  # not squared
    assert "expected" in check_attention_mib(lambda side, stride: ((side // stride) ** 2) ** 2 * 4 / 1e6)  # MB
    assert "expected" in check_attention_mib(lambda side, stride: (side / stride) ** 4 * 4 / 2**20)  # 130 px: no floor
    assert check_attention_mib(lambda side, stride: torch.tensor(solution_attention_mib(side, stride))) == PASS
    assert math.isclose(solution_attention_mib(512, 8), 64.0)  # 64 x 64 = 4096 positions

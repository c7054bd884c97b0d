"""Attention blocks: probability rows, identity at gamma 0, memory cap, sizes."""
import pytest
import torch

from facestyle_utils.attention import (
    CrossAttention,
    SelfAttention,
    attention_at_points,
    attention_weights,
    chunked_attention,
    mean_variance_norm,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_mean_variance_norm_gives_zero_mean_unit_std():
    x = torch.randn(2, 4, 6, 5) * 3 + 7
    y = mean_variance_norm(x)
    assert torch.allclose(y.mean(dim=(2, 3)), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(y.std(dim=(2, 3), unbiased=False), torch.ones(2, 4), atol=1e-3)


def test_mean_variance_norm_of_float16_features_as_large_as_vgg19s_stays_finite_and_float16():
    x = torch.randn(2, 4, 6, 5) * 3000 + 1000  # a variance of 9e6 overflows float16 (largest value 65504)
    y = mean_variance_norm(x.half())
    assert y.dtype == torch.float16
    assert torch.allclose(y.float(), mean_variance_norm(x.half().float()), rtol=1e-3, atol=1e-3)


def test_chunked_attention_equals_full_attention():
    q, k, v = torch.randn(2, 4, 30), torch.randn(2, 4, 20), torch.randn(2, 3, 20)
    full = v @ torch.softmax(0.5 * q.transpose(1, 2) @ k, dim=-1).transpose(1, 2)
    chunked, largest = chunked_attention(q, k, v, 0.5, max_elements=100)
    assert torch.allclose(chunked, full, atol=1e-5)
    assert largest <= 100 and largest == 5 * 20  # chunks of 5 queries against 20 keys


def test_self_attention_with_gamma_zero_is_exactly_the_identity():
    block = SelfAttention(16)
    x = torch.randn(2, 16, 7, 9)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    assert not torch.allclose(block(x), x)


@pytest.mark.parametrize("size", [(5, 5), (6, 9), (1, 1)])
def test_self_attention_keeps_the_shape(size):
    x = torch.randn(1, 8, *size)
    assert SelfAttention(8)(x).shape == x.shape


def test_attention_rows_are_probability_distributions():
    face, style = torch.randn(1, 8, 6, 5), torch.randn(1, 8, 4, 7)
    rows = CrossAttention(8).attention_map(face, style)
    assert rows.shape == (1, 30, 28)
    assert (rows >= 0).all() and torch.allclose(rows.sum(-1), torch.ones(1, 30), atol=1e-5)
    self_rows = SelfAttention(8).attention_map(face)
    assert self_rows.shape == (1, 30, 30) and torch.allclose(self_rows.sum(-1), torch.ones(1, 30), atol=1e-5)


def test_cross_attention_similarity_is_cosine():
    block = CrossAttention(8)
    sim = block.similarity(torch.randn(1, 8, 4, 4), torch.randn(1, 8, 3, 3))
    assert sim.shape == (1, 16, 9) and sim.abs().max() <= 1 + 1e-5
    with torch.no_grad():  # identity projections: similarity of a map with itself is 1 on the diagonal
        for conv in (block.query, block.key):
            conv.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
            conv.bias.zero_()
    same = torch.randn(1, 8, 4, 4)
    assert torch.allclose(block.similarity(same, same).diagonal(dim1=1, dim2=2), torch.ones(1, 16), atol=1e-5)


@pytest.mark.parametrize("size", [(7, 5), (8, 8)])
def test_cross_attention_output_has_the_face_shape(size):
    face, style = torch.randn(2, 8, *size), torch.randn(2, 8, 6, 6)
    assert CrossAttention(8)(face, style).shape == face.shape


def test_memory_cap_is_honoured_for_large_inputs():
    cap = 4096
    big = torch.randn(1, 8, 64, 64)  # 4096 positions: a full matrix would hold 16.7 million entries
    self_block, cross_block = SelfAttention(8, max_elements=cap), CrossAttention(8, max_elements=cap)
    with torch.no_grad():
        self_block.gamma.fill_(1.0)
        out_self = self_block(big)
        out_cross = cross_block(big, torch.randn(1, 8, 64, 64))
    assert out_self.shape == out_cross.shape == big.shape
    assert 0 < self_block.largest_matrix <= cap and 0 < cross_block.largest_matrix <= cap
    assert torch.isfinite(out_self).all() and torch.isfinite(out_cross).all()


def test_gradients_reach_every_parameter():
    block = CrossAttention(4)
    block(torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


@pytest.mark.parametrize("face, style", [((1, 1), (1, 1)), ((1, 7), (5, 1)), ((3, 1), (1, 50)), ((2, 3), (9, 9))])
def test_tiny_maps_of_different_sizes_keep_the_face_shape_under_a_tight_cap(face, style):
    content, styles = torch.randn(2, 8, *face), torch.randn(2, 8, *style)
    cross, self_block = CrossAttention(8, max_elements=2), SelfAttention(8, max_elements=2)
    with torch.no_grad():
        self_block.gamma.fill_(1.0)
        out_cross, out_self = cross(content, styles), self_block(content)
    assert out_cross.shape == out_self.shape == content.shape
    assert torch.isfinite(out_cross).all() and torch.isfinite(out_self).all()
    assert cross.largest_matrix <= 2 and self_block.largest_matrix <= 2


def test_attention_weights_is_the_softmax_of_scaled_dot_products():
    q, k = torch.randn(2, 4, 6), torch.randn(2, 4, 5)
    weights = attention_weights(q, k, 2.0)
    expected = torch.exp(2.0 * torch.einsum("nci,ncj->nij", q, k))
    assert torch.allclose(weights, expected / expected.sum(-1, keepdim=True), atol=1e-6)


def test_unprojected_attention_uses_the_normalised_features_themselves():
    block = CrossAttention(8)
    face, style = torch.randn(1, 8, 3, 4) * 5 + 2, torch.randn(1, 8, 2, 5)
    q = torch.nn.functional.normalize(mean_variance_norm(face), dim=1).flatten(2)
    k = torch.nn.functional.normalize(mean_variance_norm(style), dim=1).flatten(2)
    cosine = q.transpose(1, 2) @ k
    assert torch.allclose(block.similarity(face, style, projected=False), cosine, atol=1e-6)
    raw = block.attention_map(face, style, projected=False)
    assert torch.allclose(raw, torch.softmax(cosine / 0.05, dim=-1), atol=1e-5)  # temperature 0.05 at the start
    assert not torch.allclose(raw, block.attention_map(face, style), atol=1e-3)  # the projections change it


def test_attention_at_points_picks_the_rows_of_the_feature_positions_under_the_points():
    face_shape, style_shape, stride = (3, 4), (2, 5), 4
    attention = torch.softmax(torch.randn(12, 10), dim=-1)
    rows = attention_at_points(attention, {"a": (0, 0), "b": (13.9, 5), "far": (500, 500)}, face_shape, style_shape,
                               stride)
    assert list(rows) == ["a", "b", "far"] and all(heat.shape == (2, 5) for heat in rows.values())
    assert torch.equal(rows["a"].flatten(), attention[0])
    assert torch.equal(rows["b"].flatten(), attention[1 * 4 + 3])  # row 5 // 4 = 1, column 13 // 4 = 3
    assert torch.equal(rows["far"].flatten(), attention[11])  # clamped to the last position
    with pytest.raises(ValueError, match=r"does not match face positions \(3, 3\)"):
        attention_at_points(attention, {"a": (0, 0)}, (3, 3), style_shape, stride)
    with pytest.raises(ValueError, match="point 'a' at \\(-1, 0\\) lies outside"):
        attention_at_points(attention, {"a": (-1, 0)}, face_shape, style_shape, stride)

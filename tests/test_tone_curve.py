"""The learned tone curve: starts as the identity, can draw the cartoon's tone steps exactly, learns them."""
import pytest
import torch

from facestyle_utils.tone_curve import DEFAULT_KNOTS, ToneCurve

LEVELS = torch.arange(256, dtype=torch.float32) / 255  # every 8-bit value


def posterized(values: torch.Tensor) -> torch.Tensor:
    """The cartoon filter's 8 tones per channel (filters.cartoon: ``v // 32 * 32 + 16``), for values in [0, 1]."""
    level = (values * 255).round()
    return (level // 32 * 32 + 16) / 255


def test_a_new_curve_is_the_identity_for_every_dtype():
    curve = ToneCurve()
    image = torch.rand(2, 3, 5, 7)
    assert curve.knots.shape == (3, DEFAULT_KNOTS)
    assert torch.allclose(curve(image), image, atol=1e-6)
    half = image.to(torch.bfloat16)
    out = curve(half)
    assert out.dtype == torch.bfloat16 and torch.equal(out, half)  # computed in float32, cast back


def test_knots_set_to_the_cartoon_steps_give_the_posterized_image_exactly():
    curve = ToneCurve()
    with torch.no_grad():
        curve.knots.copy_(posterized(LEVELS).repeat(3, 1))
    image = LEVELS[torch.randint(256, (2, 3, 6, 6))]
    assert torch.allclose(curve(image), posterized(image), atol=1e-6)
    # between two knots the curve is the straight line joining them
    assert torch.allclose(curve(torch.full((1, 3, 1, 1), 31.5 / 255)), torch.tensor((16 + 48) / 2 / 255), atol=1e-6)


def test_gradient_descent_learns_the_steps():
    torch.manual_seed(0)
    curve = ToneCurve()
    optimizer = torch.optim.Adam(curve.parameters(), lr=1e-2)
    for _ in range(150):
        image = LEVELS[torch.randint(256, (4, 3, 16, 16))]
        loss = torch.nn.functional.mse_loss(curve(image), posterized(image))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    photo_error = torch.nn.functional.mse_loss(LEVELS, posterized(LEVELS))  # the quantisation noise
    with torch.no_grad():
        learned_error = torch.nn.functional.mse_loss(curve(LEVELS.view(1, 1, 1, -1).expand(1, 3, 1, -1)),
                                                     posterized(LEVELS).view(1, 1, 1, -1).expand(1, 3, 1, -1))
    assert learned_error < photo_error / 20


def test_the_gradient_reaches_the_input_through_the_slope():
    curve = ToneCurve(knot_count=3)  # knots at 0, 0.5, 1
    with torch.no_grad():
        curve.knots.copy_(torch.tensor([0.0, 0.2, 1.0]).repeat(3, 1))
    image = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2).repeat(1, 3, 1, 1).requires_grad_()
    curve(image).sum().backward()
    assert torch.allclose(image.grad[0, :, 0], torch.tensor([0.4, 1.6]).repeat(3, 1))  # slopes 0.2/0.5 and 0.8/0.5


def test_inputs_outside_the_range_are_clamped():
    out = ToneCurve()(torch.tensor([-0.5, 0.0, 1.0, 1.5]).view(1, 1, 1, 4).repeat(1, 3, 1, 1))
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_bad_settings_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="knot_count >= 2"):
        ToneCurve(knot_count=1)
    with pytest.raises(ValueError, match="int knot_count"):
        ToneCurve(knot_count=256.0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*shape \(3, 8, 8\)"):
        ToneCurve()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="torch.uint8"):
        ToneCurve()(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_a_nan_stays_nan_without_breaking_the_lookup():
    image = torch.tensor([0.5, float("nan"), 1.0]).view(1, 1, 1, 3).repeat(1, 3, 1, 1)
    out = ToneCurve()(image)
    assert torch.isnan(out[0, :, 0, 1]).all()
    assert torch.allclose(out[0, :, 0, 0], torch.full((3,), 0.5)) and torch.allclose(out[0, :, 0, 2], torch.ones(3))


def test_the_steepest_slope_bounds_how_far_a_small_change_moves_an_output():
    """Why inference.agrees scales a float32 path's largest difference: a riser stretches rounding."""
    from facestyle_utils.tone_curve import steepest_slope

    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1))
    assert steepest_slope(plain) == 1.0  # no curve
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), ToneCurve())
    assert steepest_slope(model) == pytest.approx(1.0, rel=1e-4)  # the identity (linspace rounds a little)
    with torch.no_grad():
        model[1].knots.copy_(posterized(model[1].knots))  # flat steps, each riser one knot wide
        model[1].knots[1, 100] += 0.05  # one steeper riser, in the green curve
    knots = model[1].knots.detach()
    expected = float((knots[:, 1:] - knots[:, :-1]).abs().max()) * (DEFAULT_KNOTS - 1)
    assert steepest_slope(model) == pytest.approx(expected) and expected > 30
    values = torch.rand(1, 3, 64, 64) * 0.98 + 0.01
    nudge = 1e-4
    moved = (model[1](values + nudge) - model[1](values)).abs().max()
    assert 0 < moved <= steepest_slope(model) * nudge * (1 + 1e-3)
    with torch.no_grad():
        model[1].knots.copy_(torch.linspace(0.25, 0.75, DEFAULT_KNOTS).repeat(3, 1))  # half the identity's slope
    assert steepest_slope(model) == 1.0

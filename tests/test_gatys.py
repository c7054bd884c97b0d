"""The plain Gatys method: the loss goes down, the loss is what it says, the options work, errors are clear."""
import math

import pytest
import torch

from facestyle_utils.colour import rgb_to_ycbcr
from facestyle_utils.gatys import GatysLoss, GatysSettings, run_steps, stylize_by_optimisation
from facestyle_utils.image_io import ImageLoadError
from facestyle_utils.losses import gram_matrix


def whole_loss(vgg, image, content, style, settings=None):
    with torch.no_grad():
        return float(GatysLoss(vgg, content, style, settings or GatysSettings())(image)[0])


def test_few_lbfgs_steps_lower_the_total_loss(vgg, content_and_style):
    content, style = content_and_style
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=6), progress=False)
    assert result.image.shape == content.shape and result.image.dtype == torch.float32
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert len(result.losses) == 6
    assert result.losses[-1] < 0.9 * result.losses[0]
    assert result.losses[-1] < min(result.losses[:3])
    assert whole_loss(vgg, result.image, content, style) < whole_loss(vgg, content, content, style)
    assert set(result.parts) == {"content", "style", "tv"}
    assert result.seconds > 0


def test_the_first_loss_is_the_loss_of_the_face(vgg, content_and_style):
    content, style = content_and_style
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=1), progress=False)
    assert result.losses[0] == pytest.approx(whole_loss(vgg, content, content, style), rel=1e-5)


def test_adam_lowers_the_loss_and_input_is_untouched(vgg, content_and_style):
    content, style = content_and_style
    before = content.clone()
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=5, optimizer="adam",
                                                                        learning_rate=0.02), progress=False)
    assert result.losses[-1] < result.losses[0]
    assert torch.equal(content, before)


def test_the_loop_written_out_by_hand_gives_the_same_losses(vgg, content_and_style):
    """Lesson 02 shows this loop in a cell and says stylize_by_optimisation runs it."""
    content, style = content_and_style
    settings = GatysSettings(steps=3, optimizer="adam", learning_rate=0.02)
    objective = GatysLoss(vgg, content, style, settings)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=settings.learning_rate)
    losses = []
    for _ in range(settings.steps):
        optimizer.zero_grad()
        loss, _ = objective(image)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
        losses.append(loss.item())
    result = stylize_by_optimisation(content, style, vgg, settings, progress=False)
    assert result.losses == losses
    assert torch.equal(result.image, image.detach())


def test_targets_are_computed_once_and_vgg19_stops_at_the_deepest_layer(vgg, content_and_style):
    content, style = content_and_style
    calls = []

    def spy(image, layers):
        calls.append(list(layers))
        return vgg(image, layers)

    objective = GatysLoss(spy, content, style, GatysSettings(style_layers=("relu1_1", "relu3_1")))
    assert calls == [["relu4_2"], ["relu1_1", "relu3_1"]]  # the face's content, the style's Grams: once
    calls.clear()
    for _ in range(3):
        objective(torch.rand_like(content))
    assert calls == [["relu4_2", "relu1_1", "relu3_1"]] * 3  # one pass per step, never on to pool5


def test_zero_weights_switch_terms_off(vgg, content_and_style):
    content, style = content_and_style
    image = torch.rand_like(content)
    _, parts = GatysLoss(vgg, content, None, GatysSettings(style_weight=0.0, tv_weight=0.0))(image)
    assert parts["style"] == 0 and parts["tv"] == 0 and parts["content"] > 0
    _, parts = GatysLoss(vgg, content, style, GatysSettings(content_weight=0.0))(image)
    assert parts["content"] == 0 and parts["style"] > 0


def test_terms_name_each_layer_and_add_up_to_the_loss(vgg, content_and_style):
    content, style = content_and_style
    image = torch.rand_like(content)
    objective = GatysLoss(vgg, content, style, GatysSettings())
    terms = objective.terms(image)
    assert list(terms) == ["content relu4_2", "style relu1_1", "style relu2_1", "style relu3_1", "style relu4_1",
                           "style relu5_1", "tv"]
    total, parts = objective(image)
    assert sum(float(v) for v in terms.values()) == pytest.approx(total.item(), rel=1e-5)
    assert parts["style"] == pytest.approx(sum(float(v) for k, v in terms.items() if k.startswith("style")), rel=1e-5)
    assert sum(parts.values()) == pytest.approx(total.item(), rel=1e-5)
    features = vgg(image, ["relu3_1"])["relu3_1"]
    target = gram_matrix(vgg(style, ["relu3_1"])["relu3_1"])
    expected = 10.0 * ((gram_matrix(features) - target) ** 2).mean()  # style_weight 10 x the Gram MSE
    assert float(terms["style relu3_1"]) == pytest.approx(float(expected), rel=1e-4)


def test_callback_sees_every_step_and_can_stop_the_run(vgg, content_and_style):
    content, style = content_and_style
    seen = []
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=4),
                                     callback=lambda step, image, loss: seen.append((step, image.shape, loss)),
                                     progress=False)
    assert [s for s, _, _ in seen] == [0, 1, 2, 3] and seen[0][1] == content.shape
    assert [loss for _, _, loss in seen] == result.losses
    stopped = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=6),
                                      callback=lambda step, image, loss: step == 1, progress=False)
    assert stopped.losses == result.losses[:2]


def test_run_steps_refuses_a_loss_that_is_not_finite():
    image = torch.rand(1, 3, 4, 4, requires_grad=True)
    broken = lambda x: (x.sum() * math.nan, {})  # noqa: E731
    with pytest.raises(FloatingPointError, match="the loss became nan at step 0: lower the learning rate"):
        run_steps(image, broken, 3, GatysSettings(optimizer="adam"))


def run_recorded(objective, steps):
    """``steps`` Adam steps on a seeded random 4x4 image; returns the losses, a copy of the image after each
    step (what the callback saw) and the image at the end."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 4, 4, requires_grad=True)
    seen = []
    losses, _ = run_steps(image, objective, steps, GatysSettings(optimizer="adam", learning_rate=0.01),
                          callback=lambda step, now, loss: seen.append(now.clone()))
    return losses, seen, image


def test_a_diverging_step_sends_the_image_back_and_restarts_lbfgs_with_a_line_search(monkeypatch):
    """L-BFGS without a line search once blew a studio result up into colour noise (lesson 06, full mode)."""
    from facestyle_utils import gatys

    calls = []

    def objective(x):  # a bowl around 0.3, except that the third evaluation reports a spike
        calls.append(1)
        loss = ((x - 0.3) ** 2).sum() * (1e4 if len(calls) == 3 else 1.0)
        return loss, {"content": float(loss)}

    made = []
    real = gatys.make_optimizer
    monkeypatch.setattr(gatys, "make_optimizer", lambda image, settings, line_search=False: (
        made.append(line_search), real(image, settings, line_search))[1])
    losses, seen, image = run_recorded(objective, 5)
    assert losses[2] > 1000 * losses[1] and made == [False, True]
    assert torch.equal(seen[2], seen[0])  # back to the lowest-loss image: the one step 1 started from
    assert losses[3] == pytest.approx(losses[1]) and losses[4] < losses[3]  # and on downhill from there


def test_a_loss_that_turns_nan_sends_the_image_back_and_the_run_goes_on():
    """On an H200, lesson 02's content reconstruction from noise met a NaN loss at step 45 of 60."""
    calls = []

    def objective(x):  # a bowl around 0.3, except that the third evaluation is NaN
        calls.append(1)
        loss = ((x - 0.3) ** 2).sum() * (math.nan if len(calls) == 3 else 1.0)
        return loss, {"content": float(loss)}

    losses, seen, image = run_recorded(objective, 5)
    assert math.isnan(losses[2]) and all(math.isfinite(loss) for loss in losses[:2] + losses[3:])
    assert torch.equal(seen[2], seen[0])  # back to the lowest-loss image
    assert losses[4] < losses[3] == pytest.approx(losses[1]) and torch.isfinite(image).all()


def test_pixels_made_nan_by_the_last_update_are_replaced_by_the_best_image():
    """The loss is measured before each update, so a NaN gradient at the last step would go unseen."""
    calls = []

    def objective(x):  # a bowl around 0.3 whose gradient turns NaN at the third (last) evaluation
        calls.append(1)
        y = x.clone()
        if len(calls) == 3:
            y.register_hook(lambda grad: torch.full_like(grad, math.nan))
        loss = ((y - 0.3) ** 2).sum()
        return loss, {"content": float(loss)}

    losses, seen, image = run_recorded(objective, 3)
    assert all(math.isfinite(loss) for loss in losses) and torch.isnan(seen[-1]).all()
    assert torch.isfinite(image).all() and torch.equal(image.detach(), seen[1])  # the start of step 2: lowest loss


def test_a_loss_that_stays_nan_is_refused_after_a_few_restarts():
    from facestyle_utils.gatys import RESTARTS

    calls = []

    def objective(x):  # finite once, then NaN for ever
        calls.append(1)
        return ((x - 0.3) ** 2).sum() * (1.0 if len(calls) == 1 else math.nan), {}

    image = torch.rand(1, 3, 4, 4, requires_grad=True)
    with pytest.raises(FloatingPointError, match=f"the loss became nan at step {RESTARTS + 1}: lower"):
        run_steps(image, objective, 10, GatysSettings(optimizer="adam"))


def test_preserve_colour_option_keeps_the_face_chroma(vgg, content_and_style):
    content, style = content_and_style
    content = 0.3 + 0.4 * content
    style = 0.4 + 0.2 * style.mean(dim=1, keepdim=True).expand(1, 3, 32, 32)  # a gray texture, mid brightness
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=3, preserve_colour=True),
                                     progress=False)
    plain = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=3), progress=False)
    unclamped = ((result.image > 0.01) & (result.image < 0.99)).all(dim=1)  # very dark/bright pixels lose colour
    assert unclamped.float().mean() > 0.5
    chroma_error = (rgb_to_ycbcr(result.image)[:, 1:] - rgb_to_ycbcr(content)[:, 1:]).abs().amax(dim=1)
    plain_error = (rgb_to_ycbcr(plain.image)[:, 1:] - rgb_to_ycbcr(content)[:, 1:]).abs().amax(dim=1)
    assert chroma_error[unclamped].max() < 1e-3
    assert plain_error[unclamped].max() > 0.01  # without the option, the chroma does change


def test_noise_init_starts_from_uniform_noise_of_the_face_shape(vgg, content_and_style):
    content, style = content_and_style
    starts = []
    torch.manual_seed(7)
    stylize_by_optimisation(content, style, vgg, GatysSettings(steps=1, init="noise"), progress=False,
                            callback=lambda step, image, loss: starts.append(loss))
    torch.manual_seed(7)
    noise = torch.rand(content.shape)
    assert starts[0] == pytest.approx(whole_loss(vgg, noise, content, style), rel=1e-5)


def test_bad_settings_raise_clear_errors(vgg, content_and_style):
    with pytest.raises(ValueError, match="optimizer must be 'lbfgs' or 'adam', not 'sgd'"):
        GatysSettings(optimizer="sgd")
    with pytest.raises(ValueError, match="init must be 'content' or 'noise', not 'zeros'"):
        GatysSettings(init="zeros")
    with pytest.raises(ValueError, match="steps must be >= 0, not -1"):
        GatysSettings(steps=-1)
    with pytest.raises(ValueError, match=r"content image: expected shape \(1, 3, H, W\), got \(3, 32, 32\)"):
        stylize_by_optimisation(torch.rand(3, 32, 32), content_and_style[1], vgg, GatysSettings(steps=1),
                                progress=False)


def test_settings_have_only_the_methods_knobs():
    assert len(GatysSettings.__dataclass_fields__) <= 11
    assert GatysSettings().replace(steps=3).steps == 3


def test_balanced_style_layers_make_each_layer_a_relative_error(vgg, content_and_style):
    content, style = content_and_style
    layers = ("relu1_1", "relu3_1")
    settings = GatysSettings(content_weight=0.0, tv_weight=0.0, style_weight=1.0, style_layers=layers,
                             balance_style_layers=True)
    objective = GatysLoss(vgg, content, style, settings)
    with torch.no_grad():
        loss, _ = objective(content)
        same, _ = objective(style)
        mine, theirs = vgg(content, list(layers)), vgg(style, list(layers))
    expected = sum(((gram_matrix(mine[k]) - gram_matrix(theirs[k])) ** 2).mean() / gram_matrix(theirs[k]).pow(2).mean()
                   for k in layers)
    assert float(loss) == pytest.approx(float(expected), rel=1e-4)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    plain, _ = GatysLoss(vgg, content, style, settings.replace(balance_style_layers=False))(content)
    assert float(plain) != pytest.approx(float(loss), rel=1e-2)  # the weights really changed the loss


TINY = [(1, 1), (1, 7), (3, 200), (12, 12), (15, 17), (200, 10)]


@pytest.mark.parametrize("size", TINY)
def test_a_face_too_small_for_vgg19_is_refused_before_any_step(vgg, content_and_style, size):
    steps = []
    with pytest.raises(ValueError) as error:
        stylize_by_optimisation(torch.rand(1, 3, *size), content_and_style[1], vgg, GatysSettings(steps=2),
                                callback=lambda *args: steps.append(args), progress=False)
    assert str(error.value) == (f"content image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")
    assert steps == []


@pytest.mark.parametrize("size", TINY)
def test_a_style_image_too_small_for_vgg19_is_refused(vgg, content_and_style, size):
    with pytest.raises(ValueError) as error:
        stylize_by_optimisation(content_and_style[0], torch.rand(1, 3, *size), vgg, GatysSettings(steps=2),
                                progress=False)
    assert str(error.value) == (f"style image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")


def test_the_minimum_follows_the_chosen_layers(vgg, content_and_style):
    shallow = GatysSettings(steps=1, content_layers=("relu2_2",), style_layers=("relu1_1", "relu3_1"))
    result = stylize_by_optimisation(torch.rand(1, 3, 4, 9), torch.rand(1, 3, 5, 4), vgg, shallow, progress=False)
    assert result.image.shape == (1, 3, 4, 9)  # relu3_1 passes 2 poolings: 4 px suffice
    with pytest.raises(ValueError, match=r"style image is 3x40 px .* up to relu3_1 pass 2 poolings .* at least 4 px"):
        stylize_by_optimisation(torch.rand(1, 3, 4, 9), torch.rand(1, 3, 3, 40), vgg, shallow, progress=False)
    with pytest.raises(ValueError, match="style image is 10x64 px"):
        GatysLoss(vgg, content_and_style[0], torch.rand(1, 3, 10, 64), GatysSettings())


def test_content_only_with_a_shallow_layer_takes_a_one_pixel_row(vgg):
    settings = GatysSettings(steps=2, content_layers=("relu1_2",), style_weight=0.0)  # tv on: no NaN from 1 px
    result = stylize_by_optimisation(torch.rand(1, 3, 1, 7), None, vgg, settings, progress=False)
    assert result.image.shape == (1, 3, 1, 7) and all(math.isfinite(loss) for loss in result.losses)


def test_unknown_layers_are_named_before_the_size_check(vgg, content_and_style):
    with pytest.raises(KeyError, match="relu9_9"):
        stylize_by_optimisation(*content_and_style, vgg, GatysSettings(steps=1, style_layers=("relu9_9",)),
                                progress=False)


# Issue #14 (F5): images of any dtype follow image_io's value rule at the entry points.
SHALLOW = GatysSettings(steps=2, content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"))


@pytest.fixture(scope="module")
def eight_bit():
    """The same two pictures as uint8 (0-255) and as float32 (k / 255)."""
    torch.manual_seed(3)
    content8 = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    style8 = torch.randint(0, 256, (1, 3, 20, 16), dtype=torch.uint8)
    return content8, style8, content8.float() / 255, style8.float() / 255


@pytest.mark.parametrize("kinds", ["content uint8", "content int64", "content float64", "style uint8", "both uint8",
                                   "style (3, H, W)"])
def test_gatys_gives_the_float_result_for_the_same_picture_in_any_dtype(vgg, eight_bit, kinds):
    content8, style8, content, style = eight_bit
    given_content = {"content uint8": content8, "content int64": content8.long(), "content float64": content.double(),
                     "both uint8": content8}.get(kinds, content)
    given_style = {"style uint8": style8, "both uint8": style8, "style (3, H, W)": style[0]}.get(kinds, style)
    before = given_content.clone(), given_style.clone()
    expected = stylize_by_optimisation(content, style, vgg, SHALLOW, progress=False)
    result = stylize_by_optimisation(given_content, given_style, vgg, SHALLOW, progress=False)
    assert result.image.dtype == torch.float32 and result.image.shape == (1, 3, 16, 16)
    assert torch.allclose(result.image, expected.image, atol=1e-5)
    assert result.losses == pytest.approx(expected.losses, rel=1e-5)
    assert torch.equal(given_content, before[0]) and torch.equal(given_style, before[1])  # inputs untouched


def test_the_colour_option_takes_uint8_too(vgg, eight_bit):
    content8, style8, content, style = eight_bit
    settings = SHALLOW.replace(preserve_colour=True)
    expected = stylize_by_optimisation(content, style, vgg, settings, progress=False).image
    assert torch.allclose(stylize_by_optimisation(content8, style8, vgg, settings, progress=False).image, expected,
                          atol=1e-5)


def test_gatys_loss_takes_uint8_images(vgg, eight_bit):
    content8, style8, content, style = eight_bit
    loss8, _ = GatysLoss(vgg, content8, style8, SHALLOW)(content)
    loss, _ = GatysLoss(vgg, content, style, SHALLOW)(content)
    assert float(loss8) == pytest.approx(float(loss), rel=1e-6)


@pytest.mark.parametrize("which, value, message", [
    ("content", 127.5, r"^content image: torch.float32 values span 127.5\.\.127.5, but float images lie in \[0, 1\]"),
    ("content", -0.75, r"^content image: torch.float32 values span -0.75\.\.-0.75"),  # [-1, 1] data
    ("style", 127.5, r"^style image: torch.float32 values span 127.5\.\.127.5"),
])
def test_gatys_refuses_float_images_outside_0_1_naming_them(vgg, which, value, message):
    content_and_style = {"content": torch.full((1, 3, 16, 16), 0.5), "style": torch.full((1, 3, 16, 16), 0.5)}
    content_and_style[which] = torch.full((1, 3, 16, 16), value)
    with pytest.raises(ImageLoadError, match=message):
        stylize_by_optimisation(content_and_style["content"], content_and_style["style"], vgg, SHALLOW, progress=False)


def test_gatys_refuses_integers_beyond_255(vgg, eight_bit):
    with pytest.raises(ImageLoadError, match=r"^content image: torch.int64"):
        stylize_by_optimisation(torch.full((1, 3, 16, 16), 300), eight_bit[2], vgg, SHALLOW, progress=False)

"""Style transfer by optimisation: the loss goes down, the speed switches keep the maths, the options work."""
import math

import pytest
import torch

from facestyle_utils import runtime
from facestyle_utils.colour import rgb_to_ycbcr
from facestyle_utils.gatys import (
    GatysLoss,
    GatysSettings,
    compare_speed,
    fast_settings,
    stylize_by_optimisation,
    total_loss,
)
from facestyle_utils.image_io import ImageLoadError


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx * yy]).unsqueeze(0)  # smooth colour ramps
    style = torch.rand(1, 3, 32, 32)  # noise: a very different texture
    return content, style


def test_few_lbfgs_steps_lower_the_total_loss(vgg, images):
    content, style = images
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=6), progress=False)
    assert result.image.shape == content.shape
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert len(result.losses) == len(result.times) == len(result.sizes) == 6
    assert result.losses[-1] < 0.9 * result.losses[0]
    assert result.losses[-1] < min(result.losses[:3])
    assert total_loss(result.image, content, style, vgg) < total_loss(content, content, style, vgg)
    assert set(result.parts) == {"content", "style", "tv"}
    assert result.seconds > 0


def test_adam_lowers_the_loss_and_input_is_untouched(vgg, images):
    content, style = images
    before = content.clone()
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=5, optimizer="adam",
                                                                        learning_rate=0.02), progress=False)
    assert result.losses[-1] < result.losses[0]
    assert torch.equal(content, before)


def test_speed_switches_do_not_change_the_loss(vgg, images):
    content, style = images
    image = torch.rand_like(content)
    reference, _ = GatysLoss(vgg, content, style, GatysSettings())(image)
    for switch in ({"cache_targets": False}, {"truncate_network": False}, {"channels_last": True}):
        value, _ = GatysLoss(vgg, content, style, GatysSettings(**switch))(image)
        assert value.item() == pytest.approx(reference.item(), rel=1e-4), switch


def test_zero_weights_switch_terms_off(vgg, images):
    content, style = images
    image = torch.rand_like(content)
    _, parts = GatysLoss(vgg, content, None, GatysSettings(style_weight=0.0, tv_weight=0.0))(image)
    assert parts["style"] == 0 and parts["tv"] == 0 and parts["content"] > 0
    _, parts = GatysLoss(vgg, content, style, GatysSettings(content_weight=0.0))(image)
    assert parts["content"] == 0 and parts["style"] > 0


def test_coarse_to_fine_records_both_sizes(vgg, images):
    content, style = images
    settings = GatysSettings(steps=2, coarse_steps=3, coarse_scale=0.5)
    result = stylize_by_optimisation(content, style, vgg, settings, progress=False)
    assert result.sizes == [16, 16, 16, 32, 32]
    assert len(result.full_size_losses) == 2
    assert result.image.shape == content.shape


def test_target_loss_stops_early_and_seconds_to_reach(vgg, images):
    content, style = images
    first = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=6), progress=False)
    target = first.losses[2]
    again = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=6, target_loss=target), progress=False)
    assert len(again.losses) == 3
    assert again.seconds_to_reach(target) <= again.seconds
    assert math.isinf(again.seconds_to_reach(-1.0))


def test_late_style_layers_wait_then_join_the_loss(vgg, images):
    content, style = images
    image = torch.rand_like(content)
    whole, _ = GatysLoss(vgg, content, style, GatysSettings())(image)
    objective = GatysLoss(vgg, content, style, GatysSettings(late_style_layers=("relu5_1",)))
    assert not objective.exact and "relu5_1" not in objective.layers  # the network can stop at relu4_2
    partial, _ = objective(image)
    assert 0 < partial.item() < whole.item()  # the left-out term is >= 0, so the partial loss is a lower bound
    objective.add_late_layers()
    assert objective.exact and objective.layers[-1] == "relu5_1"
    assert objective(image)[0].item() == pytest.approx(whole.item(), rel=1e-5)


def test_late_style_layers_join_for_the_last_steps_and_only_the_whole_loss_counts(vgg, images):
    content, style = images
    settings = GatysSettings(steps=6, late_style_layers=("relu5_1",), late_steps=2)
    result = stylize_by_optimisation(content, style, vgg, settings, progress=False)
    assert result.exact == [False] * 4 + [True] * 2
    coarse = stylize_by_optimisation(content, style, vgg, settings.replace(coarse_steps=2, coarse_scale=0.5),
                                     progress=False)
    assert coarse.exact == [False] * 6 + [True] * 2
    # With a target, the late layers join as soon as the partial loss reaches it (long before the
    # last 5 of 30 steps), and the run stops only when the *whole* loss reaches it.
    target = result.losses[-1]
    stopped = stylize_by_optimisation(content, style, vgg, settings.replace(steps=30, target_loss=target),
                                      progress=False)
    first_exact = stopped.exact.index(True)
    assert stopped.losses[-1] <= target and stopped.exact[-1]
    assert all(loss > target for loss, exact in zip(stopped.losses[:-1], stopped.exact[:-1]) if exact)
    assert first_exact < 30 - 5 and stopped.steps_to_reach(target) == len(stopped.losses)
    assert stopped.seconds_to_reach(target) == stopped.times[-1]


def test_callback_and_snapshots(vgg, images):
    content, style = images
    seen = []
    result = stylize_by_optimisation(content, style, vgg, GatysSettings(steps=4, snapshot_every=2),
                                     callback=lambda step, image, loss: seen.append((step, image.shape, loss)),
                                     progress=False)
    assert [s for s, _, _ in seen] == [0, 1, 2, 3]
    assert [loss for _, _, loss in seen] == result.losses
    assert [s for s, _ in result.snapshots] == [0, 2]


def test_preserve_colour_option_keeps_the_face_chroma(vgg, images):
    content, style = images
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


def test_bad_settings_raise_clear_errors(vgg, images):
    with pytest.raises(ValueError, match="optimizer"):
        GatysSettings(optimizer="sgd")
    with pytest.raises(ValueError, match="init"):
        GatysSettings(init="zeros")
    with pytest.raises(ValueError, match="coarse_scale"):
        GatysSettings(coarse_scale=2.0)
    with pytest.raises(ValueError, match=r"late_style_layers must be among style_layers .*relu9_9"):
        GatysSettings(late_style_layers=("relu9_9",))
    with pytest.raises(ValueError, match="late_steps"):
        GatysSettings(late_style_layers=("relu5_1",), late_steps=0)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        stylize_by_optimisation(torch.rand(3, 32, 32), images[1], vgg, GatysSettings(steps=1), progress=False)


def test_fast_settings_use_bf16_only_on_a_cpu_that_has_it(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert fast_settings("cpu").autocast and not fast_settings("cpu").channels_last
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    cpu = fast_settings("cpu")
    assert cpu.coarse_steps > 0 and not cpu.autocast and not cpu.channels_last
    assert not fast_settings("mps").autocast
    assert fast_settings("cuda").autocast and fast_settings("cpu", steps=7).steps == 7
    assert cpu.late_style_layers == ("relu5_1",)
    assert fast_settings("cpu", style_layers=("relu1_1", "relu2_1")).late_style_layers == ()
    assert fast_settings("cpu", late_style_layers=()).late_style_layers == ()


def test_compare_speed_uses_the_first_variant_as_target(vgg, images):
    content, style = images
    rows = compare_speed(content, style, vgg, {"plain": GatysSettings(steps=3),
                                               "same": GatysSettings(steps=6)}, progress=False)
    assert [r.name for r in rows] == ["plain", "same"]
    assert rows[0].steps_to_target == 3
    assert rows[1].steps_to_target is not None and rows[1].steps_to_target <= 3
    assert rows[1].final_loss <= rows[0].final_loss


def test_balanced_style_layers_make_each_layer_a_relative_error(vgg, images):
    from facestyle_utils.losses import gram_matrix

    content, style = images
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


def test_total_loss_counts_late_layers(vgg, images):
    content, style = images
    image = torch.rand_like(content)
    late = GatysSettings(late_style_layers=("relu5_1",))
    assert total_loss(image, content, style, vgg, late) == pytest.approx(total_loss(image, content, style, vgg),
                                                                        rel=1e-5)


def test_terms_name_each_layer_and_add_up_to_the_loss(vgg, images):
    content, style = images
    image = torch.rand_like(content)
    objective = GatysLoss(vgg, content, style, GatysSettings(late_style_layers=("relu5_1",)))
    terms = objective.terms(image)
    assert list(terms) == ["content relu4_2", "style relu1_1", "style relu2_1", "style relu3_1", "style relu4_1",
                           "tv"]
    total, parts = objective(image)
    assert sum(float(v) for v in terms.values()) == pytest.approx(total.item(), rel=1e-5)
    assert parts["style"] == pytest.approx(sum(float(v) for k, v in terms.items() if k.startswith("style")), rel=1e-5)
    assert sum(parts.values()) == pytest.approx(total.item(), rel=1e-5)
    objective.add_late_layers()
    assert "style relu5_1" in objective.terms(image)


TINY = [(1, 1), (1, 7), (3, 200), (12, 12), (15, 17), (200, 10)]


@pytest.mark.parametrize("size", TINY)
@pytest.mark.parametrize("make", [GatysSettings, fast_settings])
def test_a_face_too_small_for_vgg19_is_refused_before_any_step(vgg, images, size, make):
    steps = []
    with pytest.raises(ValueError) as error:
        stylize_by_optimisation(torch.rand(1, 3, *size), images[1], vgg, make(steps=2),
                                callback=lambda *args: steps.append(args), progress=False)
    assert str(error.value) == (f"content image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")
    assert steps == []


@pytest.mark.parametrize("size", TINY)
@pytest.mark.parametrize("make", [GatysSettings, fast_settings])
def test_a_style_image_too_small_for_vgg19_is_refused(vgg, images, size, make):
    with pytest.raises(ValueError) as error:
        stylize_by_optimisation(images[0], torch.rand(1, 3, *size), vgg, make(steps=2), progress=False)
    assert str(error.value) == (f"style image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")


def test_the_minimum_follows_the_chosen_layers(vgg, images):
    shallow = GatysSettings(steps=1, content_layers=("relu2_2",), style_layers=("relu1_1", "relu3_1"))
    result = stylize_by_optimisation(torch.rand(1, 3, 4, 9), torch.rand(1, 3, 5, 4), vgg, shallow, progress=False)
    assert result.image.shape == (1, 3, 4, 9)  # relu3_1 passes 2 poolings: 4 px suffice
    with pytest.raises(ValueError, match=r"style image is 3x40 px .* up to relu3_1 pass 2 poolings .* at least 4 px"):
        stylize_by_optimisation(torch.rand(1, 3, 4, 9), torch.rand(1, 3, 3, 40), vgg, shallow, progress=False)
    naive = GatysSettings(steps=1, truncate_network=False)  # runs on to pool5
    with pytest.raises(ValueError, match=r"content image is 24x24 px .* up to pool5 pass 5 poolings .* 32 px"):
        stylize_by_optimisation(torch.rand(1, 3, 24, 24), images[1], vgg, naive, progress=False)
    with pytest.raises(ValueError, match="style image is 10x64 px"):
        total_loss(images[0], images[0], torch.rand(1, 3, 10, 64), vgg)


def test_content_only_with_a_shallow_layer_takes_a_one_pixel_row(vgg):
    settings = GatysSettings(steps=2, content_layers=("relu1_2",), style_weight=0.0)  # tv on: no NaN from 1 px
    result = stylize_by_optimisation(torch.rand(1, 3, 1, 7), None, vgg, settings, progress=False)
    assert result.image.shape == (1, 3, 1, 7) and all(math.isfinite(loss) for loss in result.losses)


def test_coarse_sizes_keep_what_vgg19_needs():
    from facestyle_utils.gatys import coarse_sizes

    face, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 200, 16)
    fast = fast_settings("cpu")
    assert coarse_sizes(face, style, fast) == ((24, 24), (200, 16))  # the style cannot shrink below 16 px
    assert coarse_sizes(face, torch.rand(1, 3, 64, 32), fast) == ((24, 24), (32, 16))  # shrunk less, same aspect
    assert coarse_sizes(torch.rand(1, 3, 20, 40), style, fast) == ((16, 32), (200, 16))
    assert coarse_sizes(torch.rand(1, 3, 16, 16), style, fast) is None  # nothing to shrink: no coarse stage
    assert coarse_sizes(torch.rand(1, 3, 16, 300), style, fast) is None
    assert coarse_sizes(face, style, fast.replace(coarse_steps=0)) is None
    assert coarse_sizes(face, torch.rand(1, 3, 64, 64), fast.replace(truncate_network=False)) == ((32, 32), (32, 32))
    assert coarse_sizes(face, None, GatysSettings(coarse_steps=1, content_layers=("relu2_1",), style_weight=0.0,
                                                  coarse_scale=0.25)) == ((16, 16), None)


@pytest.mark.parametrize("size, sizes", [((16, 16), [16] * 3), ((20, 20), [16, 16, 20]), ((16, 40), [40] * 3),
                                         ((64, 24), [16, 16, 24])])
def test_fast_settings_run_small_faces_with_a_smaller_or_no_coarse_stage(vgg, images, size, sizes):
    result = stylize_by_optimisation(torch.rand(1, 3, *size), images[1], vgg,
                                     fast_settings("cpu", coarse_steps=2, steps=1), progress=False)
    assert result.image.shape == (1, 3, *size)
    assert result.sizes == sizes  # with no coarse stage its steps run at full size: the count stays the same
    assert result.exact[-1] and all(math.isfinite(loss) for loss in result.losses)


def test_compare_speed_warms_up_small_images_at_the_sizes_it_runs(vgg):
    torch.manual_seed(0)
    face, style = torch.rand(1, 3, 20, 20), torch.rand(1, 3, 16, 48)
    rows = compare_speed(face, style, vgg, {"plain": GatysSettings(steps=2),
                                            "fast": fast_settings("cpu", coarse_steps=1, steps=2)}, progress=False)
    assert rows[1].result.sizes[:2] == [16, 20] and rows[1].result.image.shape == face.shape


def test_unknown_layers_are_named_before_the_size_check(vgg, images):
    with pytest.raises(KeyError, match="relu9_9"):
        stylize_by_optimisation(images[0], images[1], vgg, GatysSettings(steps=1, style_layers=("relu9_9",)),
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


def test_gatys_coarse_stage_and_colour_option_take_uint8_too(vgg, eight_bit):
    content8, style8, content, style = eight_bit
    settings = SHALLOW.replace(coarse_steps=1, coarse_scale=0.5, preserve_colour=True)
    expected = stylize_by_optimisation(content, style, vgg, settings, progress=False).image
    assert torch.allclose(stylize_by_optimisation(content8, style8, vgg, settings, progress=False).image, expected,
                          atol=1e-5)


def test_total_loss_and_gatys_loss_take_uint8_images(vgg, eight_bit):
    content8, style8, content, style = eight_bit
    assert total_loss(content8, content8, style8, vgg, SHALLOW) == pytest.approx(
        total_loss(content, content, style, vgg, SHALLOW), rel=1e-6)
    loss8, _ = GatysLoss(vgg, content8, style8, SHALLOW)(content)
    loss, _ = GatysLoss(vgg, content, style, SHALLOW)(content)
    assert float(loss8) == pytest.approx(float(loss), rel=1e-6)


@pytest.mark.parametrize("which, value, message", [
    ("content", 127.5, r"^content image: torch.float32 values span 127.5\.\.127.5, but float images lie in \[0, 1\]"),
    ("content", -0.75, r"^content image: torch.float32 values span -0.75\.\.-0.75"),  # [-1, 1] data
    ("style", 127.5, r"^style image: torch.float32 values span 127.5\.\.127.5"),
])
def test_gatys_refuses_float_images_outside_0_1_naming_them(vgg, which, value, message):
    images = {"content": torch.full((1, 3, 16, 16), 0.5), "style": torch.full((1, 3, 16, 16), 0.5)}
    images[which] = torch.full((1, 3, 16, 16), value)
    with pytest.raises(ImageLoadError, match=message):
        stylize_by_optimisation(images["content"], images["style"], vgg, SHALLOW, progress=False)


def test_gatys_refuses_integers_beyond_255(vgg, eight_bit):
    with pytest.raises(ImageLoadError, match=r"^content image: torch.int64"):
        stylize_by_optimisation(torch.full((1, 3, 16, 16), 300), eight_bit[2], vgg, SHALLOW, progress=False)

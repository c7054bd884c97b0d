"""Lesson 02's speed lab: the switches keep the maths, the records and schedules are right, the timing helpers work."""
import math
import re

import pytest
import torch

from facestyle_utils import gatys_speed, runtime
from facestyle_utils.gatys import GatysLoss, GatysSettings, stylize_by_optimisation
from facestyle_utils.gatys_speed import (
    SpeedLoss,
    SpeedRow,
    SpeedSettings,
    choose_coarse_stage,
    coarse_sizes,
    compare_speed,
    fast_settings,
    gram_matrix_fused,
    seconds_per_loss_step,
    seconds_per_step,
    speed_verdicts,
    stylize_fast,
    total_loss,
)
from facestyle_utils.losses import gram_matrix


def test_fused_gram_has_the_values_and_gradient_of_the_plain_one():
    torch.manual_seed(0)
    features = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 5, 5, dtype=torch.float64)
    fused = gram_matrix_fused(features)
    plain = gram_matrix(features)
    assert fused.shape == (2, 5, 5) and fused.dtype == torch.float64
    assert torch.allclose(fused, plain)
    (grad_fused,) = torch.autograd.grad((fused * weights).sum(), features)
    (grad_plain,) = torch.autograd.grad((plain * weights).sum(), features)
    assert torch.allclose(grad_fused, grad_plain)
    assert gram_matrix_fused(torch.ones(1, 2, 2, 2, dtype=torch.bfloat16)).dtype == torch.float32


@pytest.mark.parametrize("switch", [{"targets_every_step": True}, {"full_network": True}, {"channels_last": True},
                                    {"fused_gram": True}])
def test_speed_switches_do_not_change_the_loss_or_its_gradient(vgg, content_and_style, switch):
    content, style = content_and_style
    image = torch.rand_like(content).requires_grad_(True)
    reference, _ = GatysLoss(vgg, content, style, GatysSettings())(image)
    (reference_grad,) = torch.autograd.grad(reference, image)
    value, _ = SpeedLoss(vgg, content, style, SpeedSettings(**switch))(image)
    (grad,) = torch.autograd.grad(value, image)
    assert value.item() == pytest.approx(reference.item(), rel=1e-4)
    assert torch.allclose(grad, reference_grad, rtol=1e-3, atol=1e-3 * reference_grad.abs().max().item())


def test_the_naive_switches_run_the_whole_network_and_recompute_targets(vgg, content_and_style):
    content, style = content_and_style
    calls = []

    def spy(image, layers):
        calls.append(list(layers))
        return vgg(image, layers)

    objective = SpeedLoss(spy, content, style, SpeedSettings(full_network=True, targets_every_step=True))
    calls.clear()
    objective(content)
    assert calls == [["relu4_2", "pool5"], [*GatysSettings().style_layers, "pool5"],
                     ["relu4_2", *GatysSettings().style_layers, "pool5"]]


def test_with_every_switch_off_stylize_fast_is_the_plain_method(vgg, content_and_style):
    content, style = content_and_style
    settings = GatysSettings(steps=3)
    plain = stylize_by_optimisation(content, style, vgg, settings, progress=False)
    wrapped = stylize_fast(content, style, vgg, settings, progress=False)
    assert wrapped.losses == plain.losses and torch.equal(wrapped.image, plain.image)
    assert wrapped.parts == plain.parts
    assert wrapped.sizes == [32] * 3 and wrapped.exact == [True] * 3 and len(wrapped.times) == 3


def test_settings_replace_sends_the_methods_fields_to_the_method():
    settings = SpeedSettings().replace(steps=7, coarse_steps=2, preserve_colour=True)
    assert settings.method.steps == 7 and settings.method.preserve_colour and settings.coarse_steps == 2
    other = settings.replace(method=GatysSettings(steps=1), tv_weight=0.0)
    assert other.method.steps == 1 and other.method.tv_weight == 0.0 and other.coarse_steps == 2
    with pytest.raises(TypeError):
        settings.replace(cache_targets=False)


def test_coarse_to_fine_records_both_sizes(vgg, content_and_style):
    content, style = content_and_style
    settings = SpeedSettings(GatysSettings(steps=2), coarse_steps=3, coarse_scale=0.5)
    result = stylize_fast(content, style, vgg, settings, progress=False)
    assert result.sizes == [16, 16, 16, 32, 32]
    assert result.exact == [False] * 3 + [True] * 2
    assert len(result.full_size_losses) == 2
    assert result.image.shape == content.shape


def test_target_loss_stops_early_and_seconds_to_reach(vgg, content_and_style):
    content, style = content_and_style
    first = stylize_fast(content, style, vgg, GatysSettings(steps=6), progress=False)
    target = first.losses[2]
    again = stylize_fast(content, style, vgg, SpeedSettings(GatysSettings(steps=6), target_loss=target),
                         progress=False)
    assert len(again.losses) == 3
    assert again.seconds_to_reach(target) == again.times[2] <= again.seconds
    assert math.isinf(again.seconds_to_reach(-1.0)) and again.steps_to_reach(-1.0) is None


def test_late_style_layers_wait_then_join_the_loss(vgg, content_and_style):
    content, style = content_and_style
    image = torch.rand_like(content)
    whole, _ = GatysLoss(vgg, content, style, GatysSettings())(image)
    objective = SpeedLoss(vgg, content, style, SpeedSettings(late_style_layers=("relu5_1",)))
    assert not objective.exact and "relu5_1" not in objective.style_layers
    partial, _ = objective(image)
    assert 0 < partial.item() < whole.item()  # the left-out term is >= 0, so the partial loss is a lower bound
    assert "style relu5_1" not in objective.terms(image)
    objective.add_late_layers()
    assert objective.exact and objective.style_layers[-1] == "relu5_1"
    assert objective(image)[0].item() == pytest.approx(whole.item(), rel=1e-5)


def test_late_style_layers_join_for_the_last_steps_and_only_the_whole_loss_counts(vgg, content_and_style):
    content, style = content_and_style
    settings = SpeedSettings(GatysSettings(steps=6), late_style_layers=("relu5_1",), late_steps=2)
    result = stylize_fast(content, style, vgg, settings, progress=False)
    assert result.exact == [False] * 4 + [True] * 2
    coarse = stylize_fast(content, style, vgg, settings.replace(coarse_steps=2, coarse_scale=0.5), progress=False)
    assert coarse.exact == [False] * 6 + [True] * 2
    short = stylize_fast(content, style, vgg, settings.replace(steps=2), progress=False)
    assert short.exact == [True, True]  # no more steps than late_steps: the layers are in from the start
    # With a target, the late layers join as soon as the partial loss reaches it (long before the
    # last 5 of 30 steps), and the run stops only when the *whole* loss reaches it.
    target = result.losses[-1]
    stopped = stylize_fast(content, style, vgg, settings.replace(steps=30, target_loss=target), progress=False)
    first_exact = stopped.exact.index(True)
    assert stopped.losses[-1] <= target and stopped.exact[-1]
    assert all(loss > target for loss, exact in zip(stopped.losses[:-1], stopped.exact[:-1]) if exact)
    assert first_exact < 30 - 5 and stopped.steps_to_reach(target) == len(stopped.losses)
    assert stopped.seconds_to_reach(target) == stopped.times[-1]


def test_callback_and_snapshots_count_steps_across_stages(vgg, content_and_style):
    content, style = content_and_style
    seen = []
    settings = SpeedSettings(GatysSettings(steps=2), coarse_steps=2, snapshot_every=2)
    result = stylize_fast(content, style, vgg, settings,
                          callback=lambda step, image, loss: seen.append((step, image.shape[-1], loss)),
                          progress=False)
    assert [(s, side) for s, side, _ in seen] == [(0, 16), (1, 16), (2, 32), (3, 32)]
    assert [loss for _, _, loss in seen] == result.losses
    assert [s for s, _ in result.snapshots] == [0, 2]
    assert [image.shape[-1] for _, image in result.snapshots] == [16, 32]
    stopped = stylize_fast(content, style, vgg, settings, callback=lambda step, image, loss: step == 0,
                           progress=False)
    assert len(stopped.losses) == 1 and stopped.image.shape == content.shape  # stopped in the coarse stage


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match=r"coarse_scale must be in \(0, 1\], not 2.0"):
        SpeedSettings(coarse_scale=2.0)
    with pytest.raises(ValueError, match="coarse_steps must be >= 0"):
        SpeedSettings(coarse_steps=-1)
    with pytest.raises(ValueError, match=r"late_style_layers must be among style_layers .*relu9_9"):
        SpeedSettings(late_style_layers=("relu9_9",))
    with pytest.raises(ValueError, match="late_steps must be >= 1, not 0"):
        SpeedSettings(late_style_layers=("relu5_1",), late_steps=0)


def test_fast_settings_use_bf16_only_on_a_cpu_that_has_it(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert fast_settings("cpu").autocast and not fast_settings("cpu").channels_last
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    cpu = fast_settings("cpu")
    assert cpu.coarse_steps == 40 and cpu.coarse_scale == 0.375 and cpu.method.steps == 20
    assert cpu.fused_gram and not cpu.autocast and not cpu.channels_last
    assert not fast_settings("mps").autocast
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # H100, H200
    assert fast_settings("cuda").autocast and fast_settings("cuda").channels_last
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4: float16 only
    assert not fast_settings("cuda").autocast and fast_settings("cuda").channels_last
    assert fast_settings("cpu", steps=7).method.steps == 7
    assert cpu.late_style_layers == ("relu5_1",)
    assert fast_settings("cpu", style_layers=("relu1_1", "relu2_1")).late_style_layers == ()
    assert fast_settings("cpu", late_style_layers=()).late_style_layers == ()


def test_compare_speed_uses_the_first_variant_as_target(vgg, content_and_style):
    content, style = content_and_style
    rows = compare_speed(content, style, vgg, {"plain": GatysSettings(steps=3),
                                               "same": SpeedSettings(GatysSettings(steps=6))}, progress=False)
    assert [r.name for r in rows] == ["plain", "same"]
    assert rows[0].steps_to_target == 3
    assert rows[1].steps_to_target is not None and rows[1].steps_to_target <= 3
    assert rows[1].final_loss <= rows[0].final_loss
    assert rows[0].seconds_per_step == seconds_per_step(rows[0].result) > 0


def test_seconds_per_step_is_the_median_gap_at_full_size():
    from facestyle_utils.gatys_speed import SpeedResult

    result = SpeedResult(torch.zeros(1), losses=[1.0] * 6, times=[0.1, 0.2, 1.0, 2.0, 4.0, 5.0],
                         sizes=[8, 8, 16, 16, 16, 16])
    assert seconds_per_step(result) == 1.0  # gaps 1, 2, 1 at 16 px; the coarse steps left out


def test_speed_verdicts_are_computed_from_the_rows():
    def row(name, per_step, to_target):
        return SpeedRow(name, per_step, to_target, 3, 1.0, result=None)

    rows = [row("naive", 2.0, 80.0), row("plain", 1.0, 40.0), row("odd", 1.02, 60.0), row("never", 0.5, math.inf),
            row("fast", 0.4, 20.0)]
    assert speed_verdicts(rows, baselines={"fast": "plain"}) == [
        "plain vs naive: per step 0.50x the time (faster), to the target 0.50x the time (faster)",
        "odd vs plain: per step 1.02x the time (about the same, within 5%), to the target 1.50x the time (slower)",
        "never vs odd: per step 0.49x the time (faster), to the target not comparable (a run did not reach the "
        "target)",
        "fast vs plain: per step 0.40x the time (faster), to the target 0.50x the time (faster)",
        "fast vs naive, to the target: 0.25x the time (faster)",
    ]
    assert speed_verdicts(rows[:2])[-1] == "plain vs naive, to the target: 0.50x the time (faster)"
    assert speed_verdicts([row("alone", 1.0, 1.0)]) == []
    with pytest.raises(KeyError):
        speed_verdicts(rows, baselines={"fast": "missing"})


def test_total_loss_counts_late_layers_and_takes_uint8(vgg, content_and_style):
    content, style = content_and_style
    image = torch.rand_like(content)
    late = SpeedSettings(late_style_layers=("relu5_1",), autocast=True)
    whole = total_loss(image, content, style, vgg)
    assert total_loss(image, content, style, vgg, late) == pytest.approx(whole, rel=1e-5)
    assert whole == pytest.approx(float(GatysLoss(vgg, content, style, GatysSettings())(image)[0]), rel=1e-6)
    image8 = (image * 255).round().to(torch.uint8)
    assert total_loss(image8, content, style, vgg) == pytest.approx(total_loss(image8.float() / 255, content,
                                                                               style, vgg), rel=1e-6)


TINY = [(1, 1), (3, 200), (12, 12), (15, 17), (200, 10)]


@pytest.mark.parametrize("size", TINY)
def test_a_face_or_style_too_small_for_vgg19_is_refused_by_the_fast_path(vgg, content_and_style, size):
    steps = []
    with pytest.raises(ValueError) as error:
        stylize_fast(torch.rand(1, 3, *size), content_and_style[1], vgg, fast_settings("cpu", steps=2),
                     callback=lambda *args: steps.append(args), progress=False)
    assert str(error.value) == (f"content image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to "
                                "relu5_1 pass 4 poolings and need at least 16 px on each side")
    assert steps == []
    with pytest.raises(ValueError, match=f"^style image is {size[0]}x{size[1]} px"):
        stylize_fast(content_and_style[0], torch.rand(1, 3, *size), vgg, fast_settings("cpu", steps=2), progress=False)


def test_the_full_network_needs_room_for_pool5(vgg, content_and_style):
    naive = SpeedSettings(GatysSettings(steps=1), full_network=True)
    with pytest.raises(ValueError, match=r"content image is 24x24 px .* up to pool5 pass 5 poolings .* 32 px"):
        stylize_fast(torch.rand(1, 3, 24, 24), content_and_style[1], vgg, naive, progress=False)


def test_coarse_sizes_keep_what_vgg19_needs():
    face, style = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 200, 16)
    fast = fast_settings("cpu")
    assert coarse_sizes(face, style, fast) == ((24, 24), (200, 16))  # the style cannot shrink below 16 px
    assert coarse_sizes(face, torch.rand(1, 3, 64, 32), fast) == ((24, 24), (32, 16))  # shrunk less, same aspect
    assert coarse_sizes(torch.rand(1, 3, 20, 40), style, fast) == ((16, 32), (200, 16))
    assert coarse_sizes(torch.rand(1, 3, 16, 16), style, fast) is None  # nothing to shrink: no coarse stage
    assert coarse_sizes(torch.rand(1, 3, 16, 300), style, fast) is None
    assert coarse_sizes(face, style, fast.replace(coarse_steps=0)) is None
    assert coarse_sizes(face, torch.rand(1, 3, 64, 64), fast.replace(full_network=True)) == ((32, 32), (32, 32))
    content_only = SpeedSettings(GatysSettings(content_layers=("relu2_1",), style_weight=0.0), coarse_steps=1,
                                 coarse_scale=0.25)
    assert coarse_sizes(face, None, content_only) == ((16, 16), None)


@pytest.mark.parametrize("size, sizes", [((16, 16), [16] * 3), ((20, 20), [16, 16, 20]), ((16, 40), [40] * 3),
                                         ((64, 24), [16, 16, 24])])
def test_fast_settings_run_small_faces_with_a_smaller_or_no_coarse_stage(vgg, content_and_style, size, sizes):
    settings = fast_settings("cpu", coarse_steps=2, steps=1)
    result = stylize_fast(torch.rand(1, 3, *size), content_and_style[1], vgg, settings, progress=False)
    assert result.image.shape == (1, 3, *size)
    assert result.sizes == sizes  # with no coarse stage its steps run at full size: the count stays the same
    assert result.exact[-1] and all(math.isfinite(loss) for loss in result.losses)


def test_compare_speed_warms_up_small_images_at_the_sizes_it_runs(vgg):
    torch.manual_seed(0)
    face, style = torch.rand(1, 3, 20, 20), torch.rand(1, 3, 16, 48)
    rows = compare_speed(face, style, vgg, {"plain": GatysSettings(steps=2),
                                            "fast": fast_settings("cpu", coarse_steps=1, steps=2)}, progress=False)
    assert rows[1].result.sizes[:2] == [16, 20] and rows[1].result.image.shape == face.shape


def test_the_coarse_stage_and_colour_option_take_uint8_too(vgg):
    torch.manual_seed(3)
    content8 = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    style8 = torch.randint(0, 256, (1, 3, 20, 16), dtype=torch.uint8)
    method = GatysSettings(steps=2, content_layers=("relu2_1",), style_layers=("relu1_1", "relu2_1"),
                           preserve_colour=True)
    settings = SpeedSettings(method, coarse_steps=1, coarse_scale=0.5)
    expected = stylize_fast(content8.float() / 255, style8.float() / 255, vgg, settings, progress=False)
    result = stylize_fast(content8, style8, vgg, settings, progress=False)
    assert result.sizes == [8, 16, 16]
    assert torch.allclose(result.image, expected.image, atol=1e-5)


def test_autocast_in_float16_is_refused_with_the_reason(monkeypatch, vgg):
    """fp16 autocast made lesson 02's loss NaN at the second step on an H200."""
    from facestyle_utils import gatys_speed

    monkeypatch.setattr(gatys_speed, "mixed_precision_dtype", lambda device: torch.float16)
    image = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"in float16 \(largest value 65504\), where a Gatys loss became NaN"):
        gatys_speed.SpeedLoss(vgg, image, image, SpeedSettings(autocast=True))
    assert gatys_speed.SpeedLoss(vgg, image, image, SpeedSettings(autocast=False)).speed.autocast is False


@pytest.mark.parametrize("coarse_seconds, kept", [(0.2, True), (0.5, True), (0.9, False)])
def test_the_coarse_stage_is_kept_only_where_its_steps_are_cheaper(monkeypatch, vgg, coarse_seconds, kept):
    face, style = torch.rand(1, 3, 64, 48), torch.rand(1, 3, 64, 64)
    timed_sizes = []

    def fake_seconds(vgg, content, style, settings, repeats=3):
        timed_sizes.append(tuple(content.shape[-2:]))
        return 1.0 if content.shape[-2] == 64 else coarse_seconds

    monkeypatch.setattr(gatys_speed, "seconds_per_loss_step", fake_seconds)
    settings = fast_settings("cpu", steps=30, coarse_steps=40)
    chosen, note = choose_coarse_stage(face, style, vgg, settings)
    assert timed_sizes == [(64, 48), (24, 18)]  # full size, then the coarse size (3/8)
    assert note.startswith("coarse-to-fine on" if kept else "coarse-to-fine off")
    assert f"a step at 18x24 px took {coarse_seconds:.2f}x the time of one at 48x64 px here" in note  # width x height
    if kept:
        assert chosen is settings
    else:  # the coarse steps run at full size instead: the same number of steps in all
        assert chosen.coarse_steps == 0 and chosen.method.steps == 70
        assert chosen.replace(steps=30, coarse_steps=40) == settings


def test_no_coarse_stage_to_choose_means_no_timing(monkeypatch, vgg):
    monkeypatch.setattr(gatys_speed, "seconds_per_loss_step", lambda *args, **kwargs: pytest.fail("timed"))
    tiny = fast_settings("cpu", steps=2, coarse_steps=2)
    assert choose_coarse_stage(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 32, 32), vgg, tiny) == (
        tiny, "no coarse stage: coarse_steps is 0 or the face is too small to shrink")
    none = fast_settings("cpu", coarse_steps=0)
    assert choose_coarse_stage(torch.rand(1, 3, 64, 64), None, vgg, none)[0] is none


def test_one_loss_step_is_timed_without_touching_the_images(vgg):
    face, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    before = face.clone()
    seconds = seconds_per_loss_step(vgg, face, style, fast_settings("cpu"), repeats=2)
    assert 0 < seconds < 60
    assert torch.equal(face, before) and face.grad is None and not face.requires_grad


@pytest.mark.parametrize("autocast_ratio, layout_ratio", [(0.6, 1.2), (0.94, 0.9), (1.0, 0.5), (1.3, 1.3)])
def test_autocast_and_channels_last_are_kept_only_where_a_step_is_faster(monkeypatch, vgg, autocast_ratio,
                                                                          layout_ratio):
    """A launch-bound GPU can be slower with either switch (the DCNN on an H200 was, at 512 px)."""
    face, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    timed = []

    def fake_seconds(vgg, content, style, settings, repeats=3):
        timed.append((settings.autocast, settings.channels_last))
        return (autocast_ratio if settings.autocast else 1.0) * (layout_ratio if settings.channels_last else 1.0)

    monkeypatch.setattr(gatys_speed, "seconds_per_loss_step", fake_seconds)
    settings = fast_settings("cpu", steps=5).replace(autocast=True, channels_last=True)
    chosen, note = gatys_speed.choose_switches(face, style, vgg, settings)
    keep_autocast, keep_layout = autocast_ratio <= 0.95, layout_ratio <= 0.95
    assert (chosen.autocast, chosen.channels_last) == (keep_autocast, keep_layout)
    assert chosen == settings.replace(autocast=keep_autocast, channels_last=keep_layout)  # nothing else changes
    assert timed == [(True, True), (False, True), (keep_autocast, True), (keep_autocast, False)]
    assert note == (f"autocast {'on' if keep_autocast else 'off'}: a loss step with it took {autocast_ratio:.2f}x "
                    f"the time without it here; channels_last {'on' if keep_layout else 'off'}: a loss step with it "
                    f"took {layout_ratio:.2f}x the time without it here")


def test_switches_that_are_off_are_not_timed_and_the_fast_path_chooses_both(monkeypatch, vgg):
    monkeypatch.setattr(gatys_speed, "seconds_per_loss_step", lambda *args, **kwargs: pytest.fail("timed"))
    off = fast_settings("cpu", steps=5, coarse_steps=0).replace(autocast=False, channels_last=False)
    face = torch.rand(1, 3, 32, 32)
    assert gatys_speed.choose_switches(face, face, vgg, off) == (
        off, "autocast and channels_last are off: nothing to measure")
    assert gatys_speed.choose_fast_path(face, face, vgg, off) == (
        off, "autocast and channels_last are off: nothing to measure; no coarse stage: coarse_steps is 0 or the "
             "face is too small to shrink")


def test_the_fast_path_measures_on_real_steps_and_leaves_the_images_alone(vgg):
    face, style = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 48, 48)
    before = face.clone()
    settings = fast_settings("cpu", steps=3, coarse_steps=3).replace(channels_last=True)
    chosen, note = gatys_speed.choose_fast_path(face, style, vgg, settings)
    assert re.fullmatch(r"(autocast (on|off): a loss step with it took [\d.]+x the time without it here; )?"
                        r"channels_last (on|off): a loss step with it took [\d.]+x the time without it here; "
                        r"coarse-to-fine (on|off): .*", note)
    assert chosen.method == settings.method or chosen.coarse_steps == 0
    assert torch.equal(face, before) and not face.requires_grad


def test_a_timing_of_zero_keeps_nothing_it_cannot_prove(monkeypatch, vgg):
    monkeypatch.setattr(gatys_speed, "seconds_per_loss_step", lambda *args, **kwargs: 0.0)
    settings = fast_settings("cpu", steps=5, coarse_steps=5).replace(autocast=True, channels_last=True)
    face = torch.rand(1, 3, 64, 64)
    chosen, note = gatys_speed.choose_fast_path(face, face, vgg, settings)
    assert not chosen.autocast and not chosen.channels_last and chosen.coarse_steps == 0
    assert "autocast off: a loss step with it took nanx" in note and "coarse-to-fine off" in note

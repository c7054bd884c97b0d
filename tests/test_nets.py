"""The DCNN stylizer: frozen VGG19 encoder, mirrored decoder, any input size in -> same size out."""
import pytest
import torch
from torch import nn

from facestyle_utils.losses import gram_matrix, perceptual_loss, style_loss
from facestyle_utils.nets import (
    ENCODER_LAYERS,
    FEATURE_RMS,
    TORCHVISION_INPUT_RATIO,
    DCNNConfig,
    DCNNStylizer,
    Decoder,
    LossWeights,
    PairedLoss,
    describe_layers,
    pad_to_multiple,
    scale_features,
    skip_layer_names,
    truncated_vgg,
)


@pytest.fixture(scope="module")
def model(vgg):
    torch.manual_seed(0)
    return DCNNStylizer(DCNNConfig(encoder_layer="relu3_1", width=0.25), vgg=vgg).eval()


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (33, 47), (30, 31), (5, 7), (1, 1)])
def test_output_has_the_input_size_for_relu3_1(model, size):
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [(40, 24), (37, 50), (8, 8)])
def test_output_has_the_input_size_for_relu4_1(vgg, size):
    model = DCNNStylizer(DCNNConfig(encoder_layer="relu4_1", width=0.125), vgg=vgg).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, *size)).shape == (1, 3, *size)


def test_multiples_of_the_stride_need_no_padding(model):
    image = torch.rand(1, 3, 32, 48)
    assert pad_to_multiple(image, model.stride) is image
    with torch.no_grad():
        direct = model.decode(model.scaled_features(image))  # no padding, no cropping
        assert direct.shape == image.shape
        assert torch.equal(direct, model(image))


def test_other_sizes_are_reflect_padded_and_cropped_back():
    image = torch.arange(2 * 3 * 6 * 5, dtype=torch.float32).reshape(2, 3, 6, 5)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[..., :6, :5], image)
    assert torch.equal(padded[..., 6, :5], image[..., 4, :])  # reflection: row 6 mirrors row 4
    assert torch.equal(padded[..., :6, 5], image[..., :, 3])
    tiny = pad_to_multiple(torch.rand(1, 3, 2, 3), 4)  # too small to reflect: replicated, at least 2 strides
    assert tiny.shape == (1, 3, 8, 8)


def test_a_truncated_vgg_alone_cannot_return_the_input_size(vgg):
    features = truncated_vgg("relu3_1", vgg)(torch.rand(1, 3, 130, 130), ["relu3_1"])["relu3_1"]
    assert features.shape[-1] == 32 and features.shape[-1] * 4 != 130  # pooling floors 130 -> 65 -> 32


def test_encoder_is_frozen_and_only_the_decoder_trains(vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    model.train()
    assert model.training and not model.encoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())


def test_encoder_shares_vgg_weights_and_matches_its_features(vgg):
    encoder = truncated_vgg("relu3_1", vgg)
    assert len(encoder.layers) == 12
    assert encoder.layers[0].weight.data_ptr() == vgg.layers[0].weight.data_ptr()
    image = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(encoder(image, ["relu3_1"])["relu3_1"], vgg(image, ["relu3_1"])["relu3_1"])


@pytest.mark.parametrize("layer", list(ENCODER_LAYERS))
def test_decoder_mirrors_the_encoder_without_transposed_convolutions(layer):
    decoder = Decoder(layer, width=0.5, skips=False)
    assert len(decoder.stages) - 1 == {"relu2_1": 1, "relu3_1": 2, "relu4_1": 3}[layer]  # one upsample per pool
    assert decoder.upsample.mode == "nearest" and decoder.upsample.scale_factor == 2
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.ZeroPad2d)) for m in decoder.modules())
    convs = [m for m in decoder.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512}[layer]
    assert convs[-1].out_channels == 3
    assert all(conv.padding == (0, 0) for conv in convs)  # padding comes from ReflectionPad2d
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in decoder.modules()) == len(convs)


def test_skips_carry_the_features_from_before_each_pool(vgg):
    assert skip_layer_names("relu3_1") == ["relu1_2", "relu2_2"]
    assert skip_layer_names("relu4_1") == ["relu1_2", "relu2_2", "relu3_4"]
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    assert model.feature_layers == ["relu2_2", "relu1_2", "relu3_1"]
    features = model.scaled_features(torch.rand(1, 3, 16, 16))
    assert features["relu1_2"].shape == (1, 64, 16, 16) and features["relu2_2"].shape == (1, 128, 8, 8)
    first_convs = [stage[0][1] for stage in model.decoder.stages]
    assert [conv.in_channels for conv in first_convs] == [256, 32 + 128, 16 + 64]
    plain = DCNNStylizer(DCNNConfig(width=0.25, skips=False), vgg=vgg)
    assert plain.feature_layers == ["relu3_1"]
    assert plain(torch.rand(1, 3, 12, 20)).shape == (1, 3, 12, 20)


def test_width_scales_the_decoder(vgg):
    small = DCNNStylizer(DCNNConfig(width=0.25, skips=False), vgg=vgg).parameter_counts()
    full = DCNNStylizer(DCNNConfig(width=1.0, skips=False), vgg=vgg).parameter_counts()
    assert small["encoder (frozen)"] == full["encoder (frozen)"] == 555_328
    assert full["decoder (trained)"] == 555_075  # the full mirror of VGG19 up to relu3_1
    assert small["decoder (trained)"] < full["decoder (trained)"] / 4


def test_clamp_output_stays_in_range(vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25, output="clamp"), vgg=vgg)
    with torch.no_grad():
        model.decoder.stages[-1][-1][1].bias.fill_(1000.0)
        out = model(torch.rand(1, 3, 16, 16))
    assert torch.equal(out, torch.ones_like(out))


def test_bad_configs_and_inputs_are_refused(model):
    with pytest.raises(ValueError, match="encoder_layer"):
        DCNNConfig(encoder_layer="relu5_1")
    with pytest.raises(ValueError, match="width"):
        DCNNConfig(width=0)
    with pytest.raises(ValueError, match="output"):
        DCNNConfig(output="tanh")
    with pytest.raises(ValueError, match="tone_curve must be True or False"):
        DCNNConfig(tone_curve=256)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(3, 16, 16))


def test_describe_layers_lists_encoder_then_decoder(model):
    rows = describe_layers(model)
    assert rows[0] == ("encoder", "conv1_1") and rows[11] == ("encoder", "relu3_1")
    assert [part for part, _ in rows].count("decoder") == 9
    assert ("decoder", "concatenate skip from relu1_2") in rows
    assert rows[-1][0] == "output"


def test_residual_stylizer_starts_as_the_identity(vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25, residual=True), vgg=vgg).eval()
    image = torch.rand(2, 3, 20, 18) * 0.98 + 0.01
    with torch.no_grad():
        out = model(image)
    assert out.shape == image.shape
    assert (out - image).abs().max() < 1e-5
    with pytest.raises(ValueError, match="input image"):
        model.decode(model.scaled_features(image[..., :16, :16]))


@pytest.mark.parametrize("output", ["sigmoid", "clamp"])
def test_the_tone_curve_maps_the_output_last_and_trains(vgg, output):
    torch.manual_seed(0)
    plain = DCNNStylizer(DCNNConfig(width=0.25, residual=True, output=output), vgg=vgg).eval()
    torch.manual_seed(0)
    curved = DCNNStylizer(DCNNConfig(width=0.25, residual=True, output=output, tone_curve=True), vgg=vgg).eval()
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(curved(image), plain(image), atol=1e-6)  # a new curve is the identity
        curved.tone_curve.knots.copy_(1 - curved.tone_curve.knots)  # a curve that inverts every channel
        assert torch.allclose(curved(image), 1 - plain(image), atol=1e-6)
    assert curved.parameter_counts()["tone curve (trained)"] == 3 * 256
    assert describe_layers(curved)[-1] == ("output", "tone curve: 256 knots per channel")
    assert [name for name, p in curved.named_parameters() if p.requires_grad and "decoder" not in name] == [
        "tone_curve.knots"]


TINY = [(1, 1), (1, 7), (7, 1), (2, 3), (3, 200), (200, 3), (12, 12), (15, 17)]
GRAD_MODES = {"eager": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


@pytest.mark.parametrize("mode", list(GRAD_MODES))
@pytest.mark.parametrize("layer", list(ENCODER_LAYERS))
def test_tiny_and_odd_sizes_give_same_size_outputs(vgg, layer, mode):
    model = DCNNStylizer(DCNNConfig(encoder_layer=layer, width=0.125), vgg=vgg).eval()
    for size in TINY:
        with GRAD_MODES[mode]():
            out = model(torch.rand(2, 3, *size))
        assert out.shape == (2, 3, *size), (layer, size)
        assert 0 <= out.min() and out.max() <= 1


def test_pad_to_multiple_reflects_only_where_it_can():
    image = torch.rand(1, 3, 3, 200)
    padded = pad_to_multiple(image, 4)  # the pad (5 rows, up to 8) is not smaller than the side (3): replicate
    assert padded.shape == (1, 3, 8, 200)
    assert torch.equal(padded[..., 3:, :], image[..., 2:, :].expand(-1, -1, 5, -1))
    five = torch.rand(1, 3, 5, 8)
    assert torch.equal(pad_to_multiple(five, 4)[..., 5:, :], five[..., [3, 2, 1], :])  # pad 3 < side 5: reflected
    replicated = pad_to_multiple(five, 4, mode="replicate")
    assert torch.equal(replicated[..., 5:, :], five[..., 4:, :].expand(-1, -1, 3, -1))
    assert pad_to_multiple(torch.rand(1, 3, 1, 1), 8).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("size", [(0, 5), (5, 0)])
def test_an_empty_image_is_refused_clearly(model, size):
    with pytest.raises(ValueError, match=rf"^image is {size[0]}x{size[1]} px \(height x width\): an empty image"):
        model(torch.rand(1, 3, *size))


# Issue #14 (F6, F19): a forward refuses other dtypes and empty batches with one clear line (no device sync).
DTYPE_MESSAGE = r"^images: got {} images; pass float images in \[0, 1\], e.g. image_io.to_float_batch\(batch\)$"


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float64, torch.bool])
def test_forward_refuses_other_dtypes_naming_the_fix(model, dtype):
    with pytest.raises(ValueError, match=DTYPE_MESSAGE.format(dtype)):
        model(torch.ones(1, 3, 8, 8, dtype=dtype))


def test_forward_refuses_an_empty_batch(model):
    with pytest.raises(ValueError, match=r"^images: the batch is empty \(shape \(0, 3, 8, 8\)\)"):
        model(torch.rand(0, 3, 8, 8))


def test_forward_takes_half_precision_under_autocast_and_the_models_own_dtype(vgg):
    from facestyle_utils.nets import check_image_batch

    torch.manual_seed(0)
    net = DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25), vgg=vgg).eval()
    image = torch.rand(1, 3, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(image.bfloat16())
    assert out.shape == (1, 3, 8, 8) and torch.allclose(out.float(), net(image).detach(), atol=0.05)
    check_image_batch(image.double(), "images", torch.nn.Linear(1, 1).double())  # a float64 model takes float64
    with pytest.raises(TypeError, match="^images: expected a tensor, got a ndarray"):
        check_image_batch(image.numpy())


def test_paired_loss_is_zero_for_a_perfect_output_and_counts_each_term(vgg):
    target = torch.rand(2, 3, 16, 16)
    loss_fn = PairedLoss(vgg, LossWeights(pixel=1.0, perceptual=0.5, style=2.0, style_layers=("relu1_1",)))
    loss, parts = loss_fn.compare(target.clone(), target)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and set(parts) == {"pixel", "perceptual", "style"}
    output = torch.rand(2, 3, 16, 16)
    loss, parts = loss_fn.compare(output, target)
    assert loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)  # parts: the weighted terms
    features, goal = vgg(output, ["relu1_1", "relu2_1"]), vgg(target, ["relu1_1", "relu2_1"])
    perceptual = sum(perceptual_loss(features[k], goal[k]) for k in ("relu1_1", "relu2_1"))
    style = style_loss(features["relu1_1"], gram_matrix(goal["relu1_1"]))
    assert parts["pixel"] == pytest.approx((output - target).abs().mean().item(), rel=1e-5)
    assert parts["perceptual"] == pytest.approx(0.5 * perceptual.item(), rel=1e-5)
    assert parts["style"] == pytest.approx(2.0 * style.item(), rel=1e-5)
    pixel_only = PairedLoss(vgg, LossWeights(perceptual=0.0, pixel_kind="mse"))
    loss, parts = pixel_only.compare(output, target)
    assert set(parts) == {"pixel"} and loss.item() == pytest.approx(((output - target) ** 2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="pixel_kind"):
        PairedLoss(vgg, LossWeights(pixel_kind="l3"))
    shallow = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg).encoder
    with pytest.raises(ValueError, match="stops at relu3_1"):
        PairedLoss(shallow, LossWeights(style=1.0, style_layers=("relu4_1",)))


def test_the_paired_loss_trains_what_it_measures(vgg):
    torch.manual_seed(0)
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    source = torch.rand(2, 3, 16, 16)
    loss_fn = PairedLoss(model.encoder, LossWeights(perceptual=0.1, perceptual_layers=("relu1_1",)))
    loss, parts = loss_fn(model, (source, 1 - source))
    loss.backward()
    assert set(parts) == {"pixel", "perceptual"} and loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    assert all(p.grad is not None for p in model.decoder.parameters()) and model.encoder.layers[0].weight.grad is None


def test_scale_features_divides_by_the_measured_size():
    features = {"relu1_2": torch.full((1, 2, 3, 3), 144.0), "relu3_1": torch.full((1, 2, 3, 3), 460.0)}
    scaled = scale_features(features)
    assert torch.allclose(scaled["relu1_2"], torch.ones(1, 2, 3, 3))
    assert torch.allclose(scaled["relu3_1"], torch.full((1, 2, 3, 3), 2.0))
    tv = scale_features({"relu3_1": torch.ones(1, 1, 1, 1)}, "torchvision")["relu3_1"]
    assert tv.item() == pytest.approx(TORCHVISION_INPUT_RATIO / FEATURE_RMS["relu3_1"])
    with pytest.raises(KeyError):
        scale_features({"relu5_1": torch.ones(1, 1, 1, 1)})


def test_scaled_features_are_the_encoder_features_scaled(vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    image = torch.rand(1, 3, 16, 16)
    raw = model.encoder(image, model.feature_layers)
    scaled = model.scaled_features(image)
    assert set(scaled) == set(model.feature_layers) and not scaled["relu3_1"].requires_grad
    assert torch.allclose(scaled["relu3_1"], raw["relu3_1"] / FEATURE_RMS["relu3_1"])


def test_residual_image_starts_at_the_image_and_stays_in_range():
    from facestyle_utils.nets import residual_image

    image = torch.tensor([0.0, 0.2, 0.5, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    assert torch.allclose(residual_image(torch.zeros_like(image), image), image, atol=1.01e-3)
    pushed = residual_image(torch.full_like(image, 50.0), image)
    assert pushed.min() > 0.99 and pushed.max() <= 1.0
    assert residual_image(torch.full_like(image, -50.0), image).max() < 0.01

"""The DRN stylizer of lesson 04: sizes, attention, memory cap, unpaired loss, training, checkpoints."""
import pytest
import torch

from facestyle_utils.attention import SelfAttention
from facestyle_utils.checkpoints import MODEL_KINDS, load_model, model_state, read_model_file, save_model
from facestyle_utils.drn import (
    DRNConfig,
    DRNStylizer,
    UnpairedLoss,
    UnpairedWeights,
    can_share_encoder,
    content_style_losses,
)
from facestyle_utils.image_io import image_to_tensor
from facestyle_utils.nets import truncated_vgg
from facestyle_utils.sample_data import load_sample
from facestyle_utils.vgg import load_vgg19

SHALLOW = UnpairedWeights(content_layers=["relu3_1"], style_layers=["relu1_1", "relu2_1", "relu3_1"])


@pytest.fixture(scope="module")
def model(vgg):
    torch.manual_seed(0)
    return DRNStylizer(DRNConfig(width=0.25), vgg=vgg).eval()


@pytest.mark.parametrize("size", [(32, 32), (48, 40), (33, 47), (31, 30), (5, 7)])
def test_output_has_the_input_size_for_odd_and_even_sizes(model, size):
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size), torch.rand(2, 3, 24, 40))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [(16, 16), (21, 34)])
def test_one_depth_model_keeps_the_size_too(vgg, size):
    one = DRNStylizer(DRNConfig(attention_layers=["relu3_1"], width=0.25, skips=False), vgg=vgg).eval()
    assert one.stride == 4 and one.deep_projection is None and len(one.encoder.layers) == 12  # up to relu3_1
    with torch.no_grad():
        assert one(torch.rand(1, 3, *size), torch.rand(1, 3, *size)).shape == (1, 3, *size)


def test_one_style_image_serves_a_whole_batch(model):
    faces, style = torch.rand(3, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        together = model(faces, style)
        alone = model(faces[1:2], style)
    assert torch.allclose(together[1:2], alone, atol=1e-5)
    with pytest.raises(ValueError, match="one style image or one per face"):
        model(faces, torch.rand(2, 3, 32, 32))


def test_bad_configs_and_inputs_are_refused(model):
    with pytest.raises(ValueError, match="attention_layers"):
        DRNConfig(attention_layers=["relu4_1"])
    with pytest.raises(ValueError, match="attention_layers"):
        DRNConfig(attention_layers=["relu2_1", "relu3_1"])
    with pytest.raises(ValueError, match="width"):
        DRNConfig(width=0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="style_kind"):
        UnpairedWeights(style_kind="histogram")


def test_config_round_trips_through_a_plain_dict():
    config = DRNConfig(attention_layers=("relu4_1", "relu3_1"), width=0.25)
    assert config.attention_layers == ("relu3_1", "relu4_1")  # sorted by depth
    data = config.to_dict()
    assert data["attention_layers"] == ["relu3_1", "relu4_1"]
    assert DRNConfig(**data) == config


def test_encoder_is_frozen_and_left_out_of_the_state(model):
    assert all(not p.requires_grad for p in model.encoder.parameters())
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"cross", "deep_projection", "self_attention", "decoder"}
    assert not any(key.startswith("encoder.") for key in model_state(model))
    model.train()
    assert not model.encoder.training and model.decoder.training
    model.eval()


def test_self_attention_starts_as_the_identity_inside_the_model(model, vgg):
    assert isinstance(model.self_attention, SelfAttention) and model.self_attention.gamma.item() == 0.0
    face = model.scaled(model.encode(torch.rand(1, 3, 32, 32)))
    style = model.scaled(model.encode(torch.rand(1, 3, 32, 32)))
    without = DRNStylizer(DRNConfig(width=0.25, self_attention=False), vgg=vgg)
    without.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("self_attention")})
    with torch.no_grad():
        assert torch.equal(model.attend(face, style), without.attend(face, style))


def test_attention_maps_rows_are_probability_distributions(model):
    maps = model.attention_maps(torch.rand(1, 3, 32, 24), torch.rand(1, 3, 16, 40))
    assert maps["face_shape"] == (8, 6) and maps["style_shape"] == (4, 10) and maps["stride"] == 4
    assert maps["attention"].shape == maps["similarity"].shape == (48, 40)
    assert (maps["attention"] >= 0).all() and torch.allclose(maps["attention"].sum(-1), torch.ones(48), atol=1e-5)
    assert maps["similarity"].abs().max() <= 1 + 1e-5  # cosine similarities


def test_memory_cap_is_honoured_for_a_large_input(vgg):
    cap = 50_000
    torch.manual_seed(0)
    big = DRNStylizer(DRNConfig(width=0.125, max_elements=cap), vgg=vgg).eval()
    with torch.no_grad():
        big.self_attention.gamma.fill_(0.5)  # make the self-attention count in the output too
        out = big(torch.rand(1, 3, 160, 128), torch.rand(1, 3, 160, 128))
    assert out.shape == (1, 3, 160, 128)
    positions = (160 // 4) * (128 // 4)  # relu3_1: 1280 positions; a full matrix would hold 1.6 million entries
    assert positions ** 2 > 30 * cap
    assert 0 < big.largest_matrix <= cap
    assert all(block.largest_matrix <= cap for block in big.cross.values())


def test_loss_shares_the_vgg_pass_and_agrees_with_the_plain_forward(model):
    torch.manual_seed(1)
    faces, styles = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss_fn = UnpairedLoss(model.encoder, SHALLOW)
    assert loss_fn.share_encoder and can_share_encoder(loss_fn.vgg, model, faces, styles)
    with torch.no_grad():
        shared, parts = loss_fn(model, (faces, styles))
        plain, plain_parts = loss_fn.compare(faces, styles, model(faces, styles), model(styles, styles))
    assert torch.allclose(shared, plain, rtol=1e-4)
    assert set(parts) == {"content", "style", "identity_pixel", "identity_feature"}
    assert parts == pytest.approx(plain_parts, rel=1e-4)
    # a face given as its own style, through a perfect model, has no content or style loss
    perfect = content_style_losses(loss_fn, faces, faces, faces)
    assert perfect["content"] == pytest.approx(0, abs=1e-6) and perfect["style"] == pytest.approx(0, abs=1e-6)


def test_the_loss_under_float16_autocast_equals_float32s(vgg):
    # As on a GPU without bfloat16 (T4): the content term's statistics overflowed float16 (1.55 against 1.98 here).
    torch.manual_seed(5)
    photos = {name: image_to_tensor(load_sample(name, max_side=64), "cpu") for name in ("astronaut", "brick")}
    faces, styles = photos["astronaut"][..., :64, :64], photos["brick"][..., :64, :64]  # real images: large features
    model = DRNStylizer(DRNConfig(width=0.25), vgg=vgg).eval()
    with torch.no_grad():
        loss_fn = UnpairedLoss(model.encoder, UnpairedWeights(content_layers=("relu3_1", "relu4_1")))
        _, exact = loss_fn(model, (faces, styles))
        with torch.autocast("cpu", dtype=torch.float16):
            _, half = loss_fn(model, (faces, styles))
    assert exact["content"] > 0.01
    assert half == pytest.approx(exact, rel=0.05)


@pytest.mark.parametrize("weights", [SHALLOW, UnpairedWeights(), UnpairedWeights(style_kind="gram"),
                                     UnpairedWeights(identity_pixel=0, identity_feature=0, content_layers=["relu3_1"])])
def test_shared_and_plain_paths_give_the_same_loss_and_gradients(vgg, weights):
    torch.manual_seed(3)
    net = DRNStylizer(DRNConfig(width=0.25), vgg=vgg).train()
    with torch.no_grad():
        net.self_attention.gamma.fill_(0.3)  # self-attention takes part in the output
    faces, styles = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32).pow(2)
    results = {}
    for share in (True, False):
        loss_fn = UnpairedLoss(vgg, weights, share_encoder=share)
        net.zero_grad()
        loss, parts = loss_fn(net, (faces, styles))
        loss.backward()
        gradients = [p.grad.clone() for p in net.parameters() if p.requires_grad and p.grad is not None]
        results[share] = loss.item(), parts, gradients
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-5)
    assert results[True][1] == pytest.approx(results[False][1], rel=1e-5)
    assert len(results[True][2]) == len(results[False][2]) > 0
    for shared, plain in zip(results[True][2], results[False][2]):
        assert torch.allclose(shared, plain, rtol=1e-3, atol=1e-6)
    assert set(results[True][1]) == ({"content", "style"} if weights.identity_pixel == 0
                                     else {"content", "style", "identity_pixel", "identity_feature"})


def test_the_encoder_is_shared_only_when_it_can_be(model, vgg):
    faces = torch.rand(2, 3, 32, 32)
    assert can_share_encoder(vgg, model, faces, torch.rand(2, 3, 32, 32))
    assert not can_share_encoder(vgg, model, faces, torch.rand(2, 3, 32, 40))  # faces and styles differ
    assert not can_share_encoder(vgg, model, torch.rand(2, 3, 36, 36), torch.rand(2, 3, 36, 36))  # would be padded
    assert not can_share_encoder(vgg, model, torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))  # below two strides
    assert not can_share_encoder(load_vgg19(), model, faces, faces)  # same weights, but another network
    assert not can_share_encoder(vgg, torch.nn.Identity(), faces, faces)  # not a DRN


def test_loss_refuses_a_vgg_that_stops_too_early(vgg):
    with pytest.raises(ValueError, match="stops before"):
        UnpairedLoss(truncated_vgg("relu2_1", vgg))


@pytest.mark.parametrize("style_kind", ["mean_std", "gram"])
def test_a_few_unpaired_steps_lower_the_loss_on_a_fixed_batch(vgg, style_kind):
    torch.manual_seed(0)
    net = DRNStylizer(DRNConfig(attention_layers=["relu3_1"], width=0.25), vgg=vgg)
    loss_fn = UnpairedLoss(net.encoder, UnpairedWeights(style_kind=style_kind, content_layers=["relu3_1"],
                                                        style_layers=["relu1_1", "relu2_1", "relu3_1"]))
    faces, styles = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24).pow(3)  # darker "style" images
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3)
    net.train()
    losses = []
    for _ in range(6):
        loss, _ = loss_fn(net, (faces, styles))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)  # as train() does
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final, _ = loss_fn(net, (faces, styles))
    assert final.item() < 0.8 * losses[0], losses


def test_checkpoint_round_trip_is_exact(tmp_path, vgg):
    assert "drn" in MODEL_KINDS
    torch.manual_seed(2)
    model = DRNStylizer(DRNConfig(width=0.25), vgg=vgg).eval()
    with torch.no_grad():
        for block in model.cross.values():
            block.log_inverse_temperature.add_(0.3)  # weights that differ from a fresh model's
        model.self_attention.gamma.fill_(0.25)
    path = save_model(model, tmp_path / "drn.pt", kind="drn", metadata={"styles": "cartoon,pencil"})
    data = read_model_file(path)
    assert data["kind"] == "drn" and data["config"] == model.config.to_dict()
    assert not any(key.startswith("encoder.") for key in data["state_dict"])
    reloaded = load_model(path, vgg=vgg)
    assert isinstance(reloaded, DRNStylizer) and reloaded.metadata == {"styles": "cartoon,pencil"}
    faces, styles = torch.rand(2, 3, 36, 28), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(reloaded(faces, styles), model(faces, styles))


TINY_PAIRS = [((1, 1), (7, 1)), ((1, 7), (1, 1)), ((3, 200), (12, 12)), ((12, 12), (3, 200)), ((15, 17), (2, 3)),
              ((7, 1), (15, 17))]
GRAD_MODES = {"eager": torch.enable_grad, "inference_mode": torch.inference_mode}


@pytest.mark.parametrize("mode", list(GRAD_MODES))
@pytest.mark.parametrize("depths", [("relu3_1",), ("relu3_1", "relu4_1")])
def test_tiny_faces_and_styles_of_other_sizes_give_face_sized_outputs(vgg, depths, mode):
    torch.manual_seed(0)
    net = DRNStylizer(DRNConfig(attention_layers=depths, width=0.125), vgg=vgg).eval()
    for face_size, style_size in TINY_PAIRS:
        with GRAD_MODES[mode]():
            out = net(torch.rand(2, 3, *face_size), torch.rand(1, 3, *style_size))
        assert out.shape == (2, 3, *face_size), (face_size, style_size)
        assert 0 <= out.min() and out.max() <= 1


def test_an_empty_style_image_is_refused_clearly(model):
    with pytest.raises(ValueError, match=r"^image is 0x5 px \(height x width\): an empty image"):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 0, 5))


@pytest.mark.parametrize("faces, styles, message", [
    ((3, 200), (32, 32), "face batch is 3x200 px"), ((32, 32), (7, 40), "style batch is 7x40 px"),
    ((1, 1), (1, 1), "face batch is 1x1 px")])
def test_unpaired_loss_refuses_images_too_small_for_its_layers(model, vgg, faces, styles, message):
    loss_fn = UnpairedLoss(vgg)  # content relu4_1: 3 poolings
    with pytest.raises(ValueError) as error:
        loss_fn(model, (torch.rand(1, 3, *faces), torch.rand(1, 3, *styles)))
    assert str(error.value) == (f"{message} (height x width); VGG19 layers up to relu4_1 pass 3 poolings and "
                                "need at least 8 px on each side")


def test_unpaired_loss_takes_the_smallest_images_that_fit_and_faces_and_styles_of_other_sizes(model, vgg):
    torch.manual_seed(0)
    faces, styles = torch.rand(2, 3, 8, 9), torch.rand(2, 3, 11, 8)  # once a raw RuntimeError from torch.cat
    with torch.no_grad():
        loss, parts = UnpairedLoss(vgg)(model, (faces, styles))
        identity_pixel = torch.nn.functional.l1_loss(model(styles, styles), styles).item()
    assert torch.isfinite(loss) and set(parts) == {"content", "style", "identity_pixel", "identity_feature"}
    weight = UnpairedWeights().identity_pixel
    assert parts["identity_pixel"] == pytest.approx(weight * identity_pixel, rel=1e-5)  # parts are weighted
    assert sum(parts.values()) == pytest.approx(loss.item(), rel=1e-5)  # ... and add up to the loss


# Issue #14 (F6, F19): other dtypes and empty batches are refused, naming the face or style batch.
@pytest.mark.parametrize("which", ["face batch", "style batch"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float64])
def test_forward_refuses_other_dtypes_naming_the_batch_and_the_fix(model, which, dtype):
    images = {"face batch": torch.rand(1, 3, 8, 8), "style batch": torch.rand(1, 3, 8, 8)}
    images[which] = torch.ones(1, 3, 8, 8, dtype=dtype)
    with pytest.raises(ValueError, match=rf"^{which}: got {dtype} images; pass float images in \[0, 1\], "
                                         r"e.g. image_io.to_float_batch\(batch\)$"):
        model(images["face batch"], images["style batch"])


@pytest.mark.parametrize("which", ["face batch", "style batch"])
def test_forward_and_loss_refuse_an_empty_batch(model, vgg, which):
    images = {"face batch": torch.rand(1, 3, 8, 8), "style batch": torch.rand(1, 3, 8, 8)}
    images[which] = torch.rand(0, 3, 8, 8)
    with pytest.raises(ValueError, match=rf"^{which}: the batch is empty"):
        model(images["face batch"], images["style batch"])
    with pytest.raises(ValueError, match=rf"^{which}: the batch is empty"):
        UnpairedLoss(vgg, SHALLOW)(model, (images["face batch"], images["style batch"]))


def test_unpaired_loss_refuses_uint8_batches(model, vgg):
    faces8 = torch.full((1, 3, 16, 16), 128, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"^style batch: got torch.uint8 images"):
        UnpairedLoss(vgg, SHALLOW)(model, (torch.rand(1, 3, 16, 16), faces8))
    with pytest.raises(ValueError, match=r"^output: got torch.uint8 images"):
        content_style_losses(UnpairedLoss(vgg, SHALLOW), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), faces8)


# ----------------------------------------------------------------------------- residual DRN and the pixel term
def test_an_untrained_residual_drn_returns_the_face(vgg):
    torch.manual_seed(0)
    net = DRNStylizer(DRNConfig(width=0.25, residual=True), vgg=vgg).eval()
    faces = torch.rand(2, 3, 30, 37)  # not a multiple of the stride: padded, then cropped back
    with torch.no_grad():
        out = net(faces, torch.rand(1, 3, 24, 24))
    assert out.shape == faces.shape
    assert (out - faces).abs().max() < 1.5e-3  # logit of a value clamped to [0.001, 0.999]
    with pytest.raises(ValueError, match="residual DRN needs the"):
        net.stylize(net.encode(faces), net.encode(faces), (30, 37))


def test_a_residual_drn_by_hand_is_the_model(vgg):
    from facestyle_utils.nets import residual_image

    torch.manual_seed(1)
    net = DRNStylizer(DRNConfig(width=0.25, residual=True), vgg=vgg).eval()
    torch.nn.init.normal_(net.decoder.stages[-1][-1][1].weight, std=0.05)  # a trained-looking change
    faces, styles = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        face, style = net.scaled(net.encode(faces)), net.scaled(net.encode(styles))
        skips = {name: face[name] for name in net.decoder.skip_layers}
        by_hand = residual_image(net.decoder({**skips, "relu3_1": net.attend(face, style)}), faces)
        out = net(faces, styles)
    assert torch.equal(by_hand, out) and (out - faces).abs().max() > 0.01


def test_pixel_loss_is_one_for_the_photo_and_zero_for_the_target():
    from facestyle_utils.drn import pixel_loss

    faces, targets = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    assert pixel_loss(faces, targets, faces).item() == pytest.approx(1.0, rel=1e-5)
    assert pixel_loss(targets, targets, faces).item() == 0.0
    halfway = faces + 0.5 * (targets - faces)  # half the error: a quarter of the squared error
    assert pixel_loss(halfway, targets, faces).item() == pytest.approx(0.25, rel=1e-4)
    # relative per image: one far image does not drown a near one
    near_far = faces[:2], (faces[:2] + torch.tensor([0.01, 0.5]).view(2, 1, 1, 1)).clamp(0, 1)
    assert pixel_loss(*near_far, near_far[0]).item() == pytest.approx(1.0, rel=1e-3)


def test_the_pixel_term_needs_targets_and_adds_up(vgg):
    torch.manual_seed(2)
    net = DRNStylizer(DRNConfig(width=0.25, residual=True), vgg=vgg).train()
    faces, styles, targets = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    weights = UnpairedWeights(pixel=20.0, content_layers=["relu3_1"], style_layers=["relu1_1", "relu2_1"])
    with pytest.raises(ValueError, match=r"needs batches of \(faces, styles, targets\)"):
        UnpairedLoss(vgg, weights)(net, (faces, styles))
    results = {}
    for share in (True, False):
        loss, parts = UnpairedLoss(vgg, weights, share_encoder=share)(net, (faces, styles, targets))
        results[share] = loss.item(), parts
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-5)
    parts = results[True][1]
    assert set(parts) == {"content", "style", "identity_pixel", "identity_feature", "pixel"}
    assert sum(parts.values()) == pytest.approx(results[True][0], rel=1e-5)
    assert parts["pixel"] == pytest.approx(20.0, rel=1e-3)  # the untrained residual DRN is the photo: ratio 1
    without, parts = UnpairedLoss(vgg, SHALLOW)(net, (faces, styles, targets))  # weight 0: targets ignored
    assert "pixel" not in parts


def test_a_few_steps_with_pairs_bring_the_output_towards_the_targets(vgg):
    from facestyle_utils.drn import pixel_loss

    torch.manual_seed(4)
    net = DRNStylizer(DRNConfig(width=0.25, residual=True), vgg=vgg).train()
    faces = torch.rand(2, 3, 32, 32)
    targets, styles = 1 - faces, 1 - torch.rand(2, 3, 32, 32)  # "negative" style and an example of it
    loss_fn = UnpairedLoss(vgg, UnpairedWeights(content=0, style=0, identity_pixel=0, identity_feature=0, pixel=1.0,
                                                content_layers=["relu3_1"], style_layers=["relu1_1"]))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(15):
        loss, _ = loss_fn(net, (faces, styles, targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert pixel_loss(net.eval()(faces, styles), targets, faces).item() < 0.9

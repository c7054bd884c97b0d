"""The DCNN stylizer: a frozen VGG19 encoder followed by a decoder that learns to paint.

The encoder is VGG19 cut at ``relu3_1`` (stride 4) or ``relu4_1`` (stride 8) and never
trains. The decoder mirrors it in reverse: every VGG convolution becomes a 3x3 convolution
with reflection padding (no dark borders) and every max-pool becomes a nearest-neighbour
upsample followed by those convolutions (no transposed convolutions, so no checkerboard).
A sigmoid keeps the output in [0, 1]. By default the decoder also receives, U-Net style, the
encoder's feature maps from just before each pooling ("skips"): pooling throws away *where*
exactly an edge was, and a cartoon's one-pixel lines need that position back.
With ``tone_curve`` a learned curve per colour channel (:mod:`facestyle_utils.tone_curve`) maps
the output last: the cartoon posterizes to 8 tones per channel, steps that convolutions can only
blur and that a curve of 256 knots draws exactly.

Pooling floors odd sizes (130 -> 65 -> 32), so upsampling cannot give back a side that is
not a multiple of the stride. :class:`DCNNStylizer` reflect-pads such inputs up to the next
multiple and crops the output back: any size in, the same size out.

Its objective lives here too (as pytorch-AdaIN keeps its loss in ``net.py``): :class:`PairedLoss`,
pixel + perceptual (+ optional style) against the paired target, weighted by :class:`LossWeights`;
the maths of each term is in :mod:`facestyle_utils.losses`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .losses import gram_matrix, perceptual_loss, style_loss
from .tone_curve import ToneCurve
from .vgg import LAYER_INDEX, LAYER_NAMES, VGG19Features, conv_channels, load_vgg19

#: Encoder layers the stylizer supports, with their stride (downsampling factor).
ENCODER_LAYERS = {"relu2_1": 2, "relu3_1": 4, "relu4_1": 8}

#: Typical size (root mean square) of the Oxford VGG19 activations the decoder reads, measured on
#: the course's training faces. Raw activations are in the hundreds (inputs are 0-255); dividing
#: by these brings them near 1, without which Adam's steps are far too large for the first layers.
FEATURE_RMS = {"relu1_2": 144.0, "relu2_1": 164.0, "relu2_2": 210.0, "relu3_1": 230.0,
               "relu3_4": 777.0, "relu4_1": 828.0}
#: torchvision's VGG19 takes ImageNet-normalised input, about 58 times smaller than 0-255.
TORCHVISION_INPUT_RATIO = 255.0 * 0.226


def scale_features(features: Mapping[str, torch.Tensor], vgg_weights: str = "oxford") -> dict[str, torch.Tensor]:
    """VGG19 features divided by their typical size (:data:`FEATURE_RMS`), so they are near 1 for a decoder.

    ``features``: {layer name: (N, C, H, W)} as :class:`~facestyle_utils.vgg.VGG19Features` returns them;
    ``vgg_weights``: the weights that made them ("oxford", 0-255 input, or "torchvision", whose
    activations are about :data:`TORCHVISION_INPUT_RATIO` times smaller). Same shapes and dtype back.
    KeyError for a layer without a measured size.
    """
    ratio = TORCHVISION_INPUT_RATIO if vgg_weights == "torchvision" else 1.0
    return {name: value * (ratio / FEATURE_RMS[name]) for name, value in features.items()}


def check_switches(config: object, *names: str) -> None:
    """ValueError naming the first of ``config``'s fields ``names`` that is not a bool (1 or "yes" are refused)."""
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be True or False, not {getattr(config, name)!r}")


@dataclass
class DCNNConfig:
    """Everything needed to rebuild a stylizer (saved next to the trained weights: decoder and tone curve)."""

    encoder_layer: str = "relu3_1"
    width: float = 0.5  # decoder channels relative to the mirrored VGG layer (1.0 = full AdaIN-style decoder)
    output: str = "sigmoid"  # or "clamp"
    skips: bool = True  # U-Net skips from the encoder: sharp detail (False = the plain AdaIN-style decoder)
    residual: bool = False  # decoder predicts a change to the input (in logit space) instead of a new image
    tone_curve: bool = False  # a learned curve per channel after the output (tone_curve.py): exact tone steps
    vgg_weights: str = "oxford"

    def __post_init__(self) -> None:
        if self.encoder_layer not in ENCODER_LAYERS:
            raise ValueError(f"encoder_layer must be one of {', '.join(ENCODER_LAYERS)}, not {self.encoder_layer!r}")
        if not 0 < self.width <= 2:
            raise ValueError(f"width must be in (0, 2], not {self.width}")
        if self.output not in ("sigmoid", "clamp"):
            raise ValueError(f"output must be 'sigmoid' or 'clamp', not {self.output!r}")
        check_switches(self, "skips", "residual", "tone_curve")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _encoder_blocks(encoder_layer: str) -> list[list[tuple[int, int]]]:
    """VGG19's convolutions up to ``encoder_layer`` as (in_channels, out_channels), grouped by block."""
    blocks: list[list[tuple[int, int]]] = [[]]
    channels = 3
    for name in LAYER_NAMES[: LAYER_INDEX[encoder_layer] + 1]:
        if name.startswith("conv"):
            out = conv_channels(name)
            blocks[-1].append((channels, out))
            channels = out
        elif name.startswith("pool"):
            blocks.append([])
    return blocks


def skip_layer_names(encoder_layer: str) -> list[str]:
    """The encoder layers just before each pooling (relu1_2, relu2_2, ...): the U-Net skip sources."""
    pools = [name for name in LAYER_NAMES[: LAYER_INDEX[encoder_layer]] if name.startswith("pool")]
    return [LAYER_NAMES[LAYER_INDEX[pool] - 1] for pool in pools]


class ConvLayer(nn.Sequential):
    """Reflection padding + 3x3 convolution (+ ReLU): keeps the size, no zero-padded borders."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Decoder(nn.Module):
    """The encoder mirrored: each VGG conv (a -> b) becomes a conv (b -> a), each pool an upsample.

    ``width`` scales the hidden channels (0.5 halves them: about 4x fewer operations). With
    ``skips``, the encoder's feature map from just before each pool is concatenated after the
    matching upsample (as in U-Net), handing fine positions past the pooling. The last
    convolution maps to 3 channels without a ReLU.
    """

    def __init__(self, encoder_layer: str = "relu3_1", width: float = 0.5, skips: bool = True) -> None:
        super().__init__()
        blocks = _encoder_blocks(encoder_layer)
        self.encoder_layer = encoder_layer
        self.skip_layers = list(reversed(skip_layer_names(encoder_layer))) if skips else []

        def hidden(channels: int) -> int:
            return max(8, int(round(channels * width)))

        self.stages = nn.ModuleList()
        for depth, block in enumerate(reversed(blocks)):
            layers = []
            for index, (enc_in, enc_out) in enumerate(reversed(block)):
                first = depth == 0 and index == 0
                last = depth == len(blocks) - 1 and index == len(block) - 1
                in_ch = enc_out if first else hidden(enc_out)
                if index == 0 and depth > 0 and skips:
                    in_ch += enc_out  # the skip has the channels of this block's last encoder conv
                layers.append(ConvLayer(in_ch, 3 if last else hidden(enc_in), relu=not last))
            self.stages.append(nn.Sequential(*layers))
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        x = features[self.encoder_layer]
        for depth, stage in enumerate(self.stages):
            if depth > 0:
                x = self.upsample(x)
                if self.skip_layers:
                    x = torch.cat([x, features[self.skip_layers[depth - 1]]], dim=1)
            x = stage(x)
        return x


class DCNNStylizer(nn.Module):
    """Frozen VGG19 encoder + trainable decoder: RGB in [0, 1] of any size -> RGB in [0, 1], same size.

    Only the decoder trains; :attr:`frozen_modules` tells the checkpoint code to leave the
    encoder out of saved files (it is rebuilt from the VGG19 weights on load).
    """

    frozen_modules = ("encoder",)

    def __init__(self, config: DCNNConfig | None = None, vgg: VGG19Features | None = None) -> None:
        super().__init__()
        self.config = config or DCNNConfig()
        self.stride = ENCODER_LAYERS[self.config.encoder_layer]
        self.encoder = truncated_vgg(self.config.encoder_layer, vgg, self.config.vgg_weights)
        self.decoder = Decoder(self.config.encoder_layer, self.config.width, self.config.skips)
        self.feature_layers = [*self.decoder.skip_layers, self.config.encoder_layer]
        if self.config.residual:  # start from "change nothing"
            zero_last_layer(self.decoder)
        self.tone_curve = ToneCurve() if self.config.tone_curve else None  # starts as the identity

    def train(self, mode: bool = True) -> "DCNNStylizer":
        super().train(mode)
        self.encoder.train(False)  # frozen: always in eval mode
        return self

    def scaled_features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The decoder's input: VGG19 features of an (already padded) image at the encoder layer and
        the skip layers (:attr:`feature_layers`), scaled to about unit size (:func:`scale_features`).

        No gradients: the encoder is frozen. (The DRN's ``encode`` differs: it pads and returns raw features.)
        """
        with torch.no_grad():
            return scale_features(self.encoder(image, self.feature_layers), self.config.vgg_weights)

    def decode(self, features: dict[str, torch.Tensor], image: torch.Tensor | None = None) -> torch.Tensor:
        """Features -> image in [0, 1] (stride times larger than the deepest features).

        With ``config.residual`` the decoder's output is added to the input ``image`` (as a logit
        for the sigmoid output), so an untrained model starts from the identity. With
        ``config.tone_curve`` the learned per-channel curve (:class:`~facestyle_utils.tone_curve.ToneCurve`)
        maps the result last.
        """
        out = self.decoder(features)
        if self.config.residual:
            if image is None:
                raise ValueError("a residual stylizer needs the input image to decode")
            out = residual_image(out, image) if self.config.output == "sigmoid" else (out + image).clamp(0, 1)
        else:
            out = torch.sigmoid(out) if self.config.output == "sigmoid" else out.clamp(0, 1)
        return self.tone_curve(out) if self.tone_curve is not None else out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1], any H, W >= 1 -> (N, 3, H, W) in [0, 1].

        Sides that are not a multiple of the stride, or shorter than two strides, are padded
        (:func:`pad_to_multiple`) and the output cropped back. ``image`` is float32 (float16 or
        bfloat16 under autocast, or the model's own float dtype). Raises ValueError (see
        :func:`check_image_batch`) for a batch that is not (N, 3, H, W), is empty, or has another dtype.
        """
        check_image_batch(image, "images", self)
        height, width = image.shape[-2:]
        padded = self.pad_input(image)
        out = self.decode(self.scaled_features(padded), padded)
        return out[..., :height, :width]

    def pad_input(self, image: torch.Tensor) -> torch.Tensor:
        """The padding :meth:`forward` applies (reflection up to a multiple of the stride); ONNX export
        pads outside the graph with it, so the exported graph takes every size."""
        return pad_to_multiple(image, self.stride)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters in the frozen encoder and in the trainable decoder."""
        counts = {"encoder (frozen)": sum(p.numel() for p in self.encoder.parameters()),
                  "decoder (trained)": sum(p.numel() for p in self.decoder.parameters())}
        if self.tone_curve is not None:
            counts["tone curve (trained)"] = self.tone_curve.knots.numel()
        return counts


def residual_image(change: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``sigmoid(change + logit(image))``: a decoder's output read as a change to the input image.

    ``change`` and ``image`` (N, 3, H, W), the image in [0, 1] (clamped to [0.001, 0.999] before
    the logit, so black and white stay finite); result in [0, 1]. A zero change gives the image
    back (within 0.001), so a residual network starts as the identity and learns only the style.
    """
    return torch.sigmoid(change + torch.logit(image.clamp(1e-3, 1 - 1e-3)))


def zero_last_layer(decoder: Decoder) -> None:
    """Zero the decoder's last convolution (weights and bias): its output starts at 0, "change nothing"."""
    last = decoder.stages[-1][-1][1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def truncated_vgg(layer: str, vgg: VGG19Features | None = None, weights: str = "oxford") -> VGG19Features:
    """A frozen VGG19 that keeps only the layers up to ``layer`` (the rest is never run, so drop it).

    Given ``vgg``, its layers are shared, not copied.
    """
    if vgg is not None and vgg.weights_name != weights:
        raise ValueError(f"the VGG19 given has {vgg.weights_name!r} weights, but {weights!r} weights were asked for")
    source = vgg if vgg is not None else load_vgg19(weights)
    encoder = VGG19Features.__new__(VGG19Features)
    nn.Module.__init__(encoder)
    encoder.weights_name = source.weights_name
    encoder.layers = source.layers[: LAYER_INDEX[layer] + 1]
    encoder.register_buffer("mean", source.mean.clone())
    encoder.register_buffer("std", source.std.clone())
    encoder.requires_grad_(False)
    encoder.eval()
    return encoder


#: Float dtypes a model forward takes besides its own parameters' dtype (half precisions: autocast).
IMAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_image_batch(images: torch.Tensor, name: str = "images", model: nn.Module | None = None) -> None:
    """Check a batch a model forward is given: (N, 3, H, W) with N >= 1 and a float dtype.

    The dtype must be float32, float16, bfloat16 or the float dtype of ``model``'s parameters.
    Only shape and dtype are read (no device sync), so values are not checked: they should be
    in [0, 1]. Raises TypeError for a non-tensor, and ValueError naming ``name`` and the problem
    for another shape, an empty batch (N = 0; :func:`pad_to_multiple` reports H or W = 0), or
    another dtype (uint8, int64, float64, ...: the message says to convert with
    ``image_io.to_float_batch``).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got a {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name}: expected RGB images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name}: the batch is empty (shape {tuple(images.shape)}); give at least one image")
    own = images.dtype in IMAGE_DTYPES or (model is not None
                                           and any(p.dtype == images.dtype for p in model.parameters()))
    if not own or not images.is_floating_point():
        raise ValueError(f"{name}: got {images.dtype} images; pass float images in [0, 1], "
                         "e.g. image_io.to_float_batch(batch)")


def pad_to_multiple(image: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """Pad the bottom and right of (N, C, H, W) up to a multiple of ``multiple`` (same dtype and device).

    Sides are padded to at least ``2 * multiple``: after the network's ``multiple``-fold
    downsampling every feature map keeps 2 or more pixels a side, as the decoder's 3x3
    reflection padding and instance normalisation need. ``mode`` is "reflect" or "replicate";
    reflection needs the pad to be smaller than the side, so tiny images fall back to
    replicating the edge. Returns ``image`` itself when no padding is needed; crop the result
    back with ``[..., :H, :W]``. Raises ValueError for an image with no pixels.
    """
    height, width = image.shape[-2:]
    if height < 1 or width < 1:
        raise ValueError(f"image is {height}x{width} px (height x width): an empty image cannot be stylized")
    pad_h = max(-height % multiple, 2 * multiple - height)
    pad_w = max(-width % multiple, 2 * multiple - width)
    if pad_h == 0 and pad_w == 0:
        return image
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        mode = "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def describe_layers(model: DCNNStylizer) -> list[tuple[str, str]]:
    """(part, layer) rows: the encoder's VGG layers then the decoder's, for printing the architecture."""
    rows = [("encoder", name) for name in LAYER_NAMES[: len(model.encoder.layers)]]
    decoder = model.decoder
    for depth, stage in enumerate(decoder.stages):
        if depth > 0:
            rows.append(("decoder", "nearest upsample x2"))
            if decoder.skip_layers:
                rows.append(("decoder", f"concatenate skip from {decoder.skip_layers[depth - 1]}"))
        for layer in stage:
            conv = layer[1]
            relu = " + ReLU" if len(layer) == 3 else ""
            rows.append(("decoder", f"reflect-pad + conv3x3 {conv.in_channels}->{conv.out_channels}{relu}"))
    rows.append(("output", config_output(model.config)))
    if model.tone_curve is not None:
        rows.append(("output", f"tone curve: {model.tone_curve.knots.shape[1]} knots per channel"))
    return rows


def config_output(config: DCNNConfig) -> str:
    return "sigmoid -> [0, 1]" if config.output == "sigmoid" else "clamp to [0, 1]"


# ----------------------------------------------------------------------------- the DCNN's objective
@dataclass
class LossWeights:
    """How much each term counts. Pixel keeps colours right, perceptual keeps edges and texture
    sharp, style (optional, 0 = off) pulls the Gram statistics towards the target domain's."""

    pixel: float = 1.0
    perceptual: float = 0.05
    style: float = 0.0
    pixel_kind: str = "l1"  # "l1" (sharper) or "mse" (what PSNR measures)
    perceptual_layers: Sequence[str] = ("relu1_1", "relu2_1")
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["perceptual_layers"], data["style_layers"] = list(self.perceptual_layers), list(self.style_layers)
        return data


class PairedLoss:
    """Loss of a stylizer on a batch of (source, target) pairs: weighted pixel + perceptual + style.

    Pixel: L1 (or MSE) to the target. Perceptual (Johnson et al. 2016): VGG19-feature distance to
    the paired target, each layer a relative error (:func:`~facestyle_utils.losses.perceptual_loss`).
    Style (Gatys et al. 2016): Gram-matrix distance to the target's. Usable as
    :func:`facestyle_utils.training.train`'s ``loss_fn``: ``loss_fn(model, (sources, targets))``.
    ValueError for an unknown ``pixel_kind`` or layers beyond ``vgg``.

    The target's VGG features are computed once per batch without gradients; only the output's
    features need a backward pass. Pass the stylizer's own (frozen) encoder as ``vgg`` to share it.
    """

    def __init__(self, vgg: VGG19Features, weights: LossWeights | None = None) -> None:
        self.vgg, self.weights = vgg, weights or LossWeights()
        w = self.weights
        if w.pixel_kind not in ("l1", "mse"):
            raise ValueError(f"pixel_kind must be 'l1' or 'mse', not {w.pixel_kind!r}")
        self.layers = list(dict.fromkeys([*(w.perceptual_layers if w.perceptual else ()),
                                          *(w.style_layers if w.style else ())]))
        too_deep = [name for name in self.layers if LAYER_INDEX[name] >= len(vgg.layers)]
        if too_deep:
            deepest = LAYER_NAMES[len(vgg.layers) - 1]
            raise ValueError(f"layers {too_deep} lie beyond this VGG19, which stops at {deepest}; "
                             "pass the full network from load_vgg19() or choose shallower layers")

    def __call__(self, model: nn.Module,
                 batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        source, target = batch[0], batch[1]
        output = model(source)
        return self.compare(output, target)

    def compare(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of outputs against their targets, both (N, 3, H, W) float in [0, 1], and its parts.

        ``parts`` are the weighted terms ("pixel", and "perceptual" / "style" when their weight is not
        0), as floats that add up to the loss; the loss is a scalar tensor with gradients to ``output``.
        """
        w = self.weights
        pixel = F.l1_loss(output, target) if w.pixel_kind == "l1" else F.mse_loss(output, target)
        total, parts = w.pixel * pixel, {"pixel": float(w.pixel * pixel.detach())}
        if self.layers:
            with torch.no_grad():
                target_features = self.vgg(target, self.layers)
            features = self.vgg(output, self.layers)
            if w.perceptual:
                perceptual = sum(perceptual_loss(features[k], target_features[k]) for k in w.perceptual_layers)
                total = total + w.perceptual * perceptual
                parts["perceptual"] = float(w.perceptual * perceptual.detach())
            if w.style:
                style = sum(style_loss(features[k], gram_matrix(target_features[k])) for k in w.style_layers)
                total = total + w.style * style
                parts["style"] = float(w.style * style.detach())
        return total, parts

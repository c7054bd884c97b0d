"""The DRN stylizer of lesson 04: a VGG19 encoder, attention between face and style, and a decoder.

Unlike the DCNN of lesson 03, the DRN takes *two* images: a face and a style example. Both go
through the same frozen VGG19. At ``relu3_1`` (stride 4) and optionally ``relu4_1`` (stride 8),
a :class:`~facestyle_utils.attention.CrossAttention` block lets every face position gather the
style features most similar to it (cosine similarity, softmax, weighted sum), merged back
residually; the deeper result is upsampled and added to the shallower one. A SAGAN
:class:`~facestyle_utils.attention.SelfAttention` block (gamma = 0 at the start, so it begins
as the identity) then mixes long-range context, and a decoder with nearest upsampling and
reflection-padded convolutions (the lesson-03 :class:`~facestyle_utils.nets.Decoder`) paints
the image. Any input size works: inputs are padded to a multiple of the stride and the output
is cropped back.

Training needs no pairs (:class:`UnpairedLoss`): the output must keep the face's content
(VGG features), take the style image's statistics (mean/std or Gram of VGG features), and a
style image given as its own style must come back unchanged (identity loss). Where the pairs
exist (the course's filtered styles), a *pixel* term (:func:`pixel_loss`) also compares the
output with the face's own target; lesson 04 trains with both, on
:class:`~facestyle_utils.datasets.PairedExampleDataset` items. With ``residual=True`` the decoder's
output is a change to the face (as lesson 03's DCNN), so the untrained DRN is the identity.

Memory: the attention matrices grow with (H*W)^2; every block keeps each one under
``DRNConfig.max_elements`` entries by chunking (see :mod:`facestyle_utils.attention`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import DEFAULT_MAX_ELEMENTS, CrossAttention, SelfAttention, mean_variance_norm
from .losses import gram_matrix, mean_std_loss, relative_loss
from .nets import (
    Decoder,
    check_image_batch,
    pad_to_multiple,
    residual_image,
    scale_features,
    truncated_vgg,
    zero_last_layer,
)
from .vgg import LAYER_INDEX, VGG19Features, check_side

#: Depths where the cross-attention may sit, with their stride and VGG19 channels.
ATTENTION_LAYERS = {"relu3_1": (4, 256), "relu4_1": (8, 512)}


@dataclass
class DRNConfig:
    """Everything needed to rebuild a DRN (saved next to its weights)."""

    attention_layers: Sequence[str] = ("relu3_1", "relu4_1")  # cross-attention at one or two depths
    self_attention: bool = True  # a SAGAN block after the merge
    width: float = 0.5  # decoder channels relative to the mirrored VGG layers
    skips: bool = True  # U-Net skips of the *face* features (relu1_2, relu2_2) into the decoder: sharp detail
    residual: bool = False  # decoder predicts a change to the face (in logit space): starts as the identity
    max_elements: int = DEFAULT_MAX_ELEMENTS  # cap on the entries of one attention matrix
    vgg_weights: str = "oxford"

    def __post_init__(self) -> None:
        layers = [self.attention_layers] if isinstance(self.attention_layers, str) else list(self.attention_layers)
        unknown = [name for name in layers if name not in ATTENTION_LAYERS]
        if unknown or not layers or "relu3_1" not in layers:
            raise ValueError(f"attention_layers must contain 'relu3_1' and optionally 'relu4_1', not {layers}")
        self.attention_layers = tuple(sorted(set(layers), key=LAYER_INDEX.get))
        if not 0 < self.width <= 2:
            raise ValueError(f"width must be in (0, 2], not {self.width}")
        if self.max_elements < 1:
            raise ValueError(f"max_elements must be positive, not {self.max_elements}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["attention_layers"] = list(self.attention_layers)
        return data


class DRNStylizer(nn.Module):
    """Face (N, 3, H, W) + style (N or 1, 3, H', W'), RGB in [0, 1] -> stylized face (N, 3, H, W) in [0, 1].

    Only the attention blocks and the decoder train; :attr:`frozen_modules` keeps the VGG19
    encoder out of checkpoints (it is rebuilt from the VGG19 weights on load).
    """

    frozen_modules = ("encoder",)
    #: forward takes ``(faces, style)``: ``inference.Stylizer`` needs a style image for this model
    takes_style = True

    def __init__(self, config: DRNConfig | None = None, vgg: VGG19Features | None = None) -> None:
        super().__init__()
        self.config = config or DRNConfig()
        layers = self.config.attention_layers
        self.deepest = layers[-1]
        self.stride = ATTENTION_LAYERS[self.deepest][0]
        self.encoder = truncated_vgg(self.deepest, vgg, self.config.vgg_weights)
        cap = self.config.max_elements
        self.cross = nn.ModuleDict({name: CrossAttention(ATTENTION_LAYERS[name][1], cap) for name in layers})
        # the deeper result (512 channels, half the size) joins the shallower one after a 1x1 projection
        self.deep_projection = nn.Conv2d(512, 256, 1) if "relu4_1" in layers else None
        self.self_attention = SelfAttention(256, max_elements=cap) if self.config.self_attention else nn.Identity()
        self.decoder = Decoder("relu3_1", self.config.width, self.config.skips)
        #: encoder layers the model reads: the decoder's skips (face only) and the attention depths
        self.feature_layers = [*self.decoder.skip_layers, *layers]
        if self.config.residual:  # start from "change nothing", as lesson 03's residual DCNN
            zero_last_layer(self.decoder)

    def train(self, mode: bool = True) -> "DRNStylizer":
        super().train(mode)
        self.encoder.train(False)  # frozen: always in eval mode
        return self

    @property
    def largest_matrix(self) -> int:
        """Entries of the largest attention matrix formed by the last forward pass."""
        blocks = [*self.cross.values()]
        if isinstance(self.self_attention, SelfAttention):
            blocks.append(self.self_attention)
        return max(block.largest_matrix for block in blocks)

    def encode(self, image: torch.Tensor, layers: Sequence[str] | None = None,
               name: str = "images") -> dict[str, torch.Tensor]:
        """Raw VGG19 features of an image padded to a multiple of the stride (no gradients: frozen).

        ``image`` as :meth:`forward` takes it; errors (see
        :func:`~facestyle_utils.nets.check_image_batch`) name it ``name``.
        """
        check_image_batch(image, name, self)
        with torch.no_grad():
            return self.encoder(self.pad_input(image), layers or self.feature_layers)

    def pad_input(self, image: torch.Tensor) -> torch.Tensor:
        """The padding :meth:`encode` applies to faces and styles (reflection up to a multiple of the
        stride); ONNX export pads outside the graph with it, so the exported graph takes every size."""
        return pad_to_multiple(image, self.stride)

    def scaled(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw activations (hundreds, for the Oxford weights) divided down to about unit size."""
        return scale_features({name: features[name] for name in self.feature_layers}, self.config.vgg_weights)

    def attend(self, face: Mapping[str, torch.Tensor], style: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Cross-attention at each depth, the deeper one upsampled and added, then self-attention."""
        merged = self.cross["relu3_1"](face["relu3_1"], style["relu3_1"])
        if self.deep_projection is not None:
            deep = self.cross["relu4_1"](face["relu4_1"], style["relu4_1"])
            deep = F.interpolate(self.deep_projection(deep), size=merged.shape[-2:], mode="nearest")
            merged = merged + deep
        return self.self_attention(merged)

    def stylize(self, face: Mapping[str, torch.Tensor], style: Mapping[str, torch.Tensor],
                size: tuple[int, int], image: torch.Tensor | None = None) -> torch.Tensor:
        """Raw encoder features of faces and styles (from :meth:`encode`) -> images of ``size`` in [0, 1].

        ``image``: the padded faces themselves (:meth:`pad_input`), which a ``residual`` DRN changes
        (ValueError without them). Split from :meth:`forward` so a loss that has already run VGG19
        on the same images can reuse it.
        """
        face, style = self.scaled(face), self.scaled(style)
        batch = next(iter(face.values())).shape[0]
        styles = next(iter(style.values())).shape[0]
        if styles != batch:
            if styles != 1:
                raise ValueError(f"give one style image or one per face: {styles} styles for {batch} faces")
            style = {name: value.expand(batch, -1, -1, -1) for name, value in style.items()}
        features = {name: face[name] for name in self.decoder.skip_layers}
        features["relu3_1"] = self.attend(face, style)
        change = self.decoder(features)
        if not self.config.residual:
            return torch.sigmoid(change)[..., : size[0], : size[1]]
        if image is None:
            raise ValueError("a residual DRN needs the (padded) face images to stylize")
        return residual_image(change, image)[..., : size[0], : size[1]]

    def forward(self, face: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Faces (N, 3, H, W) + styles (N or 1, 3, H', W'), RGB in [0, 1] -> (N, 3, H, W) in [0, 1].

        Any sides >= 1: both are padded to a multiple of the stride and to at least two strides
        (:func:`~facestyle_utils.nets.pad_to_multiple`), and the output is cropped back to the
        face's size. Both are float32 (float16 or bfloat16 under autocast, or the model's own float
        dtype). Raises ValueError naming the face or style batch when it is not (N, 3, H, W), is
        empty, has no pixels or has another dtype (uint8: use ``image_io.to_float_batch``), and for
        a number of styles that is neither 1 nor N.
        """
        check_image_batch(face, "face batch", self)
        padded = self.pad_input(face)
        return self.stylize(self.encode(padded, name="face batch"), self.encode(style, name="style batch"),
                            tuple(face.shape[-2:]), padded)

    def attention_maps(self, face: torch.Tensor, style: torch.Tensor, layer: str = "relu3_1") -> dict[str, Any]:
        """For figures: cosine similarities and attention rows at ``layer`` for one face and one style image.

        Returns ``similarity`` and ``attention`` (Lf, Ls) of the trained block, ``raw_attention`` (Lf, Ls)
        of the raw normalised VGG19 features (no learned projection, the same temperature), plus the
        face and style feature-map shapes and the layer's ``stride`` (rows are face positions in raster
        order; :func:`~facestyle_utils.attention.attention_at_points` turns chosen rows into heat maps).
        Forms the full matrix: meant for small images (128 px gives 1024 x 1024 at relu3_1).
        """
        block = self.cross[layer]
        with torch.no_grad():
            f = self.scaled(self.encode(face[:1], name="face"))[layer]
            s = self.scaled(self.encode(style[:1], name="style"))[layer]
            return {"similarity": block.similarity(f, s)[0], "attention": block.attention_map(f, s)[0],
                    "raw_attention": block.attention_map(f, s, projected=False)[0],
                    "face_shape": tuple(f.shape[-2:]), "style_shape": tuple(s.shape[-2:]),
                    "stride": ATTENTION_LAYERS[layer][0]}

    def parameter_counts(self) -> dict[str, int]:
        """Parameters in the frozen encoder and in each trained part."""
        count = lambda module: sum(p.numel() for p in module.parameters()) if module is not None else 0  # noqa: E731
        return {"encoder (frozen)": count(self.encoder), "cross-attention": count(self.cross),
                "deep projection": count(self.deep_projection), "self-attention": count(self.self_attention),
                "decoder": count(self.decoder)}


# ----------------------------------------------------------------------------- the unpaired objective
@dataclass
class UnpairedWeights:
    """How much each term of :class:`UnpairedLoss` counts (0 turns a term off)."""

    content: float = 1.0
    style: float = 3.0
    identity_pixel: float = 20.0
    identity_feature: float = 1.0
    pixel: float = 0.0  # error to the face's own target relative to the photo's (:func:`pixel_loss`); needs targets
    style_kind: str = "mean_std"  # or "gram"
    content_layers: Sequence[str] = ("relu4_1",)
    style_layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

    def __post_init__(self) -> None:
        if self.style_kind not in ("mean_std", "gram"):
            raise ValueError(f"style_kind must be 'mean_std' or 'gram', not {self.style_kind!r}")
        self.content_layers, self.style_layers = tuple(self.content_layers), tuple(self.style_layers)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["content_layers"], data["style_layers"] = list(self.content_layers), list(self.style_layers)
        return data


def _check_batches(batches: Mapping[str, torch.Tensor], model: nn.Module | None = None) -> None:
    """:func:`~facestyle_utils.nets.check_image_batch` on each named batch (shape and dtype only, no sync)."""
    for name, images in batches.items():
        check_image_batch(images, name, model)


class LossFeatures(NamedTuple):
    """The VGG19 features :meth:`UnpairedLoss.compare` reads, by layer name: of the faces, the style
    images, the outputs and (None without an identity term) the identity outputs ``model(styles, styles)``."""

    face: Mapping[str, torch.Tensor]
    style: Mapping[str, torch.Tensor]
    output: Mapping[str, torch.Tensor]
    identity: Mapping[str, torch.Tensor] | None = None


class UnpairedLoss:
    """Loss of a DRN on a batch ``(faces, styles)`` drawn independently: content + style + identity
    (+ pixel, on batches ``(faces, styles, targets)`` whose targets are the faces in the styles' style).

    - content: mean-variance-normalised VGG features of the output vs the face (normalised so
      the style's new colours and contrasts are not punished, only the arrangement);
    - style: per-channel mean/std (or Gram matrices) of the output's VGG features vs the style image's;
    - identity: ``model(style, style)`` should give the style image back: in pixels and in VGG features;
    - pixel (weight 0 by default): the output vs the face's own target, relative to the face's error
      (:func:`pixel_loss`); uses pairs, so only where they exist.

    All terms are relative errors (divided by the reference's energy), so the weights carry over
    between layers. Usable as :func:`facestyle_utils.training.train`'s ``loss_fn``. Images are
    not padded: ValueError when faces or styles have a side below what VGG19 needs to reach the
    loss's layers (:func:`facestyle_utils.vgg.min_side`: 8 px up to relu4_1), and naming the batch
    when it is not a float (N, 3, H, W) batch with N >= 1 (:func:`~facestyle_utils.nets.check_image_batch`).

    ``share_encoder`` (a speed option, on by default): when the model's frozen encoder *is* the loss's
    VGG19 and the batch needs no padding (:func:`can_share_encoder`), run VGG19 once on faces and
    styles together and hand those features to the model (:meth:`DRNStylizer.stylize`) instead of
    letting it encode the same images again: about a third less work, the same loss within float
    rounding. Otherwise, and with ``share_encoder=False``, the plain path runs.
    """

    def __init__(self, vgg: VGG19Features, weights: UnpairedWeights | None = None, *,
                 share_encoder: bool = True) -> None:
        self.vgg, self.weights, self.share_encoder = vgg, weights or UnpairedWeights(), share_encoder
        w = self.weights
        self.layers = list(dict.fromkeys([*w.content_layers, *w.style_layers]))
        too_deep = [name for name in self.layers if LAYER_INDEX[name] >= len(vgg.layers)]
        if too_deep:
            raise ValueError(f"this VGG19 stops before {too_deep}; pass a deeper one (e.g. load_vgg19())")

    @property
    def identity(self) -> bool:
        """Whether the identity term counts (either of its weights is not 0): ``model(styles, styles)`` is needed."""
        return bool(self.weights.identity_pixel or self.weights.identity_feature)

    def __call__(self, model: nn.Module,
                 batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of ``model`` on ``batch = (faces, styles)`` or ``(faces, styles, targets)`` and its
        parts (see :meth:`compare`; targets count only with a ``pixel`` weight, which needs them)."""
        faces, styles = batch[0], batch[1]
        targets = batch[2] if len(batch) > 2 and self.weights.pixel else None
        if self.weights.pixel and targets is None:
            raise ValueError("the pixel term needs batches of (faces, styles, targets), e.g. from "
                             "datasets.PairedExampleDataset; this batch has no targets")
        _check_batches({"face batch": faces, "style batch": styles}, model)
        if self.share_encoder and can_share_encoder(self.vgg, model, faces, styles):
            return self.shared_encoder_loss(model, faces, styles, targets)
        self._check_sides({"face batch": faces, "style batch": styles}, self.layers)
        output = model(faces, styles)  # the face drawn in the style
        identity_output = model(styles, styles) if self.identity else None  # the style image as its own style
        return self.compare(faces, styles, output, identity_output, targets=targets)

    def compare(self, faces: torch.Tensor, styles: torch.Tensor, output: torch.Tensor,
                identity_output: torch.Tensor | None = None, features: LossFeatures | None = None, *,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of outputs for (faces, styles), and its parts (the weighted terms, which add up to it).

        Faces, outputs and targets (N, 3, H, W), styles and identity outputs (N, 3, H', W'), all
        float in [0, 1] (ValueError naming the batch otherwise, as in :class:`UnpairedLoss`).
        ``features``: their VGG19 features, if already computed (:meth:`shared_encoder_loss` does).
        ``targets``: each face's own image in its example's style; with a ``pixel`` weight, the
        error to them relative to the face's (:func:`pixel_loss`) is one more term (the hidden pairs
        used as supervision).
        """
        w = self.weights
        _check_batches({"face batch": faces, "style batch": styles, "output": output})
        face, style, out, same = features or self.features(faces, styles, output, identity_output)
        content = sum(F.mse_loss(mean_variance_norm(out[k]), mean_variance_norm(face[k])) for k in w.content_layers)
        style_term = sum(self._style(out[k], style[k]) for k in w.style_layers)
        terms = {"content": w.content * content, "style": w.style * style_term}
        if identity_output is not None:
            pixel = F.l1_loss(identity_output, styles)
            feature = sum(relative_loss(F.mse_loss(same[k].float(), style[k].float()), style[k])
                          for k in w.style_layers)
            terms.update(identity_pixel=w.identity_pixel * pixel, identity_feature=w.identity_feature * feature)
        if targets is not None and w.pixel:
            _check_batches({"target batch": targets})
            terms["pixel"] = w.pixel * pixel_loss(output, targets, faces)
        total = sum(terms.values())
        return total, {name: float(term.detach()) for name, term in terms.items()}

    def features(self, faces: torch.Tensor, styles: torch.Tensor, output: torch.Tensor,
                 identity_output: torch.Tensor | None = None) -> LossFeatures:
        """VGG19 features at the loss's layers: one pass per batch, gradients only through the outputs.

        Not padded (padding would change the statistics compared): ValueError naming the batch when
        a side is too small for the loss's layers.
        """
        named = {"face batch": faces, "style batch": styles, "output": output, "identity output": identity_output}
        self._check_sides({name: images for name, images in named.items() if images is not None}, self.layers)
        with torch.no_grad():
            face, style = self.vgg(faces, self.layers), self.vgg(styles, self.layers)
        same = self.vgg(identity_output, self.layers) if identity_output is not None else None
        return LossFeatures(face, style, self.vgg(output, self.layers), same)

    def _style(self, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.weights.style_kind == "gram":
            goal = gram_matrix(target)
            return relative_loss(F.mse_loss(gram_matrix(features), goal), goal)
        return relative_loss(mean_std_loss(features, target), target)

    @staticmethod
    def _check_sides(batches: Mapping[str, torch.Tensor], layers: Sequence[str]) -> None:
        for name, images in batches.items():
            check_side(images, layers, name)

    # ------------------------------------------------------------------ the speed option: share the encoder
    def shared_encoder_loss(self, model: "DRNStylizer", faces: torch.Tensor, styles: torch.Tensor,
                            targets: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of :meth:`__call__` with one VGG19 pass serving the model's encoder and the loss.

        Needs :func:`can_share_encoder`. Faces and styles go through VGG19 together (at the loss's
        layers and the model's), the model stylizes from those features, and outputs and identity
        outputs go through VGG19 together as well: the same values as the plain path within float rounding.
        """
        layers = list(dict.fromkeys([*self.layers, *model.feature_layers]))
        self._check_sides({"face batch": faces, "style batch": styles}, layers)
        with torch.no_grad():
            face, style = _one_pass(self.vgg, [faces, styles], layers)
        output = model.stylize(face, style, tuple(faces.shape[-2:]), faces)
        if not self.identity:
            return self.compare(faces, styles, output, None, LossFeatures(face, style, self.vgg(output, self.layers)),
                                targets=targets)
        identity_output = model.stylize(style, style, tuple(styles.shape[-2:]), styles)
        out, same = _one_pass(self.vgg, [output, identity_output], self.layers)
        return self.compare(faces, styles, output, identity_output, LossFeatures(face, style, out, same),
                            targets=targets)


def pixel_loss(output: torch.Tensor, targets: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Each output's squared error to its target, relative to the face's own, averaged over the batch
    (:func:`~facestyle_utils.losses.relative_loss` of the per-image MSE, ``targets - faces`` as reference).

    1 means no better than the photo as is, 0 means the target exactly; PSNR gains over doing
    nothing are ``-10 log10`` of it. Relative, so a style far from the photo (pencil: white
    paper) does not drown the styles close to it (cartoon) in one batch. All (N, 3, H, W) in [0, 1].
    """
    per_image = (output.float() - targets.float()).pow(2).mean(dim=(1, 2, 3))
    return relative_loss(per_image, targets - faces)


def can_share_encoder(vgg: VGG19Features, model: nn.Module, faces: torch.Tensor, styles: torch.Tensor) -> bool:
    """Whether ``vgg``'s features of (faces, styles) can stand in for ``model``'s encoder (the speed option of
    :class:`UnpairedLoss`): a :class:`DRNStylizer` whose encoder is ``vgg``'s first layers (same weights),
    faces and styles of one shape, and sides that need no padding (multiples of the stride, at least two strides).
    """
    if not isinstance(model, DRNStylizer) or faces.shape != styles.shape:
        return False
    stride = model.stride
    return (all(side % stride == 0 and side >= 2 * stride for side in faces.shape[-2:])
            and vgg.weights_name == model.config.vgg_weights
            and len(vgg.layers) >= len(model.encoder.layers)
            and all(a is b for a, b in zip(vgg.layers, model.encoder.layers)))


def _one_pass(vgg: VGG19Features, batches: Sequence[torch.Tensor],
              layers: Sequence[str]) -> list[dict[str, torch.Tensor]]:
    """VGG19 features of batches of one image size, in one pass over them concatenated, split back per batch."""
    joined = vgg(torch.cat(list(batches)), layers)
    sizes = [len(batch) for batch in batches]
    parts = {name: value.split(sizes) for name, value in joined.items()}
    return [{name: pieces[index] for name, pieces in parts.items()} for index in range(len(batches))]


def content_style_losses(loss: UnpairedLoss, faces: torch.Tensor, styles: torch.Tensor,
                         outputs: torch.Tensor) -> dict[str, float]:
    """The content and style terms of ``loss`` for any outputs (e.g. another model's), no identity term."""
    with torch.no_grad():
        _, parts = loss.compare(faces, styles, outputs)
    return parts


__all__ = ["ATTENTION_LAYERS", "DRNConfig", "DRNStylizer", "LossFeatures", "UnpairedLoss", "UnpairedWeights",
           "can_share_encoder", "content_style_losses", "pixel_loss"]

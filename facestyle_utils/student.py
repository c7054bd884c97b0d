"""A distilled fast student: a small feed-forward network that imitates a trained stylizer.

The teacher (lesson 03's DCNN) runs part of VGG19 on every image, which is most of its cost.
The student follows Johnson et al.'s "transformer net" (2016), slimmed: two strided convolutions down,
residual blocks at 1/4 resolution, nearest upsampling + convolution back up (no transposed
convolutions, so no checkerboard), instance normalisation in the residual blocks. It is trained to give
the teacher's output for the same input (knowledge distillation, Hinton et al. 2015), so it needs no labels
of its own: the teacher labels every training photo once (:func:`label_with_teacher`, offline distillation)
and the student learns from those pairs with an L1 loss (:func:`distillation_loss`).
Its output is either a change to the input photo or a new image (:class:`StudentConfig`'s ``residual``).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .nets import check_image_batch, check_switches, pad_to_multiple, residual_image
from .tone_curve import ToneCurve


@dataclass
class StudentConfig:
    """Width of the first layer and number of residual blocks (the speed/quality dials), and what the
    network predicts.

    ``residual=True`` (as :class:`~facestyle_utils.nets.DCNNConfig`'s ``residual``): a change to the
    input photo, ``sigmoid(change + logit(photo))``, so an untrained student starts close to the identity; right for
    styles that keep the photo's colours and draw on it (the cartoon). ``residual=False``: the image
    itself, ``sigmoid(output)``; right for styles that repaint every colour (Magenta's paintings),
    where the skip would carry the photo's own colours through to the output.

    ``tone_curve=True`` (as :class:`~facestyle_utils.nets.DCNNConfig`'s ``tone_curve``): a learned
    curve per channel maps the output last (:class:`~facestyle_utils.tone_curve.ToneCurve`), for a
    teacher whose output has the cartoon's exact tone steps.
    """

    base_channels: int = 16
    residual_blocks: int = 3
    residual: bool = True
    tone_curve: bool = False

    def __post_init__(self) -> None:
        if self.base_channels < 4 or self.residual_blocks < 0:
            raise ValueError(f"need base_channels >= 4 and residual_blocks >= 0, got {self}")
        check_switches(self, "residual", "tone_curve")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConvNormReLU(nn.Sequential):
    """Conv (optionally strided) + optional instance norm + ReLU.

    Instance norm and reflection padding help a network that must handle *any* style; a student
    that copies one teacher keeps instance norm only in its residual blocks (at 1/4 resolution) and
    pads with zeros, which saves about a third of its time on a CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, relu: bool = True, norm: bool = False):
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, stride, padding=1)]
        if norm:
            layers.append(nn.InstanceNorm2d(out_channels, affine=True))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions whose result is added to the input: learns a correction, keeps the content."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvNormReLU(channels, channels, norm=True),
                                  ConvNormReLU(channels, channels, relu=False, norm=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpConv(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvNormReLU(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class FastStudent(nn.Module):
    """RGB in [0, 1] -> stylized RGB in [0, 1], same size.

    Sides that are not multiples of 4, or shorter than 8 px, are padded by replicating the edge
    (the instance norm at 1/4 resolution needs more than one pixel) and the output is cropped back.
    """

    stride = 4

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        c = self.config.base_channels
        # Unlike Johnson et al., no convolution runs at full resolution except the thin last two:
        # at 512x512 that is where most of the time would go.
        self.down = nn.Sequential(ConvNormReLU(3, c, stride=2), ConvNormReLU(c, 2 * c, stride=2))
        self.middle = nn.Sequential(*[ResidualBlock(2 * c) for _ in range(self.config.residual_blocks)])
        self.up = nn.Sequential(UpConv(2 * c, c), UpConv(c, c // 2))
        self.out = nn.Conv2d(c // 2, 3, 3, padding=1)
        self.tone_curve = ToneCurve() if self.config.tone_curve else None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float RGB in [0, 1], any H, W >= 1 -> (N, 3, H, W) in [0, 1].

        ``image`` is float32 (float16 or bfloat16 under autocast, or the model's own float dtype).
        Raises ValueError (see :func:`~facestyle_utils.nets.check_image_batch`) for a batch that is
        not (N, 3, H, W), is empty, has no pixels or has another dtype (uint8: use
        ``image_io.to_float_batch``).
        """
        check_image_batch(image, "images", self)
        height, width = image.shape[-2:]
        x = self.pad_input(image)
        output = self.out(self.up(self.middle(self.down(x)))) * 2
        # residual: predict a change to the input, so the student starts close to the identity and learns the style.
        out = residual_image(output, x) if self.config.residual else torch.sigmoid(output)
        out = out[..., :height, :width]
        return self.tone_curve(out) if self.tone_curve is not None else out

    def pad_input(self, image: torch.Tensor) -> torch.Tensor:
        """The padding :meth:`forward` applies (edge replicated up to a multiple of the stride); ONNX
        export pads outside the graph with it, so the exported graph takes every size."""
        return pad_to_multiple(image, self.stride, mode="replicate")


def half_resolution_round_trip(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images -> the same images brought down to half resolution (area average) and back
    up (bilinear): what is left of a target for a network that does nearly all its work at half
    resolution and below, like :class:`FastStudent`.

    ``psnr(half_resolution_round_trip(targets), targets)`` is an indicator (not a bound: the student's
    last two convolutions run at full resolution) of how closely such a student can copy a style: a
    style whose look lives in fine brush texture loses more in the round trip than one painted in washes.
    ``images``: float (N, 3, H, W), values in [0, 1] (any range works: the result stays within the
    input's range), H and W of at least 2; the result has the same shape, dtype and device.
    Raises ValueError for another shape or a side shorter than 2 px.
    """
    if images.dim() != 4 or min(images.shape[-2:]) < 2:
        raise ValueError(f"half_resolution_round_trip needs (N, C, H, W) images with H, W >= 2, "
                         f"got shape {tuple(images.shape)}")
    half = F.interpolate(images, scale_factor=0.5, mode="area")
    return F.interpolate(half, size=images.shape[-2:], mode="bilinear", align_corners=False)


class TeacherLabels(Dataset):
    """(photo, teacher's output) pairs held in memory, made by :func:`label_with_teacher`.

    Item ``i`` is ``transform(photo_i, label_i)`` (e.g. a
    :class:`~facestyle_utils.datasets.PairedRandomCrop` that flips both alike), else the pair as it is:
    two (3, H, W) float32 tensors in [0, 1] on the CPU. ``seconds``: how long reading the photos and
    running the teacher over them took.
    """

    def __init__(self, photos: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None,
                 seconds: float = 0.0) -> None:
        if photos.shape != labels.shape:
            raise ValueError(f"photos {tuple(photos.shape)} and labels {tuple(labels.shape)} must have one shape")
        self.photos, self.labels, self.transform, self.seconds = photos, labels, transform, seconds

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = (self.photos[index], self.labels[index])
        return self.transform(*pair) if self.transform is not None else pair


def label_with_teacher(teacher: nn.Module, photos: Dataset, *, transform: Callable | None = None,
                       batch_size: int = 16) -> TeacherLabels:
    """Offline distillation's first step: run the teacher once over every training photo and keep its outputs.

    ``photos``: a dataset whose items are a (3, H, W) photo or a tuple starting with one (a
    :class:`~facestyle_utils.datasets.PairedDataset`: its targets are not used), all of one size,
    float values in [0, 1]. The teacher runs in eval mode without gradients, ``batch_size`` photos at
    a time on its own device (the CPU for a teacher without parameters), and is handed back in the
    mode it came in. Photos and labels are kept on the CPU as float32: 2 x N x 3 x H x W x 4 bytes,
    e.g. 176 MB for lesson 05's 448 faces of 128 px (each process under torchrun holds its own copy).
    ``transform``: the augmentation for :class:`TeacherLabels` items. Training then never runs the
    teacher again: with a VGG19 teacher that is most of the cost of a step. Raises ValueError for an
    empty dataset or photos of different sizes (see :func:`~facestyle_utils.datasets.stack_items`).
    """
    from .datasets import stack_items
    from .training import evaluating

    begin = time.perf_counter()
    items = (photos[i] for i in range(len(photos)))
    images = stack_items([(item[0] if isinstance(item, (tuple, list)) else item,) for item in items])[0]
    images = images.float().cpu()
    device = next((p.device for p in teacher.parameters()), torch.device("cpu"))
    with evaluating(teacher):
        labels = torch.cat([teacher(images[i:i + batch_size].to(device)).float().cpu()
                            for i in range(0, len(images), batch_size)])
    return TeacherLabels(images, labels, transform, time.perf_counter() - begin)


def distillation_loss(student: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Loss for :func:`facestyle_utils.training.train`: mean absolute difference (L1) between the
    student's output for the photos and the teacher's outputs for them, ``batch = (photos, labels)``
    (from :func:`label_with_teacher`, or a paired dataset whose targets a teacher made, like Magenta's
    paintings). Both (N, 3, H, W) in [0, 1]; the loss is computed in float32 (under autocast too).
    Raises ValueError for a batch that is not such a pair of one shape.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and batch[0].shape == batch[1].shape):
        shapes = [tuple(part.shape) for part in batch] if isinstance(batch, (tuple, list)) else tuple(batch.shape)
        raise ValueError(f"distillation_loss needs a (photos, labels) pair of one shape, got {shapes}; "
                         "make the labels with label_with_teacher")
    photos, labels = batch
    loss = F.l1_loss(student(photos).float(), labels.float())
    return loss, {"l1_to_teacher": loss.item()}

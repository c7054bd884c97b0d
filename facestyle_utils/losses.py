"""The maths of style transfer: content, perceptual, style (Gram and mean/std statistics), smoothness.

Shapes follow PyTorch: feature maps are (N, C, H, W). Every loss is normalised so that
its size does not depend on the image size or the number of channels, which keeps the
loss weights meaningful when a learner changes the resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as float32 (float64 stays float64): where sums of squares of VGG19 features are formed.

    Those features reach about 2e4 on a face, so their squares leave float16's range (largest value
    65504) and lose bfloat16's few significant bits; autocast would hand them over in 16 bits.
    """
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    r"""Channel correlations :math:`G = F F^\top / (C H W)` of features (N, C, H, W); shape (N, C, C).

    Gatys, Ecker and Bethge (2016), "Image style transfer using convolutional neural networks":
    entry (i, j) says how strongly channels i and j fire together, wherever in the image. Dividing
    by :math:`C H W` makes it independent of the image size, so style weights found at 128 px
    still work at 512 px. Computed in float32 (float64 stays float64), even under autocast.
    """
    n, c, h, w = features.shape
    flat = at_least_float32(features.reshape(n, c, h * w))
    with torch.autocast(features.device.type, enabled=False):  # keep the sums in float32 or better
        return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps: how far the image's *content* is from the target."""
    return F.mse_loss(features.float(), target.float())


def relative_loss(loss: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """A loss divided by the reference's energy (its mean square): about 1 when far off, 0 when right.

    Raw VGG19 activations are large (inputs in 0-255 for the Oxford weights) and their size
    differs from layer to layer, so one weight cannot serve several layers; divided this way,
    each layer's term is a relative error and the weights carry over between layers (the
    normalisation of Johnson et al. 2016's feature loss, taken one step further).

    ``loss`` is a scalar, divided by the mean square of the whole ``reference`` (any shape); or
    (N,) per-image losses, each divided by the mean square of its own image of the (N, ...)
    ``reference``, and then averaged, so a batch's loss is the mean of its images' losses (what
    data parallel training assumes when it averages the gradients of batch shares). No gradient
    flows into the reference's energy. Returns a float32 scalar (float64 stays float64).
    """
    reference = reference.detach().float()
    if loss.ndim == 0:
        return loss / (reference.pow(2).mean() + eps)
    if loss.shape != reference.shape[:1]:
        raise ValueError(f"per-image losses of shape {tuple(loss.shape)} do not match a reference batch of "
                         f"{reference.shape[0]} images")
    energy = reference.pow(2).mean(tuple(range(1, reference.ndim)))
    return (loss / (energy + eps)).mean()


def perceptual_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VGG-feature distance of an output to its paired target image, as a relative error.

    Johnson, Alahi and Fei-Fei (2016), "Perceptual losses for real-time style transfer": per
    image, the mean squared difference of the feature maps divided by the target's energy
    (:func:`relative_loss`), then the mean over the batch. ``features`` and ``target`` (N, C, H, W)
    of any float dtype; returns a float32 scalar, 1 for an all-zero output and 0 for a perfect one.
    """
    dims = tuple(range(1, features.ndim))
    return relative_loss((features.float() - target.float()).pow(2).mean(dims), target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the image's Gram matrices and the target's."""
    return F.mse_loss(gram_matrix(features), target_gram.expand(features.shape[0], -1, -1))


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over positions: the AdaIN statistics.

    Huang and Belongie (2017), "Arbitrary style transfer in real-time with adaptive instance
    normalization" (``calc_mean_std`` in pytorch-AdaIN). ``features`` (N, C, H, W), any float
    dtype; returns (mean, std), each (N, C, 1, 1) in float32 (float64 for float64 features). The std
    is the population one (divided by H*W) with ``eps`` added to the variance, so it is never 0.

    Why float32 even for 16-bit features (:func:`at_least_float32`): float16 stops at 65504, and the
    variance of raw VGG19 features passes that from relu2_1 on (up to about 2e7 at relu4_1 on the
    course's faces). In float16, measured on those faces, about 3 % of the channels' std became inf at
    relu2_1, 35 % at relu3_1 (the DRN's content layer) and 96 % at relu4_1.
    """
    wide = at_least_float32(features)
    mean = wide.mean(dim=(2, 3), keepdim=True)
    std = (wide.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def mean_std_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Style as first and second moments: MSE between per-channel means plus between stds."""
    mean_a, std_a = mean_std(features)
    mean_b, std_b = mean_std(target)
    return F.mse_loss(mean_a, mean_b) + F.mse_loss(std_a, std_b)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels: penalises noise and speckle.

    ``image`` is (..., H, W); returns a scalar: the mean over horizontal neighbours plus the mean
    over vertical ones. An image one pixel wide (or high) has no such neighbours: that term is 0.
    """
    return _mean_abs(image[..., :, 1:] - image[..., :, :-1]) + _mean_abs(image[..., 1:, :] - image[..., :-1, :])


def _mean_abs(difference: torch.Tensor) -> torch.Tensor:
    """Mean absolute value; 0 (not NaN, and still part of the autograd graph) when there is nothing to average."""
    return difference.abs().mean() if difference.numel() else difference.abs().sum()

"""PyTorch datasets over the face domains that :mod:`facestyle_utils.domains` writes to disk.

Paired items (a face and the same face through a filter) for lesson 03, unpaired items (faces
and style images drawn independently) for lesson 04, the transforms that keep a pair aligned
(:class:`PairedTransform`, and :class:`PairedRandomCrop` for learning a filter), whole splits as
batches (:func:`stack_items`), and reproducible loaders.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from .domains import SPLITS, EmptyDomainError
from .image_io import IMAGE_SUFFIXES, image_to_tensor, load_image


class PairedTransform:
    """Augmentation applied identically to every image passed in one call (both sides of a pair).

    Random resized crop (area fraction ``scale``, aspect ``ratio``) to ``size``, horizontal flip,
    and colour jitter (brightness, contrast, saturation factors in ``1 +- jitter``). Returns float
    tensors (3, size, size) in [0, 1]. Randomness comes from torch's generator, so
    ``seed_everything`` and DataLoader seeding make it reproducible.
    """

    def __init__(self, size: int, *, scale: tuple[float, float] = (0.7, 1.0), ratio: tuple[float, float] = (0.9, 1.1),
                 flip: float = 0.5, jitter: float = 0.2, train: bool = True):
        self.size, self.scale, self.ratio, self.flip, self.jitter, self.train = size, scale, ratio, flip, jitter, train

    def params(self, width: int, height: int) -> dict:
        """Draw one set of random parameters for an image of this size."""
        if not self.train:
            return {"box": (0, 0, height, width), "flip": False, "colour": (1.0, 1.0, 1.0)}
        area = width * height
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(*self.scale))
            log_ratio = torch.empty(1).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
            aspect = math.exp(float(log_ratio))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,)))
                left = int(torch.randint(0, width - w + 1, (1,)))
                break
        else:
            top, left, h, w = 0, 0, height, width
        flip = bool(torch.rand(1) < self.flip)
        colour = tuple(float(v) for v in torch.empty(3).uniform_(1 - self.jitter, 1 + self.jitter))
        return {"box": (top, left, h, w), "flip": flip, "colour": colour}

    def apply(self, image: Image.Image, params: dict) -> torch.Tensor:
        tensor = image_to_tensor(image)[0]
        top, left, h, w = params["box"]
        tensor = TF.resized_crop(tensor, top, left, h, w, [self.size, self.size], antialias=True)
        if params["flip"]:
            tensor = TF.hflip(tensor)
        brightness, contrast, saturation = params["colour"]
        tensor = TF.adjust_contrast(TF.adjust_brightness(tensor, brightness), contrast)
        tensor = TF.adjust_saturation(tensor, saturation)
        return tensor.clamp(0, 1)

    def __call__(self, *images: Image.Image) -> torch.Tensor | tuple[torch.Tensor, ...]:
        sizes = {image.size for image in images}
        if len(sizes) != 1:
            raise ValueError(f"a paired transform needs images of one size, got {sorted(sizes)}")
        params = self.params(*images[0].size)
        out = tuple(self.apply(image, params) for image in images)
        return out[0] if len(out) == 1 else out


class PairedRandomCrop:
    """Augmentation for learning a filter: the same random crop (no resizing) and flip on both sides.

    No rescaling and no colour jitter on purpose: the target was made by a filter at this scale
    from these exact colours, so resizing or recolouring the pair would teach a different filter.
    Takes PIL images or (3, H, W) tensors of one size; returns tensors (3, size, size) in [0, 1].
    Random draws come from torch's generator (crop corner, then flip), so a seeded run repeats.
    ValueError when the images differ in size or are smaller than ``size``.
    """

    def __init__(self, size: int, flip: float = 0.5) -> None:
        self.size, self.flip = size, flip

    def __call__(self, *images: Image.Image | torch.Tensor) -> tuple[torch.Tensor, ...]:
        tensors = [image if isinstance(image, torch.Tensor) else image_to_tensor(image)[0] for image in images]
        height, width = tensors[0].shape[-2:]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"a paired crop needs images of one size, got {[tuple(t.shape) for t in tensors]}")
        if min(height, width) < self.size:
            raise ValueError(f"crop size {self.size} is larger than the image ({width}x{height})")
        top = int(torch.randint(0, height - self.size + 1, (1,)))
        left = int(torch.randint(0, width - self.size + 1, (1,)))
        flip = bool(torch.rand(1) < self.flip)
        out = []
        for tensor in tensors:
            crop = tensor[..., top: top + self.size, left: left + self.size]
            out.append(crop.flip(-1) if flip else crop)
        return tuple(out)


def to_tensor_transform(*images: Image.Image) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """No augmentation: images -> float tensors (3, H, W) in [0, 1]."""
    out = tuple(image_to_tensor(image)[0] for image in images)
    return out[0] if len(out) == 1 else out


def _pngs(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise EmptyDomainError(f"{what}: folder {folder} does not exist (was the domain built with this style/split?)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise EmptyDomainError(f"{what}: no images in {folder}")
    return files


class PairedDataset(Dataset):
    """Source faces and their targets, matched by file name: item ``i`` is ``(source, target)`` tensors."""

    def __init__(self, root: str | os.PathLike, style: str = "cartoon", split: str = "train",
                 transform: Callable | None = None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        root = Path(root)
        self.style, self.split = style, split
        self.sources = _pngs(root / "source" / split, f"paired dataset ({split})")
        target_dir = root / "target" / style / split
        if not target_dir.is_dir():
            raise EmptyDomainError(f"paired dataset: no target style {style!r} in {root} "
                                   f"(found: {sorted(p.name for p in (root / 'target').glob('*'))})")
        self.targets = [target_dir / p.name for p in self.sources]
        missing = [p.name for p in self.targets if not p.is_file()]
        if missing:
            raise EmptyDomainError(f"paired dataset: {len(missing)} source face(s) have no {style!r} target, "
                                   f"e.g. {missing[0]}; is {style!r} an unpaired style? use UnpairedDataset")
        self.transform = transform or to_tensor_transform

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def identities(self) -> list[str]:
        """Whose face each item is: files are named ``<identity>_v<NNN>.png`` (augmented copies share it)."""
        return [path.stem.rsplit("_v", 1)[0] for path in self.sources]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source = load_image(self.sources[index])
        target = load_image(self.targets[index])
        return self.transform(source, target)


class UnpairedDataset(Dataset):
    """Two independent domains of any sizes: item ``i`` is ``(source, target)`` drawn separately.

    One epoch is ``max(len(A), len(B))`` items: every image of the larger domain once, the smaller
    domain cycled. Each domain is walked in its own seeded permutation, redrawn per epoch by
    :meth:`set_epoch`, so pairings change between epochs yet every run is reproducible. Items depend
    only on (seed, epoch, index), so DataLoader workers agree without sharing state.
    """

    def __init__(self, source_files: Sequence[Path], target_files: Sequence[Path], *,
                 transform: Callable | None = None, target_transform: Callable | None = None, seed: int = 0):
        if not source_files:
            raise EmptyDomainError("unpaired dataset: the source domain is empty")
        if not target_files:
            raise EmptyDomainError("unpaired dataset: the target domain is empty")
        self.sources, self.targets = list(source_files), list(target_files)
        self.transform = transform or to_tensor_transform
        self.target_transform = target_transform or self.transform
        self.seed = seed
        self.set_epoch(0)

    @classmethod
    def from_domains(cls, root: str | os.PathLike, style: str, split: str = "train", **kwargs) -> "UnpairedDataset":
        """Source faces and a target style (paired or not) of one build, used without their pairing."""
        root = Path(root)
        return cls(_pngs(root / "source" / split, f"unpaired dataset source ({split})"),
                   _pngs(root / "target" / style / split, f"unpaired dataset target {style!r} ({split})"), **kwargs)

    @classmethod
    def from_folders(cls, source: str | os.PathLike, target: str | os.PathLike, **kwargs) -> "UnpairedDataset":
        """Any two folders of images (already cropped to one size per folder)."""
        return cls(_pngs(Path(source), "unpaired source"), _pngs(Path(target), "unpaired target"), **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Redraw both domains' orders for this epoch (call before iterating a DataLoader each epoch)."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        self._order_a = rng.permutation(len(self.sources))
        self._order_b = rng.permutation(len(self.targets))

    def __len__(self) -> int:
        return max(len(self.sources), len(self.targets))

    def indices(self, index: int) -> tuple[int, int]:
        """Which source and target file item ``index`` uses in the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return int(self._order_a[index % len(self.sources)]), int(self._order_b[index % len(self.targets)])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.indices(index)
        return self.transform(load_image(self.sources[a])), self.target_transform(load_image(self.targets[b]))


class PairedExampleDataset(Dataset):
    """Lesson 04 with its hidden pairs: item ``i`` is ``(face, style example, target)``.

    For face ``i`` a style is drawn among ``styles``, the *example* is that style's image of another
    person (an unpaired example, as at test time) and the *target* is face ``i``'s own image in that
    style (the pair, for a pixel term: :class:`~facestyle_utils.drn.UnpairedWeights`' ``pixel``).
    Draws use torch's generator, as :class:`PairedRandomCrop` does, so a seeded
    :class:`~facestyle_utils.training.BatchStream` repeats them. ``transform`` is applied to
    (face, target) together and to the example alone (default: no augmentation).
    EmptyDomainError (from :class:`PairedDataset`) when a style has no paired targets in ``root``.
    """

    def __init__(self, root: str | os.PathLike, styles: Sequence[str], split: str = "train",
                 transform: Callable | None = None) -> None:
        if not styles:
            raise ValueError("give at least one style")
        self.pairs = [PairedDataset(root, style, split) for style in styles]
        self.sources = self.pairs[0].sources
        self.transform = transform or to_tensor_transform
        people = {who: number for number, who in enumerate(dict.fromkeys(self.pairs[0].identities))}
        self._person = torch.tensor([people[who] for who in self.pairs[0].identities])  # item -> person number

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pairs = self.pairs[int(torch.randint(len(self.pairs), (1,)))]
        # the example comes from another person: a variant of the same photo would be the answer itself
        others = (self._person != self._person[index]).nonzero().flatten()
        if len(others) == 0:  # one person only: any item will do
            others = torch.arange(len(self._person))
        other = int(others[int(torch.randint(len(others), (1,)))])
        face, target = self.transform(load_image(self.sources[index]), load_image(pairs.targets[index]))
        example = self.transform(load_image(pairs.targets[other]))
        return face, example[0] if isinstance(example, tuple) else example, target


def stack_items(dataset: Dataset, indices: Iterable[int] | None = None) -> tuple[torch.Tensor, ...]:
    """Items of a dataset of pairs as batches, e.g. ``sources, targets = stack_items(test_set)``.

    Returns one (N, 3, H, W) float tensor in [0, 1] per part of an item (sources, then targets).
    ``indices``: which items, in that order (default: all). Each part must have one size over the
    items (a :class:`PairedDataset` without augmentation: whole faces of one domain build).
    ValueError for no items, or a part whose items differ in size.
    """
    indices = list(range(len(dataset)) if indices is None else indices)
    if not indices:
        raise ValueError("stack_items: no items to stack (the dataset or the index list is empty)")
    parts = list(zip(*[dataset[i] for i in indices]))
    for number, part in enumerate(parts):
        if len(shapes := sorted({tuple(image.shape) for image in part})) > 1:
            raise ValueError(f"stack_items: part {number} of the items differs in size {shapes}; "
                             "a batch needs images of one size")
    return tuple(torch.stack(part) for part in parts)


def identity_subset(dataset: PairedDataset, count: int, seed: int = 0) -> Subset:
    """The items of ``count`` identities drawn at random (seeded), each with all its augmented copies.

    For "what does more data buy?" experiments: fewer *people*, not fewer copies of the same people.
    """
    people = sorted(set(dataset.identities))
    if not 1 <= count <= len(people):
        raise ValueError(f"count must be between 1 and {len(people)} (the identities in this split), not {count}")
    chosen = {people[i] for i in torch.randperm(len(people), generator=torch.Generator().manual_seed(seed))[:count]}
    return Subset(dataset, [i for i, who in enumerate(dataset.identities) if who in chosen])


def make_loader(dataset: Dataset, batch_size: int = 8, *, shuffle: bool = True, seed: int = 0,
                num_workers: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader whose shuffling and augmentation are reproducible from ``seed``."""
    if len(dataset) == 0:
        raise EmptyDomainError("cannot make a DataLoader for an empty dataset")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      drop_last=drop_last, generator=generator, pin_memory=torch.cuda.is_available())


def channel_stats(loader: Iterable, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Per-channel mean and standard deviation of each side over a loader's batches (of ``(a, b)`` pairs)."""
    sums: list[torch.Tensor] = []
    squares: list[torch.Tensor] = []
    count = 0
    for step, batch in enumerate(loader):
        if limit is not None and step >= limit:
            break
        for side, tensor in enumerate(batch):
            flat = tensor.double().transpose(0, 1).reshape(tensor.shape[1], -1)
            if len(sums) <= side:
                sums.append(torch.zeros(tensor.shape[1], dtype=torch.float64))
                squares.append(torch.zeros(tensor.shape[1], dtype=torch.float64))
            sums[side] += flat.sum(1)
            squares[side] += (flat ** 2).sum(1)
        count += flat.shape[1]
    if count == 0:
        raise EmptyDomainError("channel_stats: the loader gave no batches")
    stats = {}
    for side, name in enumerate(("source", "target")[:len(sums)]):
        mean = sums[side] / count
        stats[f"{name}_mean"] = mean.float()
        stats[f"{name}_std"] = (squares[side] / count - mean ** 2).clamp_min(0).sqrt().float()
    return stats

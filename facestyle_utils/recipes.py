"""Ready-made training runs that later lessons reuse instead of repeating lesson 03's cells.

Lesson 03 builds the DCNN step by step; lessons 04 to 06 only need *a* trained DCNN. They call
:func:`load_or_train_dcnn`, which loads ``build/models/dcnn_cartoon.pt`` when lesson 03 has
written it, and otherwise trains one with the same recipe (fewer steps in quick mode).
"""
from __future__ import annotations

import torch
from torch import nn

from . import runtime
from .checkpoints import CheckpointError, default_model_path, load_model, save_model


def train_dcnn(style: str = "cartoon", *, size: int = 128, crop: int = 64, batch: int = 8, steps: int = 900,
               identities: int | None = None, device: torch.device | None = None, progress: bool = True) -> nn.Module:
    """Lesson 03's settings in one call: paired faces -> frozen VGG19 (relu3_1) + residual decoder with skips.

    ``identities``: train on only this many of the training people (all, if None).
    """
    from .datasets import PairedDataset, identity_subset
    from .domains import build_default_domains
    from .nets import DCNNConfig, DCNNStylizer
    from .training import BatchStream, LossWeights, PairedLoss, PairedRandomCrop, TrainConfig, train

    device = device or runtime.pick_device()
    runtime.seed_everything(0)
    root = build_default_domains(size=size, styles=style, variants_per_photo=runtime.by_mode(quick=4, full=64),
                                 progress=False)
    model = DCNNStylizer(DCNNConfig(encoder_layer="relu3_1", width=0.5, skips=True, residual=True)).to(device)
    loss_fn = PairedLoss(model.encoder, LossWeights(pixel=1.0, perceptual=0.1, perceptual_layers=("relu1_1", "relu2_1")))
    faces = PairedDataset(root, style, "train", transform=PairedRandomCrop(crop))
    data = BatchStream(faces if identities is None else identity_subset(faces, identities), batch, seed=0)
    config = TrainConfig(steps=steps, lr=2e-3, warmup_steps=min(20, steps // 10), val_every=steps,
                         checkpoint_every=steps)
    train(model, loss_fn, data, config, device=device, progress=progress)
    return model.eval()


def load_or_train_dcnn(name: str = "dcnn_cartoon", device: torch.device | None = None,
                       progress: bool = True) -> nn.Module:
    """The DCNN saved by lesson 03 if there is one (and it loads), else a freshly trained and saved one."""
    device = device or runtime.pick_device()
    path = default_model_path(name)
    if path.is_file():
        try:
            return load_model(path, device=device)
        except CheckpointError as err:
            print(f"Could not use {path.name} ({err}); training a new model instead.")
    print(f"No trained model at build/models/{path.name} yet (run lesson 03 for the full one); "
          "training one now with lesson 03's recipe.")
    steps = runtime.by_mode(quick=4, full=900)
    model = train_dcnn(size=runtime.by_mode(quick=64, full=128), crop=runtime.by_mode(quick=32, full=64),
                       batch=runtime.by_mode(quick=4, full=8), steps=steps, device=device, progress=progress)
    save_model(model, path, metadata={"style": "cartoon", "steps": steps, "trained_by": "recipes.train_dcnn"})
    return model

"""Ready-made training runs: the lessons' settings in one place, for later lessons and the ``train`` command.

Lessons 03, 04 and 05 build their networks step by step. Everything that only needs *a* trained
network uses this module instead of repeating those cells:

- :class:`TrainRecipe` holds what a run needs (network, style, sizes, batch, steps, learning rate);
  its defaults are the lessons' full-mode settings (:data:`DEFAULTS`).
- :func:`prepare` turns a recipe and a domains folder into the model, the loss, the data, the
  :class:`~facestyle_utils.training.TrainConfig` and the settings saved in checkpoints, exactly
  as the lessons make them; ``python -m facestyle_utils train`` runs it (also under ``torchrun``).
- :func:`train_dcnn` / :func:`load_or_train_dcnn`: lesson 03's model for lessons 04 to 06, loaded
  from ``build/models/dcnn_cartoon.pt`` when lesson 03 wrote it, else trained with the recipe
  (:func:`lesson_03_recipe`: lesson 03's settings in this mode, quick or full).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from . import runtime
from .checkpoints import CheckpointError, default_model_path, load_model, save_model

if TYPE_CHECKING:
    from .drn import UnpairedWeights
    from .nets import DCNNConfig, LossWeights
    from .student import StudentConfig
    from .training import BatchStream, TrainConfig

#: The networks a recipe trains, with lesson 03/04/05's full-mode batch, steps, learning rate, warm-up,
#: and how often to validate and checkpoint.
DEFAULTS: dict[str, dict[str, Any]] = {
    "dcnn": {"batch": 8, "steps": 1200, "learning_rate": 2e-3, "warmup": 20, "every": 40, "crop": 64},  # lesson 03
    "drn": {"batch": 4, "steps": 400, "learning_rate": 5e-4, "warmup": 10, "every": 50, "crop": 64},  # lesson 04
    # lesson 05: whole faces (crop None), since the student's instance norm takes statistics over the whole image
    "student": {"batch": 16, "steps": 1500, "learning_rate": 3e-3, "warmup": 20, "every": 100, "crop": None},
}
#: Lesson 04 shows the DRN every paired style at once.
DRN_STYLES = ("cartoon", "pencil", "watercolour")


@dataclass
class TrainRecipe:
    """What one training run needs; ``None`` means the network's lesson default (:data:`DEFAULTS`).

    ``size``: side of the face images in the domains, px; ``crop``: side of the random training
    crops, px (default: 64 px for the DCNN and the DRN, the whole ``size`` for the student);
    ``batch``: the *global* batch (shared out over processes under torchrun);
    ``styles``: the target styles (one for the DCNN and the student; the DRN learns from several);
    ``teacher``: the student's teacher model file (default: ``build/models/dcnn_<style>.pt``).
    ValueError for an unknown network, a non-positive size, or a crop larger than the images.
    """

    model: str = "dcnn"
    styles: tuple[str, ...] = ("cartoon",)
    size: int = 128
    crop: int | None = None
    batch: int | None = None
    steps: int | None = None
    learning_rate: float | None = None
    teacher: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in DEFAULTS:
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(DEFAULTS)}")
        self.styles = (self.styles,) if isinstance(self.styles, str) else tuple(self.styles)
        if not self.styles:
            raise ValueError("at least one style is needed")
        for name in ("size", "crop", "batch", "steps"):
            if (value := getattr(self, name)) is not None and value < 1:
                raise ValueError(f"{name} must be a positive number, not {value}")
        defaults = DEFAULTS[self.model]
        self.crop = self.crop or defaults["crop"] or self.size
        if self.crop > self.size:
            raise ValueError(f"crop ({self.crop} px) cannot be larger than the images (size {self.size} px)")
        self.batch, self.steps = self.batch or defaults["batch"], self.steps or defaults["steps"]
        self.learning_rate = self.learning_rate or defaults["learning_rate"]

    def train_config(self) -> "TrainConfig":
        from .training import TrainConfig

        every = min(DEFAULTS[self.model]["every"], self.steps)
        return TrainConfig(steps=self.steps, learning_rate=self.learning_rate,
                           warmup_steps=min(DEFAULTS[self.model]["warmup"], self.steps // 10),
                           grad_clip=1.0, val_every=every, checkpoint_every=every, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Prepared:
    """A recipe made concrete: pass ``model, loss_fn, data, config`` to :func:`~facestyle_utils.training.train`."""

    model: nn.Module
    loss_fn: Callable
    data: "BatchStream"
    config: "TrainConfig"
    validate: Callable | None
    settings: dict[str, Any]  # stored in every checkpoint and the model file's metadata
    kind: str  # the model kind for save_model


def prepare(recipe: TrainRecipe, root: str | Path, device: torch.device) -> Prepared:
    """The lesson's model, loss and data for ``recipe`` on the domains at ``root`` (see :mod:`.domains`).

    Seeds torch with ``recipe.seed`` first, so every process under torchrun builds the same model.
    """
    from .datasets import EmptyDomainError, PairedDataset, stack_items
    from .metrics import psnr_validator
    from .training import BatchStream

    runtime.seed_everything(recipe.seed)
    root = Path(root)
    builders = {"dcnn": _dcnn, "drn": _drn, "student": _student}
    model, loss_fn, dataset, kind = builders[recipe.model](recipe, root, device)
    validate = None
    if recipe.model != "drn":  # paired styles: PSNR of whole validation faces against their targets
        try:
            val = PairedDataset(root, recipe.styles[0], "val")
        except EmptyDomainError:  # too few people for a validation split: train without validation
            val = []
        if len(val):
            sources, targets = (batch.to(device) for batch in stack_items(val))
            validate = psnr_validator(sources, targets)
    data = BatchStream(dataset, recipe.batch, seed=recipe.seed)
    settings = {"recipe": recipe.to_dict(), "model": model.config.to_dict()}
    return Prepared(model, loss_fn, data, recipe.train_config(), validate, settings, kind)


def _dcnn(recipe: TrainRecipe, root: Path, device: torch.device):
    """Lesson 03: frozen VGG19 up to relu3_1 + residual decoder with skips + tone curve; pixel (squared
    error) + perceptual loss on crops."""
    from .datasets import PairedDataset, PairedRandomCrop
    from .nets import DCNNStylizer, PairedLoss

    model = DCNNStylizer(lesson_03_config()).to(device)
    loss_fn = PairedLoss(model.encoder, lesson_03_weights())
    dataset = PairedDataset(root, recipe.styles[0], "train", transform=PairedRandomCrop(recipe.crop))
    return model, loss_fn, dataset, "dcnn"


def lesson_03_config() -> DCNNConfig:
    """Lesson 03's DCNN: VGG19 to relu3_1, half-width decoder with skips, residual output, tone curve."""
    from .nets import DCNNConfig

    return DCNNConfig(encoder_layer="relu3_1", width=0.5, skips=True, residual=True, tone_curve=True)


def lesson_03_weights() -> LossWeights:
    """Lesson 03's loss weights: squared-error pixel term (1) + perceptual term (0.1) at relu1_1 and relu2_1."""
    from .nets import LossWeights

    return LossWeights(pixel=1.0, perceptual=0.1, pixel_kind="mse", perceptual_layers=("relu1_1", "relu2_1"))


def _drn(recipe: TrainRecipe, root: Path, device: torch.device):
    """Lesson 04: residual DRN with cross-attention at relu3_1/relu4_1 and self-attention; light content,
    style and identity terms plus the pixel term on the hidden pairs, on crops of (face, example, target)."""
    from .datasets import PairedExampleDataset, PairedRandomCrop
    from .drn import DRNConfig, DRNStylizer, UnpairedLoss

    model = DRNStylizer(DRNConfig(attention_layers=("relu3_1", "relu4_1"), self_attention=True, width=0.5,
                                  skips=True, residual=True)).to(device)
    loss_fn = UnpairedLoss(model.encoder, lesson_04_weights())
    dataset = PairedExampleDataset(root, recipe.styles, "train", transform=PairedRandomCrop(recipe.crop))
    return model, loss_fn, dataset, "drn"


def lesson_04_weights() -> "UnpairedWeights":
    """Lesson 04's DRN loss weights: the pixel term on the hidden pairs (20) with light content (1), style
    (0.3) and identity (2 in pixels, 0.1 in features) terms; content at relu3_1, style at relu1_1 to relu3_1."""
    from .drn import UnpairedWeights

    return UnpairedWeights(content=1.0, style=0.3, identity_pixel=2.0, identity_feature=0.1, pixel=20.0,
                           content_layers=("relu3_1",), style_layers=("relu1_1", "relu2_1", "relu3_1"))


def _student(recipe: TrainRecipe, root: Path, device: torch.device):
    """Lesson 05: a small fast network trained to imitate a trained DCNN (distillation), on whole faces that
    the teacher labelled once."""
    from .datasets import PairedDataset, PairedRandomCrop
    from .student import FastStudent, distillation_loss, label_with_teacher

    teacher_path = Path(recipe.teacher) if recipe.teacher else default_model_path(f"dcnn_{recipe.styles[0]}")
    if not teacher_path.is_file():
        raise FileNotFoundError(f"{teacher_path}: no teacher model; train one first "
                                f"(python -m facestyle_utils train --model dcnn --style {recipe.styles[0]}) "
                                "or pass --teacher")
    teacher = load_model(teacher_path, device=device)
    model = FastStudent(lesson_05_student_config()).to(device)
    dataset = label_with_teacher(teacher, PairedDataset(root, recipe.styles[0], "train"),
                                 transform=PairedRandomCrop(recipe.crop))
    return model, distillation_loss, dataset, "student"


def lesson_05_student_config() -> StudentConfig:
    """Lesson 05's cartoon student: 16 base channels, 3 residual blocks, residual output, tone curve."""
    from .student import StudentConfig

    return StudentConfig(base_channels=16, residual_blocks=3, tone_curve=True)


def lesson_03_recipe(style: str = "cartoon", **changes: Any) -> TrainRecipe:
    """Lesson 03's DCNN settings in this mode: 128-px faces, 64-px crops, batch 8, 1200 steps in full
    mode; batch 4 and 240 steps in workshop mode (``FACESTYLE_WORKSHOP=1``); 64, 32, 4 and 6 steps in
    quick mode (``FACESTYLE_QUICK=1``). ``changes``: other :class:`TrainRecipe` fields (e.g. ``steps=300``)."""
    settings = {"size": runtime.by_mode(quick=64, workshop=128, full=128),
                "crop": runtime.by_mode(quick=32, workshop=64, full=64),
                "batch": runtime.by_mode(quick=4, workshop=4, full=8),
                "steps": runtime.by_mode(quick=6, workshop=240, full=1200)}
    return TrainRecipe("dcnn", (style,), **{**settings, **changes})


def train_dcnn(recipe: TrainRecipe | None = None, *, patches_per_photo: int | None = None,
               identities: int | None = None, device: torch.device | None = None, progress: bool = True) -> nn.Module:
    """Lesson 03's recipe on the bundled faces, in one call; returns the trained model in eval mode.

    ``recipe``: a ``"dcnn"`` :class:`TrainRecipe` (style, face size, crop, batch, steps, learning
    rate, seed; default: ``TrainRecipe()``, lesson 03's full-mode settings). The bundled faces are
    built into domains of ``recipe.size`` px first (cached). ``patches_per_photo``: sharp photo
    patches in the data (``build_default_domains``' default if None, 0 for none); ``identities``:
    train on only this many of the training people (all, if None). No validation, no checkpoints.
    ValueError for a recipe of another network.
    """
    from .datasets import identity_subset
    from .domains import build_default_domains
    from .training import BatchStream, RunOptions, train

    recipe = recipe or TrainRecipe()
    if recipe.model != "dcnn":
        raise ValueError(f"train_dcnn trains the DCNN; this recipe is for {recipe.model!r} (use prepare())")
    device = device or runtime.pick_device()
    root = build_default_domains(size=recipe.size, styles=recipe.styles[0], patches_per_photo=patches_per_photo,
                                 progress=False)
    run = prepare(recipe, root, device)
    if identities is not None:
        run.data = BatchStream(identity_subset(run.data.dataset, identities), recipe.batch, seed=recipe.seed)
    config = dataclasses.replace(run.config, val_every=recipe.steps, checkpoint_every=recipe.steps)
    train(run.model, run.loss_fn, run.data, config, RunOptions(device=device, progress=progress))
    return run.model.eval()


def load_or_train_dcnn(recipe: TrainRecipe | None = None, *, save: bool = True, device: torch.device | None = None,
                       vgg: nn.Module | None = None, progress: bool = True) -> nn.Module:
    """Lesson 03's DCNN: the model file lesson 03 saved, if there is one and it loads; else one trained now.

    ``recipe``: how to train when there is no usable file (default :func:`lesson_03_recipe`); its
    style names the file, ``build/models/dcnn_<style>.pt`` (under ``build/quick/`` or ``build/workshop/``
    in those modes). ``save``:
    write the freshly trained model to that file (False keeps a shorter run from standing in
    for lesson 03's model later). ``vgg``: an already loaded VGG19 to share with a loaded model.
    The returned model (eval mode, on ``device``) has ``metadata["source"]``, one line saying
    which it is: "lesson 03's saved model (dcnn_cartoon.pt)" or "trained here with lesson 03's
    recipe (N steps, T s)". Prints why it trains when it does.
    """
    import time

    recipe = recipe or lesson_03_recipe()
    device = device or runtime.pick_device()
    path = default_model_path(f"dcnn_{recipe.styles[0]}")
    if path.is_file():
        try:
            model = load_model(path, device=device, **({"vgg": vgg} if vgg is not None else {}))
            model.metadata["source"] = f"lesson 03's saved model ({path.name})"
            return model
        except CheckpointError as err:
            print(f"Could not use {path.name} ({err}); training a new model instead.")
    print(f"No trained model at build/models/{path.name} yet (run lesson 03 for the full one); "
          f"training one now with lesson 03's recipe ({recipe.steps} steps).")
    begin = time.perf_counter()
    model = train_dcnn(recipe, device=device, progress=progress)
    metadata = {"style": recipe.styles[0], "steps": recipe.steps, "trained_by": "recipes.train_dcnn"}
    if save:
        save_model(model, path, metadata=metadata)
    model.metadata = {**metadata, "source": f"trained here with lesson 03's recipe ({recipe.steps} steps, "
                                            f"{time.perf_counter() - begin:.0f} s)"}
    return model

"""A tiny training run for tests/test_distributed.py, started once plainly and once under torchrun.

    python tests/ddp_worker.py OUT [--steps N] [--checkpoints DIR] [--stop-after K]

Rank r writes its final weights and logged losses to OUT.rank<r>.pt. The model has a frozen
first layer (like the course's VGG19 encoder) and the loss calls the model twice per step (like
the DRN's identity term), so both cases of :func:`facestyle_utils.distributed.data_parallel` run.
It trains in float32 (``mixed_precision="off"``): the default, "auto", trains in bfloat16 on a CPU with
bf16 hardware (AMX), whose rounding differs between one batch of 8 and two of 4 (seen on a 2-core Xeon).
"""
import argparse

import torch
from torch import nn

from facestyle_utils import distributed
from facestyle_utils.checkpoints import CheckpointManager
from facestyle_utils.training import BatchStream, RunOptions, TrainConfig, train


class Noisy(torch.utils.data.Dataset):
    """Fixed images with random "augmentation" noise drawn at load time."""

    def __init__(self) -> None:
        self.images = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        return image + 0.05 * torch.rand_like(image), 1 - image


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
    model[0].requires_grad_(False)  # frozen, like the VGG encoder
    return model


def loss_fn(model, batch):
    source, target = batch
    pixel = nn.functional.mse_loss(model(source), target)
    again = nn.functional.mse_loss(model(target), 1 - target)  # a second call of the model in one step
    return pixel + 0.5 * again, {"pixel": float(pixel.detach())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--checkpoints", default=None)
    parser.add_argument("--stop-after", type=int, default=None)
    args = parser.parse_args()
    device = distributed.start() if distributed.launched() else torch.device("cpu")
    model = tiny_model()
    config = TrainConfig(steps=args.steps, learning_rate=1e-2, warmup_steps=1, channels_last=False,
                         mixed_precision="off", checkpoint_every=1, val_every=1000)
    checkpoints = CheckpointManager(args.checkpoints) if args.checkpoints else None
    history = train(model, loss_fn, BatchStream(Noisy(), 8, seed=0), config,
                    RunOptions(device=device, progress=False, checkpoints=checkpoints, stop_after=args.stop_after))
    torch.save({"state": model.state_dict(), "losses": [row["loss"] for row in history.train],
                "world_size": distributed.world_size()}, f"{args.out}.rank{distributed.rank()}.pt")
    distributed.stop()


if __name__ == "__main__":
    main()

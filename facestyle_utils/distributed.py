"""Data parallel training: one process per device, gradients averaged by PyTorch's DDP (lesson 07).

The idea in four lines. N processes each hold a full copy of the model. Every step, each one
takes its own 1/N share of the global batch, runs forward and backward on it, and during the
backward pass :class:`torch.nn.parallel.DistributedDataParallel` (DDP) *all-reduces* the
gradients: every process ends up with the average over the whole batch, so every optimizer
step is the same everywhere and the copies stay identical. ``torchrun`` starts the processes
and tells each its rank (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``)::

    torchrun --standalone --nproc_per_node=2 -m facestyle_utils train --model dcnn ...   # one machine
    torchrun --nnodes=2 --node_rank=0 --rdzv_endpoint=host0:29500 --nproc_per_node=4 -m facestyle_utils train ...

What :func:`facestyle_utils.training.train` changes when it runs under ``torchrun``:

- the batch is shared out (:meth:`~facestyle_utils.training.BatchStream.shard`): the *global*
  batch is the ``batch`` setting, each of N processes loads ``batch / N`` of it;
- one training step (model forward + loss) runs inside one DDP module (:class:`TrainStep`), so
  losses that call the model twice, or call its parts, are still averaged correctly;
- the frozen VGG19 encoder is neither wrapped for gradients nor broadcast: it has nothing to
  average, and every process loads the same weights from disk;
- only rank 0 writes checkpoints, shows progress and saves the model; every rank reads the
  newest checkpoint to resume (on several machines the checkpoint folder must be shared storage);
- the logged loss is the average over all processes.

Learning rate: the global batch is what the single-process recipe uses, so its learning rate
applies unchanged, and N processes compute the same steps as one (within float rounding). To
use N times the batch instead, scale the learning rate by N and keep the warm-up (Goyal et al.,
2017, "Accurate, Large Minibatch SGD").

Backends: NCCL between CUDA GPUs, gloo between CPU processes (and what the tests use).
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from . import runtime


def launched() -> bool:
    """True when this process was started by ``torchrun`` (or anything setting RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """True once a process group is running (:func:`start`), i.e. inside data parallel training."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number, 0 to world_size - 1 (0 when not distributed)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def start(device: str | torch.device | None = None) -> torch.device:
    """Join the process group that ``torchrun`` set up; returns this process's device.

    CUDA: one GPU per process (``cuda:LOCAL_RANK``) and the NCCL backend; otherwise the CPU and
    gloo. Raises RuntimeError when not launched by torchrun, or when more processes than GPUs
    were started on a machine.
    """
    if not launched():
        raise RuntimeError("not started by torchrun: RANK and WORLD_SIZE are not set")
    wanted = torch.device(device) if device is not None else None
    use_cuda = torch.cuda.is_available() and (wanted is None or wanted.type == "cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) here: "
                               "start at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
    if not active():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")


def stop() -> None:
    """Leave the process group (at the end of a run)."""
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (no-op when not distributed)."""
    if active():
        dist.barrier()


def mean_across(value: float) -> float:
    """The average of a number over all processes (the number itself when not distributed)."""
    if not active():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()


class TrainStep(nn.Module):
    """One training step's forward: ``loss_fn(model, batch)`` as a module, so DDP can wrap all of it."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]]) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict]:
        return self.loss_fn(self.model, batch)


def data_parallel(model: nn.Module, loss_fn: Callable, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(TrainStep(model, loss_fn))`` with the frozen parameters left out.

    Call the result with a batch to get ``(loss, parts)``; ``backward()`` on that loss averages
    the trainable parameters' gradients over all processes. ``model`` itself is not changed:
    DDP shares its parameters (rank 0's values are copied to every process once, at the start).
    """
    from torch.nn.parallel import DistributedDataParallel

    step = TrainStep(model, loss_fn)
    frozen = [name for name, p in step.named_parameters() if not p.requires_grad]
    frozen += [name for name, _ in step.named_buffers()]
    # DDP's hook for parameters it must neither broadcast nor average (used the same way by FSDP and mmengine).
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(step, frozen)
    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)


def device_for(processes: int) -> str:
    """Where ``processes`` data parallel processes on this machine can train: "cuda" when there is a GPU
    for each (NCCL wants one GPU per process), else "cpu" (gloo); "cpu" too when ``FACESTYLE_DEVICE``
    names another device (read by :func:`~facestyle_utils.runtime.pick_device`, which raises
    RuntimeError for one that is not available). Pass it as ``--device``: with one GPU (as on Colab)
    a second process would have no GPU of its own (:func:`start` refuses that), so two processes
    there run on the CPU."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    if os.environ.get(runtime.DEVICE_ENV) and runtime.pick_device().type != "cuda":  # the learner's choice wins
        return "cpu"
    return "cuda" if torch.cuda.device_count() >= processes else "cpu"


def torchrun_command(processes: int, *args: str) -> list[str]:
    """The command that starts ``processes`` copies of ``python -m facestyle_utils ARGS`` on this machine.

    The same as typing ``torchrun --standalone --nproc_per_node=N -m facestyle_utils ARGS`` in a
    terminal (``python -m torch.distributed.run`` is torchrun, found without relying on PATH).
    ``--standalone`` runs the rendezvous on this machine with a free port; for several machines,
    use ``--nnodes``, ``--node_rank`` and ``--rdzv_endpoint`` instead (lesson 07).
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "facestyle_utils", *args]


def run_command(command: list[str], timeout: float = 3600) -> str:
    """Run a command (e.g. :func:`torchrun_command`) and return its standard output.

    RuntimeError with the last lines of its error output when it fails, so a notebook cell shows why.
    """
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{' '.join(command[2:])} failed (exit {done.returncode}):\n{tail}")
    return done.stdout

"""Data parallel training on the CPU: two gloo processes under torchrun against one plain process.

Each test starts real processes (about 10 s each), as a learner's `torchrun` would."""
import os
import subprocess
import sys

import pytest
import torch

from facestyle_utils import distributed
from facestyle_utils.runtime import project_root

ROOT = project_root()
WORKER = str(ROOT / "tests" / "ddp_worker.py")
sys.path.insert(0, str(ROOT / "tests"))
from ddp_worker import tiny_model  # noqa: E402


def run(*args: str, processes: int = 0) -> None:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *launcher, WORKER, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def result(prefix, rank=0):
    return torch.load(f"{prefix}.rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("single") / "run"
    run(str(prefix), "--steps", "4")
    return result(prefix)


def same_weights(a, b, atol=1e-6):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


def test_two_processes_with_half_a_batch_each_end_where_one_process_does(one_process, tmp_path):
    run(str(tmp_path / "ddp"), "--steps", "4", processes=2)
    rank0, rank1 = result(tmp_path / "ddp", 0), result(tmp_path / "ddp", 1)
    assert rank0["world_size"] == 2 and one_process["world_size"] == 1
    assert same_weights(rank0["state"], rank1["state"], atol=0)  # the copies never drift apart
    assert same_weights(rank0["state"], one_process["state"])  # and match the whole batch in one process
    assert rank0["losses"] == pytest.approx(one_process["losses"], rel=1e-5)  # logged: the mean over processes
    initial = tiny_model().state_dict()  # the worker's model as created
    assert torch.equal(rank0["state"]["0.weight"], initial["0.weight"])  # the frozen layer stayed frozen
    assert not torch.equal(rank0["state"]["2.weight"], initial["2.weight"])  # the rest trained


def test_an_interrupted_run_resumed_under_torchrun_ends_where_an_uninterrupted_one_does(one_process, tmp_path):
    checkpoints = str(tmp_path / "checkpoints")
    run(str(tmp_path / "first"), "--steps", "4", "--checkpoints", checkpoints, "--stop-after", "2", processes=2)
    assert len(result(tmp_path / "first")["losses"]) == 2
    run(str(tmp_path / "resumed"), "--steps", "4", "--checkpoints", checkpoints, processes=2)
    resumed = result(tmp_path / "resumed")
    assert len(resumed["losses"]) == 4  # the history of both parts
    assert same_weights(resumed["state"], one_process["state"])


def test_outside_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert not distributed.launched() and not distributed.active()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.mean_across(2.5) == 2.5
    with pytest.raises(RuntimeError, match="not started by torchrun"):
        distributed.start()


@pytest.mark.parametrize("gpus, processes, device", [(0, 1, "cpu"), (0, 2, "cpu"), (1, 1, "cuda"), (1, 2, "cpu"),
                                                     (2, 2, "cuda"), (4, 2, "cuda")])
def test_device_for_gives_each_process_a_gpu_or_uses_the_cpu(monkeypatch, gpus, processes, device):
    """Lesson 07's two-process run failed on a one-GPU machine (an H200, as on Colab): rank 1 had no GPU."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.delenv("FACESTYLE_DEVICE", raising=False)
    assert distributed.device_for(processes) == device
    monkeypatch.setenv("FACESTYLE_DEVICE", "cpu")  # the learner's own choice wins
    assert distributed.device_for(processes) == "cpu"
    monkeypatch.setenv("FACESTYLE_DEVICE", "cuda")  # read as every lesson reads it: no CUDA here is an error
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        distributed.device_for(processes)


def test_start_refuses_more_processes_than_gpus_with_the_remedy(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK 1 but only 1 GPU\(s\) here: start at most one process"):
        distributed.start()
    with pytest.raises(ValueError, match="processes must be at least 1, not 0"):
        distributed.device_for(0)

"""The training loop and its pieces: schedule, precision choice, resumable batches, the paired loss."""
import math
import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from facestyle_utils import runtime
from facestyle_utils.checkpoints import CheckpointError, CheckpointManager
from facestyle_utils.nets import DCNNConfig, DCNNStylizer, LossWeights, PairedLoss
from facestyle_utils.training import (
    MIN_LOSS_SCALE,
    BatchStream,
    RunOptions,
    TrainConfig,
    checkpoints_for,
    learning_rate_factor,
    memory_format_of,
    precision_for,
    seeded,
    train,
)


class Indexed(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor(i), torch.rand(())  # the index, and an "augmentation" draw


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(vgg):
    torch.manual_seed(0)
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    source = torch.rand(4, 3, 16, 16)
    batch = (source, 1 - source)  # learn to invert colours
    loss_fn = PairedLoss(model.encoder, LossWeights(perceptual=0.1, perceptual_layers=("relu1_1",)))

    class Fixed(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return batch[0][i], batch[1][i]

    with torch.no_grad():
        before, _ = loss_fn(model, batch)
    config = TrainConfig(steps=12, learning_rate=3e-3, schedule="constant")
    history = train(model, loss_fn, BatchStream(Fixed(), 4), config, RunOptions(progress=False))
    with torch.no_grad():
        after, parts = loss_fn(model, batch)
    assert after < 0.8 * before
    assert history.train[-1]["loss"] < history.train[0]["loss"]
    assert set(parts) == {"pixel", "perceptual"}
    assert model.training  # as it came in


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("mode", [True, False])
def test_train_hands_the_model_back_in_its_layout_and_mode(layout, mode):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    model.to(memory_format=layout).train(mode)
    data = BatchStream(torch.utils.data.TensorDataset(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)), 2)
    seen = []

    def loss_fn(m, batch):
        seen.append(memory_format_of(m))
        return nn.functional.mse_loss(m(batch[0]), batch[1]), {}

    before = [p.detach().clone() for p in model.parameters()]
    train(model, loss_fn, data, TrainConfig(steps=2, channels_last=True), RunOptions(progress=False))
    assert seen == [torch.channels_last] * 2  # trained in NHWC, as configured
    assert memory_format_of(model) == layout and model.training is mode
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # ... and it did learn


def test_learning_rate_schedules():
    cosine = TrainConfig(steps=100, warmup_steps=10, min_learning_rate_ratio=0.1)
    assert learning_rate_factor(0, cosine) == pytest.approx(0.1)
    assert learning_rate_factor(9, cosine) == pytest.approx(1.0)
    assert learning_rate_factor(10, cosine) == pytest.approx(1.0)
    assert learning_rate_factor(55, cosine) == pytest.approx(0.55)
    assert learning_rate_factor(100, cosine) == pytest.approx(0.1)
    values = [learning_rate_factor(s, cosine) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    step = TrainConfig(steps=90, schedule="step")
    assert learning_rate_factor(59, step) == 1.0 and learning_rate_factor(60, step) == pytest.approx(0.1)
    assert learning_rate_factor(50, TrainConfig(steps=90, schedule="constant")) == 1.0


def test_scheduler_and_history_follow_the_schedule():
    model = nn.Linear(2, 2)
    data = BatchStream(torch.utils.data.TensorDataset(torch.rand(8, 2), torch.rand(8, 2)), 4)
    config = TrainConfig(steps=6, learning_rate=0.1, warmup_steps=2, schedule="constant", channels_last=False,
                         val_every=3)
    history = train(model, lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}), data, config,
                    RunOptions(validate=lambda m: {"score": 1.0}, progress=False))
    assert [row["learning_rate"] for row in history.train] == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert history.curve("score", "val") == ([3, 6], [1.0, 1.0])
    assert history.curve("loss")[0] == [1, 2, 3, 4, 5, 6]
    assert history.seconds > 0


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    data = BatchStream(torch.utils.data.TensorDataset(torch.ones(2, 1), torch.full((2, 1), 1000.0)), 2)
    config = TrainConfig(steps=1, learning_rate=1.0, schedule="constant", grad_clip=0.5, channels_last=False)
    train(model, lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}), data, config, RunOptions(progress=False))
    # AdamW's first step moves by about the learning rate whatever the gradient; so check the clipped gradient itself
    assert model.weight.grad.norm() <= 0.5 + 1e-6


def test_mixed_precision_only_where_it_helps(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)  # AMX / AVX-512 BF16 / Arm BF16
    assert precision_for(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert precision_for(torch.device("cpu")) is None  # emulated bf16 backward is very slow
    assert precision_for(torch.device("mps")) is None
    assert precision_for(torch.device("cuda")) == torch.float16
    assert precision_for(torch.device("cpu"), "bf16") == torch.bfloat16
    assert precision_for(torch.device("cuda"), "off") is None
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")


def test_batch_stream_shuffles_each_epoch_and_resumes_exactly():
    stream = BatchStream(Indexed(10), 3, seed=5)
    assert len(stream) == 3  # the incomplete last batch is dropped
    batches = [next(stream) for _ in range(7)]
    epoch0 = torch.cat([b[0] for b in batches[:3]]).tolist()
    epoch1 = torch.cat([b[0] for b in batches[3:6]]).tolist()
    assert len(set(epoch0)) == 9 and epoch0 != epoch1
    again = BatchStream(Indexed(10), 3, seed=5)
    again.load_state_dict({"epoch": 1, "position": 1})
    resumed = next(again)
    assert torch.equal(resumed[0], batches[4][0]) and torch.equal(resumed[1], batches[4][1])
    other_seed = [next(BatchStream(Indexed(10), 3, seed=6))[0].tolist()]
    assert other_seed != [batches[0][0].tolist()]
    with pytest.raises(ValueError, match="empty"):
        BatchStream(Indexed(0), 2)


def test_shards_of_a_batch_stream_add_up_to_the_whole_stream_augmentation_included():
    whole = BatchStream(Indexed(10), 4, seed=2)
    halves = [BatchStream(Indexed(10), 4, seed=2).shard(rank, 2) for rank in range(2)]
    for _ in range(5):  # across an epoch boundary (2 batches per epoch)
        batch, parts = next(whole), [next(h) for h in halves]
        assert torch.equal(torch.cat([p[0] for p in parts]), batch[0])  # the same samples ...
        assert torch.equal(torch.cat([p[1] for p in parts]), batch[1])  # ... with the same random draws
    with pytest.raises(ValueError, match="cannot be split evenly over 3 processes"):
        BatchStream(Indexed(10), 4).shard(0, 3)


def test_seeded_block_leaves_global_generators_untouched():
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    expected = (float(torch.rand(1)), random.random(), float(np.random.rand()))
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    with seeded(123):
        inside = float(torch.rand(1))
    with seeded(123):
        assert float(torch.rand(1)) == inside
    assert (float(torch.rand(1)), random.random(), float(np.random.rand())) == expected


def test_non_finite_loss_stops_training_with_a_clear_message():
    model = nn.Linear(2, 2)
    data = BatchStream(torch.utils.data.TensorDataset(torch.rand(4, 2)), 2)
    with pytest.raises(FloatingPointError, match="step 1"):
        train(model, lambda m, b: (m(b[0]).sum() * float("nan"), {}), data, TrainConfig(steps=3, channels_last=False),
              RunOptions(progress=False))


def _float16_run(steps, gradient_size):
    """A linear model trained under float16 autocast with loss scaling, as on a GPU without bfloat16 (T4)."""
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    start = [p.detach().clone() for p in model.parameters()]
    data = BatchStream(torch.utils.data.TensorDataset(torch.full((4, 2), 10.0)), 2)
    config = TrainConfig(steps=steps, learning_rate=0.01, mixed_precision="fp16", channels_last=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(model, lambda m, b: (m(b[0]).float().sum() * gradient_size, {}), data, config, RunOptions(progress=False))
    moved = any(not torch.equal(p, q) for p, q in zip(model.parameters(), start))
    return moved, [str(w.message) for w in caught]


def test_float16_steps_whose_gradients_overflow_are_skipped_quietly_until_the_scale_fits():
    # the weight's gradient is 2 x 10 x 1000 = 2e4: scaled by 65536 it overflows float16, so step 1 is skipped
    moved, messages = _float16_run(1, 1000.0)
    assert not moved
    assert not [m for m in messages if "lr_scheduler" in m]  # PyTorch's warning about the skipped step is not shown
    moved, _ = _float16_run(20, 1000.0)  # the scale halves at each skip until the gradients fit (15 skips): it learns
    assert moved


def test_float16_gradients_that_overflow_at_every_scale_stop_training_with_a_clear_message():
    halvings = round(math.log2(2.0 ** 16 / MIN_LOSS_SCALE)) + 1  # every step skipped: from 65536 to below the floor
    with pytest.raises(FloatingPointError, match=f"float16 cannot hold this model's gradients: at step {halvings} "
                                                 ".*mixed_precision='off'"):
        _float16_run(60, 1e30)  # finite in float32, far beyond float16 at any loss scale


def test_a_non_finite_loss_under_float16_also_suggests_float32():
    with pytest.raises(FloatingPointError, match="lower the learning rate; or train with mixed_precision='off'"):
        _float16_run(2, float("inf"))


def _linear_run(folder, **options):
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    data = BatchStream(torch.utils.data.TensorDataset(torch.rand(8, 2), torch.rand(8, 2)), 4, seed=1)
    config = TrainConfig(steps=6, learning_rate=0.05, checkpoint_every=2, channels_last=False)
    history = train(model, lambda m, b: (nn.functional.mse_loss(m(b[0]), b[1]), {}), data, config,
                    RunOptions(checkpoints=CheckpointManager(folder), progress=False, **options))
    return model, history


def test_stop_after_then_resume_ends_where_one_run_ends(tmp_path):
    whole, whole_history = _linear_run(tmp_path / "whole")
    _, first = _linear_run(tmp_path / "split", stop_after=3, settings={"data": {"rows": 8}})
    assert len(first.train) == 3 and CheckpointManager(tmp_path / "split").checkpoints()[-1].name.endswith("3.pt")
    resumed, history = _linear_run(tmp_path / "split", settings={"data": {"rows": 8}})
    assert torch.equal(resumed.weight, whole.weight) and torch.equal(resumed.bias, whole.bias)
    assert [row["loss"] for row in history.train] == [row["loss"] for row in whole_history.train]
    with pytest.raises(CheckpointError, match=r"other settings \(changed: rows\)"):
        _linear_run(tmp_path / "split", settings={"data": {"rows": 9}})


def test_checkpoints_with_the_old_name_lr_still_resume(tmp_path):
    whole, _ = _linear_run(tmp_path / "whole")
    _linear_run(tmp_path / "old", stop_after=2)
    manager = CheckpointManager(tmp_path / "old")
    path = manager.checkpoints()[-1]
    saved = torch.load(path, weights_only=False)
    saved["config"]["train"]["lr"] = saved["config"]["train"].pop("learning_rate")  # as written before the rename
    saved["config"]["train"]["min_lr_ratio"] = saved["config"]["train"].pop("min_learning_rate_ratio")
    for row in saved["history"]["train"]:
        row["lr"] = row.pop("learning_rate")
    torch.save(saved, path)
    resumed, history = _linear_run(tmp_path / "old")
    assert torch.equal(resumed.weight, whole.weight)
    assert all("learning_rate" in row and "lr" not in row for row in history.train)


def test_checkpoints_for_gives_one_folder_per_set_of_settings(monkeypatch, tmp_path):
    from facestyle_utils.checkpoints import config_fingerprint

    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    config = TrainConfig(steps=5)
    first = checkpoints_for("03_dcnn_training", config, {"loss": {"pixel": 1.0}})
    assert first.folder == tmp_path / "quick" / "03_dcnn_training" / (  # tests run in quick mode
        "checkpoints-" + config_fingerprint({"train": config.to_dict(), "loss": {"pixel": 1.0}}))
    assert checkpoints_for("03_dcnn_training", config, {"loss": {"pixel": 1.0}}).folder == first.folder
    assert checkpoints_for("03_dcnn_training", config, {"loss": {"pixel": 2.0}}).folder != first.folder
    assert checkpoints_for("03_dcnn_training", TrainConfig(steps=6), {"loss": {"pixel": 1.0}}).folder != first.folder

"""Checkpoints: exact round trips, exact resume, atomic writes, clear errors for damaged files."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from facestyle_utils import checkpoints as ckpt
from facestyle_utils.checkpoints import (
    CheckpointError,
    CheckpointManager,
    atomic_save,
    config_fingerprint,
    load_model,
    load_model_state,
    model_state,
    rng_states,
    safe_load,
    save_model,
    set_rng_states,
    unwrap_model,
)
from facestyle_utils.nets import DCNNConfig, DCNNStylizer
from facestyle_utils.student import FastStudent, StudentConfig
from facestyle_utils.training import BatchStream, RunOptions, TrainConfig, train


class Net(nn.Module):
    """A tiny model with a frozen part, like the stylizer."""

    frozen_modules = ("frozen",)

    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))

    def forward(self, x):
        return self.body(self.frozen(x))


class Pairs(torch.utils.data.Dataset):
    """Random inputs whose targets are a fixed function; items get random noise (augmentation)."""

    def __init__(self, n=12):
        generator = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 4, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i] + 0.1 * torch.randn(4)  # uses the global generator, like augmentation does
        return x, x.flip(0) * 2


def mse(model, batch):
    loss = nn.functional.mse_loss(model(batch[0]), batch[1])
    return loss, {"mse": float(loss.detach())}


def run(folder, steps, stop_after=None, interrupt_at=None, resume=True, wrap=None):
    torch.manual_seed(0)
    model = Net() if wrap is None else wrap(Net())
    config = TrainConfig(steps=steps, learning_rate=0.05, warmup_steps=2, checkpoint_every=3, val_every=2,
                         channels_last=False, grad_clip=0.5)
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        if interrupt_at is not None and calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return mse(m, batch)

    history = train(model, loss_fn, BatchStream(Pairs(), 4, seed=3), config,
                    RunOptions(checkpoints=CheckpointManager(folder), progress=False, stop_after=stop_after,
                               validate=lambda m: {"val": float(m(torch.ones(1, 4)).sum())}, resume=resume))
    return model, history


def test_model_state_leaves_frozen_modules_out_and_round_trips_exactly(tmp_path):
    model = Net()
    state = model_state(model)
    assert set(state) == {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"}
    atomic_save({"model": state}, tmp_path / "a.pt")
    other = Net()
    load_model_state(other, safe_load(tmp_path / "a.pt")["model"])
    for key, value in model_state(other).items():
        assert torch.equal(value, state[key])
    with pytest.raises(CheckpointError, match="missing"):
        load_model_state(other, {"body.0.weight": state["body.0.weight"]}, source="x.pt")


def test_resume_after_an_interruption_gives_the_uninterrupted_weights(tmp_path):
    full, full_history = run(tmp_path / "full", steps=10)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", steps=10, interrupt_at=8)  # dies during step 8; checkpoints at 3 and 6
    assert [p.name for p in CheckpointManager(tmp_path / "cut").checkpoints()] == [
        "checkpoint-0000003.pt", "checkpoint-0000006.pt"]
    resumed, history = run(tmp_path / "cut", steps=10)
    for key, value in model_state(full).items():
        assert torch.equal(value, model_state(resumed)[key]), key
    assert [row["loss"] for row in history.train] == [row["loss"] for row in full_history.train]
    assert [row["step"] for row in history.val] == [2, 4, 6, 8, 10]


def test_stop_and_resume_in_several_calls_matches_one_call(tmp_path):
    full, _ = run(tmp_path / "full", steps=9)
    folder = tmp_path / "parts"
    run(folder, steps=9, stop_after=3)
    run(folder, steps=9, stop_after=3)
    resumed, history = run(folder, steps=9)
    assert len(history.train) == 9
    for key, value in model_state(full).items():
        assert torch.equal(value, model_state(resumed)[key])


def test_resume_false_starts_again(tmp_path):
    run(tmp_path, steps=6)
    _, history = run(tmp_path, steps=6, resume=False)
    assert len(history.train) == 6 and history.train[0]["step"] == 1


def test_checkpoint_holds_optimizer_scheduler_step_rng_and_config(tmp_path):
    run(tmp_path, steps=3)
    data = CheckpointManager(tmp_path).load(tmp_path / "checkpoint-0000003.pt")
    assert data["step"] == 3 and data["version"] == ckpt.CHECKPOINT_VERSION
    assert set(data) >= {"model", "optimizer", "scheduler", "scaler", "data", "history", "rng", "config"}
    assert data["optimizer"]["state"] and data["scheduler"]["last_epoch"] == 3
    assert data["config"]["train"]["steps"] == 3 and data["data"] == {"epoch": 0, "position": 3}
    assert not any(key.startswith("frozen.") for key in data["model"])


def test_truncated_checkpoint_gives_a_clear_error_and_the_previous_one_survives(tmp_path):
    run(tmp_path, steps=6)
    manager = CheckpointManager(tmp_path)
    good, newest = manager.checkpoints()
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint-0000006\.pt.*truncated or corrupted"):
        manager.load(newest)
    assert good.is_file()
    with pytest.warns(UserWarning, match="checkpoint-0000006.pt"):
        state = manager.load_latest()
    assert state["step"] == 3


@pytest.mark.parametrize("content", [b"", b"<html>404 not found</html>", bytes(range(256)) * 10])
def test_damaged_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        safe_load(path)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        safe_load(tmp_path / "missing.pt")


class Payload:
    """An arbitrary object: only a full (unsafe) unpickler would rebuild it."""


def test_loading_uses_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "pickle.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickle.pt"):
        safe_load(path)
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k))
    atomic_save({"x": torch.ones(2)}, tmp_path / "ok.pt")
    safe_load(tmp_path / "ok.pt")
    assert seen == [True]


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = atomic_save({"x": torch.zeros(3)}, tmp_path / "c.pt")

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.ones(3)}, path)
    assert torch.equal(safe_load(path)["x"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_manager_keeps_the_newest_files(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (5, 10, 15, 20):
        manager.save({"model": {}}, step)
    assert [p.name for p in manager.checkpoints()] == [f"checkpoint-{s:07d}.pt" for s in (10, 15, 20)]
    assert manager.load_latest()["step"] == 20
    with pytest.raises(ValueError, match="at least 2"):
        CheckpointManager(tmp_path, keep=1)
    manager.clear()
    assert manager.checkpoints() == [] and manager.load_latest() is None


def test_rng_states_round_trip_through_a_file(tmp_path):
    atomic_save({"rng": rng_states()}, tmp_path / "rng.pt")
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_states(safe_load(tmp_path / "rng.pt")["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


def test_changed_settings_refuse_to_resume(tmp_path):
    run(tmp_path, steps=3)
    model = Net()
    with pytest.raises(CheckpointError, match="learning_rate"):
        config = TrainConfig(steps=3, learning_rate=0.1, checkpoint_every=3, channels_last=False)
        train(model, mse, BatchStream(Pairs(), 4), config, RunOptions(checkpoints=CheckpointManager(tmp_path),
                                                                      progress=False))


def test_model_file_is_small_and_rebuilds_the_same_stylizer(tmp_path, vgg):
    torch.manual_seed(0)
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg).eval()
    path = save_model(model, tmp_path / "dcnn.pt", metadata={"style": "cartoon", "psnr": 27.5})
    data = safe_load(path)
    assert data["format"] == ckpt.MODEL_FORMAT and data["version"] == ckpt.MODEL_VERSION and data["kind"] == "dcnn"
    assert data["config"] == {"encoder_layer": "relu3_1", "width": 0.25, "output": "sigmoid", "skips": True,
                              "residual": False, "tone_curve": False, "vgg_weights": "oxford"}
    assert not any(key.startswith("encoder.") for key in data["state_dict"])  # no VGG19 weights inside
    decoder_bytes = sum(p.numel() * 4 for p in model.decoder.parameters())
    assert path.stat().st_size < decoder_bytes + 50_000
    loaded = load_model(path, vgg=vgg)
    assert not loaded.training and loaded.metadata == {"style": "cartoon", "psnr": 27.5}
    image = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(loaded(image), model(image))


def test_a_model_with_a_tone_curve_reloads_with_its_learned_knots(tmp_path, vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25, residual=True, tone_curve=True), vgg=vgg).eval()
    with torch.no_grad():
        model.tone_curve.knots.pow_(3)  # a curve that is not the identity
    loaded = load_model(save_model(model, tmp_path / "curved.pt"), vgg=vgg)
    assert loaded.config.tone_curve and torch.equal(loaded.tone_curve.knots, model.tone_curve.knots)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(image), model(image))


def test_model_file_errors_name_the_file_and_the_problem(tmp_path, vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    path = save_model(model, tmp_path / "m.pt")
    data = safe_load(path)
    atomic_save({**data, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=r"future.pt.*version 99"):
        load_model(tmp_path / "future.pt")
    atomic_save({**data, "config": {**data["config"], "colour": 1}}, tmp_path / "cfg.pt")
    with pytest.raises(CheckpointError, match="cfg.pt.*config"):
        load_model(tmp_path / "cfg.pt")
    atomic_save({"version": 1, "step": 3, "optimizer": {}}, tmp_path / "train.pt")
    with pytest.raises(CheckpointError, match="training checkpoint"):
        load_model(tmp_path / "train.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="m.pt.*truncated"):
        load_model(path)


def test_config_fingerprint_is_stable_and_sensitive():
    a = config_fingerprint({"lr": 0.001, "layers": ["relu1_1"]})
    assert a == config_fingerprint({"layers": ["relu1_1"], "lr": 0.001}) and len(a) == 8
    assert a != config_fingerprint({"lr": 0.002, "layers": ["relu1_1"]})


# ----------------------------------------------------------------------------- wrapped models
# Wrappers as users apply them; compiling is lazy, so wrapping costs nothing until the model is called.
WRAPPERS = {"compile": torch.compile, "DataParallel": nn.DataParallel,
            "compiled DataParallel": lambda m: torch.compile(nn.DataParallel(m)),
            "DataParallel of compiled": lambda m: nn.DataParallel(torch.compile(m))}
KINDS = {"dcnn": lambda vgg: DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg),
         "student": lambda vgg: FastStudent(StudentConfig(base_channels=4, residual_blocks=1))}


def old_model_file(model, kind, path):
    """A model file as written before the fix: the wrapper's raw state dict, frozen VGG19 included."""
    config = unwrap_model(model).config.to_dict()
    return atomic_save({"format": ckpt.MODEL_FORMAT, "version": ckpt.MODEL_VERSION, "kind": kind, "config": config,
                        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
                        "metadata": {}}, path)


def assert_same_weights(state, reference):
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_wrapped_model_saves_and_loads_like_the_bare_model(tmp_path, vgg, kind, wrapper):
    torch.manual_seed(0)
    bare = KINDS[kind](vgg).eval()
    wrapped = WRAPPERS[wrapper](bare)
    assert unwrap_model(wrapped) is bare
    assert_same_weights(model_state(wrapped), model_state(bare))
    bare_file = save_model(bare, tmp_path / "bare.pt", kind=kind)
    wrapped_file = save_model(wrapped, tmp_path / "wrapped.pt", kind=kind)
    assert wrapped_file.stat().st_size == bare_file.stat().st_size  # no VGG19 leaking in, no prefixes
    assert_same_weights(safe_load(wrapped_file)["state_dict"], safe_load(bare_file)["state_dict"])
    loaded = load_model(wrapped_file, **({"vgg": vgg} if kind == "dcnn" else {}))
    assert_same_weights(model_state(loaded), model_state(bare))
    image = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(loaded(image), bare(image))


def test_the_stylizer_file_stays_small_when_compiled(tmp_path, vgg):
    model = DCNNStylizer(DCNNConfig(width=0.25), vgg=vgg)
    path = save_model(torch.compile(model), tmp_path / "compiled.pt")
    decoder_bytes = sum(p.numel() * 4 for p in model.decoder.parameters())
    assert path.stat().st_size < decoder_bytes + 50_000
    assert not any(key.startswith(("encoder.", "_orig_mod.")) for key in safe_load(path)["state_dict"])


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_files_written_from_wrapped_models_by_older_code_still_load(tmp_path, vgg, kind, wrapper):
    torch.manual_seed(0)
    bare = KINDS[kind](vgg).eval()
    path = old_model_file(WRAPPERS[wrapper](bare), kind, tmp_path / "old.pt")
    state = safe_load(path)["state_dict"]
    keys = sorted(state)
    assert all(key.startswith(("_orig_mod.", "module.")) for key in keys)
    loaded = load_model(path, **({"vgg": vgg} if kind == "dcnn" else {}))
    assert_same_weights(model_state(loaded), model_state(bare))
    into = KINDS[kind](vgg)
    load_model_state(torch.compile(into), state, source="old.pt")  # a wrapped target works too
    assert_same_weights(model_state(into), model_state(bare))
    assert sorted(state) == keys  # the caller's dict is not changed


def test_prefixes_on_some_keys_load_and_a_weight_held_twice_is_refused():
    # Until issue #14 (F16) a file with prefixes on only some keys was refused; a compiled submodule
    # writes exactly such files (``decoder._orig_mod.*`` next to bare keys), so they now load.
    state = model_state(Net())
    first = next(iter(state))
    mixed = {("_orig_mod." + key if key == first else key): value for key, value in state.items()}
    target = Net()
    load_model_state(target, mixed, source="mixed.pt")
    assert_same_weights(model_state(target), state)
    with pytest.raises(CheckpointError, match=r"^twice\.pt: the weights hold 'body\.0\.weight' twice, with and "
                                              r"without the '_orig_mod\.'/'module\.' prefixes"):
        load_model_state(Net(), {**state, "_orig_mod.body.0.weight": state["body.0.weight"]}, source="twice.pt")


def test_a_submodule_really_named_module_is_not_stripped():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    source, target = Holder(), Holder()
    load_model_state(target, model_state(source))
    assert_same_weights(model_state(target), model_state(source))
    assert set(model_state(target)) == {"module.weight", "module.bias"}


def test_training_checkpoints_of_a_wrapped_model_hold_the_bare_weights(tmp_path):
    full, _ = run(tmp_path / "full", steps=9)
    run(tmp_path / "dp", steps=9, stop_after=6, wrap=nn.DataParallel)  # checkpoints at 3 and 6
    data = CheckpointManager(tmp_path / "dp").load(tmp_path / "dp" / "checkpoint-0000006.pt")
    assert set(data["model"]) == {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"}
    resumed, history = run(tmp_path / "dp", steps=9)  # resume the DataParallel run with the bare model
    assert len(history.train) == 9
    assert_same_weights(model_state(resumed), model_state(full))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_a_distributed_data_parallel_model_saves_like_the_bare_model(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        bare = FastStudent(StudentConfig(base_channels=4, residual_blocks=1))
        wrapped = torch.compile(nn.parallel.DistributedDataParallel(bare))
        path = save_model(wrapped, tmp_path / "ddp.pt", kind="student")
    finally:
        dist.destroy_process_group()
    assert set(safe_load(path)["state_dict"]) == set(bare.state_dict())
    assert_same_weights(model_state(load_model(path)), model_state(bare))


# ----------------------------------------------------------------------------- issue #14: real-world inputs
def small_student():
    return FastStudent(StudentConfig(base_channels=4, residual_blocks=1)).eval()


def test_a_compiled_submodule_is_saved_with_bare_keys(tmp_path):
    torch.manual_seed(0)
    bare = small_student()
    reference = model_state(bare)
    bare.middle = torch.compile(bare.middle)  # what users do to speed up one part
    assert any("._orig_mod." in key for key in bare.state_dict())
    assert_same_weights(model_state(bare), reference)
    path = save_model(bare, tmp_path / "sub.pt", kind="student")
    assert_same_weights(safe_load(path)["state_dict"], reference)
    assert_same_weights(model_state(load_model(path)), reference)
    into = small_student()
    into.middle = torch.compile(into.middle)  # and a model with a compiled submodule loads bare weights
    load_model_state(into, reference)
    assert_same_weights(model_state(into), reference)


@pytest.mark.parametrize("hop", ["middle._orig_mod.", "middle.module.", "_orig_mod.middle._orig_mod."])
def test_old_files_with_wrapper_hops_inside_the_keys_load(tmp_path, hop):
    torch.manual_seed(0)
    bare = small_student()
    reference = model_state(bare)
    state = {(hop + key.removeprefix("middle.") if key.startswith("middle.") else key): value
             for key, value in reference.items()}
    path = atomic_save({**safe_load(save_model(bare, tmp_path / "a.pt", kind="student")), "state_dict": state},
                       tmp_path / "old.pt")
    assert_same_weights(model_state(load_model(path)), reference)


def test_a_real_submodule_named_module_inside_a_data_parallel_submodule():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(2, 2)

    source = Holder()
    source.module = nn.DataParallel(source.module)  # real name 'module', then the wrapper's hop 'module'
    assert set(source.state_dict()) == {"module.module.weight", "module.module.bias"}
    assert set(model_state(source)) == {"module.weight", "module.bias"}
    target = Holder()
    load_model_state(target, source.state_dict())  # an old file holding the wrapped keys
    assert_same_weights(model_state(target), model_state(source))


def test_an_averaged_model_saves_its_averaged_weights(tmp_path):
    torch.manual_seed(0)
    model = small_student()
    averaged = torch.optim.swa_utils.AveragedModel(model)
    first = model_state(model)
    averaged.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    averaged.update_parameters(model)  # the mean of the first and the shifted weights
    parameters = dict(model.named_parameters())
    expected = {key: (value + 0.5 if key in parameters else value) for key, value in first.items()}
    path = save_model(averaged, tmp_path / "swa.pt", kind="student")
    saved = safe_load(path)["state_dict"]
    assert set(saved) == set(first)  # no 'module.' prefix, no 'n_averaged'
    for key, value in expected.items():
        assert torch.allclose(saved[key], value), key
    target = small_student()
    load_model_state(target, averaged.state_dict(), source="old_swa.pt")  # 'module.*' + 'n_averaged'
    assert_same_weights(model_state(target), saved)


def test_save_model_refuses_what_it_cannot_save_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"^cannot save a Sequential: save_model needs a course model with a \.config"):
        save_model(nn.Sequential(small_student()), tmp_path / "seq.pt", kind="student")
    with pytest.raises(ValueError, match=r"^save_model: metadata entry 'psnr' holds Tensor"):
        save_model(small_student(), tmp_path / "meta.pt", kind="student", metadata={"psnr": torch.tensor(27.0)})
    assert not list(tmp_path.iterdir())


def _edited(tmp_path, name, **changes):
    """A copy of a good student model file with some of its entries replaced."""
    good = tmp_path / "good.pt"
    if not good.exists():
        save_model(small_student(), good, kind="student", metadata={"style": "cartoon"})
    return atomic_save({**safe_load(good), **changes}, tmp_path / name)


@pytest.mark.parametrize("name, changes, message", [
    ("none.pt", {"state_dict": None}, "the weights (state dict) are NoneType, expected a dict of named tensors"),
    ("ints.pt", {"state_dict": {"down.0.0.weight": 3}},
     "the weights (state dict) hold int under 'down.0.0.weight', expected named tensors"),
    ("cfg.pt", {"config": "oops"}, "config is str, expected a dict"),
    ("hello.pt", {"metadata": "hello"}, "metadata is str 'hello', expected a dict of plain values"),
    ("list.pt", {"metadata": [1, 2, 3]}, "metadata is list [1, 2, 3], expected a dict of plain values"),
    ("tensor.pt", {"metadata": {"size": torch.ones(1)}}, "metadata entry 'size' holds Tensor; expected names with "
     "strings, numbers, booleans or None (or lists of them)"),
])
def test_a_model_file_is_checked_when_read(tmp_path, name, changes, message):
    path = _edited(tmp_path, name, **changes)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == f"{path}: {message}"


def test_missing_metadata_reads_as_empty(tmp_path):
    path = _edited(tmp_path, "nometa.pt", metadata=None)
    assert ckpt.read_model_file(path)["metadata"] == {}
    assert load_model(path).metadata == {}
    assert load_model(_edited(tmp_path, "lists.pt", metadata={"styles": ["a", "b"], "psnr": 27.5})).metadata == {
        "styles": ["a", "b"], "psnr": 27.5}


def test_weights_of_another_shape_name_the_file_the_key_and_both_shapes(tmp_path):
    good = safe_load(save_model(small_student(), tmp_path / "good.pt", kind="student"))
    path = _edited(tmp_path, "wide.pt", config={**good["config"], "base_channels": 8})
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == (f"{path}: weights do not fit this model: down.0.0.weight has shape [4, 3, 3, 3] in "
                                "the file but [8, 3, 3, 3] in the model; was it saved with another config?")


def _png_bytes():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("content, looks", [
    (_png_bytes(), "looks like a PNG image"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "looks like a JPEG image"),
    (b"GIF89a\x01\x00", "looks like a GIF image"),
    (b"\n  <!DOCTYPE html><html>Not found</html>", "looks like an HTML or XML page, e.g. a failed download"),
    (b'{"error": "rate limited"}', "looks like a JSON text file"),
    (b"hello world", "starts with b'hello wo'"),
])
def test_a_foreign_file_is_named_for_what_it_is(tmp_path, content, looks):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == f"{path}: not a PyTorch file ({looks})"


def test_a_whole_pickled_model_is_refused_with_the_real_cause_and_the_fix(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(small_student(), path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == (
        f"{path}: holds a pickled Python object (facestyle_utils.student.FastStudent), e.g. a whole model saved with "
        "torch.save(model), which weights_only loading refuses for safety (a pickle can run code); re-save the "
        "weights with checkpoints.save_model(model, path)")


def test_a_folder_and_a_truncated_file_give_one_line(tmp_path):
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(CheckpointError, match=r"dir\.pt: is a folder, not a checkpoint file$"):
        load_model(tmp_path / "dir.pt")
    path = save_model(small_student(), tmp_path / "cut.pt", kind="student")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: cannot be read as a checkpoint: it is truncated or corrupted (RuntimeError: ")
    assert "\n" not in message and "\x1b" not in message and len(message) < 400

"""Stylizer: speed paths agree with the plain path; folders are stylized without touching inputs."""
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.checkpoints import save_model
from facestyle_utils.export import onnx_available
from facestyle_utils.inference import SPEED_PATHS, Stylizer, agrees, blend, difference
from facestyle_utils.nets import DCNNConfig, DCNNStylizer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25)).eval()


@pytest.fixture
def batch():
    torch.manual_seed(1)
    return torch.rand(2, 3, 32, 40)


@pytest.mark.parametrize("speed", [s for s in SPEED_PATHS if s not in ("plain", "compile", "onnx")])
def test_speed_paths_agree_with_plain(model, batch, speed):
    plain = Stylizer(model, device="cpu").stylize_tensor(batch)
    fast = Stylizer(model, device="cpu", speed=speed).stylize_tensor(batch)
    assert fast.shape == plain.shape == batch.shape and fast.dtype == torch.float32
    assert agrees(fast, plain, speed), difference(fast, plain)


@pytest.mark.skipif(not onnx_available(), reason="onnx, onnxscript and onnxruntime are not installed")
def test_onnx_round_trip_matches_pytorch(model, batch):
    plain = Stylizer(model, device="cpu").stylize_tensor(batch)
    runner = Stylizer(model, device="cpu", speed="onnx", example=batch[:1])
    assert agrees(runner.stylize_tensor(batch), plain, "onnx")
    other_size = torch.rand(1, 3, 24, 24)  # dynamic height and width
    assert runner.stylize_tensor(other_size).shape == other_size.shape


def test_unknown_speed_path_is_refused(model):
    with pytest.raises(ValueError, match="unknown speed path 'turbo'"):
        Stylizer(model, device="cpu", speed="turbo")


def test_tolerance_check_catches_a_wrong_path(batch):
    assert agrees(batch + 5e-7, batch, "inference_mode")
    assert not agrees(batch + 1e-3, batch, "channels_last")
    assert not agrees(1 - batch, batch, "autocast")


def test_speed_paths_leave_the_callers_model_untouched(model):
    before = {k: v.stride() for k, v in model.state_dict().items()}
    Stylizer(model, device="cpu", speed="channels_last")
    assert {k: v.stride() for k, v in model.state_dict().items()} == before


def test_blend_strength_zero_and_one(batch):
    stylized = torch.zeros_like(batch)
    assert torch.equal(blend(stylized, batch, 0.0), batch)
    assert torch.equal(blend(stylized, batch, 1.0), stylized)
    assert torch.allclose(blend(stylized, batch, 0.25), 0.75 * batch)
    with pytest.raises(ValueError, match="between 0 and 1"):
        blend(stylized, batch, 1.5)


def test_stylize_image_keeps_size_and_caps_large_inputs(model):
    stylizer = Stylizer(model, device="cpu", max_side=48)
    small = stylizer.stylize(np.full((30, 44, 3), 128, np.uint8))
    assert small.size == (44, 30)
    big = stylizer.stylize(np.full((100, 200, 3), 128, np.uint8))
    assert big.size == (48, 24)
    assert Stylizer(model, device="cpu").max_side == 768


def test_stylize_batch_returns_one_image_per_input(model):
    images = [np.zeros((20, 30, 3), np.uint8), np.full((40, 40, 3), 255, np.uint8)]
    out = Stylizer(model, device="cpu").stylize_batch(images, size=32)
    assert [im.size for im in out] == [(32, 32), (32, 32)]


def test_from_file_gives_the_same_output(model, batch, tmp_path):
    path = save_model(model, tmp_path / "m.pt")
    loaded = Stylizer.from_file(path, device="cpu")
    assert torch.allclose(loaded.stylize_tensor(batch), Stylizer(model, device="cpu").stylize_tensor(batch))


def test_folder_is_stylized_bad_files_reported_inputs_untouched(model, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.new("RGB", (24, 24), (200, 30, 30)).save(source / "a.png")
    Image.new("L", (16, 20), 90).save(source / "b.jpg")
    (source / "broken.png").write_bytes(b"not a png")
    (source / "notes.txt").write_text("hello")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    report = Stylizer(model, device="cpu").stylize_folder(source, tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.written) == ["a_stylized.png", "b_stylized.png"]
    assert Image.open(tmp_path / "out" / "b_stylized.png").size == (16, 20)
    reasons = dict((p.name, r) for p, r in report.skipped)
    assert "not an image" in reasons["broken.png"] and "extension" in reasons["notes.txt"]
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    again = Stylizer(model, device="cpu").stylize_folder(source, tmp_path / "out", progress=False)
    assert not again.written and all("already exists" in r for _, r in again.skipped if _.suffix == ".png"
                                     and _.name != "broken.png")


def test_folder_errors_are_clear(model, tmp_path):
    stylizer = Stylizer(model, device="cpu")
    with pytest.raises(NotADirectoryError, match="missing"):
        stylizer.stylize_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="different from the input"):
        stylizer.stylize_folder(tmp_path, tmp_path)


def test_compile_falls_back_cleanly_where_unavailable(model, batch, monkeypatch):
    def unavailable(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", unavailable)
    with pytest.warns(UserWarning, match="torch.compile is unavailable"):
        stylizer = Stylizer(model, device="cpu", speed="compile", example=batch[:1])
    assert agrees(stylizer.stylize_tensor(batch), Stylizer(model, device="cpu").stylize_tensor(batch), "compile")

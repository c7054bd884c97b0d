"""Stylizer: speed paths agree with the plain path; folders are stylized without touching inputs."""
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.checkpoints import save_model
from facestyle_utils.export import onnx_available
from facestyle_utils.inference import SPEED_PATHS, Stylizer, agrees, blend, difference
from facestyle_utils.nets import DCNNConfig, DCNNStylizer
from facestyle_utils.runtime import FallbackWarning


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


def test_a_steep_tone_curve_widens_only_a_float32_paths_largest_difference(batch):
    riser = batch.clone()
    riser.view(-1)[0] += 0.02  # one pixel on a riser 20x steeper than the identity, moved by rounding
    assert not agrees(riser, batch, "channels_last")
    assert agrees(riser, batch, "channels_last", gain=25.0) and agrees(riser, batch, "onnx", gain=25.0)
    assert not agrees(riser, batch, "channels_last", gain=10.0)
    assert not agrees(batch + 1e-3, batch, "channels_last", gain=25.0)  # the mean is never widened
    spiked = batch.clone()
    spiked.view(-1)[0] += 0.5
    assert not agrees(spiked, batch, "autocast", gain=25.0)  # autocast's bound allows a tone step already
    assert not agrees(riser, batch, "channels_last", gain=0.5)  # a gain below 1 counts as 1
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="gain must be a finite number"):
            agrees(batch, batch, "plain", gain=bad)


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
    with pytest.warns(FallbackWarning, match="torch.compile is unavailable"):
        stylizer = Stylizer(model, device="cpu", speed="compile", example=batch[:1])
    assert agrees(stylizer.stylize_tensor(batch), Stylizer(model, device="cpu").stylize_tensor(batch), "compile")


class Spy(torch.nn.Module):
    """A model that records every call that could move or switch it."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.calls = []

    def forward(self, x):
        return self.conv(x).sigmoid()

    def to(self, *args, **kwargs):
        self.calls.append("to")
        return super().to(*args, **kwargs)

    def cpu(self):
        self.calls.append("cpu")
        return super().cpu()

    def train(self, mode=True):
        self.calls.append(f"train({mode})")
        return super().train(mode)


@pytest.mark.parametrize("speed", [s for s in SPEED_PATHS if s != "compile"])
def test_no_speed_path_moves_or_switches_the_callers_model(speed):
    if speed == "onnx" and not onnx_available():
        pytest.skip("onnx, onnxscript and onnxruntime are not installed")
    spy = Spy().train()
    spy.calls.clear()
    strides = {k: v.stride() for k, v in spy.state_dict().items()}
    Stylizer(spy, device="cpu", speed=speed).stylize_tensor(torch.rand(1, 3, 8, 8))
    assert spy.calls == [] and spy.training
    assert {k: v.stride() for k, v in spy.state_dict().items()} == strides
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in spy.parameters())


def test_a_model_already_ready_is_used_as_it_is(model):
    assert Stylizer(model, device="cpu").model is model


def test_integer_batches_hold_0_to_255(model):
    stylizer = Stylizer(model, device="cpu")
    image = torch.full((3, 2, 2), 100, dtype=torch.uint8)
    assert np.asarray(stylizer.stylize(image, strength=0)).tolist() == [[[100] * 3] * 2] * 2
    for dtype in (torch.uint8, torch.int32, torch.int64):
        out = stylizer.stylize_tensor(torch.full((1, 3, 4, 4), 100, dtype=dtype), strength=0)
        assert out.dtype == torch.float32 and torch.allclose(out, torch.full_like(out, 100 / 255))
    with pytest.raises(ValueError, match="int64"):
        stylizer.stylize_tensor(torch.full((1, 3, 4, 4), 300, dtype=torch.int64))
    with pytest.raises(ValueError, match="float32"):
        stylizer.stylize_tensor(torch.full((1, 3, 4, 4), 200.0))


@pytest.fixture(scope="module")
def drn(vgg):
    from facestyle_utils.drn import DRNConfig, DRNStylizer

    torch.manual_seed(0)
    return DRNStylizer(DRNConfig(attention_layers=["relu3_1"], width=0.25, skips=False), vgg=vgg).eval()


def test_a_style_taking_model_gets_its_style_image(drn, batch):
    style = torch.rand(1, 3, 24, 24)
    stylizer = Stylizer(drn, device="cpu", style=style)
    out = stylizer.stylize_tensor(batch)
    assert out.shape == batch.shape
    with torch.no_grad():
        expected = drn(batch, F_interpolated_style(style, 256))
    assert torch.allclose(out, expected, atol=1e-5)
    assert stylizer.stylize(np.full((30, 20, 3), 99, np.uint8)).size == (20, 30)


def F_interpolated_style(style, side):
    """The style as Stylizer prepares it: shorter side ``side`` (256 without metadata)."""
    from facestyle_utils.image_io import image_to_tensor, resize_image, tensor_to_image

    return image_to_tensor(resize_image(tensor_to_image(style), side))


def test_style_image_is_required_exactly_when_the_model_takes_one(drn, model):
    with pytest.raises(ValueError, match="takes a style image.*style="):
        Stylizer(drn, device="cpu")
    with pytest.raises(ValueError, match="has its style built in"):
        Stylizer(model, device="cpu", style=torch.rand(1, 3, 8, 8))


def test_folder_outputs_never_collide_and_nested_images_are_found(model, tmp_path):
    source = tmp_path / "faces"
    (source / "person1").mkdir(parents=True)
    Image.new("RGB", (10, 12), (200, 30, 30)).save(source / "person1" / "x.png")
    Image.new("RGB", (10, 12), (20, 30, 200)).save(source / "person1" / "x.jpg")
    stylizer = Stylizer(model, device="cpu")
    report = stylizer.stylize_folder(source, tmp_path / "out", progress=False)
    assert report.written == [] and "2 in 1 subfolder" in str(report) and "recursive" in str(report)
    report = stylizer.stylize_folder(source, tmp_path / "out", progress=False, recursive=True)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == [
        "person1/x_stylized-2.png", "person1/x_stylized.png"]
    # the two results come from the two different inputs
    red, blue = (np.asarray(Image.open(p)).mean(axis=(0, 1)) for p in sorted(report.written, key=lambda p: p.name))
    assert not np.allclose(red, blue)


def test_folder_report_says_when_an_image_was_shrunk(model, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.new("RGB", (100, 50), (1, 2, 3)).save(source / "wide.png")
    report = Stylizer(model, device="cpu", max_side=40).stylize_folder(source, tmp_path / "out", progress=False)
    assert Image.open(report.written[0]).size == (40, 20)
    assert "40x20" in str(report) and "100x50" in str(report)


def test_a_nonsense_training_size_in_a_model_file_is_not_trusted(drn):
    from facestyle_utils.inference import style_image_tensor

    drn.metadata = {"size": "huge"}
    try:
        with pytest.warns(UserWarning, match="'huge'"):
            style = style_image_tensor(drn, np.zeros((50, 100, 3), np.uint8), max_side=768)
        assert style.shape == (1, 3, 256, 512)
        drn.metadata = {"size": 32}
        assert style_image_tensor(drn, np.zeros((50, 100, 3), np.uint8), max_side=768).shape == (1, 3, 32, 64)
    finally:
        del drn.metadata


def test_compile_is_not_tried_without_a_compiler(model, batch, monkeypatch):
    """runtime.compile_ready says no (e.g. no g++): warn with its reason at once, never call torch.compile."""
    from facestyle_utils import inference

    def never(*args, **kwargs):
        raise AssertionError("torch.compile must not be called")

    monkeypatch.setattr(torch, "compile", never)
    monkeypatch.setattr(inference, "compile_ready", lambda device: (False, "no C++ compiler found: looked for g++"))
    with pytest.warns(FallbackWarning, match=r"torch.compile cannot work here \(no C\+\+ compiler found"):
        stylizer = Stylizer(model, device="cpu", speed="compile", example=batch[:1])
    assert agrees(stylizer.stylize_tensor(batch), Stylizer(model, device="cpu").stylize_tensor(batch), "compile")


def test_compile_path_takes_a_size_it_was_not_compiled_for(model):
    stylizer = Stylizer(model, device="cpu", speed="compile", example=torch.rand(1, 3, 16, 16))
    odd = torch.rand(1, 3, 37, 45)
    out = stylizer.stylize_tensor(odd)
    assert out.shape == odd.shape
    assert agrees(out, Stylizer(model, device="cpu").stylize_tensor(odd), "compile")


def test_compile_failing_for_a_new_size_falls_back_with_a_warning(model, monkeypatch):
    def compile_for_one_size(module, **kwargs):
        def run(batch):
            if batch.shape[-2:] != (16, 16):
                raise RuntimeError("inductor failed on a symbolic shape")
            return module(batch)
        return run

    monkeypatch.setattr(torch, "compile", compile_for_one_size)
    stylizer = Stylizer(model, device="cpu", speed="compile", example=torch.rand(1, 3, 16, 16))
    odd = torch.rand(1, 3, 37, 45)
    with pytest.warns(FallbackWarning, match="symbolic shape"):
        out = stylizer.stylize_tensor(odd)
    assert agrees(out, Stylizer(model, device="cpu").stylize_tensor(odd), "compile")


def test_onnx_path_refuses_a_style_taking_model(drn):
    # the DRN's attention loops over chunks of large images; an exported graph keeps one chunk count
    with pytest.raises(ValueError, match="onnx speed path cannot run a style-taking model"):
        Stylizer(drn, device="cpu", speed="onnx", style=np.zeros((40, 40, 3), np.uint8))


def test_a_thin_style_image_stays_small(drn):
    from facestyle_utils.inference import style_image_tensor

    assert style_image_tensor(drn, np.zeros((1, 500, 3), np.uint8), max_side=768).shape == (1, 3, 2, 768)
    assert style_image_tensor(drn, np.zeros((300, 2, 3), np.uint8), max_side=100).shape == (1, 3, 100, 1)
    out = Stylizer(drn, device="cpu", style=np.zeros((1, 500, 3), np.uint8)).stylize(np.zeros((9, 9, 3), np.uint8))
    assert out.size == (9, 9)


def test_bad_sizes_are_refused_with_a_message(model):
    stylizer = Stylizer(model, device="cpu")
    for size in (0, -3):
        with pytest.raises(ValueError, match="positive number of pixels"):
            stylizer.stylize_batch([np.zeros((8, 8, 3), np.uint8)], size)
    with pytest.raises(ValueError, match="at least one image"):
        stylizer.stylize_batch([], 8)
    for side in (0, -5):
        with pytest.raises(ValueError, match="max_side must be a positive"):
            Stylizer(model, device="cpu", max_side=side)


def test_unavailable_speed_paths_name_the_reason(monkeypatch):
    from facestyle_utils import export, inference

    monkeypatch.setattr(inference, "compile_ready", lambda device: (False, "no C++ compiler found: looked for g++"))
    monkeypatch.setattr(export, "onnx_available", lambda: False)
    missing = inference.unavailable_speed_paths("cpu")
    assert set(missing) == {"compile", "onnx"}
    assert missing["compile"] == "no C++ compiler found: looked for g++"
    assert "[export]" in missing["onnx"]
    monkeypatch.setattr(inference, "compile_ready", lambda device: (True, "g++ found"))
    monkeypatch.setattr(export, "onnx_available", lambda: True)
    assert inference.unavailable_speed_paths("cpu") == {}

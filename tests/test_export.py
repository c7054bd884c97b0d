"""ONNX export: every size the PyTorch model takes, clear errors, truthful providers, caller's model untouched."""
import pytest
import torch
from torch import nn

from facestyle_utils import export
from facestyle_utils.export import (
    OnnxRunError,
    OnnxRunner,
    export_onnx,
    input_padding,
    onnx_available,
    requested_providers,
)
from facestyle_utils.inference import Stylizer, agrees, difference
from facestyle_utils.nets import DCNNConfig, DCNNStylizer
from facestyle_utils.runtime import FallbackWarning
from facestyle_utils.student import FastStudent, StudentConfig

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnx, onnxscript and onnxruntime are not installed")

def curved(model: nn.Module) -> nn.Module:
    """``model`` with its tone curve squared (x -> x**2 on the knots): a curve that is not the identity."""
    with torch.no_grad():
        model.tone_curve.knots.pow_(2)
    return model


#: relu2_1 is tests/test_inference.py's config (stride 2); relu3_1 is the lessons' default (stride 4).
MODELS = {"dcnn-relu2_1": lambda vgg: DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25), vgg=vgg),
          "dcnn-relu3_1": lambda vgg: DCNNStylizer(DCNNConfig(encoder_layer="relu3_1", width=0.25), vgg=vgg),
          "dcnn-tone-curve": lambda vgg: curved(DCNNStylizer(DCNNConfig(width=0.25, tone_curve=True), vgg=vgg)),
          "student": lambda vgg: FastStudent(StudentConfig(base_channels=4, residual_blocks=1))}
#: Odd sizes, sizes below two strides (the networks pad those up), and the export size itself.
SIZES = [(66, 50), (37, 45), (7, 5), (4, 4), (1, 1), (64, 64)]


@pytest.fixture(scope="module")
def models(vgg):
    torch.manual_seed(0)
    return {name: build(vgg).eval() for name, build in MODELS.items()}


@pytest.fixture(scope="module")
def onnx_stylizers(models):
    """One ONNX Stylizer per model, exported at the default 64x64 example (as ``speed="onnx"`` does)."""
    if not onnx_available():
        pytest.skip("onnx, onnxscript and onnxruntime are not installed")
    return {name: Stylizer(model, device="cpu", speed="onnx") for name, model in models.items()}


@needs_onnx
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_path_agrees_with_the_plain_path_at_every_size(models, onnx_stylizers, name, size):
    torch.manual_seed(2)
    batch = torch.rand(2, 3, *size)
    plain = Stylizer(models[name], device="cpu").stylize_tensor(batch)
    fast = onnx_stylizers[name].stylize_tensor(batch)
    assert fast.shape == plain.shape == batch.shape and fast.dtype == torch.float32
    assert agrees(fast, plain, "onnx"), difference(fast, plain)


@pytest.mark.parametrize("name", ["dcnn-relu3_1", "student"])
def test_input_padding_is_the_models_own(models, name):
    model, stride = models[name], models[name].stride
    pad = input_padding(torch.compile(model))  # wrappers are looked through (compiling is lazy)
    for height, width in [(66, 50), (37, 45), (7, 5), (1, 1), (16, 24)]:
        image = torch.rand(1, 3, height, width)
        padded = pad(image)
        h, w = padded.shape[-2:]
        assert h % stride == 0 and w % stride == 0 and min(h, w) >= 2 * stride
        assert pad(padded) is padded  # on a padded batch the model pads nothing more
        with torch.no_grad():
            assert torch.allclose(model(padded)[..., :height, :width], model(image), atol=1e-6)
    assert input_padding(nn.Identity())(image) is image


@needs_onnx
def test_onnx_failures_are_one_line_errors_naming_the_size(onnx_stylizers):
    runner = onnx_stylizers["student"].run
    with pytest.raises(OnnxRunError, match=r"1x4x16x16 batch .*padded to 16x16") as caught:
        runner(torch.rand(1, 4, 16, 16))  # the graph was exported for 3 channels
    assert isinstance(caught.value, RuntimeError) and "\n" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no onnxruntime traceback
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got shape \(3, 16, 16\)"):
        runner(torch.rand(3, 16, 16))


# ----------------------------------------------------------------------------- the caller's model is untouched
class Spy(nn.Module):
    """A tiny image model that records every call that could move it or change its mode."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, image):
        return torch.sigmoid(self.conv(image))


def _recorded(name):
    def method(self, *args, **kwargs):
        self.calls.append(name)
        return getattr(super(Spy, self), name)(*args, **kwargs)
    return method


for _name in ("cpu", "cuda", "to", "train", "eval", "float", "half", "_apply", "requires_grad_"):
    setattr(Spy, _name, _recorded(_name))


def snapshot(model):
    return ([(n, p.device, p.dtype, p.stride(), p.data_ptr(), p.requires_grad) for n, p in model.named_parameters()],
            [m.training for m in model.modules()])


@pytest.fixture
def spy():
    model = Spy().to(memory_format=torch.channels_last).train()
    model.calls.clear()
    return model


@needs_onnx
def test_export_and_runner_leave_the_callers_model_untouched(spy, tmp_path):
    before = snapshot(spy)
    data = export_onnx(spy, torch.rand(1, 3, 16, 16), tmp_path / "spy.onnx")
    assert (tmp_path / "spy.onnx").read_bytes() == data
    runner = OnnxRunner(torch.compile(spy), torch.rand(1, 3, 16, 16))  # a wrapped model exports as the bare one
    assert spy.calls == [] and snapshot(spy) == before and spy.training
    image = torch.rand(2, 3, 9, 13)
    assert agrees(runner(image), spy(image).detach(), "onnx")
    assert runner.providers == ["CPUExecutionProvider"] and runner.device == runner.output_device == torch.device("cpu")


@needs_onnx
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_model_stays_on_the_gpu_and_the_runner_says_where_it_runs(spy):
    import onnxruntime as ort

    spy.cuda()
    spy.calls.clear()
    before = snapshot(spy)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        runner = OnnxRunner(spy, torch.rand(1, 3, 16, 16))
    else:
        with pytest.warns(FallbackWarning, match="no usable CUDAExecutionProvider"):
            runner = OnnxRunner(spy, torch.rand(1, 3, 16, 16))
    assert spy.calls == [] and snapshot(spy) == before
    assert runner.device.type == ("cuda" if runner.providers[0] == "CUDAExecutionProvider" else "cpu")
    image = torch.rand(1, 3, 9, 13, device="cuda")
    out = runner(image)
    assert out.device == image.device and agrees(out, spy(image).detach(), "onnx")


@needs_onnx
def test_a_missing_cuda_provider_is_warned_about_and_reported(spy, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(export, "_model_device", lambda model: torch.device("cuda", 0))  # as if the model were on a GPU
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])  # the CPU-only package
    with pytest.warns(FallbackWarning, match=r"cuda:0 but ONNX Runtime .* on the CPU .*install onnxruntime-gpu"):
        runner = OnnxRunner(spy, torch.rand(1, 3, 8, 8))
    assert runner.providers == ["CPUExecutionProvider"] and runner.device == torch.device("cpu")
    assert runner.output_device == torch.device("cuda", 0)


def test_requested_providers_follow_the_models_device():
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert requested_providers(torch.device("cuda", 1), both) == [("CUDAExecutionProvider", {"device_id": 1}),
                                                                   "CPUExecutionProvider"]
    assert requested_providers(torch.device("cuda"), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert requested_providers(torch.device("cpu"), both) == ["CPUExecutionProvider"]

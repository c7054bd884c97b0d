"""ONNX export: run a trained stylizer without PyTorch, in ONNX Runtime (CPU, CUDA, mobile, web).

Optional extra: ``pip install onnx onnxscript onnxruntime`` (included in the ``dev`` extra).

The stylizers pad their input inside ``forward`` (to a multiple of their stride, and the DCNN to
at least two strides), and the exporter bakes the padding it saw at the example's size into the
graph. So the padding is done *outside* the graph: the graph is exported at an already padded
size, where the network pads nothing, and :class:`OnnxRunner` pads every batch exactly as the
model would (:func:`input_padding`), runs the graph and crops the result back. The graph then
takes any batch size and every image size the PyTorch model takes.
"""
from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .checkpoints import unwrap_model
from .runtime import FallbackWarning

ONNX_HINT = "ONNX export needs the optional packages: pip install onnx onnxscript onnxruntime"


class OnnxRunError(RuntimeError):
    """ONNX Runtime failed on a batch; the one-line message names the batch's size."""


def onnx_available() -> bool:
    """True when onnx, onnxscript and onnxruntime can all be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- padding outside the graph
def _no_padding(batch: torch.Tensor) -> torch.Tensor:
    return batch


def input_padding(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The padding ``model.forward`` applies to its (N, C, H, W) input, as ``pad(batch) -> padded batch``.

    On the padded batch the model pads nothing more, and its output cropped to (H, W) is the
    output for the unpadded batch. The course's networks (DCNN, DRN, student) say how they pad
    with a ``pad_input(batch)`` method; a model without one is taken not to pad. Wrappers
    (``torch.compile``, DataParallel) are looked through. The padding raises ValueError for an
    image with no pixels, as the model does.
    """
    return getattr(unwrap_model(model), "pad_input", _no_padding)


# ----------------------------------------------------------------------------- export
def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike | None = None) -> bytes:
    """Export ``model`` (image batch -> image batch) to ONNX with dynamic batch, height and width.

    ``example``: an (N, C, H, W) batch; it is padded with :func:`input_padding` first, so the graph
    is traced where the model pads nothing. The graph's input ``image`` and output ``stylized``
    are float32 (N, C, H, W); it is valid for every size the model does not pad (multiples of
    the stride, at least two strides): pad other sizes with ``input_padding(model)``
    and crop the output, as :class:`OnnxRunner` does.

    A float32 CPU copy of the (unwrapped) model in eval mode is exported: the caller's model keeps
    its device, dtype, memory layout and train/eval mode. Returns the serialised model; also
    writes it to ``path`` when given.

    Raises:
        ImportError: onnx, onnxscript or onnxruntime is not installed.
    """
    if not onnx_available():
        raise ImportError(ONNX_HINT)
    copied = copy.deepcopy(unwrap_model(model)).cpu().float().eval()
    example = input_padding(copied)(example.detach().cpu().float())
    batch, height, width = (torch.export.Dim(name, min=1, max=4096) for name in ("batch", "height", "width"))
    with tempfile.TemporaryDirectory() as folder:
        exported = Path(folder) / "model.onnx"
        torch.onnx.export(copied, (example,), exported, input_names=["image"], output_names=["stylized"],
                          dynamic_shapes=({0: batch, 2: height, 3: width},), dynamo=True,
                          external_data=False, verbose=False)
        data = exported.read_bytes()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


# ----------------------------------------------------------------------------- running
def _model_device(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def requested_providers(device: torch.device, available: list[str]) -> list[str | tuple[str, dict]]:
    """ONNX Runtime execution providers to ask for, for a model on ``device``.

    CUDA (on the model's GPU) then CPU for a CUDA model when ``available`` has CUDA; otherwise
    the CPU only (asking for a provider that is not installed would only log an error).
    """
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _runtime_device(providers: list[str], model_device: torch.device, version: str) -> torch.device:
    """Where ONNX Runtime computes with ``providers``; warns when a model on a GPU is run on the CPU."""
    if providers[0] == "CUDAExecutionProvider":
        return torch.device("cuda", model_device.index or 0)
    if model_device.type != "cpu":
        why = ("this onnxruntime has no usable CUDAExecutionProvider; install onnxruntime-gpu"
               if model_device.type == "cuda" else "ONNX Runtime has no provider for it here")
        warnings.warn(f"the model is on {model_device} but ONNX Runtime {version} runs it on the CPU with "
                      f"{providers} ({why}); outputs are copied back", FallbackWarning, stacklevel=3)
    return torch.device("cpu")


class OnnxRunner:
    """Callable like the PyTorch model: (N, C, H, W) float tensor in -> (N, C, H, W) tensor out, by ONNX Runtime.

    The model is exported once (:func:`export_onnx`, at ``example``'s size padded); every batch is
    padded as the model would pad it, run, and cropped back, so any size the model takes works
    and agrees with it within ``inference.TOLERANCE["onnx"]``. The caller's model is not changed.

    Attributes:
        providers: the execution providers ONNX Runtime really uses (``session.get_providers()``).
        device: where ONNX Runtime computes: ``cuda:<i>`` with the CUDA provider, else ``cpu``.
        output_device: the model's device; outputs are returned there, as the model would.

    Warns (RuntimeWarning) when the model is on a GPU but ONNX Runtime cannot use CUDA (e.g. the
    CPU-only ``onnxruntime`` package is installed instead of ``onnxruntime-gpu``).
    """

    def __init__(self, model: nn.Module, example: torch.Tensor) -> None:
        import onnxruntime as ort

        self.output_device = _model_device(model)
        self.pad = input_padding(model)
        options = ort.SessionOptions()
        options.log_severity_level = 4  # failures become OnnxRunError, not red log lines on stderr
        self.session = ort.InferenceSession(export_onnx(model, example), options,
                                            providers=requested_providers(self.output_device,
                                                                          ort.get_available_providers()))
        self.providers = self.session.get_providers()
        self.device = _runtime_device(self.providers, self.output_device, ort.__version__)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Stylize a float (N, C, H, W) batch in [0, 1]; returns float32 (N, C, H, W) on :attr:`output_device`.

        Raises:
            ValueError: ``batch`` is not 4-dimensional.
            OnnxRunError: ONNX Runtime failed (e.g. a channel count the graph was not exported for).
        """
        if batch.ndim != 4:
            raise ValueError(f"expected an image batch of shape (N, C, H, W), got shape {tuple(batch.shape)}")
        height, width = batch.shape[-2:]
        padded = self.pad(batch.detach().float().cpu())
        try:
            (output,) = self.session.run(None, {self.input_name: padded.contiguous().numpy()})
        except Exception as err:  # onnxruntime's own exception classes derive from Exception only
            size = "x".join(str(side) for side in batch.shape)
            reason = (str(err).strip().splitlines() or [""])[0][:300]
            raise OnnxRunError(f"ONNX Runtime failed on a {size} batch (N x C x H x W; padded to "
                               f"{padded.shape[-2]}x{padded.shape[-1]}): {type(err).__name__}: {reason}") from None
        return torch.from_numpy(np.ascontiguousarray(output[..., :height, :width])).to(self.output_device)

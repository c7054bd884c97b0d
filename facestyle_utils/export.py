"""ONNX export: run a trained stylizer without PyTorch, in ONNX Runtime (CPU, CUDA, mobile, web).

Optional extra: ``pip install onnx onnxscript onnxruntime`` (included in the ``dev`` extra).
The exported graph accepts any batch size and any image size the network supports.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

ONNX_HINT = "ONNX export needs the optional packages: pip install onnx onnxscript onnxruntime"


def onnx_available() -> bool:
    """True when onnx, onnxscript and onnxruntime can all be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike | None = None) -> bytes:
    """Export ``model`` (image batch -> image batch) to ONNX with dynamic batch, height and width.

    Returns the serialised model; also writes it to ``path`` when given.
    """
    if not onnx_available():
        raise ImportError(ONNX_HINT)
    model = model.cpu().eval()
    example = example.cpu()
    batch, height, width = (torch.export.Dim(name, min=1, max=4096) for name in ("batch", "height", "width"))
    with tempfile.TemporaryDirectory() as folder:
        exported = Path(folder) / "model.onnx"
        torch.onnx.export(model, (example,), exported, input_names=["image"], output_names=["stylized"],
                          dynamic_shapes={"image": {0: batch, 2: height, 3: width}}, dynamo=True, external_data=False, verbose=False)
        data = exported.read_bytes()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


class OnnxRunner:
    """Callable like the PyTorch model: (N, 3, H, W) tensor in -> tensor out, computed by ONNX Runtime."""

    def __init__(self, model: nn.Module, example: torch.Tensor) -> None:
        import onnxruntime as ort

        device = next(model.parameters()).device
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else [
            "CPUExecutionProvider"]
        self.session = ort.InferenceSession(export_onnx(model, example), providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.device = device

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        array = batch.detach().float().cpu().contiguous().numpy()
        (output,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(np.ascontiguousarray(output)).to(self.device)

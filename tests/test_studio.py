"""The studio's pipeline without widgets: requests, face crops, model files, stylizing, blending, messages."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.checkpoints import CheckpointError, save_model
from facestyle_utils.image_io import ImageLoadError, image_to_tensor
from facestyle_utils.inference import Stylizer
from facestyle_utils.sample_data import load_sample
from facestyle_utils.student import FastStudent, StudentConfig
from facestyle_utils.studio import (
    OPTIMISATION,
    NoFaceError,
    Request,
    StudioPipeline,
    Stylized,
    blend_result,
    crop_face,
    friendly_error,
    open_model,
    stylize,
)


def _request(method: str = OPTIMISATION, kind: str | None = None, **changes) -> Request:
    settings = dict(source="astronaut", crop_mode="detect face", box=(0.5, 0.4, 0.5), size=64, method=method,
                    style="brick", steps=2, kind=kind)
    return Request(**{**settings, **changes})


@pytest.fixture(scope="module")
def student_file(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(FastStudent(StudentConfig(base_channels=4, residual_blocks=1)),
                      tmp_path_factory.mktemp("models") / "s.pt", kind="student", metadata={"style": "cartoon"})


def test_the_pipeline_never_imports_widgets():
    """A fresh interpreter imports the pipeline, the runner and the I/O without loading ipywidgets."""
    code = ("import sys, facestyle_utils.studio, facestyle_utils.studio_io, facestyle_utils.latest_wins; "
            "print(sorted(m for m in sys.modules if 'widgets' in m))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_request_says_how_it_is_made():
    optimise = _request(source="upload:my photo.jpg")
    assert optimise.takes_style and optimise.photo_name == "my photo.jpg"
    assert optimise.describe() == "Done: 64x64 px, optimisation, 2 steps, style brick."
    assert optimise.file_stem() == "my-photo_brick"
    dcnn = _request("/models/tiny.pt", "dcnn")
    assert not dcnn.takes_style and dcnn.how() == "model tiny.pt"
    assert dcnn.file_stem() == "astronaut_tiny"
    drn = _request("/models/d.pt", "drn", source="webcam:photo 1")
    assert drn.takes_style and drn.how() == "model d.pt, style brick" and drn.file_stem() == "photo-1_brick_d"


def test_crop_face_detects_or_takes_a_manual_box():
    face = crop_face(load_sample("astronaut"), 64)
    assert face.size == (64, 64) and face.mode == "RGB"
    photo = load_sample("coffee")  # 600x400, a cup and no face
    with pytest.raises(NoFaceError, match="No face found in cup.png"):
        crop_face(photo, 64, name="cup.png")
    with pytest.raises(NoFaceError):
        crop_face(load_sample("astronaut"), 64, faces=[])  # a cached empty detection is not redone

    def coarse(image):
        return np.asarray(image.resize((8, 8), Image.Resampling.BOX), dtype=float)

    centre = crop_face(photo, 64, (0.5, 0.5, 1.0))  # the central square
    assert np.abs(coarse(centre) - coarse(photo.crop((100, 0, 500, 400)))).mean() < 4
    left = crop_face(photo, 96, (0.25, 0.5, 0.5))  # a 200-pixel box centred at (150, 200)
    assert left.size == (96, 96) and np.abs(coarse(left) - coarse(photo.crop((50, 100, 250, 300)))).mean() < 4
    with pytest.raises(ValueError, match="at least 8"):
        crop_face(photo, 4, (0.5, 0.5, 1.0))


def test_open_model_and_stylize_with_it(student_file, tmp_path):
    kind, runner = open_model(student_file)
    assert kind == "student" and isinstance(runner, Stylizer)
    request = _request(str(student_file), kind)
    content = image_to_tensor(crop_face(load_sample("astronaut"), 64))
    out = stylize(request, content, (kind, runner))
    assert out.shape == content.shape and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="needs the model"):
        stylize(request, content)
    with pytest.raises(CheckpointError, match="no such model file"):
        open_model(tmp_path / "gone.pt")
    (tmp_path / "page.pt").write_bytes(b"<html>404</html>")
    with pytest.raises(CheckpointError, match="HTML"):
        open_model(tmp_path / "page.pt")


def test_optimisation_reports_each_step_and_can_be_stopped():
    """(The full optimisation runs in test_widgets.py; here it is stopped after two steps.)"""
    content = image_to_tensor(crop_face(load_sample("astronaut"), 64))
    steps = []

    class Stop(Exception):
        pass

    def on_step(step: int) -> None:
        steps.append(step)
        if step == 1:
            raise Stop

    with pytest.raises(Stop):
        stylize(_request(steps=50), content, on_step=on_step)
    assert steps == [0, 1]


def test_optimisation_at_lesson_06s_full_size_gives_a_picture_not_noise():
    """Lesson 06's full-mode request (astronaut, Hubble, 192 px, 30 steps) once came back as saturated colour
    noise: L-BFGS diverged at the switch to full size (gatys.run_steps now goes back and restarts)."""
    content = image_to_tensor(crop_face(load_sample("astronaut"), 192))
    request = Request("astronaut", "face", (0.5, 0.5, 1.0), 192, OPTIMISATION, "hubble_deep_field", 30)
    raw = stylize(request, content)
    assert raw.shape == content.shape and 0 <= raw.min() and raw.max() <= 1
    assert raw.std() < 0.35  # colour noise in [0, 1] has a spread near 0.5; the face crop's is 0.27
    assert (raw - content).abs().mean() < 0.25  # still the face, restyled


def test_blend_result_mixes_at_a_strength_and_can_preserve_colours():
    torch.manual_seed(0)
    before, raw = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    as_array = image_to_tensor
    assert torch.allclose(as_array(blend_result(raw, before, 0.0)), before, atol=1 / 255)
    assert torch.allclose(as_array(blend_result(raw, before, 1.0)), raw, atol=1 / 255)
    assert torch.allclose(as_array(blend_result(raw, before, 0.5)), (raw + before) / 2, atol=1 / 255)
    with pytest.raises(ValueError, match="strength"):
        blend_result(raw, before, 1.5)
    grey = before.mean(dim=1, keepdim=True).expand(1, 3, 16, 16)
    kept = as_array(blend_result(grey, before, 1.0, preserve_colour=True))

    def chroma(t):
        return (t - t.mean(dim=1, keepdim=True)).abs().mean()

    assert chroma(kept) > 0.5 * chroma(before) and chroma(grey) < 1e-6  # the face's colours came back


def test_the_pipeline_remembers_photos_faces_and_models(student_file, tmp_path):
    pipeline = StudioPipeline("cpu")
    request = _request(str(student_file), "student")
    done = pipeline.run(request)
    assert isinstance(done, Stylized) and done.crop.size == (64, 64) and done.raw.device.type == "cpu"
    assert pipeline.model(student_file) is pipeline.model(student_file)  # opened once
    assert np.array_equal(np.asarray(done.blend(0.0)), np.asarray(done.crop))
    pipeline.add_photo("upload:cup.png", load_sample("coffee"))
    with pytest.raises(NoFaceError, match="cup.png"):
        pipeline.crop(_request(source="upload:cup.png"))
    pipeline.add_photo("upload:cup.png", load_sample("grace_hopper"))  # replaced: faces are looked for again
    assert pipeline.crop(_request(source="upload:cup.png")).size == (64, 64)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(student_file.read_bytes())
    pipeline.model(copy)
    copy.unlink()
    with pytest.raises(CheckpointError, match="no such model file"):
        pipeline.model(copy)  # a cached model whose file has gone is reported, not silently used
    with pytest.raises(KeyError, match="unknown sample"):
        pipeline.crop(_request(source="nobody"))


def test_friendly_errors():
    assert friendly_error(NoFaceError("No face found in x.png")).startswith("No face found in x.png. Choose")
    assert friendly_error(ImageLoadError("a.jpg: truncated")) == "Could not read the photo: a.jpg: truncated"
    assert friendly_error(CheckpointError("m.pt: bad")).startswith("Model file problem: m.pt: bad.")
    assert friendly_error(RuntimeError("CUDA out of memory")) == "Out of memory: lower the output size."
    assert friendly_error(ZeroDivisionError("x")) == "Unexpected problem (ZeroDivisionError): x"
    assert friendly_error(ValueError()) == "ValueError"

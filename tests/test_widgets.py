"""The lesson 06 studio, driven headless through its widgets: set values, click buttons, feed uploads.

Tests run in quick mode; the studio lists the model files of the folder it is given (by default the
current mode's ``models`` folder, ``build/quick/models`` in quick mode). The pipeline and the runner
are tested on their own in test_studio.py and test_latest_wins.py.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils import runtime
from facestyle_utils.checkpoints import save_model
from facestyle_utils.nets import DCNNConfig, DCNNStylizer
from facestyle_utils.sample_data import load_sample
from facestyle_utils.studio import OPTIMISATION
from facestyle_utils.widgets import build_studio


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_model(DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25)), folder / "tiny.pt",
               metadata={"style": "cartoon", "size": 64})
    (folder / "broken.pt").write_bytes(b"<html>404 not found</html>")
    return folder


@pytest.fixture(autouse=True)
def output_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.fixture
def app(models_dir):
    return build_studio(models_dir, device="cpu", background=False)


def _all_widgets(root):
    yield root
    for child in getattr(root, "children", ()):
        yield from _all_widgets(child)


def test_widget_tree_holds_every_control(app):
    inside = {id(w) for w in _all_widgets(app.widget)}
    controls = [app.face, app.upload, app.webcam_button, app.crop_mode, app.crop_x, app.crop_y, app.crop_side,
                app.method, app.refresh_button, app.style, app.steps, app.strength, app.size, app.preserve_colour,
                app.auto_update, app.stylize_button, app.save_button, app.progress, app.status,
                app.before, app.after]
    assert all(id(control) in inside for control in controls)
    assert isinstance(app.before, widgets.Image) and isinstance(app.after, widgets.Image)
    assert app.save_button.disabled  # nothing to save yet
    assert _decode(app.before.value).shape == (64, 64, 3)  # the detected face crop is shown at once


def test_models_are_discovered_and_a_corrupt_file_is_reported(app):
    values = [value for _, value in app.method.options]
    assert values == [str(app.models_dir / "tiny.pt"), OPTIMISATION]
    labels = [label for label, _ in app.method.options]
    assert labels[0] == "tiny (dcnn, style: cartoon)"
    # broken.pt is an HTML page: since issue #14 it is named as such, not as "truncated or corrupted"
    assert "skipped broken.pt: not a PyTorch file (looks like an HTML or XML page" in app.model_info.value
    assert "style: cartoon" in app.model_info.value
    assert app.style.disabled and app.steps.disabled  # a trained model brings its own style


def test_model_run_shows_before_and_after(app):
    app.stylize_button.click()
    assert app.message.startswith("Done: 64x64 px, model tiny.pt")
    assert app.progress.value == 1.0 and app.progress.bar_style == "success"
    before, after = _decode(app.before.value), _decode(app.after.value)
    assert before.shape == after.shape == (64, 64, 3)
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 5  # an untrained decoder changes the face
    assert np.array_equal(after, np.asarray(app.result)) and not app.save_button.disabled


def test_strength_and_colour_reblend_without_rerunning(app):
    app.stylize_button.click()
    runs = app.runs_started
    app.strength.value = 0.0
    assert np.abs(np.asarray(app.result, dtype=int) - np.asarray(app.crop, dtype=int)).max() <= 1
    app.strength.value = 1.0
    full = np.asarray(app.result, dtype=float)
    app.preserve_colour.value = True
    kept = np.asarray(app.result, dtype=float)
    crop = np.asarray(app.crop, dtype=float)

    def chroma(a):  # distance of each pixel from gray
        return np.abs(a - a.mean(axis=2, keepdims=True)).mean()

    assert abs(chroma(kept) - chroma(crop)) < abs(chroma(full) - chroma(crop))
    assert app.runs_started == runs  # strength and colour only re-blend the last raw result


def test_size_slider_restyles_a_model_and_auto_update_can_be_off(app):
    app.size.value = 96
    assert app.result.size == (96, 96) and _decode(app.after.value).shape == (96, 96, 3)
    app.auto_update.value = False
    runs = app.runs_started
    app.size.value = 128
    assert app.runs_started == runs and "press Stylize" in app.message
    assert _decode(app.before.value).shape == (128, 128, 3)  # the crop follows at once


def test_optimisation_method_with_style_and_step_budget(app):
    app.method.value = OPTIMISATION
    assert not app.style.disabled and not app.steps.disabled
    assert "Optimisation" in app.model_info.value
    app.style.value, app.steps.value = "brick", 4
    app.stylize_button.click()
    assert app.message == "Done: 64x64 px, optimisation, 4 steps, style brick."
    assert app.result.size == (64, 64) and app.result_request.style == "brick"
    assert np.abs(np.asarray(app.result, dtype=int) - np.asarray(app.crop, dtype=int)).mean() > 2


def test_bad_upload_gives_a_message_not_a_traceback(app):
    faces_before = app.face.options
    app.feed_upload("notes.txt", b"this is not a photo")
    assert app.message.startswith("Could not read the photo: notes.txt: not an image")
    assert "Traceback" not in app.status.value and "⚠" in app.status.value
    assert app.face.options == faces_before
    app.feed_upload("empty.png", b"")
    assert "empty.png" in app.message and "0 bytes" in app.message


def test_uploaded_photo_becomes_the_face(app):
    photo = load_sample("grace_hopper")
    app.feed_upload("me.png", _png(photo))
    assert app.face.value == "upload:me.png" and ("me.png (uploaded)", "upload:me.png") in app.face.options
    assert app.result.size == (64, 64) and app.result_request.source == "upload:me.png"
    app.save_button.click()
    assert app.saved[-1].name == "me_tiny_001.png"


def test_no_face_then_manual_crop(app):
    photo = load_sample("coffee")  # 600x400, a cup and no face
    app.feed_upload("cup.png", _png(photo))
    assert app.message.startswith("No face found in cup.png") and "manual box" in app.message
    assert app.progress.bar_style == "danger"
    app.crop_mode.value = "manual box"
    assert app.manual_box.layout.display == "flex"
    assert app.message.startswith("Done")
    app.auto_update.value = False

    def coarse(image):
        return np.asarray(image.resize((8, 8), Image.Resampling.BOX), dtype=float)

    app.crop_x.value, app.crop_y.value, app.crop_side.value = 0.5, 0.5, 1.0  # the central square
    app.stylize_button.click()
    assert np.abs(coarse(app.crop) - coarse(photo.crop((100, 0, 500, 400)))).mean() < 4
    app.crop_x.value, app.crop_side.value = 0.25, 0.5  # a 200-pixel box centred at (150, 200)
    app.stylize_button.click()
    assert np.abs(coarse(app.crop) - coarse(photo.crop((50, 100, 250, 300)))).mean() < 4
    assert np.abs(coarse(app.crop) - coarse(photo.crop((350, 100, 550, 300)))).mean() > 10


def test_missing_and_corrupt_model_files(models_dir, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes((models_dir / "tiny.pt").read_bytes())
    app = build_studio(folder, device="cpu", background=False)
    (folder / "tiny.pt").unlink()
    app.stylize_button.click()
    assert app.message.startswith("Model file problem:") and "no such model file" in app.message
    assert app.result is None and app.progress.bar_style == "danger"
    (folder / "tiny.pt").write_bytes((models_dir / "tiny.pt").read_bytes()[:300])  # truncated copy
    app.stylize_button.click()
    assert app.message.startswith("Model file problem:") and "corrupted" in app.message
    app.refresh_button.click()  # the truncated file is no longer offered
    assert [value for _, value in app.method.options] == [OPTIMISATION]
    assert "skipped tiny.pt" in app.model_info.value


def test_refresh_finds_new_models(models_dir, tmp_path):
    folder = tmp_path / "models"
    app = build_studio(folder, device="cpu", background=False)
    assert app.method.value == OPTIMISATION and "No model files" in app.model_info.value
    folder.mkdir()
    (folder / "new.pt").write_bytes((models_dir / "tiny.pt").read_bytes())
    app.refresh_button.click()
    assert app.method.options[0] == ("new (dcnn, style: cartoon)", str(folder / "new.pt"))
    assert app.method.value == OPTIMISATION and app.result is None  # the learner's choice is kept
    app.method.value = str(folder / "new.pt")
    assert app.result is not None and app.result_request.method == str(folder / "new.pt")


def test_save_never_overwrites(app, output_folder):
    app.save_button.click()
    assert app.message == "Nothing to save yet: press Stylize first." and app.saved == []
    app.stylize_button.click()
    studio_dir = runtime.output_dir("studio")  # output_folder/quick/studio: tests run in quick mode
    assert studio_dir == output_folder / "quick" / "studio"
    (studio_dir / "astronaut_tiny_001.png").write_bytes(b"somebody else's file")
    app.save_button.click()
    app.save_button.click()
    assert [p.name for p in app.saved] == ["astronaut_tiny_002.png", "astronaut_tiny_003.png"]
    assert (studio_dir / "astronaut_tiny_001.png").read_bytes() == b"somebody else's file"
    assert np.array_equal(np.asarray(Image.open(app.saved[0]).convert("RGB")), np.asarray(app.result))
    assert app.message == f"Saved to {app.saved[1]}"


def test_webcam_button(models_dir):
    shots = []

    def fake_camera() -> bytes:
        shots.append(1)
        return _png(load_sample("astronaut"))

    app = build_studio(models_dir, device="cpu", background=False, webcam=fake_camera)
    assert not app.webcam_button.disabled and app.webcam_note.value == ""
    app.webcam_button.click()
    assert shots == [1] and app.face.value == "webcam:photo 1" and app.result.size == (64, 64)

    def broken_camera() -> bytes:
        raise PermissionError("camera access was refused")

    app = build_studio(models_dir, device="cpu", background=False, webcam=broken_camera)
    app.webcam_button.click()
    assert app.message == "Could not take a webcam photo: camera access was refused"


def test_webcam_unavailable_outside_colab(app):
    assert app.webcam_button.disabled and "Colab only" in app.webcam_note.value
    assert not app.capture_webcam()
    assert "Google Colab only" in app.message


def test_newer_request_supersedes_older(models_dir):
    app = build_studio(models_dir, device="cpu", background=True, debounce_s=0.0)
    app.method.value = OPTIMISATION
    app.steps.value = 200  # far too long: must be abandoned
    app.stylize_button.click()
    app.method.value = str(models_dir / "tiny.pt")  # auto-update starts a newer request at once
    app.wait()
    assert app.runs_started == 2 and app.runs_finished == 1
    assert app.result_request.method == str(models_dir / "tiny.pt") and app.message.startswith("Done")


def test_slider_bursts_are_debounced(models_dir):
    app = build_studio(models_dir, device="cpu", background=True, debounce_s=1.0)
    for side in (96, 128, 160):
        app.size.value = side
    app.wait()
    assert app.runs_started == 1 and app.result.size == (160, 160)


def test_figure_shows_before_and_after(app):
    with pytest.raises(ValueError, match="no result yet"):
        app.figure()
    app.stylize_button.click()
    figure = app.figure()
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["before", "after: model tiny.pt\n64x64 px, strength 1.00"]
    app.preserve_colour.value = True
    assert app.figure().axes[1].get_title().endswith("strength 1.00, colours kept")


def test_the_studio_offers_only_the_current_modes_model_files(models_dir, tmp_path, monkeypatch):
    """Issue 19: quick runs (make test) save their models under build/quick/; full mode never offers them."""
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    for mode in ("quick", "full"):
        folder = runtime.output_dir("models", mode=mode)
        (folder / f"dcnn_{mode}.pt").write_bytes((models_dir / "tiny.pt").read_bytes())
    quick = build_studio(device="cpu", background=False)
    assert [value for _, value in quick.method.options] == [
        str(tmp_path / "quick" / "models" / "dcnn_quick.pt"), OPTIMISATION]
    monkeypatch.setenv("FACESTYLE_QUICK", "0")
    full = build_studio(device="cpu", background=False, debounce_s=0)
    assert [value for _, value in full.method.options] == [str(tmp_path / "models" / "dcnn_full.pt"), OPTIMISATION]
    assert "quick" not in full.model_info.value


def test_student_and_drn_model_files(tmp_path):
    """Lesson 05's student (style built in) and lesson 04's DRN (takes the chosen style image) both work."""
    from facestyle_utils.student import FastStudent, StudentConfig

    drn = pytest.importorskip("facestyle_utils.drn")
    torch.manual_seed(0)
    folder = tmp_path / "models"
    save_model(FastStudent(StudentConfig(base_channels=4, residual_blocks=1)), folder / "a_student.pt",
               kind="student", metadata={"style": "cartoon"})
    save_model(drn.DRNStylizer(drn.DRNConfig(attention_layers=["relu3_1"], width=0.25, skips=False)),
               folder / "b_drn.pt", kind="drn", metadata={"trained on": "unpaired styles"})
    app = build_studio(folder, device="cpu", background=False)
    assert [label for label, _ in app.method.options] == [
        "a_student (student, style: cartoon)", "b_drn (drn)", "optimisation (Gatys)"]
    app.stylize_button.click()
    assert app.message == "Done: 64x64 px, model a_student.pt." and app.result.size == (64, 64)
    assert app.style.disabled
    app.method.value = str(folder / "b_drn.pt")  # auto-update restyles with the chosen style
    assert not app.style.disabled and app.steps.disabled
    assert app.message == "Done: 64x64 px, model b_drn.pt, style hubble_deep_field."
    first = np.asarray(app.result, dtype=int)
    app.style.value = "brick"
    assert app.message == "Done: 64x64 px, model b_drn.pt, style brick."
    assert not np.array_equal(np.asarray(app.result, dtype=int), first)  # the style image reaches the model
    assert app.save().name == "astronaut_brick_b_drn_001.png"

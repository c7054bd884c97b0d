"""studio_io without widgets: which model files a folder offers (of the current mode), why the others are
skipped, uploads, and saving under new names."""
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils import studio_io
from facestyle_utils.checkpoints import atomic_save, default_model_path, safe_load, save_model
from facestyle_utils.student import FastStudent, StudentConfig
from facestyle_utils.studio_io import find_models, next_free_path, save_new, uploaded_files


def test_one_bad_model_file_is_skipped_and_never_breaks_the_listing(tmp_path):
    good = save_model(FastStudent(StudentConfig(base_channels=4, residual_blocks=1)), tmp_path / "a_good.pt",
                      kind="student", metadata={"style": "cartoon"})
    data = safe_load(good)
    atomic_save({**data, "metadata": "hello"}, tmp_path / "b_hello.pt")
    atomic_save({**data, "metadata": [1, 2, 3]}, tmp_path / "c_list.pt")
    atomic_save({**data, "metadata": None}, tmp_path / "d_none.pt")
    atomic_save({**data, "state_dict": None}, tmp_path / "e_nostate.pt")
    (tmp_path / "f_image.pt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    torch.save(FastStudent(StudentConfig(base_channels=4, residual_blocks=1)), tmp_path / "g_whole.pt")
    (tmp_path / "h_folder.pt").mkdir()
    found, rejected = find_models(tmp_path)
    assert [(choice.path.name, choice.kind, choice.metadata) for choice in found] == [
        ("a_good.pt", "student", {"style": "cartoon"}), ("d_none.pt", "student", {})]
    assert found[0].label == "a_good (student, style: cartoon)"
    assert rejected == [
        "skipped b_hello.pt: metadata is str 'hello', expected a dict of plain values",
        "skipped c_list.pt: metadata is list [1, 2, 3], expected a dict of plain values",
        "skipped e_nostate.pt: the weights (state dict) are NoneType, expected a dict of named tensors",
        "skipped f_image.pt: not a PyTorch file (looks like a PNG image)",
        "skipped g_whole.pt: holds a pickled Python object (facestyle_utils.student.FastStudent), e.g. a whole "
        "model saved with torch.save(model), which weights_only loading refuses for safety (a pickle can run code); "
        "re-save the weights with checkpoints.save_model(model, path)",
        "skipped h_folder.pt: is a folder, not a checkpoint file",
    ]


def test_each_mode_saves_its_models_in_its_own_folder(tmp_path, monkeypatch):
    """Issue 19: quick runs (tests, CI) and workshops never put a model file beside the full-mode ones."""
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    student = FastStudent(StudentConfig(base_channels=4, residual_blocks=1))
    folders = {}
    for quick, workshop, mode in (("0", "0", "full"), ("1", "0", "quick"), ("0", "1", "workshop")):
        monkeypatch.setenv("FACESTYLE_QUICK", quick)
        monkeypatch.setenv("FACESTYLE_WORKSHOP", workshop)
        path = save_model(student, default_model_path("dcnn_cartoon"), kind="student", metadata={"mode": mode})
        folders[mode] = path.parent
    assert folders == {"full": tmp_path / "models", "quick": tmp_path / "quick" / "models",
                       "workshop": tmp_path / "workshop" / "models"}
    for mode, folder in folders.items():
        found, rejected = find_models(folder)
        assert [(c.path.name, c.metadata) for c in found] == [("dcnn_cartoon.pt", {"mode": mode})]
        assert rejected == []
    assert find_models(tmp_path / "missing") == ([], [])


def test_save_new_never_overwrites(tmp_path, monkeypatch):
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    assert next_free_path(tmp_path, "x").name == "x_001.png"
    (tmp_path / "x_001.png").write_bytes(b"somebody else's file")
    (tmp_path / "x_002.png").touch()
    assert next_free_path(tmp_path, "x").name == "x_003.png"
    assert save_new(image, tmp_path, "x").name == "x_003.png"
    assert save_new(image, tmp_path, "x").name == "x_004.png"
    assert (tmp_path / "x_001.png").read_bytes() == b"somebody else's file"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x_004.png")), np.asarray(image))
    # another process keeps taking the number between the check and the write
    monkeypatch.setattr(studio_io, "next_free_path", lambda folder, stem: folder / "x_001.png")
    with pytest.raises(FileExistsError, match="Could not find a free file name"):
        save_new(image, tmp_path, "x", tries=3)


def test_upload_formats():
    old_style = {"a.png": {"metadata": {"name": "a.png"}, "content": b"123"}}  # ipywidgets 7
    assert uploaded_files(old_style) == [("a.png", b"123")]
    new_style = ({"name": "b.png", "content": memoryview(b"45")},)  # ipywidgets 8
    assert uploaded_files(new_style) == [("b.png", b"45")]
    assert uploaded_files(()) == [] and uploaded_files(None) == []

"""studio_io without widgets: which model files a folder offers, and why the others are skipped."""
import torch

from facestyle_utils.checkpoints import atomic_save, safe_load, save_model
from facestyle_utils.student import FastStudent, StudentConfig
from facestyle_utils.studio_io import find_models


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

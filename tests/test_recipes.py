"""load_or_train_dcnn reuses lesson 03's model file and replaces a broken one."""
import torch

from facestyle_utils import recipes
from facestyle_utils.checkpoints import default_model_path, read_model_file, save_model
from facestyle_utils.nets import DCNNConfig, DCNNStylizer


def _tiny():
    return DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25))


def test_loads_an_existing_model_without_training(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    torch.manual_seed(0)
    saved = _tiny()
    save_model(saved, default_model_path("dcnn_cartoon"))
    monkeypatch.setattr(recipes, "train_dcnn", lambda **_: (_ for _ in ()).throw(AssertionError("trained")))
    loaded = recipes.load_or_train_dcnn(device=torch.device("cpu"))
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(loaded(x), saved.eval()(x), atol=1e-6)


def test_trains_and_saves_when_the_file_is_missing_or_broken(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    path = default_model_path("dcnn_cartoon")
    path.write_bytes(b"<html>a failed download</html>")
    monkeypatch.setattr(recipes, "train_dcnn", lambda **_: _tiny())
    model = recipes.load_or_train_dcnn(device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert "Could not use" in out and "training one now" in out
    assert isinstance(model, DCNNStylizer)
    assert read_model_file(path)["metadata"]["trained_by"] == "recipes.train_dcnn"

"""load_or_train_dcnn reuses lesson 03's model file and replaces a broken one; the recipes' settings."""
from pathlib import Path

import pytest
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
    monkeypatch.setattr(recipes, "train_dcnn", lambda *_, **__: (_ for _ in ()).throw(AssertionError("trained")))
    loaded = recipes.load_or_train_dcnn(device=torch.device("cpu"))
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(loaded(x), saved.eval()(x), atol=1e-6)
    assert loaded.metadata["source"] == f"lesson 03's saved model ({default_model_path('dcnn_cartoon').name})"


def test_trains_and_saves_when_the_file_is_missing_or_broken(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    path = default_model_path("dcnn_cartoon")
    path.write_bytes(b"<html>a failed download</html>")
    asked = []
    monkeypatch.setattr(recipes, "train_dcnn", lambda recipe, **_: asked.append(recipe) or _tiny())
    model = recipes.load_or_train_dcnn(device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert "Could not use" in out and "training one now" in out
    assert isinstance(model, DCNNStylizer)
    assert read_model_file(path)["metadata"]["trained_by"] == "recipes.train_dcnn"
    assert asked == [recipes.lesson_03_recipe()] and model.metadata["source"].startswith("trained here")


def test_a_shorter_run_can_stay_off_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    asked = []
    monkeypatch.setattr(recipes, "train_dcnn", lambda recipe, **_: asked.append(recipe) or _tiny())
    model = recipes.load_or_train_dcnn(recipes.lesson_03_recipe(steps=3), save=False, device=torch.device("cpu"))
    assert asked[0].steps == 3 and not default_model_path("dcnn_cartoon").exists()
    assert "(3 steps" in model.metadata["source"]


def test_lesson_03_recipe_follows_the_mode(monkeypatch):
    monkeypatch.setenv("FACESTYLE_QUICK", "0")
    full = recipes.lesson_03_recipe()
    assert (full.size, full.crop, full.batch, full.steps, full.learning_rate) == (128, 64, 8, 1200, 2e-3)
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    quick = recipes.lesson_03_recipe("pencil", steps=2)
    assert (quick.styles, quick.size, quick.crop, quick.batch, quick.steps) == (("pencil",), 64, 32, 4, 2)
    monkeypatch.setenv("FACESTYLE_QUICK", "0")
    monkeypatch.setenv("FACESTYLE_WORKSHOP", "1")
    workshop = recipes.lesson_03_recipe()
    assert (workshop.size, workshop.crop, workshop.batch, workshop.steps) == (128, 64, 4, 240)


@pytest.mark.parametrize("mode", ["quick", "workshop", "full"])
def test_lesson_03_recipe_matches_the_settings_of_lesson_03(mode, monkeypatch):
    """Lessons 04 and 05 train lesson 03's model with this recipe when its file is missing: same settings."""
    import re

    import nbformat

    monkeypatch.setenv("FACESTYLE_QUICK", "1" if mode == "quick" else "0")
    monkeypatch.setenv("FACESTYLE_WORKSHOP", "1" if mode == "workshop" else "0")
    notebook = nbformat.read(Path(__file__).parent.parent / "notebooks" / "03_dcnn_training.ipynb", as_version=4)
    settings = next(c.source for c in notebook.cells if "STEPS = runtime.by_mode(" in c.source)
    values = {name: int(re.search(rf"^{name} = runtime\.by_mode\((.*?)\)", settings, re.M).group(1)
                        .split(f"{mode}=")[1].split(",")[0]) for name in ("SIZE", "CROP", "BATCH", "STEPS")}
    recipe = recipes.lesson_03_recipe()
    assert values == {"SIZE": recipe.size, "CROP": recipe.crop, "BATCH": recipe.batch, "STEPS": recipe.steps}


def test_train_dcnn_refuses_another_network():
    with pytest.raises(ValueError, match="trains the DCNN"):
        recipes.train_dcnn(recipes.TrainRecipe("drn"))


def test_the_student_learns_from_whole_faces_unless_told_otherwise():
    """Lesson 05: the student's instance norm needs the whole face's statistics (64-px crops scored over 1 dB lower)."""
    assert recipes.TrainRecipe("student", size=96).crop == 96
    assert recipes.TrainRecipe("student", size=96, crop=48).crop == 48
    assert recipes.TrainRecipe("dcnn", size=96).crop == recipes.TrainRecipe("drn").crop == 64
    with pytest.raises(ValueError, match=r"crop \(96 px\) cannot be larger than the images \(size 64 px\)"):
        recipes.TrainRecipe("student", size=64, crop=96)


def test_the_student_recipe_has_the_full_mode_settings_of_lesson_05():
    """``train --model student`` trains as lesson 05's section 4 does in full mode: steps, batch, learning rate."""
    import re

    import nbformat

    notebook = nbformat.read(Path(__file__).parent.parent / "notebooks" / "05_gpu_inference.ipynb", as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    full = {name: int(re.search(rf"^{name} = runtime\.by_mode\(.*?full=(\d+)\)", code, re.M).group(1))
            for name in ("STUDENT_STEPS", "STUDENT_BATCH", "STUDENT_WARMUP")}
    rate = float(re.search(r"TrainConfig\(steps=STUDENT_STEPS, learning_rate=([\d.e-]+)", code).group(1))
    defaults = recipes.DEFAULTS["student"]
    assert full == {"STUDENT_STEPS": defaults["steps"], "STUDENT_BATCH": defaults["batch"],
                    "STUDENT_WARMUP": defaults["warmup"]}
    assert rate == defaults["learning_rate"]
    whole_faces = 'PairedDataset(root, "cartoon", "train"), transform=PairedRandomCrop(SIZE))'
    assert f"label_with_teacher(teacher, {whole_faces}" in code  # the whole faces, as the recipe's crop=None


def test_recipe_learning_rate_reaches_the_train_config():
    config = recipes.TrainRecipe("student", learning_rate=1e-4, steps=50).train_config()
    assert config.learning_rate == 1e-4 and config.warmup_steps == 5 and config.val_every == 50
    assert recipes.TrainRecipe("drn").train_config().learning_rate == recipes.DEFAULTS["drn"]["learning_rate"]


def test_the_drn_recipe_has_the_settings_of_lesson_04():
    """``train --model drn`` and lesson 04 train the same DRN: weights, learning rate, residual output."""
    import re

    import nbformat

    from facestyle_utils.drn import DRNConfig, UnpairedWeights

    notebook = nbformat.read(Path(__file__).parent.parent / "notebooks" / "04_drn_attention.ipynb", as_version=4)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    names = {name: float(re.search(rf"^{name} = ([0-9.e-]+)", source, re.M).group(1))
             for name in ("LEARNING_RATE", "PIXEL_WEIGHT")}
    call = re.search(r"^weights = (UnpairedWeights\(.*?\))\n", source, re.M | re.S).group(1)
    weights = eval(call, {"UnpairedWeights": UnpairedWeights, **names})  # noqa: S307 (our own notebook)
    assert weights.to_dict() == recipes.lesson_04_weights().to_dict()
    assert names["LEARNING_RATE"] == recipes.DEFAULTS["drn"]["learning_rate"]
    config = re.search(r"^config = (DRNConfig\(.*?\))\n", source, re.M | re.S).group(1)
    assert eval(config, {"DRNConfig": DRNConfig}).residual  # noqa: S307


def test_the_dcnn_and_student_recipes_have_the_settings_of_lessons_03_and_05():
    """``train --model dcnn/student`` and lessons 03 and 05 build the same networks with the same loss."""
    import re

    import nbformat

    from facestyle_utils.nets import DCNNConfig, LossWeights
    from facestyle_utils.student import StudentConfig

    def code(name):
        notebook = nbformat.read(Path(__file__).parent.parent / "notebooks" / name, as_version=4)
        return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")

    lesson_03 = code("03_dcnn_training.ipynb")
    config = re.search(r"^config = (DCNNConfig\(.*?\))\n", lesson_03, re.M | re.S).group(1)
    assert eval(config, {"DCNNConfig": DCNNConfig}) == recipes.lesson_03_config()  # noqa: S307 (our own notebook)
    assert recipes.lesson_03_config().tone_curve
    weights = re.search(r"^weights = (LossWeights\(.*?\))\n", lesson_03, re.M | re.S).group(1)
    assert eval(weights, {"LossWeights": LossWeights}).to_dict() == recipes.lesson_03_weights().to_dict()  # noqa: S307
    student = re.search(r"^student = FastStudent\((StudentConfig\(.*?\))\)", code("05_gpu_inference.ipynb"), re.M)
    assert eval(student.group(1), {"StudentConfig": StudentConfig}) == recipes.lesson_05_student_config()  # noqa: S307

"""python -m facestyle_utils stylize: outputs, exit codes and messages."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.checkpoints import save_model
from facestyle_utils.cli import main
from facestyle_utils.nets import DCNNConfig, DCNNStylizer
from facestyle_utils.video import make_zoom_video


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = DCNNStylizer(DCNNConfig(encoder_layer="relu2_1", width=0.25))
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.new("RGB", (24, 20), (120, 80, 60)).save(folder / "one.png")
    (folder / "bad.jpg").write_bytes(b"")
    single = tmp_path / "single.jpg"
    Image.new("RGB", (16, 16), (10, 200, 10)).save(single)
    video = make_zoom_video(np.full((40, 40, 3), 90, np.uint8), tmp_path / "clip.mp4", frames=4, size=16)
    return folder, single, video


def test_stylizes_files_folders_and_videos(model_file, inputs, tmp_path, capsys):
    folder, single, video = inputs
    code = main(["stylize", str(single), str(video), "--model", str(model_file), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--quiet"])
    assert code == 0
    assert Image.open(tmp_path / "out" / "single_stylized.png").size == (16, 16)
    assert (tmp_path / "out" / "clip_stylized.mp4").stat().st_size > 0
    assert "no audio" in capsys.readouterr().out


def test_bad_files_in_a_folder_give_exit_code_1_and_a_message(model_file, inputs, tmp_path, capsys):
    folder, _, _ = inputs
    code = main(["stylize", str(folder), "--model", str(model_file), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert (tmp_path / "out" / "faces" / "one_stylized.png").is_file()
    assert "skipped bad.jpg" in out and "empty" in out


def test_missing_input_and_bad_model_are_reported(model_file, tmp_path, capsys):
    code = main(["stylize", str(tmp_path / "nope.png"), "--model", str(model_file), "--out", str(tmp_path)])
    assert code == 1 and "nope.png" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"<html>not a checkpoint</html>")
    code = main(["stylize", str(tmp_path), "--model", str(junk), "--out", str(tmp_path / "o")])
    assert code == 2 and "junk.pt" in capsys.readouterr().err
    code = main(["stylize", str(tmp_path), "--model", str(model_file), "--out", str(tmp_path), "--strength", "3"])
    assert code == 2 and "--strength" in capsys.readouterr().err


def test_help_and_usage_errors_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "facestyle_utils", "stylize", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--model" in result.stdout and "--strength" in result.stdout
    result = subprocess.run([sys.executable, "-m", "facestyle_utils", "stylize", "x.png"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--model" in result.stderr

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
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    assert Image.open(tmp_path / "out" / "single_stylized.png").size == (16, 16)
    assert (tmp_path / "out" / "clip_stylized.mp4").stat().st_size > 0
    assert "no audio" in capsys.readouterr().out


def test_bad_files_in_a_folder_give_exit_code_1_and_a_message(model_file, inputs, tmp_path, capsys):
    folder, _, _ = inputs
    code = main(["stylize", str(folder), "--model", str(model_file), "--out", str(tmp_path / "out"), "--no-progress"])
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


def _run(args, capsys):
    code = main(["stylize", *map(str, args), "--device", "cpu", "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inputs_with_the_same_name_get_distinct_outputs(model_file, tmp_path, capsys):
    Image.new("RGB", (12, 10), (250, 0, 0)).save(tmp_path / "photo.png")
    Image.new("RGB", (12, 10), (0, 0, 250)).save(tmp_path / "photo.jpg")
    for side, colour in (("a", (0, 250, 0)), ("b", (250, 250, 0))):
        (tmp_path / side / "faces").mkdir(parents=True)
        Image.new("RGB", (8, 8), colour).save(tmp_path / side / "faces" / "x.png")
    out = tmp_path / "out"
    code, printed, _ = _run([tmp_path / "photo.png", tmp_path / "photo.jpg", tmp_path / "a" / "faces",
                             tmp_path / "b" / "faces", "--model", model_file, "--out", out, "--overwrite"], capsys)
    assert code == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["faces-2/x_stylized.png", "faces/x_stylized.png", "photo_stylized-2.png", "photo_stylized.png"]
    assert "photo.jpg -> " in printed and "photo_stylized-2.png" in printed
    mean = lambda p: np.asarray(Image.open(p)).reshape(-1, 3).mean(axis=0)  # noqa: E731
    assert not np.allclose(mean(out / "photo_stylized.png"), mean(out / "photo_stylized-2.png"))
    assert not np.allclose(mean(out / "faces" / "x_stylized.png"), mean(out / "faces-2" / "x_stylized.png"))
    # a second run with --overwrite replaces the earlier results, still one output per input
    code, _, _ = _run([tmp_path / "photo.png", tmp_path / "photo.jpg", "--model", model_file, "--out", out,
                       "--overwrite"], capsys)
    assert code == 0 and len(list(out.glob("photo*"))) == 2


def test_an_output_never_replaces_an_input_of_the_same_run(model_file, tmp_path, capsys):
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (90, 90, 90)).save(tmp_path / "a_stylized.png")
    before = (tmp_path / "a_stylized.png").read_bytes()
    code, printed, _ = _run([tmp_path / "a.png", tmp_path / "a_stylized.png", "--model", model_file,
                             "--out", tmp_path, "--overwrite"], capsys)
    assert code == 0 and (tmp_path / "a_stylized.png").read_bytes() == before
    assert (tmp_path / "a_stylized-2.png").is_file() and (tmp_path / "a_stylized_stylized.png").is_file()


def test_the_same_input_twice_is_done_once(model_file, inputs, tmp_path, capsys):
    _, single, _ = inputs
    code, printed, _ = _run([single, single, "--model", model_file, "--out", tmp_path / "o"], capsys)
    assert code == 0 and "listed more than once" in printed
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["single_stylized.png"]


def test_a_folder_with_nested_images_is_not_a_silent_success(model_file, tmp_path, capsys):
    for person in ("person1", "person2"):
        (tmp_path / "faces" / person).mkdir(parents=True)
        Image.new("RGB", (8, 8), (50, 60, 70)).save(tmp_path / "faces" / person / "x.png")
    code, printed, err = _run([tmp_path / "faces", "--model", model_file, "--out", tmp_path / "out"], capsys)
    assert code == 1 and "2 in 2 subfolder(s)" in printed and "--recursive" in printed
    assert "nothing was stylized" in err
    code, printed, _ = _run([tmp_path / "faces", "--model", model_file, "--out", tmp_path / "out", "--recursive"],
                            capsys)
    assert code == 0
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "faces/person1/x_stylized.png", "faces/person2/x_stylized.png"]
    (tmp_path / "empty").mkdir()
    code, printed, err = _run([tmp_path / "empty", "--model", model_file, "--out", tmp_path / "out"], capsys)
    assert code == 1 and "no image files" in printed and "nothing was stylized" in err


def test_a_shrunk_image_is_reported(model_file, tmp_path, capsys):
    Image.new("RGB", (64, 32), (10, 20, 30)).save(tmp_path / "wide.png")
    code, printed, _ = _run([tmp_path / "wide.png", "--model", model_file, "--out", tmp_path / "o", "--max-side", "32"],
                            capsys)
    assert code == 0 and Image.open(tmp_path / "o" / "wide_stylized.png").size == (32, 16)
    assert "32x16" in printed and "64x32" in printed and "--max-side 64" in printed


@pytest.fixture(scope="module")
def drn_file(tmp_path_factory, vgg):
    from facestyle_utils.drn import DRNConfig, DRNStylizer

    torch.manual_seed(0)
    model = DRNStylizer(DRNConfig(attention_layers=["relu3_1"], width=0.25, skips=False), vgg=vgg)
    return save_model(model, tmp_path_factory.mktemp("drn") / "drn.pt", kind="drn", metadata={"size": 32})


def test_a_drn_model_file_needs_a_style_image(drn_file, model_file, inputs, tmp_path, capsys):
    folder, single, video = inputs
    code, _, err = _run([single, "--model", drn_file, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--style" in err and "drn.pt" in err and len(err.strip().splitlines()) == 1
    style = tmp_path / "style.png"
    Image.new("RGB", (40, 30), (200, 100, 0)).save(style)
    code, printed, err = _run([single, folder, video, "--model", drn_file, "--style", style,
                               "--out", tmp_path / "o"], capsys)
    assert code == 1 and "skipped bad.jpg" in printed  # the folder's empty file, as with any model
    assert Image.open(tmp_path / "o" / "single_stylized.png").size == (16, 16)
    assert (tmp_path / "o" / "faces" / "one_stylized.png").is_file()
    assert (tmp_path / "o" / "clip_stylized.mp4").stat().st_size > 0
    code, _, err = _run([single, "--model", model_file, "--style", style, "--out", tmp_path / "p"], capsys)
    assert code == 2 and "style built in" in err
    code, _, err = _run([single, "--model", drn_file, "--style", tmp_path / "nope.png", "--out", tmp_path / "p"],
                        capsys)
    assert code == 2 and "nope.png" in err


def test_an_odd_sized_video_keeps_its_size_and_the_run_says_how(model_file, tmp_path, capsys):
    from facestyle_utils.video import VideoWriter, video_info

    clip = tmp_path / "odd.avi"
    with VideoWriter(clip, 12, (37, 45)) as writer:
        for value in (10, 80, 160):
            writer.write(np.full((45, 37, 3), value, np.uint8))
    code, printed, err = _run([clip, "--model", model_file, "--out", tmp_path / "o"], capsys)
    assert code == 0 and "warning:" in err and ".avi" in err
    info = video_info(tmp_path / "o" / "odd_stylized.avi")
    assert (info.width, info.height, info.frames) == (37, 45, 3)


@pytest.mark.skipif(not __import__("facestyle_utils.export", fromlist=["x"]).onnx_available(),
                    reason="onnx, onnxscript and onnxruntime are not installed")
def test_onnx_speed_path_takes_any_photo_size(model_file, tmp_path, capsys):
    Image.new("RGB", (50, 66), (30, 140, 200)).save(tmp_path / "tall.png")
    code, _, err = _run([tmp_path / "tall.png", "--model", model_file, "--out", tmp_path / "o", "--speed", "onnx"],
                        capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "tall_stylized.png").size == (50, 66)


def test_names_that_differ_only_in_case_are_different_inputs_where_the_file_system_says_so(model_file, tmp_path,
                                                                                        capsys):
    Image.new("RGB", (8, 8), (250, 0, 0)).save(tmp_path / "Q.png")
    Image.new("RGB", (8, 8), (0, 0, 250)).save(tmp_path / "q.png")
    if (tmp_path / "Q.png").samefile(tmp_path / "q.png"):
        pytest.skip("this file system ignores case")
    code, printed, _ = _run([tmp_path / "Q.png", tmp_path / "q.png", "--model", model_file, "--out", tmp_path / "o"],
                            capsys)
    assert code == 0 and "listed more than once" not in printed
    # the outputs are still distinct on a case-insensitive file system (macOS, Windows)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["Q_stylized.png", "q_stylized-2.png"]


def test_an_odd_video_switched_to_avi_never_lands_on_another_input(model_file, tmp_path, capsys):
    from facestyle_utils.video import VideoWriter

    for name, value in (("x.avi", 40), ("x_stylized.avi", 200)):
        with VideoWriter(tmp_path / name, 12, (25, 19)) as writer:
            for _ in range(2):
                writer.write(np.full((19, 25, 3), value, np.uint8))
    before = (tmp_path / "x_stylized.avi").read_bytes()
    code, printed, _ = _run([tmp_path / "x.avi", tmp_path / "x_stylized.avi", "--model", model_file,
                             "--out", tmp_path, "--overwrite"], capsys)
    assert code == 0 and (tmp_path / "x_stylized.avi").read_bytes() == before
    assert (tmp_path / "x_stylized-2.avi").is_file() and (tmp_path / "x_stylized_stylized.avi").is_file()


def test_recursive_run_never_reads_its_own_output_folder(model_file, tmp_path, capsys):
    (tmp_path / "faces" / "p1").mkdir(parents=True)
    Image.new("RGB", (8, 8), (5, 6, 7)).save(tmp_path / "faces" / "p1" / "x.png")
    args = [tmp_path / "faces", "--model", model_file, "--out", tmp_path / "faces" / "out",
            "--recursive", "--overwrite"]
    assert _run(args, capsys)[0] == 0
    assert _run(args, capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "faces").rglob("*.png")) == ["x.png", "x_stylized.png"]


def test_a_nonsense_model_metadata_warning_is_one_line(drn_file, tmp_path, capsys):
    from facestyle_utils.checkpoints import load_model

    model = load_model(drn_file)
    bad = save_model(model, tmp_path / "bad_size.pt", kind="drn", metadata={"size": -1})
    Image.new("RGB", (8, 8), (5, 6, 7)).save(tmp_path / "f.png")
    Image.new("RGB", (20, 20), (50, 6, 7)).save(tmp_path / "s.png")
    code, _, err = _run([tmp_path / "f.png", "--model", bad, "--style", tmp_path / "s.png", "--out", tmp_path / "o"],
                        capsys)
    assert code == 0 and err.strip().splitlines() == [
        "warning: the model file's training size -1 is not a whole number of pixels from 16 to 4096; using 256"]


def test_videos_and_hidden_files_in_folders_are_explained(model_file, tmp_path, capsys):
    from facestyle_utils.video import make_zoom_video

    (tmp_path / "clips").mkdir()
    make_zoom_video(np.full((20, 20, 3), 90, np.uint8), tmp_path / "clips" / "c.mp4", frames=2, size=16)
    code, printed, _ = _run([tmp_path / "clips", "--model", model_file, "--out", tmp_path / "o"], capsys)
    assert code == 1 and "give videos directly" in printed
    (tmp_path / "hidden" / ".cache").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "hidden" / ".cache" / "x.png")
    code, printed, _ = _run([tmp_path / "hidden", "--model", model_file, "--out", tmp_path / "o", "--recursive"],
                            capsys)
    assert code == 1 and "hidden files" in printed
    (tmp_path / "plain").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "plain" / "noext", format="PNG")
    code, printed, _ = _run([tmp_path / "plain", "--model", model_file, "--out", tmp_path / "o"], capsys)
    assert code == 0 and (tmp_path / "o" / "plain" / "noext_stylized.png").is_file()


def test_a_drn_file_cannot_take_the_onnx_path(drn_file, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "f.png")
    code, _, err = _run([tmp_path / "f.png", "--model", drn_file, "--style", tmp_path / "f.png", "--speed", "onnx",
                         "--out", tmp_path / "o"], capsys)
    assert code == 2 and "onnx speed path cannot run a style-taking model" in err and len(err.splitlines()) == 1


def test_a_model_file_error_names_the_file_once_without_quotes(tmp_path, capsys):
    from facestyle_utils.checkpoints import atomic_save, safe_load
    from facestyle_utils.student import FastStudent

    data = safe_load(save_model(FastStudent(), tmp_path / "ok.pt", kind="student"))
    data["metadata"] = "hello"
    bad = atomic_save(data, tmp_path / "meta.pt")
    Image.new("RGB", (8, 8)).save(tmp_path / "f.png")
    code, _, err = _run([tmp_path / "f.png", "--model", bad, "--out", tmp_path / "o"], capsys)
    assert code == 2 and err == (f"error: cannot use model {bad}: "
                                 "metadata is str 'hello', expected a dict of plain values\n")

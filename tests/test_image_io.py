"""load_image turns every kind of input into upright 8-bit RGB, or fails naming the file."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.image_io import (ImageLoadError, image_to_tensor, load_image, resize_image, save_image,
                                      tensor_to_image, to_array)


def _png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def gradient() -> np.ndarray:
    """A 20x30 RGB image whose pixels are all different, so orientation mistakes show."""
    y, x = np.mgrid[0:20, 0:30]
    return np.stack([x * 8, y * 12, (x + y) * 4], axis=2).astype(np.uint8)


def test_path_bytes_pil_and_array_give_the_same_rgb(tmp_path, gradient):
    path = tmp_path / "g.png"
    Image.fromarray(gradient).save(path)
    for source in (path, str(path), path.read_bytes(), Image.fromarray(gradient), gradient):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (30, 20)
        np.testing.assert_array_equal(np.asarray(image), gradient)


def test_gray_becomes_three_equal_channels():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    array = np.asarray(load_image(_png_bytes(Image.fromarray(gray, "L"))))
    assert array.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(array[:, :, channel], gray)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    array = np.asarray(load_image(_png_bytes(Image.fromarray(rgba, "RGBA"))))
    assert (array[:2] == [255, 0, 0]).all()
    assert (array[2:] == [255, 255, 255]).all()


def test_palette_with_transparency_and_cmyk_become_rgb(gradient):
    palette = Image.fromarray(gradient).convert("P")
    palette.info["transparency"] = 0
    assert load_image(_png_bytes(palette)).mode == "RGB"
    cmyk = Image.new("CMYK", (5, 5), (0, 255, 255, 0))  # pure red in CMYK
    array = np.asarray(load_image(_png_bytes(cmyk, "JPEG")))
    assert array.shape == (5, 5, 3)
    assert array[..., 0].mean() > 200 and array[..., 1].mean() < 60


def test_sixteen_bit_is_scaled_to_eight_bit():
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    array = np.asarray(load_image(_png_bytes(Image.fromarray(values))))
    assert array[0, 0, 0] == 0 and array[0, 1, 0] == 255 and 126 <= array[1, 0, 0] <= 129
    np.testing.assert_array_equal(np.asarray(load_image(values)), array)  # uint16 arrays too


def test_exif_orientation_is_applied(gradient):
    image = Image.fromarray(gradient)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    upright = load_image(_png_bytes(image, "JPEG", exif=exif.tobytes(), quality=100))
    assert upright.size == (20, 30)  # width and height swapped


def test_float_arrays_are_clipped_and_scaled():
    array = np.asarray(load_image(np.array([[0.0, 0.5], [1.0, 2.0]])))
    assert list(array[..., 0].ravel()) == [0, 128, 255, 255]
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.array([[np.nan]]))


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    (b"this is a text file, not a picture", "not an image"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=problem) as error:
        load_image(path)
    assert str(path) in str(error.value)


def test_truncated_file_is_refused(tmp_path, gradient):
    data = _png_bytes(Image.fromarray(gradient).resize((300, 200)), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated") as error:
        load_image(path)
    assert "cut.jpg" in str(error.value)


def test_missing_file_and_folder_and_wrong_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(TypeError, match="cannot read a int"):
        load_image(42)
    with pytest.raises(ImageLoadError, match="shape"):
        load_image(np.zeros((4, 4, 2), dtype=np.uint8))


def test_max_side_downscales_large_images(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(path)
    image = load_image(path, max_side=500)
    assert max(image.size) == 500 and image.size == (500, 375)


def test_tensor_round_trip_is_exact(gradient):
    tensor = image_to_tensor(gradient)
    assert tensor.shape == (1, 3, 20, 30) and tensor.dtype == torch.float32
    assert tensor.is_contiguous() and 0 <= tensor.min() and tensor.max() <= 1
    np.testing.assert_array_equal(to_array(tensor_to_image(tensor)), gradient)
    np.testing.assert_array_equal(to_array(tensor), gradient)


def test_tensor_to_image_refuses_batches_and_bad_shapes():
    with pytest.raises(ValueError, match="batch of 2"):
        tensor_to_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        tensor_to_image(torch.zeros(5, 4, 4))


def test_resize_image_keeps_shorter_side_and_multiple(gradient):
    image = resize_image(gradient, 17, multiple_of=8)
    assert image.size == (24, 16)


def test_save_image_creates_folders_and_refuses_to_overwrite(tmp_path, gradient):
    path = save_image(gradient, tmp_path / "out" / "deep" / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), gradient)
    with pytest.raises(FileExistsError, match="already exists"):
        save_image(gradient, path)
    save_image(np.zeros_like(gradient), path, overwrite=True)
    assert np.asarray(Image.open(path)).max() == 0
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temporary files left


def test_save_image_never_overwrites_an_input(tmp_path, gradient):
    path = tmp_path / "input.png"
    Image.fromarray(gradient).save(path)
    before = path.read_bytes()
    load_image(path)
    with pytest.raises(FileExistsError, match="input image"):
        save_image(np.zeros_like(gradient), path, overwrite=True)
    assert path.read_bytes() == before


def test_save_image_rejects_unknown_extension(tmp_path, gradient):
    with pytest.raises(ValueError, match="unknown image extension"):
        save_image(gradient, tmp_path / "a.notanimage")


def test_saved_files_get_normal_permissions(tmp_path, gradient):
    import os

    umask = os.umask(0o022)
    try:
        path = save_image(gradient, tmp_path / "p.png")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644

"""load_image turns every kind of input into upright 8-bit RGB, or fails naming the file."""
import io
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from facestyle_utils.image_io import (
    ImageLoadError,
    image_to_tensor,
    load_image,
    resize_image,
    save_image,
    tensor_to_image,
    to_array,
    to_float_batch,
    to_unit_float,
)


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
    # Overshoot up to 0.5 is clipped; 2.0 (once silently clipped) is now refused, see test_out_of_range_*.
    array = np.asarray(load_image(np.array([[-0.2, 0.5], [1.0, 1.3]])))
    assert list(array[..., 0].ravel()) == [0, 128, 255, 255]
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.array([[np.nan]]))
    with pytest.raises(ImageLoadError, match="infinite"):
        load_image(torch.tensor([[[np.inf]]]))


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


# --- Value ranges: one rule whichever way an image comes (issue #14) ---------------------------------

def _pixels(source) -> np.ndarray:
    return np.asarray(load_image(source))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint32, np.uint64])
def test_integer_arrays_hold_0_to_255(dtype):
    array = np.full((2, 3, 3), 100, dtype)
    assert (_pixels(array) == 100).all()
    assert (_pixels(array[..., 0]) == 100).all()  # gray too


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_integer_tensors_hold_0_to_255(dtype):
    tensor = torch.full((3, 2, 2), 100, dtype=dtype)
    assert (_pixels(tensor) == 100).all()  # once clamped to 1 -> every pixel 255
    assert (to_array(tensor_to_image(tensor[None])) == 100).all()
    assert (image_to_tensor(tensor) * 255).round().eq(100).all()
    assert torch.allclose(to_float_batch(tensor), torch.full((1, 3, 2, 2), 100 / 255))


def test_bool_images_are_black_and_white():
    mask = np.array([[True, False]])
    assert _pixels(mask)[0, :, 0].tolist() == [255, 0]
    assert _pixels(torch.from_numpy(mask)[None])[0, :, 0].tolist() == [255, 0]


def _tiff_bytes(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".tiff", array)
    assert ok
    return data.tobytes()


def test_one_half_is_128_whichever_way_it_comes(tmp_path):
    half = np.full((2, 2), 0.5, np.float32)
    path = tmp_path / "half.tif"
    Image.fromarray(half).save(path)  # mode "F": once loaded almost black (value 1)
    sources = [half, half.astype(np.float64), half.astype(np.float16), Image.fromarray(half), path,
               _tiff_bytes(half), _tiff_bytes(np.dstack([half] * 3)),  # an RGB float TIFF that Pillow cannot open
               torch.from_numpy(half)[None], torch.from_numpy(half)[None].half(),
               torch.from_numpy(half)[None].bfloat16()]
    for source in sources:
        assert (_pixels(source) == 128).all(), type(source)


def test_float_rgb_tiff_keeps_channel_order():
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[..., 0] = 1.0  # red
    assert _pixels(_tiff_bytes(rgb[..., ::-1]))[0, 0].tolist() == [255, 0, 0]  # OpenCV writes BGR


def test_sixteen_bit_arrays_tensors_and_files_agree(tmp_path):
    values = np.array([[0, 255, 1000, 32767, 32768, 65279, 65535]], np.uint16)
    expected = (values >> 8).astype(np.uint8)  # the high byte, as Pillow decodes 16-bit RGB files
    png = tmp_path / "gray16.png"
    Image.fromarray(values).save(png)  # mode I;16
    ok, rgb_png = cv2.imencode(".png", np.dstack([values] * 3))  # 16-bit RGB: Pillow decodes it as 8-bit
    sources = [values, values.astype(">u2"), np.dstack([values] * 3), Image.fromarray(values), png,
               rgb_png.tobytes(), _tiff_bytes(values)]
    if hasattr(torch, "uint16"):
        sources.append(torch.from_numpy(values)[None])
    for source in sources:
        np.testing.assert_array_equal(_pixels(source)[..., 0], expected, err_msg=str(type(source)))
    unit = to_unit_float(values)
    assert unit.dtype == torch.float32 and torch.equal(unit, torch.from_numpy(expected).float() / 255)


def test_int32_tiff_and_pil_mode_i_hold_0_to_255(tmp_path):
    values = np.array([[0, 100, 255]], np.int32)
    path = tmp_path / "int32.tif"
    Image.fromarray(values).save(path)  # mode "I"
    for source in (path, Image.fromarray(values), _tiff_bytes(values), _tiff_bytes(values.astype(np.int16))):
        assert _pixels(source)[0, :, 0].tolist() == [0, 100, 255]


@pytest.mark.parametrize("source, expected", [
    (np.full((2, 2), 300, np.int32), ["<array>", "int32", "300..300", "0..255", "uint16 for 16-bit"]),
    (np.array([[-1, 5]], np.int16), ["int16", "-1..5"]),
    (torch.full((3, 2, 2), 1000, dtype=torch.int64), ["<tensor>", "torch.int64", "1000..1000"]),
    (np.array([[0.0, 255.0]]), ["float64", "0..255", "divide 0-255 data by 255"]),
    (torch.tensor([[[-1.0, 1.0]]]), ["torch.float32", "-1..1", "[0, 1]"]),
    (np.array([[0.2, 1.6]], np.float32), ["float32", "0.2..1.6"]),
    (Image.fromarray(np.full((2, 2), 200.0, np.float32)), ["mode F", "float32", "200..200"]),  # convert("F") data
    (Image.fromarray(np.full((2, 2), 4000, np.int32)), ["mode I", "int32", "4000..4000"]),
    (np.zeros((2, 2), np.complex64), ["complex64"]),
])
def test_out_of_range_values_are_refused_with_dtype_and_range(source, expected):
    with pytest.raises(ImageLoadError) as error:
        load_image(source)
    for part in expected:
        assert part in str(error.value)


def test_out_of_range_files_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "counts.tif"
    Image.fromarray(np.full((2, 2), 4000, np.int32)).save(path)  # 16-bit data stored as 32-bit integers
    signed = tmp_path / "signed.tif"
    signed.write_bytes(_tiff_bytes(np.array([[-1, 5]], np.int8)))  # Pillow reads it as "L": -1 would be white
    for bad, span in ((path, "4000..4000"), (signed, "-1..5")):
        with pytest.raises(ImageLoadError, match="0..255") as error:
            load_image(bad)
        assert str(bad) in str(error.value) and span in str(error.value)


def test_overshoot_is_clipped_for_tensors_too():
    tensor = torch.tensor([[[-0.4, 0.0, 1.0, 1.5]]])
    assert _pixels(tensor)[0, :, 0].tolist() == [0, 0, 255, 255]
    assert to_float_batch(tensor)[0, 0].flatten().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_sixteen_bit_file_keeps_its_exif_orientation():
    values = np.arange(6, dtype=np.uint16).reshape(2, 3) * 10000
    image = Image.fromarray(values)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    for fmt in ("PNG", "TIFF"):
        upright = load_image(_png_bytes(image, fmt, exif=exif.tobytes()))
        np.testing.assert_array_equal(np.asarray(upright)[..., 0], np.rot90(values >> 8, -1))


def test_to_float_batch_returns_a_new_float32_batch_and_leaves_its_argument_alone():
    images = torch.full((2, 3, 4, 5), 51, dtype=torch.uint8)
    batch = to_float_batch(images, "frames")
    assert batch.shape == (2, 3, 4, 5) and batch.dtype == torch.float32 and batch.device == images.device
    assert torch.allclose(batch, torch.full_like(batch, 0.2))
    assert images.dtype == torch.uint8 and (images == 51).all()
    floats = torch.rand(3, 4, 5)
    out = to_float_batch(floats)
    assert out.shape == (1, 3, 4, 5) and out.data_ptr() != floats.data_ptr() and torch.equal(out[0], floats)
    out.zero_()
    assert floats.max() > 0  # a new tensor, not a view of the argument
    gray = to_float_batch(torch.full((2, 1, 4, 5), 255, dtype=torch.int32))
    assert gray.shape == (2, 3, 4, 5) and (gray == 1).all()
    channels_last = torch.rand(2, 3, 4, 5).to(memory_format=torch.channels_last)
    to_float_batch(channels_last)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)


def test_to_float_batch_refuses_bad_shapes_types_and_ranges():
    with pytest.raises(ImageLoadError, match="frames: .*shape"):
        to_float_batch(torch.zeros(2, 4, 8, 8), "frames")
    with pytest.raises(TypeError, match="tensor"):
        to_float_batch(np.zeros((3, 8, 8)))
    with pytest.raises(ImageLoadError, match=r"frames: torch.float32 values span 0..255"):
        to_float_batch(torch.linspace(0, 255, 48).reshape(1, 3, 4, 4), "frames")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_to_float_batch_stays_on_the_gpu():
    images = torch.full((1, 3, 4, 4), 100, dtype=torch.uint8, device="cuda")
    batch = to_float_batch(images)
    assert batch.device == images.device and torch.allclose(batch.cpu(), torch.full((1, 3, 4, 4), 100 / 255))
    assert (to_array(images) == 100).all()


def test_tensor_with_max_side_is_shrunk():
    assert load_image(torch.rand(3, 40, 80), max_side=20).size == (20, 10)



# --- Real-world inputs, second round (issue #14: F8-F14, F17) ------------------------------------------

def test_quantized_sparse_and_odd_dtype_tensors():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch deprecates creating quantized tensors
        quantized = torch.quantize_per_tensor(torch.full((3, 2, 2), 0.5), 0.5 / 128, 0, torch.quint8)
    assert (_pixels(quantized) == 128).all()  # dequantized: its float values follow the float rule
    assert (_pixels(torch.full((3, 2, 2), 0.5).to_sparse()) == 128).all()
    odd = torch.zeros(3, 2, 2, dtype=torch.uint8).view(torch.uint4) if hasattr(torch, "uint4") else None
    if odd is not None:
        with pytest.raises(ImageLoadError, match="<tensor>: unsupported dtype torch.uint4"):
            load_image(odd)
    with pytest.raises(ImageLoadError, match="meta device"):
        load_image(torch.zeros(3, 2, 2, device="meta"))


@pytest.mark.parametrize("magic, maxval, value", [
    ("P5", 1023, 512), ("P5", 4095, 2048), ("P5", 65535, 32768), ("P5", 255, 128),
    ("P6", 1023, 512), ("P6", 65535, 32768),
])
def test_pgm_and_ppm_are_scaled_by_their_maxval(tmp_path, magic, maxval, value):
    count = 16 * (3 if magic == "P6" else 1)
    samples = np.full(count, value, ">u2" if maxval > 255 else np.uint8).tobytes()
    path = tmp_path / f"x{maxval}.{'ppm' if magic == 'P6' else 'pgm'}"
    path.write_bytes(f"{magic} 4 4 {maxval}\n".encode() + samples)
    assert (_pixels(path) == 128).all()


tifffile = pytest.importorskip("tifffile")


def _tiff(path, array, **kwargs):
    tifffile.imwrite(path, array, **kwargs)
    return path


@pytest.mark.parametrize("array", [np.full((3, 4, 4), 0x8000, np.uint16), np.full((3, 4, 4), 0.5, np.float32),
                                   np.full((3, 4, 4), 0.5, np.float16), np.full((3, 4, 4), 128, np.uint8)])
def test_planar_tiffs_give_the_right_pixels(tmp_path, array):
    path = _tiff(tmp_path / "planar.tif", array, planarconfig="separate", photometric="rgb")
    assert (_pixels(path) == 128).all()  # once alternating 0/128 columns (16-bit) or NaN errors (float)


def test_planar_tiff_keeps_channel_order(tmp_path):
    planes = np.zeros((3, 2, 2), np.uint16)
    planes[0] = 65535  # red
    path = _tiff(tmp_path / "red.tif", planes, planarconfig="separate", photometric="rgb")
    assert _pixels(path)[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("array, expected", [
    (np.full((4, 4), 0x2000, np.uint16), 223), (np.full((4, 4), 200, np.uint8), 55),
    (np.full((4, 4), 0.25, np.float32), 191), (np.full((4, 4), 0.25, np.float16), 191),
])
def test_miniswhite_tiffs_are_inverted_at_every_depth(tmp_path, array, expected):
    path = _tiff(tmp_path / "msw.tif", array, photometric="miniswhite")
    assert (_pixels(path) == expected).all()


def test_float16_tiff_loads_without_opencv_noise(tmp_path, capfd):
    for shape in ((4, 4), (4, 4, 3)):
        path = _tiff(tmp_path / "half16.tif", np.full(shape, 0.5, np.float16),
                     photometric="rgb" if len(shape) == 3 else "minisblack")
        assert (_pixels(path) == 128).all()
    with pytest.raises(ImageLoadError, match="not an image file"):
        load_image(b"neither PIL nor OpenCV can read this")
    assert "ERROR" not in capfd.readouterr().err  # OpenCV's log is silenced during the fallback decode


def test_undecodable_planar_tiff_names_the_cause(tmp_path, monkeypatch):
    path = _tiff(tmp_path / "planar.tif", np.full((3, 4, 4), 0.5, np.float32), planarconfig="separate",
                 photometric="rgb")

    def no_codec(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)
    with pytest.raises(ImageLoadError, match=r"planar TIFF \(float32\) cannot be decoded .*imagecodecs") as error:
        load_image(path)
    assert str(path) in str(error.value)


def test_tiff_read_by_tifffile_keeps_orientation(tmp_path):
    values = (np.arange(6, dtype=np.float16).reshape(2, 3) / 8)
    path = _tiff(tmp_path / "rot.tif", values, extratags=[(274, "H", 1, 6, True)])
    expected = np.rot90(np.asarray(load_image(values.astype(np.float32)))[..., 0], -1)
    np.testing.assert_array_equal(_pixels(path)[..., 0], expected)


@pytest.mark.parametrize("mode, expected", [("La", [100, 100, 100]), ("RGBa", [100, 100, 100])])
def test_premultiplied_alpha_modes(mode, expected):
    opaque = Image.new("RGBA", (4, 4), (100, 100, 100, 255)).convert(mode)
    assert (_pixels(opaque) == expected).all()
    half = Image.new("LA", (4, 4), (100, 128)).convert("La")
    assert abs(int(_pixels(half)[0, 0, 0]) - 178) <= 1  # 100 on white at alpha 128, as the LA image gives


@pytest.mark.parametrize("fmt, extra", [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {}), ("TIFF", {})])
def test_multi_frame_images_warn_once_and_use_the_first_frame(tmp_path, fmt, extra):
    frames = [Image.new("RGB", (4, 4), (value, 0, 0)) for value in (200, 50, 100)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], **extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (_pixels(path)[..., 0] == 200).all()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert messages == [f"{path}: has 3 frames; only the first frame is used"]


def test_single_frame_images_do_not_warn(tmp_path, gradient):
    path = tmp_path / "one.gif"
    Image.fromarray(gradient).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(path)


def test_multi_page_tiff_read_by_tifffile_warns(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as writer:  # two float16 pages (Pillow cannot open float16)
        for value in (0.5, 1.0):
            writer.write(np.full((4, 4), value, np.float16), photometric="minisblack")
    with pytest.warns(UserWarning, match="pages.tif: has 2 frames; only the first frame is used"):
        assert (_pixels(path) == 128).all()


def test_tiff_no_decoder_can_read_names_the_cause_quietly(tmp_path, monkeypatch, capfd):
    path = _tiff(tmp_path / "f16.tif", np.full((4, 4), 0.5, np.float16), photometric="minisblack")

    def no_codec(self, *args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)  # OpenCV then fails too: float16
    with pytest.raises(ImageLoadError, match="not an image file PIL or OpenCV can read .*tifffile: .*imagecodecs"):
        load_image(path)
    assert "ERROR" not in capfd.readouterr().err  # once "[ERROR:0@...] ... sample_format is 3"


def test_heic_photo_without_pillow_heif_names_the_file_and_the_fix(tmp_path, monkeypatch):
    from facestyle_utils import image_io

    monkeypatch.setattr(image_io, "heif_support", lambda: False)
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64)  # the header an iPhone writes
    with pytest.raises(image_io.ImageLoadError, match=r"IMG_0001\.HEIC.*HEIC/HEIF photo.*pip install pillow-heif"):
        image_io.load_image(path)

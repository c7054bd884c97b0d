"""Image I/O: the one way images enter and leave the course.

Every image goes through :func:`load_image`, which fixes the things that break
style-transfer code in practice (EXIF rotation, gray/RGBA/CMYK/16-bit modes, files
that are not images) and returns a plain RGB ``PIL.Image``. Conversions between
PIL images, uint8 arrays and float tensors live here too, so no notebook has to
remember which library puts channels where.

What pixel values mean is decided by one rule, :func:`to_unit_float`, whichever way an
image arrives (array, tensor, PIL image of any mode, file, metrics input):

- uint8: 0-255; bool: 0/1 (black/white).
- uint16 (arrays, tensors, PIL "I;16" modes, 16-bit PNG/TIFF/PPM files, PGM files with any maxval
  above 255, which Pillow rescales to 0-65535): 0-65535, kept to its
  high byte (``v // 256``), as Pillow decodes 16-bit RGB files and as
  ``skimage.util.img_as_ubyte`` does, so all of them give the same pixels.
- every other integer type (int8-int64, uint32, PIL mode "I", 32-bit integer TIFFs): 0-255;
  anything outside is refused.
- floats (any width, PIL mode "F", float TIFFs): [0, 1] and finite; overshoot up to 0.5
  beyond either end is clipped, anything beyond [-0.5, 1.5] (0-255 or [-1, 1] data) is refused.
  Quantized tensors are dequantized to the floats they stand for.
- TIFF MINISWHITE files of any depth are inverted (0 is white). TIFFs Pillow cannot open or
  misreads (float16, planar 16-bit or float) are read with tifffile.
- Multi-frame files (animated GIF/WebP/PNG, multi-page TIFF) give their first frame, with a
  UserWarning naming the file and the frame count.
"""
from __future__ import annotations

import functools
import io
import math
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import atomic_write

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, torch.Tensor]

#: File extensions taken for images when a folder is read (lesson 01's domain builds, folder stylizing).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})

#: Background used when flattening transparent images (white, like a page).
BACKGROUND = (255, 255, 255)

# Paths that load_image has read in this process: save_image refuses to write over them.
_loaded_inputs: set[Path] = set()


class ImageLoadError(ValueError):
    """An input could not be turned into an RGB image; the message names the input."""


def _problem(name: str, what: str) -> ImageLoadError:
    return ImageLoadError(f"{name}: {what}")


def _open_path(path: Path, max_side: int | None) -> Image.Image:
    """Open a file with PIL, turning every failure into an error naming the file."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise _problem(str(path), "is a folder, not an image file")
    if path.stat().st_size == 0:
        raise _problem(str(path), "file is empty (0 bytes)")
    _loaded_inputs.add(path.resolve())
    return _open_bytes(path.read_bytes(), str(path), max_side)


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")


@functools.cache
def heif_support() -> bool:
    """Register pillow-heif's opener once if it is installed (iPhone HEIC/HEIF photos); True if it is."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _open_bytes(data: bytes, name: str, max_side: int | None) -> Image.Image:
    if len(data) == 0:
        raise _problem(name, "no data (0 bytes)")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS and not heif_support():
        raise _problem(name, "is a HEIC/HEIF photo (iPhone); install pillow-heif (pip install pillow-heif) "
                             "to read it, or export it as JPEG")
    try:
        image = Image.open(io.BytesIO(data))
        if max_side is not None and image.format == "JPEG":
            image.draft(image.mode, (max_side, max_side))  # decode at reduced scale: bounded memory
        image.load()  # decode now, so truncated files fail here and not later
    except UnidentifiedImageError:
        return _decode_tiff(data, name) if data[:4] in _TIFF_MAGIC else _decode_with_opencv(data, name)
    except Image.DecompressionBombError as err:
        raise _problem(name, f"image is too large to decode safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise _problem(name, f"file is truncated or corrupted ({err})") from None
    if image.format == "TIFF" and _is_planar_wide(image):
        return _decode_tiff(data, name)  # Pillow interleaves the bytes of 16-bit planes wrongly
    return image


_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders


def _is_planar_wide(image: Image.Image) -> bool:
    """True for a TIFF that stores each channel as its own plane with more than 8 bits a sample."""
    return image.tag_v2.get(284) == 2 and max(np.atleast_1d(image.tag_v2.get(258, 8))) > 8


def _decode_tiff(data: bytes, name: str) -> Image.Image:
    """TIFFs Pillow cannot open or misreads (float16, planar 16-bit or float), read with tifffile.

    The first page is used (a UserWarning says so when there are more), MINISWHITE is
    inverted and the EXIF orientation kept; values follow :func:`to_unit_float`. A
    compression tifffile has no codec for goes to OpenCV, except planar files (which OpenCV
    misreads): those are refused naming the cause.
    """
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page, frames = tiff.pages.first, len(tiff.pages)
            try:
                array = page.asarray()
            except ValueError as err:  # e.g. "<COMPRESSION.LZW: 5> requires the 'imagecodecs' package"
                if page.planarconfig == 2:
                    raise _problem(name, f"planar TIFF ({page.dtype}) cannot be decoded ({err})") from None
                return _decode_with_opencv(data, name, cause=f"tifffile: {err}")
            planes_first, invert, orientation = page.axes.startswith("S"), page.photometric == 0, page.tags.valueof(274)
    except (tifffile.TiffFileError, KeyError, IndexError) as err:
        raise _problem(name, f"TIFF file is corrupted or unsupported ({err})") from None
    _warn_frames(name, frames, "TIFF")
    array = np.moveaxis(array, 0, -1) if planes_first else array  # planar (S, H, W) -> (H, W, S)
    return _keep_orientation(_array_to_pil(array, name, invert=invert), orientation)  # photometric 0: MINISWHITE


def _decode_with_opencv(data: bytes, name: str, cause: str = "") -> Image.Image:
    """Files Pillow cannot open but OpenCV can, with values by :func:`to_unit_float`; OpenCV's log kept quiet."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # no "[ERROR:0@...]" lines on stderr
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        array = None
    finally:
        cv2.utils.logging.setLogLevel(level)
    if array is None:
        raise _problem(name, f"not an image file PIL or OpenCV can read{f' ({cause})' if cause else ''}")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]  # OpenCV's BGR(A) -> RGB(A)
    return _array_to_pil(array, name)


#: Formats whose extra "frames" are not pictures of their own (MPO: depth or gain maps; PSD: layers).
_SINGLE_PICTURE_FORMATS = ("MPO", "PSD")


def _frame_count(image: Image.Image) -> int:
    """How many frames (pages, animation frames) a PIL image has; 1 if it cannot tell (e.g. its file is closed)."""
    try:
        return getattr(image, "n_frames", 1)
    except (OSError, ValueError, EOFError):
        return 1


def _warn_frames(name: str, frames: int, image_format: str | None) -> None:
    """Warn (UserWarning) that only the first frame of a multi-frame image is used."""
    if frames > 1 and image_format not in _SINGLE_PICTURE_FORMATS:
        warnings.warn(f"{name}: has {frames} frames; only the first frame is used", UserWarning, stacklevel=2)


_TENSOR_DTYPES = tuple(getattr(torch, kind) for kind in ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16",
                                                      "uint32", "uint64") if hasattr(torch, kind))
_WIDE_UNSIGNED = tuple(getattr(torch, kind) for kind in ("uint16", "uint32", "uint64") if hasattr(torch, kind))


def _as_tensor(values: np.ndarray | torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Wrap values as a tensor torch computes with (no copy where possible); True if they are 16-bit."""
    if isinstance(values, torch.Tensor):
        if values.is_meta:
            raise _problem(name, "is on the meta device and holds no values")
        if values.is_quantized:
            values = values.dequantize()  # the float values it stands for; the float rule applies
        elif values.layout != torch.strided:
            values = values.to_dense()  # sparse
        if values.dtype not in _TENSOR_DTYPES and not values.is_floating_point():
            raise _problem(name, f"unsupported dtype {values.dtype} (use a bool, integer or float tensor)")
        sixteen_bit = values.dtype == getattr(torch, "uint16", None)
        return (values.to(torch.int64) if values.dtype in _WIDE_UNSIGNED else values), sixteen_bit
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind not in "biuf":
        raise _problem(name, f"unsupported dtype {values.dtype}")
    wanted = np.int64 if kind == "u" and size > 1 else np.float64 if kind == "f" and size > 8 else values.dtype
    array = np.ascontiguousarray(values, dtype=np.dtype(wanted).newbyteorder("="))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a read-only array: nothing here writes to it
        return torch.from_numpy(array), kind == "u" and size == 2


def _value_range(tensor: torch.Tensor) -> tuple[float, float]:
    low, high = torch.aminmax(tensor)
    return tuple(torch.stack([low, high]).tolist())  # one device sync


def _check_eight_bit(tensor: torch.Tensor, described: str) -> None:
    low, high = _value_range(tensor)
    if low < 0 or high > 255:
        raise ImageLoadError(f"{described} values span {low}..{high}, but integer images hold 0..255 "
                             "(use uint8 for 8-bit data, uint16 for 16-bit data, floats for [0, 1] data)")


def _clip_unit_floats(tensor: torch.Tensor, described: str) -> torch.Tensor:
    low, high = _value_range(tensor)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ImageLoadError(f"{described} values contain NaN or infinite values")
    if low < -0.5 or high > 1.5:
        raise ImageLoadError(f"{described} values span {low:.4g}..{high:.4g}, but float images lie in [0, 1] "
                             "(divide 0-255 data by 255; map [-1, 1] data with (x + 1) / 2)")
    return tensor.clamp(0, 1)


def to_unit_float(values: np.ndarray | torch.Tensor, name: str = "<tensor>",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The package's one value-range rule: image values of any dtype -> a NEW float tensor in [0, 1].

    ``values`` is a numpy array or a tensor of any shape; the result has its shape, the
    float ``dtype`` asked for and its device (the CPU for arrays). The argument is never
    modified. The rule (see the module docstring): uint8 0-255; bool 0/1; uint16
    0-65535 (kept to its high byte); other integers 0-255; floats [0, 1], clipped there
    from at most [-0.5, 1.5].

    Quantized tensors are dequantized (their float values follow the float rule) and sparse
    ones made dense. Raises ImageLoadError (a ValueError) naming ``name``, the dtype and the
    range found for integers outside 0..255 (uint16 aside), floats beyond [-0.5, 1.5], NaN or
    infinite values, no values at all, a meta tensor, or a dtype that is not bool, integer or
    float (complex, torch.uint1-uint7, bits).
    """
    described = f"{name}: {values.dtype}"
    tensor, sixteen_bit = _as_tensor(values, name)
    if tensor.numel() == 0:
        raise _problem(name, "has no pixels")
    if sixteen_bit:
        tensor = tensor >> 8  # the high byte, as Pillow decodes 16-bit files and skimage's img_as_ubyte
    elif tensor.is_floating_point():
        return _clip_unit_floats(tensor.to(dtype), described)
    elif tensor.dtype not in (torch.uint8, torch.bool):
        _check_eight_bit(tensor, described)
    return tensor.to(dtype) if tensor.dtype == torch.bool else tensor.to(dtype).div_(255)


def _to_uint8(unit: torch.Tensor) -> np.ndarray:
    """Floats in [0, 1] -> uint8 array on the CPU (0.5 -> 128: halves round up)."""
    return unit.mul(255).add_(0.5).to(torch.uint8).cpu().numpy()


def _array_to_pil(array: np.ndarray, name: str, invert: bool = False) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 array of any dtype (values by :func:`to_unit_float`) -> L, RGB or RGBA image.

    ``invert`` maps each value v to white minus v (0 is white: TIFF MINISWHITE).
    """
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise _problem(name, f"array of shape {array.shape} is not HxW, HxWx3 or HxWx4")
    if array.size == 0:
        raise _problem(name, "array is empty")
    if array.dtype != np.uint8 or invert:
        unit = to_unit_float(array, name)
        array = _to_uint8(unit.neg_().add_(1) if invert else unit)
    return Image.fromarray(np.ascontiguousarray(array))


def _stored_values(image: Image.Image) -> np.ndarray | None:
    """The pixel values of images whose mode does not say their range (16/32-bit, float, signed 8-bit), else None."""
    if image.mode == "I" and image.format in ("PNG", "PPM"):
        # 16-bit gray: older Pillow opens PNGs as mode "I"; PGM samples are already scaled by Pillow
        # from 0..maxval (1023, 4095, 65535, ...) to 0..65535, so they are 16-bit values.
        return np.asarray(image).astype(np.uint16)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return np.asarray(image)
    sample_format = getattr(image, "tag_v2", {}).get(339, 1) if image.format == "TIFF" else 1
    if image.mode in ("L", "RGB") and 2 in np.atleast_1d(sample_format):  # TIFF SampleFormat 2: signed
        return np.asarray(image).view(np.int8)
    return None


def _to_eight_bit(image: Image.Image, name: str) -> Image.Image:
    """16-bit, 32-bit integer, float and signed images -> 8-bit by :func:`to_unit_float`, keeping EXIF orientation."""
    values = _stored_values(image)
    if values is None:
        return image
    min_is_white = image.format == "TIFF" and image.tag_v2.get(262) == 0  # Pillow inverts only 1- and 8-bit
    eight_bit = _array_to_pil(values, f"{name} (mode {image.mode})", invert=min_is_white)
    return _keep_orientation(eight_bit, image.getexif().get(0x0112))


def _keep_orientation(eight_bit: Image.Image, orientation: int | None) -> Image.Image:
    """Store an EXIF orientation in a converted image, so exif_transpose still applies it."""
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        eight_bit.info["exif"] = exif.tobytes()
    return eight_bit


def _to_rgb(image: Image.Image, name: str = "<PIL image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency onto white."""
    image = _to_eight_bit(image, name)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "La":
        image = image.convert("LA")  # premultiplied alpha: Pillow converts La only to LA
    if image.mode in ("LA", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    except ValueError as err:
        raise _problem(name, f"mode {image.mode} cannot be converted to RGB ({err})") from None


def load_image(source: ImageLike, *, max_side: int | None = None, name: str | None = None) -> Image.Image:
    """Load a path, bytes, PIL image, array or tensor as an upright 8-bit RGB PIL image.

    Arrays are HxW, HxWx1, HxWx3 or HxWx4; tensors (3, H, W), (1, 3, H, W) or (1, H, W).
    Pixel values follow :func:`to_unit_float` whichever way the image comes (uint8 0-255,
    uint16 and 16-bit files 0-65535, other integers 0-255, floats and float TIFFs [0, 1]).
    ``max_side`` shrinks large images while decoding (JPEG draft mode), so a 50-megapixel
    phone photo never sits in memory at full size. The input is never modified.

    A multi-frame image (animated GIF/WebP/PNG, multi-page TIFF) gives its first frame and a
    UserWarning "<name>: has N frames; only the first frame is used".

    Raises FileNotFoundError for a missing path, TypeError for another kind of source and
    ImageLoadError (a ValueError) naming the input for anything unreadable or out of range.
    """
    image, name = _open(source, name, max_side)
    _warn_frames(name, _frame_count(image), image.format)
    if image.width == 0 or image.height == 0:
        raise _problem(name, "image has no pixels")
    image = _to_rgb(ImageOps.exif_transpose(_to_eight_bit(image, name)), name)
    if max_side is not None and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _open(source: ImageLike, name: str | None, max_side: int | None) -> tuple[Image.Image, str]:
    """Any source -> a PIL image (any mode) and the name errors use for it."""
    if isinstance(source, (str, os.PathLike)):
        return _open_path(Path(source), max_side), name or str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "<bytes>"
        return _open_bytes(bytes(source), name, max_side), name
    if isinstance(source, Image.Image):
        return source, name or "<PIL image>"
    if isinstance(source, torch.Tensor):
        name = name or "<tensor>"
        return tensor_to_image(source, name), name
    if isinstance(source, np.ndarray):
        name = name or "<array>"
        return _array_to_pil(source, name), name
    raise TypeError(f"load_image cannot read a {type(source).__name__}; pass a path, bytes, PIL image or array")


def save_image(image: ImageLike, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save an image, creating folders; never writes over an input that load_image read.

    Existing files are kept unless ``overwrite=True``; the write goes to a temporary
    file first and is renamed into place, so a crash never leaves half an image.
    """
    path = Path(path)
    if path.resolve() in _loaded_inputs:
        raise FileExistsError(f"{path}: this is an input image; refusing to overwrite it")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace an output)")
    pil = load_image(image) if not isinstance(image, Image.Image) else _to_rgb(image, "<PIL image>")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    with atomic_write(path) as handle:
        pil.save(handle, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def image_to_tensor(image: ImageLike, device: torch.device | str | None = None) -> torch.Tensor:
    """Any image :func:`load_image` reads -> a new float32 tensor (1, 3, H, W) in [0, 1], 8-bit steps.

    The tensor is on ``device`` (the CPU if None). Raises as :func:`load_image` does.
    """
    array = to_array(image)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0).unsqueeze(0).contiguous()
    return tensor.to(device) if device is not None else tensor


def check_one_image(image: torch.Tensor, name: str = "<tensor>") -> None:
    """Raise ValueError naming ``name`` unless ``image`` is one RGB image, shape (1, 3, H, W)."""
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"{name}: expected shape (1, 3, H, W), got {tuple(image.shape)}")


def to_float_batch(images: torch.Tensor, name: str = "<tensor>") -> torch.Tensor:
    """Images (3, H, W) or (N, 3, H, W) of any dtype -> a NEW float32 (N, 3, H, W) tensor in [0, 1].

    Values follow :func:`to_unit_float`: uint8 and other integers hold 0-255, uint16
    0-65535, floats [0, 1] (overshoot up to 0.5 clipped). One-channel (gray) images are
    repeated to three channels. The result stays on the input's device and keeps its
    memory layout; the argument is never modified, and gradients flow through float inputs.

    Raises TypeError for a non-tensor and ImageLoadError (a ValueError) naming ``name`` for
    another shape or for values outside the rule (with the dtype and the range found).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name}: expected a tensor, got a {type(images).__name__}")
    batch = images.unsqueeze(0) if images.ndim == 3 else images
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise _problem(name, f"expected a (3, H, W) or (N, 3, H, W) tensor, got shape {tuple(images.shape)}")
    unit = to_unit_float(batch, name)
    return unit.repeat(1, 3, 1, 1) if unit.shape[1] == 1 else unit


def tensor_to_image(tensor: torch.Tensor, name: str = "<tensor>") -> Image.Image:
    """One image tensor (3, H, W), (1, 3, H, W) or gray (1, H, W), any dtype and device -> RGB PIL image.

    Values follow :func:`to_unit_float` (floats [0, 1], overshoot up to 0.5 clipped;
    integers 0-255; uint16 0-65535). Raises ValueError for a batch of several images, and
    ImageLoadError (a ValueError) naming ``name`` for another shape or out-of-range values.
    """
    if tensor.ndim == 4 and tensor.shape[0] != 1:
        raise ValueError(f"{name}: expected one image, got a batch of {tensor.shape[0]}; index it first")
    unit = to_float_batch(tensor.detach(), name)[0]
    return Image.fromarray(np.ascontiguousarray(_to_uint8(unit).transpose(1, 2, 0)))


def to_array(image: ImageLike) -> np.ndarray:
    """Any image :func:`load_image` reads -> uint8 array (H, W, 3), RGB order (OpenCV code converts to BGR itself).

    A uint8 (H, W, 3) array is returned as it is (not copied); copy it before writing to it.
    Raises as :func:`load_image` does.
    """
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    return np.asarray(load_image(image), dtype=np.uint8)


def resize_image(image: ImageLike, size: int, *, multiple_of: int = 1) -> Image.Image:
    """Resize so the shorter side is ``size`` and centre-crop both sides to a multiple of ``multiple_of``."""
    pil = load_image(image)
    scale = size / min(pil.size)
    width, height = max(1, round(pil.width * scale)), max(1, round(pil.height * scale))
    pil = pil.resize((width, height), Image.Resampling.LANCZOS)
    crop_w, crop_h = width - width % multiple_of, height - height % multiple_of
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return pil.crop((left, top, left + crop_w, top + crop_h))

"""Image I/O: the one way images enter and leave the course.

Every image goes through :func:`load_image`, which fixes the things that break
style-transfer code in practice (EXIF rotation, gray/RGBA/CMYK/16-bit modes, files
that are not images) and returns a plain RGB ``PIL.Image``. Conversions between
PIL images, uint8 arrays and float tensors live here too, so no notebook has to
remember which library puts channels where.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import atomic_write

ImageLike = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, torch.Tensor]

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


def _open_bytes(data: bytes, name: str, max_side: int | None) -> Image.Image:
    if len(data) == 0:
        raise _problem(name, "no data (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        if max_side is not None and image.format == "JPEG":
            image.draft(image.mode, (max_side, max_side))  # decode at reduced scale: bounded memory
        image.load()  # decode now, so truncated files fail here and not later
    except UnidentifiedImageError:
        raise _problem(name, "not an image file PIL can read") from None
    except Image.DecompressionBombError as err:
        raise _problem(name, f"image is too large to decode safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise _problem(name, f"file is truncated or corrupted ({err})") from None
    return image


def _array_to_pil(array: np.ndarray, name: str) -> Image.Image:
    """Accept HxW, HxWx1, HxWx3 or HxWx4 arrays as uint8, uint16 or floats in [0, 1]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise _problem(name, f"array of shape {array.shape} is not HxW, HxWx3 or HxWx4")
    if array.size == 0:
        raise _problem(name, "array is empty")
    if array.dtype == np.uint16:
        array = (array / 257.0 + 0.5).astype(np.uint8)  # 65535 -> 255, rounded like PIL images
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise _problem(name, "array contains NaN or infinite values")
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        raise _problem(name, f"unsupported array dtype {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = (np.clip(values / top, 0, 1) * 255 + 0.5).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode == "RGB":
        return image
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def load_image(source: ImageLike, *, max_side: int | None = None, name: str | None = None) -> Image.Image:
    """Load a path, bytes, PIL image, array or tensor as an upright 8-bit RGB PIL image.

    ``max_side`` shrinks large images while decoding (JPEG draft mode), so a 50-megapixel
    phone photo never sits in memory at full size. Errors name the input and the problem.
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        image = _open_path(Path(source), max_side)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "<bytes>"
        image = _open_bytes(bytes(source), name, max_side)
    elif isinstance(source, Image.Image):
        name = name or "<PIL image>"
        image = source
    elif isinstance(source, torch.Tensor):
        return tensor_to_image(source)
    elif isinstance(source, np.ndarray):
        name = name or "<array>"
        image = _array_to_pil(source, name)
    else:
        raise TypeError(f"load_image cannot read a {type(source).__name__}; pass a path, bytes, PIL image or array")
    if image.width == 0 or image.height == 0:
        raise _problem(name, "image has no pixels")
    image = ImageOps.exif_transpose(image)
    image = _to_rgb(image)
    if max_side is not None and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


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
    pil = load_image(image) if not isinstance(image, Image.Image) else _to_rgb(image)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    with atomic_write(path) as handle:
        pil.save(handle, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def image_to_tensor(image: ImageLike, device: torch.device | str | None = None) -> torch.Tensor:
    """RGB image -> float tensor of shape (1, 3, H, W) with values in [0, 1]."""
    array = to_array(image)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0).unsqueeze(0).contiguous()
    return tensor.to(device) if device is not None else tensor


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [0, 1] -> RGB PIL image (values clipped)."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}; index it first")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) tensor, got shape {tuple(tensor.shape)}")
    tensor = tensor.detach().float().cpu().clamp(0, 1)
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    array = (tensor.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def to_array(image: ImageLike) -> np.ndarray:
    """Any image -> uint8 array of shape (H, W, 3), RGB order (OpenCV code converts to BGR itself)."""
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

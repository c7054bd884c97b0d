"""Video with OpenCV: make a demo clip from a photo, read frames, stylize a clip frame by frame.

OpenCV reads and writes frames in BGR order; everything here converts at the boundary so
the rest of the course sees RGB. Output videos carry no audio track (OpenCV writes images
only); add the original sound back with a video editor or ffmpeg if you need it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from .image_io import ImageLike, to_array


class VideoError(ValueError):
    """A video could not be read or written; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    """Frame rate, frame count and frame size (width, height) of a video file."""

    fps: float
    frames: int
    width: int
    height: int


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this file as a video")
    return capture


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header: frame rate, number of frames and size."""
    capture = _open(Path(path))
    try:
        info = VideoInfo(fps=capture.get(cv2.CAP_PROP_FPS) or 25.0,
                         frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                         width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()
    if info.frames <= 0 or info.width <= 0:
        raise VideoError(f"{path}: the video has no readable frames")
    return info


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames ``start`` to ``stop - 1`` as RGB uint8 arrays; a frame that cannot be decoded is an error."""
    path = Path(path)
    info = video_info(path)
    stop = info.frames if stop is None else min(stop, info.frames)
    capture = _open(path)
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        for index in range(start, stop):
            ok, frame = capture.read()
            if not ok or frame is None:
                raise VideoError(f"{path}: frame {index} of {info.frames} cannot be decoded (file damaged or cut short?)")
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


class VideoWriter:
    """Write RGB frames to an .mp4 (or .avi) file; the file appears only when the writer closes cleanly."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: already exists (pass overwrite=True to replace an output)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".partial-{self.path.name}")
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.partial), fourcc, fps, size)
        if not self.writer.isOpened():
            raise VideoError(f"{self.path}: OpenCV cannot write this video format; use .mp4 or .avi")
        self.size = size

    def write(self, frame_rgb: np.ndarray) -> None:
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self.size:
            raise VideoError(f"{self.path}: frame of size {frame_rgb.shape[1]}x{frame_rgb.shape[0]} "
                             f"does not match the video size {self.size[0]}x{self.size[1]}")
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        self.writer.release()
        os.replace(self.partial, self.path)
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()
        else:
            self.writer.release()
            self.partial.unlink(missing_ok=True)


def make_zoom_video(image: ImageLike, path: str | os.PathLike, *, frames: int = 48, size: int = 256,
                    fps: float = 12.0, zoom: float = 1.4, overwrite: bool = False) -> Path:
    """Make a short clip from one photo: a slow zoom towards the centre with a gentle sideways pan."""
    array = to_array(image)
    height, width = array.shape[:2]
    side = min(height, width)
    with VideoWriter(path, fps, (size, size), overwrite=overwrite) as writer:
        for index in range(frames):
            t = index / max(1, frames - 1)
            crop = side / (1 + (zoom - 1) * t)
            cx = width / 2 + 0.08 * side * np.sin(2 * np.pi * t)
            cy = height / 2
            x0 = int(np.clip(cx - crop / 2, 0, width - crop))
            y0 = int(np.clip(cy - crop / 2, 0, height - crop))
            window = array[y0:y0 + int(crop), x0:x0 + int(crop)]
            writer.write(cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA))
    return Path(path)


def stylize_video(stylizer, source: str | os.PathLike, destination: str | os.PathLike, *, batch_size: int = 4,
                  start: int = 0, stop: int | None = None, overwrite: bool = False, progress: bool = True,
                  **options) -> Path:
    """Stylize frames ``start`` to ``stop`` of a video into a new, audio-less video at the same frame rate.

    Long clips can be done in parts (frame ranges) and joined afterwards. ``options`` go to
    :meth:`Stylizer.stylize_tensor` (``strength``, ``keep_colour``).
    """
    source, destination = Path(source), Path(destination)
    if destination.resolve() == source.resolve():
        raise ValueError(f"{destination}: refusing to write over the input video")
    info = video_info(source)
    stop = info.frames if stop is None else min(stop, info.frames)
    if not 0 <= start < stop:
        raise ValueError(f"{source}: frame range {start}..{stop} is empty (the video has {info.frames} frames)")
    batch: list[np.ndarray] = []
    with VideoWriter(destination, info.fps, (info.width, info.height), overwrite=overwrite) as writer, \
            tqdm(total=stop - start, desc="stylizing video", unit="frame", disable=not progress) as bar:
        def flush() -> None:
            tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(255)
            out = stylizer.stylize_tensor(tensor, **options)
            for frame in (out.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8):
                writer.write(frame)
            bar.update(len(batch))
            batch.clear()

        for frame in read_frames(source, start, stop):
            batch.append(frame)
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
    return destination

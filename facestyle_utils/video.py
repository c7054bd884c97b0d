"""Video with OpenCV: make a demo clip from a photo, read frames, stylize a clip frame by frame.

OpenCV reads and writes frames in BGR order; everything here converts at the boundary so
the rest of the course sees RGB. Output videos carry no audio track (OpenCV writes images
only); add the original sound back with a video editor or ffmpeg if you need it.

Two things from real-world files are handled here rather than trusted:

- **Headers lie.** A container's frame rate can be a time base (90000), its frame count can
  promise frames that are not there, its size can be 0 or wrong. :func:`video_info` counts
  the frames by decoding them, takes the size from the first frame, and replaces an
  implausible frame rate (below 1 or above 240 fps) by one estimated from the frame
  timestamps (or 25); each correction is a :class:`VideoWarning`. A Motion-JPEG AVI whose
  header size FFmpeg cannot decode with is read with OpenCV's own Motion-JPEG reader instead.
- **Encoders change sizes.** OpenCV's FFmpeg writer drops the last row/column of an odd-sized
  video. Only ``.avi`` (OpenCV's own Motion-JPEG writer) stores every size exactly, so
  :func:`stylize_video` and :func:`make_zoom_video` switch an odd-sized ``.mp4`` output to
  ``.avi`` with a warning and return the path they wrote; :func:`size_keeping_path` (public)
  tells a caller that name beforehand. :class:`VideoWriter` reads every file back before it
  appears, refuses one whose frame size or count differs, and never writes over a file it was
  not told to replace.
"""
from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import cv2
import numpy as np
import torch

from .image_io import ImageLike, to_array
from .runtime import progress_bar

#: Frame rates above this are taken for a time base or a broken header, not a real rate.
MAX_FPS = 240.0
#: Frame rates below this are taken for a broken header (a time scale read as a rate), not a real rate.
MIN_FPS = 1.0
#: The frame rate used when neither the header nor the frame timestamps give a plausible one.
DEFAULT_FPS = 25.0
#: Output formats and the codec written into each (OpenCV's FFmpeg writer).
CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
#: The one format whose writer (OpenCV's own Motion-JPEG) stores odd widths and heights exactly.
ANY_SIZE_SUFFIX = ".avi"
# How many leading frame timestamps the frame-rate estimate looks at.
_TIMESTAMPS = 120


class VideoError(ValueError):
    """A video could not be read or written; the message names the file and the problem."""


class VideoWarning(UserWarning):
    """A video's header was corrected, or an output differs from what was asked (the message says how)."""


@dataclass(frozen=True)
class VideoInfo:
    """Frame rate, frame count and frame size (width, height) of a video file, checked against its frames.

    ``fps`` is a plausible rate (:data:`MIN_FPS` <= fps <= :data:`MAX_FPS`); ``frames`` is the number of frames
    that really decode; ``width`` and ``height`` are those of the decoded frames.
    """

    fps: float
    frames: int
    width: int
    height: int


@dataclass
class _Scan:
    """What decoding a whole file found: frame count, first frame's (width, height), leading timestamps."""

    frames: int = 0
    size: tuple[int, int] = (0, 0)
    msec: list[float] = field(default_factory=list)


class _Header(NamedTuple):
    """What a container's header claims: frame rate, frame count, (width, height); -1 where unusable."""

    fps: float
    frames: int
    size: tuple[int, int]


def _warn(message: str) -> None:
    warnings.warn(message, VideoWarning, stacklevel=4)


def _open(path: Path, backend: int = cv2.CAP_ANY) -> cv2.VideoCapture:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path), backend)
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this file as a video")
    return capture


def _scan(capture: cv2.VideoCapture) -> _Scan:
    """Decode every frame once (without colour conversion) to learn what the file really holds."""
    scan = _Scan()
    while capture.grab():
        if scan.frames == 0:
            ok, frame = capture.retrieve()
            if not ok or frame is None:
                break
            scan.size = (frame.shape[1], frame.shape[0])
        if scan.frames < _TIMESTAMPS:
            scan.msec.append(capture.get(cv2.CAP_PROP_POS_MSEC))
        scan.frames += 1
    return scan


def _plausible_fps(fps: float) -> bool:
    return math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS


def _fps_from_timestamps(msec: list[float]) -> float | None:
    """The median frame interval as a rate, or None when the timestamps give no plausible one."""
    steps = np.diff(np.asarray(msec, dtype=float))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if not steps.size:
        return None
    fps = round(1000.0 / float(np.median(steps)), 3)
    return fps if _plausible_fps(fps) else None


def _frame_rate(path: Path, header_fps: float, msec: list[float]) -> float:
    """The header's frame rate when plausible, else one from the timestamps, else :data:`DEFAULT_FPS`."""
    if _plausible_fps(header_fps):
        return header_fps
    estimate = _fps_from_timestamps(msec)
    fps, how = (estimate, "estimated from the frame timestamps") if estimate else \
        (DEFAULT_FPS, "the default; the frame timestamps give no plausible rate either")
    _warn(f"{path}: the header's frame rate {header_fps:g} is not plausible "
          f"(must be >= {MIN_FPS:g} and <= {MAX_FPS:g}); using {fps:g} fps ({how})")
    return fps


def _header_number(value: float) -> int:
    return int(value) if math.isfinite(value) else -1


def _check_header(path: Path, frames: int, size: tuple[int, int], scan: _Scan) -> None:
    """Warn where the header's frame count or size differs from the decoded frames."""
    if frames != scan.frames:
        claimed = f"{frames} frames" if frames > 0 else "no usable frame count"
        _warn(f"{path}: the header says {claimed} but {scan.frames} decode "
              f"(header wrong, or the file is cut short); using {scan.frames}")
    if size != scan.size:
        _warn(f"{path}: the header says {size[0]}x{size[1]} but the frames are "
              f"{scan.size[0]}x{scan.size[1]}; using the frames' size")


def _read(path: Path, backend: int) -> tuple[_Header, _Scan]:
    """The header as ``backend`` reports it, and what decoding every frame with it finds."""
    capture = _open(path, backend)
    try:
        header = _Header(capture.get(cv2.CAP_PROP_FPS), _header_number(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                         (_header_number(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                          _header_number(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        return header, _scan(capture)
    finally:
        capture.release()


def _read_mjpeg(path: Path, ffmpeg: _Header) -> tuple[_Header, _Scan]:
    """Read with OpenCV's own Motion-JPEG AVI reader, which takes each frame's size from the frame.

    FFmpeg decodes nothing (or pairs of frames as fields) when an AVI header's size is wrong.
    Raises :class:`VideoError` when this reader cannot decode a frame either.
    """
    try:
        header, scan = _read(path, cv2.CAP_OPENCV_MJPEG)
    except VideoError:
        header, scan = ffmpeg, _Scan()
    if scan.frames:
        return header, scan
    hint = "" if header.size == ffmpeg.size else (
        f" (the header says {header.size[0]}x{header.size[1]} but FFmpeg's decoder sees "
        f"{ffmpeg.size[0]}x{ffmpeg.size[1]}: the header's frame size is wrong)")
    raise VideoError(f"{path}: the video has no readable frames{hint}")


def _probe(path: Path) -> tuple[VideoInfo, int]:
    """:func:`video_info`, and the OpenCV backend (``cv2.CAP_*``) that decodes the file."""
    backend = cv2.CAP_ANY
    header, scan = _read(path, backend)
    if scan.frames == 0:
        backend = cv2.CAP_OPENCV_MJPEG
        header, scan = _read_mjpeg(path, header)
    _check_header(path, header.frames, header.size, scan)
    info = VideoInfo(fps=_frame_rate(path, header.fps, scan.msec), frames=scan.frames,
                     width=scan.size[0], height=scan.size[1])
    return info, backend


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count and size of a video, with its header checked against its frames.

    Every frame is decoded once to count them, so this takes a moment on long videos. A header
    value that disagrees with the frames (a size or count that differs, a frame rate below
    :data:`MIN_FPS` or above :data:`MAX_FPS`) is replaced and reported with a
    :class:`VideoWarning`; the size is always that of the decoded frames. Raises
    ``FileNotFoundError`` for a missing file and :class:`VideoError` for a file OpenCV cannot
    open or that has no decodable frame (naming a header size that FFmpeg cannot decode with).
    """
    return _probe(Path(path))[0]


def _frame_range(path: Path, info: VideoInfo, start: int, stop: int | None) -> tuple[int, int]:
    """``start`` and ``stop`` clamped to the video's frames; negative values are a ``ValueError``."""
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"{path}: frame range {start}..{stop} has a negative end (the video has {info.frames} frames)")
    return start, info.frames if stop is None else min(stop, info.frames)


def _decode(path: Path, start: int, stop: int, total: int, backend: int) -> Iterator[np.ndarray]:
    """Frames ``start`` to ``stop - 1`` as RGB arrays, skipping by decoding (seeking trusts the header's rate)."""
    capture = _open(path, backend)
    try:
        for index in range(stop):
            if not capture.grab():
                raise VideoError(f"{path}: frame {index} of {total} cannot be decoded (file changed while reading?)")
            if index >= start:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise VideoError(f"{path}: frame {index} of {total} cannot be decoded")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def read_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames ``start`` to ``stop - 1`` as RGB uint8 arrays of shape (H, W, 3).

    ``stop`` beyond the last frame (or None) means "to the real end", however many frames the
    header promised. Raises like :func:`video_info`, and ``ValueError`` for a negative range.
    """
    path = Path(path)
    info, backend = _probe(path)
    start, stop = _frame_range(path, info, start, stop)
    yield from _decode(path, start, stop, info.frames, backend)


def _codec(path: Path) -> str:
    codec = CODECS.get(path.suffix.lower())
    if codec is None:
        raise VideoError(f"{path}: cannot write {path.suffix or 'files without a suffix'} videos; "
                         f"use one of {', '.join(CODECS)}")
    return codec


def _keeps_size(path: Path, size: tuple[int, int]) -> bool:
    return path.suffix.lower() == ANY_SIZE_SUFFIX or (size[0] % 2 == 0 and size[1] % 2 == 0)


def size_keeping_path(path: str | os.PathLike, size: tuple[int, int], *, warn: bool = True) -> Path:
    """``path``, or the same name with ``.avi`` when its format cannot store ``size`` (width, height) exactly.

    Public, so that callers can plan output names: :func:`stylize_video` and
    :func:`make_zoom_video` write exactly ``size_keeping_path(destination, size)``, where a
    video's size is ``(video_info(source).width, video_info(source).height)``. The rule depends
    only on the suffix and the size: OpenCV's FFmpeg writer needs an even width and height, and
    only ``.avi`` keeps odd sizes. The switch is reported with a :class:`VideoWarning` unless
    ``warn`` is False. Raises :class:`VideoError` for a suffix not in :data:`CODECS`.
    """
    path = Path(path)
    _codec(path)
    if _keeps_size(path, size):
        return path
    switched = path.with_suffix(ANY_SIZE_SUFFIX)
    if warn:
            _warn(f"{path}: {path.suffix} videos need an even width and height and the frames are "
              f"{size[0]}x{size[1]}; writing {switched.name} (Motion-JPEG) instead to keep the size")
    return switched


def _place(partial: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``partial`` file to ``path``; without ``overwrite`` never replace a file there."""
    if not overwrite:
        try:
            os.link(partial, path)  # fails, atomically, if path exists
        except FileExistsError:
            partial.unlink()
            raise FileExistsError(f"{path}: appeared while the video was written; left as it was "
                                  f"(pass overwrite=True to replace an output)") from None
        except OSError:  # a file system without hard links: check, then move
            if path.exists():
                partial.unlink()
                raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace an output)") from None
        else:
            partial.unlink()
            return
    os.replace(partial, path)


class VideoWriter:
    """Write RGB frames to a video file; the file appears only when the writer closes cleanly.

    ``size`` is (width, height) in pixels; ``fps`` must be a positive finite rate. Formats are
    those in :data:`CODECS`; odd sizes need ``.avi`` (use :func:`size_keeping_path`), anything else
    is a :class:`VideoError` before a frame is written. On closing, the file is read back: a frame
    size or count that differs from what was written is a :class:`VideoError` and no file is left;
    a frame rate the format rounded (``written_fps``) is a :class:`VideoWarning`.

    Frames go to a new hidden ``.partial-*`` file of a name no other file has, so no existing
    file is ever written into; without ``overwrite`` an existing ``path`` (even one that appears
    while writing) is a ``FileExistsError`` and is left as it was.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], overwrite: bool = False) -> None:
        self.path, self.fps, self.size = Path(path), float(fps), (int(size[0]), int(size[1]))
        self.frames, self.written_fps, self.overwrite = 0, self.fps, overwrite
        self.codec = _codec(self.path)
        self._check_request()
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: already exists (pass overwrite=True to replace an output)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".partial-", suffix=f"-{self.path.name}", dir=self.path.parent)
        os.close(handle)
        self.partial = Path(name)
        odd = self.size[0] % 2 or self.size[1] % 2
        backend = cv2.CAP_OPENCV_MJPEG if odd else cv2.CAP_FFMPEG
        self.writer = cv2.VideoWriter(str(self.partial), backend, cv2.VideoWriter_fourcc(*self.codec), self.fps,
                                      self.size)
        if not self.writer.isOpened():
            self.partial.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: OpenCV refused to write {self.codec} video of "
                             f"{self.size[0]}x{self.size[1]} at {self.fps:g} fps")

    def _check_request(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise VideoError(f"{self.path}: frame rate must be positive and finite, got {self.fps:g}")
        if self.path.is_dir():
            raise VideoError(f"{self.path}: is a folder; give a video file name")
        if min(self.size) < 1:
            raise VideoError(f"{self.path}: frame size must be at least 1x1, got {self.size[0]}x{self.size[1]}")
        if not _keeps_size(self.path, self.size):
            raise VideoError(f"{self.path}: {self.path.suffix} videos need an even width and height, got "
                             f"{self.size[0]}x{self.size[1]}; write {ANY_SIZE_SUFFIX} to keep the size")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape (height, width, 3); any other shape is a :class:`VideoError`."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise VideoError(f"{self.path}: frames must be (H, W, 3) uint8 RGB arrays, "
                             f"got shape {frame_rgb.shape} {frame_rgb.dtype}")
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self.size:
            raise VideoError(f"{self.path}: frame of size {frame_rgb.shape[1]}x{frame_rgb.shape[0]} "
                             f"does not match the video size {self.size[0]}x{self.size[1]}")
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _check_written(self) -> None:
        """Read the finished file back; raise unless it holds the frames written, at their size."""
        if self.frames == 0:
            raise VideoError(f"{self.path}: no frames were written")
        capture = _open(self.partial)
        try:
            self.written_fps, scan = capture.get(cv2.CAP_PROP_FPS), _scan(capture)
        finally:
            capture.release()
        if (scan.frames, scan.size) != (self.frames, self.size):
            raise VideoError(f"{self.path}: wrote {self.frames} frames of {self.size[0]}x{self.size[1]} but the "
                             f"{self.codec} file holds {scan.frames} of {scan.size[0]}x{scan.size[1]}; not kept")
        if not math.isclose(self.written_fps, self.fps, rel_tol=1e-3):
            _warn(f"{self.path}: the {self.codec} writer stored {self.written_fps:g} fps instead of {self.fps:g}")

    def close(self) -> Path:
        """Finish the file, check it (see the class) and move it into place; returns its path."""
        self.writer.release()
        try:
            self._check_written()
        except BaseException:
            self.partial.unlink(missing_ok=True)
            raise
        _place(self.partial, self.path, self.overwrite)
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()
        else:
            self.writer.release()
            self.partial.unlink(missing_ok=True)


#: How much closer the last frame of :func:`make_zoom_video` is than the first.
ZOOM = 1.4


def make_zoom_video(image: ImageLike, path: str | os.PathLike, *, frames: int = 48, size: int = 256,
                    fps: float = 12.0, overwrite: bool = False) -> Path:
    """Make a short clip of ``frames`` frames of ``size`` x ``size`` from one photo: a slow zoom (to
    :data:`ZOOM` times closer) towards the centre with a gentle sideways pan. Returns the path written
    (``.avi`` for an odd ``size`` asked as ``.mp4``, see :func:`size_keeping_path`)."""
    array = to_array(image)
    height, width = array.shape[:2]
    side = min(height, width)
    with VideoWriter(size_keeping_path(path, (size, size)), fps, (size, size), overwrite=overwrite) as writer:
        for index in range(frames):
            t = index / max(1, frames - 1)
            crop = side / (1 + (ZOOM - 1) * t)
            cx = width / 2 + 0.08 * side * np.sin(2 * np.pi * t)
            cy = height / 2
            x0 = int(np.clip(cx - crop / 2, 0, width - crop))
            y0 = int(np.clip(cy - crop / 2, 0, height - crop))
            window = array[y0:y0 + int(crop), x0:x0 + int(crop)]
            writer.write(cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA))
    return writer.path


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _stylize_frames(stylizer, frames: list[np.ndarray], options: dict) -> np.ndarray:
    """RGB uint8 frames -> stylized RGB uint8 frames through ``stylizer.stylize_tensor``."""
    tensor = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)
    out = stylizer.stylize_tensor(tensor, **options).detach().clamp(0, 1)
    return (out.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _refuse_input(source: Path, destination: Path) -> None:
    same = destination.exists() and source.exists() and os.path.samefile(source, destination)
    if same or destination.resolve() == source.resolve():
        raise ValueError(f"{destination}: refusing to write over the input video")


#: Frames per call of the stylizer in :func:`stylize_video`, unless told otherwise.
VIDEO_BATCH = 4


def stylize_video(stylizer, source: str | os.PathLike, destination: str | os.PathLike, *, start: int = 0,
                  stop: int | None = None, batch_size: int = VIDEO_BATCH, overwrite: bool = False,
                  progress: bool = True, **stylize_options) -> Path:
    """Stylize frames ``start`` to ``stop`` of a video into a new, audio-less video of the same size and rate.

    ``start``/``stop``: frame numbers (default the whole video); ``batch_size``: frames per stylizer
    call; ``stylize_options`` go to :meth:`Stylizer.stylize_tensor` (``strength``, ``preserve_colour``).

    The frame rate, count and size come from :func:`video_info` (header checked, warnings for
    corrections). An odd-sized video asked as ``.mp4`` is written as ``.avi`` to keep its size
    (see :func:`size_keeping_path`): the path written, and returned, is always
    ``size_keeping_path(destination, (info.width, info.height))`` for ``info = video_info(source)``.
    No existing file is written over unless ``overwrite`` is True, and the source never (both
    ``destination`` and the ``.avi`` name are checked). Long clips can be done in parts (frame
    ranges) and joined afterwards. Raises ``ValueError`` for an empty range or an output over
    the input, ``FileExistsError`` for an existing output, :class:`VideoError` as the readers and
    :class:`VideoWriter` do.
    """
    source, destination = Path(source), Path(destination)
    _refuse_input(source, destination)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    info, backend = _probe(source)
    start, stop = _frame_range(source, info, start, stop)
    if start >= stop:
        raise ValueError(f"{source}: frame range {start}..{stop} is empty (the video has {info.frames} frames)")
    size = (info.width, info.height)
    target = size_keeping_path(destination, size)
    _refuse_input(source, target)
    with VideoWriter(target, info.fps, size, overwrite=overwrite) as writer, \
            progress_bar(total=stop - start, desc="stylizing video", unit="frame", disable=not progress) as bar:
        for batch in _batches(_decode(source, start, stop, info.frames, backend), batch_size):
            for frame in _stylize_frames(stylizer, batch, stylize_options):
                writer.write(frame)
            bar.update(len(batch))
    return writer.path

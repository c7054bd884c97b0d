"""Video: a demo clip is made offline, stylized frame by frame, inputs untouched, clear errors.

Real-world inputs (issue #14): odd sizes keep their size, lying headers (a time base as the
frame rate, a frame count promising missing frames) are corrected with a warning. The test
inputs with bad headers are written here with OpenCV itself and, where OpenCV writes honest
headers, patched byte by byte. Any VideoWarning not expected by a test fails it.
"""
import contextlib
import struct

import cv2
import numpy as np
import pytest
import torch

from facestyle_utils import video
from facestyle_utils.inference import Stylizer
from facestyle_utils.video import (
    VideoError,
    VideoWarning,
    VideoWriter,
    make_zoom_video,
    read_frames,
    stylize_video,
    video_info,
)

pytestmark = pytest.mark.filterwarnings("error::facestyle_utils.video.VideoWarning")


class Invert(torch.nn.Module):
    """A stand-in 'style' whose output is easy to check: the photographic negative."""

    def forward(self, x):
        return 1 - x


def frame(width, height, index=0):
    """A smooth RGB gradient that changes with ``index`` (easy on lossy codecs)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 200 // width + 10 * index) % 256, y * 200 // height, np.full_like(x, 60)],
                    axis=2).astype(np.uint8)


def write_source(path, size, frames, fps, *, opencv_mjpeg=False):
    """A test input written by OpenCV directly (not by the code under test)."""
    backend, codec = (cv2.CAP_OPENCV_MJPEG, "MJPG") if opencv_mjpeg else (cv2.CAP_FFMPEG, "mp4v")
    writer = cv2.VideoWriter(str(path), backend, cv2.VideoWriter_fourcc(*codec), fps, size)
    assert writer.isOpened()
    for index in range(frames):
        writer.write(cv2.cvtColor(frame(*size, index), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def assert_negative(original, negative, tolerance=12):
    assert np.abs(original.astype(int) + negative.astype(int) - 255).mean() < tolerance  # lossy codecs


@pytest.fixture
def stylizer():
    return Stylizer(Invert(), device="cpu")


@pytest.fixture
def clip(tmp_path):
    y, x = np.mgrid[0:64, 0:80]
    photo = np.stack([x * 3, y * 3, np.full_like(x, 60)], axis=2).astype(np.uint8)
    return make_zoom_video(photo, tmp_path / "clip.mp4", frames=10, size=32, fps=5)


def test_zoom_video_has_the_requested_frames(clip):
    info = video_info(clip)
    assert (info.frames, info.width, info.height) == (10, 32, 32) and info.fps == pytest.approx(5)
    frames = list(read_frames(clip, start=2, stop=5))
    assert len(frames) == 3 and frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8


def test_stylize_video_writes_every_frame_and_keeps_the_input(clip, tmp_path, stylizer):
    before = clip.read_bytes()
    out = stylize_video(stylizer, clip, tmp_path / "out" / "neg.mp4", batch_size=3, progress=False)
    assert out == tmp_path / "out" / "neg.mp4"
    assert clip.read_bytes() == before
    assert video_info(out) == video_info(clip)
    assert_negative(next(read_frames(clip)), next(read_frames(out)))
    assert not list((tmp_path / "out").glob(".partial-*"))


def test_frame_range_and_refusals(clip, tmp_path, stylizer):
    part = stylize_video(stylizer, clip, tmp_path / "part.mp4", start=4, stop=7, progress=False)
    assert video_info(part).frames == 3
    assert_negative(list(read_frames(clip))[4], next(read_frames(part)))
    with pytest.raises(FileExistsError, match="already exists"):
        stylize_video(stylizer, clip, part, progress=False)
    with pytest.raises(ValueError, match="over the input"):
        stylize_video(stylizer, clip, clip, progress=False)
    with pytest.raises(ValueError, match="empty"):
        stylize_video(stylizer, clip, tmp_path / "x.mp4", start=20, progress=False)
    with pytest.raises(ValueError, match="negative"):
        list(read_frames(clip, start=-1))


def test_bad_video_paths_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video"):
        video_info(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match="junk.mp4"):
        video_info(junk)


def test_cut_off_video_reports_the_frame(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoError, match="cut.mp4"):
        list(read_frames(cut))


# --- odd sizes: the output has the input's size -------------------------------------------

@pytest.mark.parametrize("size", [(97, 71), (37, 45)])
def test_odd_sizes_round_trip_at_the_same_size(size, tmp_path, stylizer):
    source = write_source(tmp_path / "odd.avi", size, 5, 10, opencv_mjpeg=True)
    assert video_info(source) == video.VideoInfo(fps=10.0, frames=5, width=size[0], height=size[1])
    with pytest.warns(VideoWarning, match=rf"even width and height.*{size[0]}x{size[1]}.*odd_stylized\.avi"):
        out = stylize_video(stylizer, source, tmp_path / "odd_stylized.mp4", progress=False)
    assert out == tmp_path / "odd_stylized.avi" and not (tmp_path / "odd_stylized.mp4").exists()
    assert video_info(out) == video.VideoInfo(fps=10.0, frames=5, width=size[0], height=size[1])
    frames = list(read_frames(out))
    assert [f.shape for f in frames] == [(size[1], size[0], 3)] * 5
    assert_negative(frame(*size, 4), frames[4])


@pytest.mark.parametrize("size", [(97, 71), (37, 45), (1, 1)])
def test_writer_keeps_odd_sizes_in_avi_and_refuses_them_in_mp4(size, tmp_path):
    with VideoWriter(tmp_path / "odd.avi", 10, size) as writer:
        for index in range(3):
            writer.write(frame(*size, index))
    info = video_info(writer.path)
    assert (info.width, info.height, info.frames) == (*size, 3)
    with pytest.raises(VideoError, match=rf"odd.mp4: .mp4 videos need an even width and height, got {size[0]}x"):
        VideoWriter(tmp_path / "odd.mp4", 10, size)
    assert not list(tmp_path.glob("*.mp4"))


def test_zoom_video_of_odd_size_keeps_it(tmp_path):
    with pytest.warns(VideoWarning, match="33x33"):
        out = make_zoom_video(frame(60, 50), tmp_path / "zoom.mp4", frames=3, size=33)
    assert out.suffix == ".avi"
    info = video_info(out)
    assert (info.width, info.height, info.frames) == (33, 33, 3)


def test_written_file_is_read_back_and_a_mismatch_is_an_error(tmp_path, monkeypatch):
    real_scan = video._scan

    def drops_a_row(capture):  # what OpenCV's FFmpeg writer did to odd sizes, simulated
        scan = real_scan(capture)
        scan.size = (scan.size[0], scan.size[1] - 1)
        return scan

    monkeypatch.setattr(video, "_scan", drops_a_row)
    with pytest.raises(VideoError, match=r"out.mp4: wrote 2 frames of 32x32 but the mp4v file holds 2 of 32x31"):
        with VideoWriter(tmp_path / "out.mp4", 10, (32, 32)) as writer:
            writer.write(frame(32, 32))
            writer.write(frame(32, 32))
    assert not list(tmp_path.iterdir())  # neither the output nor a partial file is left
    with pytest.raises(VideoError, match="no frames were written"):
        with VideoWriter(tmp_path / "empty.mp4", 10, (32, 32)):
            pass


def test_a_rounded_frame_rate_is_reported(tmp_path):
    with pytest.warns(VideoWarning, match="stored 12 fps instead of 12.5"):
        with VideoWriter(tmp_path / "odd.avi", 12.5, (33, 33)) as writer:
            writer.write(frame(33, 33))
    assert writer.written_fps == 12


def test_writer_errors_name_the_request(tmp_path):
    with pytest.raises(VideoError, match=r"clip.gif: cannot write .gif videos; use one of .mp4"):
        VideoWriter(tmp_path / "clip.gif", 10, (32, 32))
    for fps in (0, -5, float("nan"), float("inf")):
        with pytest.raises(VideoError, match="frame rate must be positive and finite"):
            VideoWriter(tmp_path / "clip.mp4", fps, (32, 32))
    with pytest.raises(VideoError, match=r"refused to write mp4v video of 32x32 at 90000 fps"):
        VideoWriter(tmp_path / "clip.mp4", 90000, (32, 32))  # MPEG-4 time bases stop at 65535
    with pytest.raises(VideoError, match=r"frames must be \(H, W, 3\) uint8"):
        with VideoWriter(tmp_path / "clip.mp4", 10, (32, 32)) as writer:
            writer.write(frame(32, 32).astype(np.float32))
    assert not list(tmp_path.iterdir())


# --- headers that lie -------------------------------------------------------------------------

def test_90000_fps_header_is_stylized_at_a_sane_rate(tmp_path, stylizer):
    # OpenCV's own AVI writer stores 90000 as the rate, and timestamps 1/90000 s apart.
    source = write_source(tmp_path / "timebase.avi", (32, 32), 4, 90000, opencv_mjpeg=True)
    assert cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) == 90000
    with pytest.warns(VideoWarning, match="timebase.avi: the header's frame rate 90000 is not plausible.*using 25 fps"):
        out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert out.suffix == ".mp4"
    assert video_info(out) == video.VideoInfo(fps=25.0, frames=4, width=32, height=32)
    assert_negative(frame(32, 32, 3), list(read_frames(out))[3])


def mkv_with_default_duration(path, nanoseconds):
    """A 25 fps, 6-frame .mkv whose track header claims one frame every ``nanoseconds``."""
    write_source(path, (32, 32), 6, 25)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x23\xe3\x83\x84")  # Matroska DefaultDuration element, 4-byte value
    assert at > 0 and struct.unpack_from(">I", data, at + 4)[0] == 40_000_000
    struct.pack_into(">I", data, at + 4, nanoseconds)
    path.write_bytes(bytes(data))
    return path


def test_time_base_header_with_sane_timestamps_uses_the_timestamps(tmp_path, stylizer):
    source = mkv_with_default_duration(tmp_path / "phone.mkv", 11_111)  # "90000 fps", capped at 30000
    capture = cv2.VideoCapture(str(source))
    assert capture.get(cv2.CAP_PROP_FPS) > 240 and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 1000
    capture.release()
    with pytest.warns(VideoWarning) as caught:
        info = video_info(source)
    assert info == video.VideoInfo(fps=25.0, frames=6, width=32, height=32)
    messages = " | ".join(str(w.message) for w in caught)
    assert "25 fps (estimated from the frame timestamps)" in messages and "but 6 decode" in messages
    with pytest.warns(VideoWarning):
        out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=25.0, frames=6, width=32, height=32)


def avi_claiming_frames(path, real, claimed):
    """An .avi of ``real`` frames at 10 fps whose headers (avih dwTotalFrames, strh dwLength) say ``claimed``."""
    write_source(path, (32, 32), real, 10, opencv_mjpeg=True)
    data = bytearray(path.read_bytes())
    assert data[24:28] == b"avih" and struct.unpack_from("<I", data, 48)[0] == real
    struct.pack_into("<I", data, 48, claimed)  # dwTotalFrames
    strh = data.find(b"strh") + 8
    assert struct.unpack_from("<II", data, strh + 20) == (1, 10)  # dwScale, dwRate: 10 fps
    struct.pack_into("<I", data, strh + 32, claimed)  # dwLength
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("claimed, says", [(50, "50 frames"), (0, "no usable frame count")])
def test_header_overstating_the_frame_count_stops_cleanly_at_the_real_end(claimed, says, tmp_path, stylizer):
    source = avi_claiming_frames(tmp_path / "short.avi", real=5, claimed=claimed)
    assert cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FRAME_COUNT) == claimed
    with pytest.warns(VideoWarning, match=f"short.avi: the header says {says} but 5 decode"):
        frames = list(read_frames(source))
    assert len(frames) == 5
    with pytest.warns(VideoWarning, match=says):
        assert len(list(read_frames(source, start=3, stop=40))) == 2
    with pytest.warns(VideoWarning, match=says):
        out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=10.0, frames=5, width=32, height=32)
    assert_negative(frames[4], list(read_frames(out))[4])


@pytest.mark.parametrize("fps, expected", [(12, 12.0), (90000, 25.0)])
def test_one_frame_clip(fps, expected, tmp_path, stylizer):
    source = write_source(tmp_path / "one.avi", (32, 32), 1, fps, opencv_mjpeg=True)
    with pytest.warns(VideoWarning, match="90000") if fps > 240 else contextlib.nullcontext():
        out = stylize_video(stylizer, source, tmp_path / "one_styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=expected, frames=1, width=32, height=32)
    assert_negative(frame(32, 32), next(read_frames(out)))


def patched_avi(path, size, patches, frames=4):
    """A 10 fps Motion-JPEG .avi of ``frames`` frames with header fields patched: (chunk tag, offset, value)."""
    write_source(path, size, frames, 10, opencv_mjpeg=True)
    data = bytearray(path.read_bytes())
    for tag, offset, value in patches:
        at = data.find(tag)
        assert at > 0
        struct.pack_into("<i", data, at + 8 + offset, value)
    path.write_bytes(bytes(data))
    return path


def avi_with_rate(path, scale, rate):
    """strh dwScale/dwRate give the rate (rate / scale fps); avih dwMicroSecPerFrame agrees."""
    return patched_avi(path, (24, 20), [(b"strh", 20, scale), (b"strh", 24, rate),
                                        (b"avih", 0, min(round(1e6 * scale / rate), 10**9))])


@pytest.mark.parametrize("scale, rate, says", [(1_000_000, 1, "1e-06"), (2, 1, "0.5"), (1000, 999, "0.999")])
def test_implausibly_low_header_rate_is_replaced(scale, rate, says, tmp_path, stylizer):
    source = avi_with_rate(tmp_path / "slow.avi", scale, rate)
    assert cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) == pytest.approx(rate / scale)
    with pytest.warns(VideoWarning, match=rf"slow.avi: the header's frame rate {says} is not plausible "
                                          rf"\(must be >= 1 and <= 240\); using 25 fps"):
        out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=25.0, frames=4, width=24, height=20)
    assert_negative(frame(24, 20, 3), list(read_frames(out))[3])


def test_one_fps_is_plausible_and_kept(tmp_path, stylizer):
    source = avi_with_rate(tmp_path / "timelapse.avi", 1, 1)
    assert video_info(source) == video.VideoInfo(fps=1.0, frames=4, width=24, height=20)
    out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=1.0, frames=4, width=24, height=20)


def avi_claiming_size(path, width, height, frames=4):
    """A 24x20 .avi whose avih and strf (the BITMAPINFOHEADER) say ``width`` x ``height``."""
    return patched_avi(path, (24, 20), [(b"avih", 32, width), (b"avih", 36, height),
                                        (b"strf", 4, width), (b"strf", 8, height)], frames)


@pytest.mark.parametrize("claimed", [(640, 480), (48, 40), (24, 40)])
def test_header_size_that_ffmpeg_cannot_decode_with_uses_the_frames_size(claimed, tmp_path, stylizer):
    source = avi_claiming_size(tmp_path / "big.avi", *claimed)
    says = rf"big.avi: the header says {claimed[0]}x{claimed[1]} but the frames are 24x20; using the frames' size"
    with pytest.warns(VideoWarning, match=says):
        assert video_info(source) == video.VideoInfo(fps=10.0, frames=4, width=24, height=20)
    with pytest.warns(VideoWarning, match=says):
        frames = list(read_frames(source, start=1))
    assert [np.abs(f.astype(int) - frame(24, 20, i)).mean() < 2 for i, f in enumerate(frames, 1)] == [True] * 3
    with pytest.warns(VideoWarning, match=says):
        out = stylize_video(stylizer, source, tmp_path / "styled.mp4", progress=False)
    assert video_info(out) == video.VideoInfo(fps=10.0, frames=4, width=24, height=20)
    assert_negative(frames[2], list(read_frames(out))[3])


def test_undecodable_frames_with_a_wrong_header_size_say_so(tmp_path):
    source = avi_claiming_size(tmp_path / "broken.avi", 640, 480)
    source.write_bytes(source.read_bytes().replace(b"\xff\xd8", b"\x00\x00"))  # no JPEG start markers
    with pytest.raises(VideoError, match=r"broken.avi: the video has no readable frames \(the header says 640x480 "
                                         r"but FFmpeg's decoder sees \d+x\d+: the header's frame size is wrong\)"):
        video_info(source)


# --- output names: predictable, and nothing is written over -----------------------------------

@pytest.mark.parametrize("size, suffix", [((24, 20), ".mp4"), ((25, 20), ".avi"), ((24, 21), ".avi")])
def test_size_keeping_path_predicts_the_name_written(size, suffix, tmp_path, stylizer):
    source = write_source(tmp_path / "in.avi", size, 2, 10, opencv_mjpeg=True)
    planned = video.size_keeping_path(tmp_path / "out.mp4", size, warn=False)  # no warning when planning
    assert planned == tmp_path / f"out{suffix}"
    expect = pytest.warns(VideoWarning, match="out.avi") if suffix == ".avi" else contextlib.nullcontext()
    with expect:
        assert stylize_video(stylizer, source, tmp_path / "out.mp4", progress=False) == planned
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.avi", planned.name])


def test_the_avi_name_is_checked_too(tmp_path, stylizer):
    source = write_source(tmp_path / "odd.avi", (25, 21), 2, 10, opencv_mjpeg=True)
    before = source.read_bytes()
    with pytest.warns(VideoWarning, match="odd.avi"), pytest.raises(ValueError, match="over the input"):
        stylize_video(stylizer, source, tmp_path / "odd.mp4", overwrite=True, progress=False)
    kept = tmp_path / "kept.avi"
    kept.write_bytes(b"someone else's video")
    with pytest.warns(VideoWarning, match="kept.avi"), pytest.raises(FileExistsError, match="kept.avi: already exists"):
        stylize_video(stylizer, source, tmp_path / "kept.mp4", progress=False)
    assert source.read_bytes() == before and kept.read_bytes() == b"someone else's video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.avi", "odd.avi"]


def test_an_input_named_like_a_partial_file_is_not_written_into(tmp_path, stylizer):
    source = write_source(tmp_path / ".partial-neg.mp4", (32, 32), 3, 10)
    before = source.read_bytes()
    out = stylize_video(stylizer, source, tmp_path / "neg.mp4", progress=False)
    assert source.read_bytes() == before
    assert_negative(frame(32, 32, 2), list(read_frames(out))[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".partial-neg.mp4", "neg.mp4"]


def test_a_file_appearing_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "race.mp4"
    with pytest.raises(FileExistsError, match="race.mp4: appeared while the video was written; left as it was"):
        with VideoWriter(target, 10, (32, 32)) as writer:
            writer.write(frame(32, 32))
            target.write_bytes(b"another program's file")
    assert target.read_bytes() == b"another program's file" and list(tmp_path.iterdir()) == [target]
    with VideoWriter(target, 10, (32, 32), overwrite=True) as writer:  # asked to replace: replaced
        writer.write(frame(32, 32))
    assert video_info(target).frames == 1


def test_a_folder_as_output_is_refused_before_writing(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(VideoError, match="dir.mp4: is a folder; give a video file name"):
        VideoWriter(tmp_path / "dir.mp4", 10, (32, 32), overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["dir.mp4"]

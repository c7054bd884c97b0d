"""Video: a demo clip is made offline, stylized frame by frame, inputs untouched, clear errors."""
import numpy as np
import pytest
import torch

from facestyle_utils.inference import Stylizer
from facestyle_utils.video import VideoError, make_zoom_video, read_frames, stylize_video, video_info


class Invert(torch.nn.Module):
    """A stand-in 'style' whose output is easy to check: the photographic negative."""

    def forward(self, x):
        return 1 - x


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


def test_stylize_video_writes_every_frame_and_keeps_the_input(clip, tmp_path):
    before = clip.read_bytes()
    out = stylize_video(Stylizer(Invert(), device="cpu"), clip, tmp_path / "out" / "neg.mp4", batch_size=3,
                        progress=False)
    assert clip.read_bytes() == before
    assert video_info(out).frames == 10
    original, negative = next(read_frames(clip)), next(read_frames(out))
    assert np.abs(original.astype(int) + negative.astype(int) - 255).mean() < 12  # lossy codec
    assert not list((tmp_path / "out").glob(".partial-*"))


def test_frame_range_and_refusals(clip, tmp_path):
    stylizer = Stylizer(Invert(), device="cpu")
    part = stylize_video(stylizer, clip, tmp_path / "part.mp4", start=4, stop=7, progress=False)
    assert video_info(part).frames == 3
    with pytest.raises(FileExistsError, match="already exists"):
        stylize_video(stylizer, clip, part, progress=False)
    with pytest.raises(ValueError, match="over the input"):
        stylize_video(stylizer, clip, clip, progress=False)
    with pytest.raises(ValueError, match="empty"):
        stylize_video(stylizer, clip, tmp_path / "x.mp4", start=20, progress=False)


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

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.video_io import Mp4Writer, read_video, write_video

# Measured on this machine (PyAV 18.1, libx264 defaults = CRF 23, yuv420p), smooth 64x96 content:
# mean |error| 2.5 levels (max 20, chroma subsampling); CRF 0 still 1.8 (RGB->YUV420 conversion).
MEAN_ABS_TOL = 4.0


def smooth_frames(t=17, h=64, w=96):
    tt = torch.linspace(0, 1, t)[:, None, None, None]
    y = torch.linspace(-1, 1, h)[None, None, :, None]
    x = torch.linspace(-1, 1, w)[None, None, None, :]
    r = torch.sin(2 * x + 3 * tt) * torch.cos(1.5 * y)
    g = torch.cos(2 * y - 3 * tt) * 0.8 + 0 * x
    b = x * y * 0.9 + 0 * tt
    return torch.cat([r, g, b], dim=1).clamp(-1, 1)  # [T, 3, H, W]


def to_uint8(frames):
    return ((frames + 1) * 127.5).round().permute(0, 2, 3, 1)  # [T, H, W, 3]


def test_round_trip_streamed_chunks(tmp_path):
    frames = smooth_frames()
    path = tmp_path / "out" / "video.mp4"
    with Mp4Writer(path, fps=16) as w:
        w.write(frames[:1])
        assert not path.exists()  # published only on close
        w.write(frames[1:9])
        w.write(frames[9:])
    assert path.is_file()
    video = read_video(path)
    assert video.dtype == torch.uint8
    assert tuple(video.shape) == (17, 64, 96, 3)
    err = (video.float() - to_uint8(frames)).abs()
    assert err.mean() < MEAN_ABS_TOL
    assert err.mean(dim=(1, 2, 3)).max() < MEAN_ABS_TOL + 1  # no frame is shifted or dropped
    assert [p.name for p in path.parent.iterdir()] == ["video.mp4"]  # no temp file left


def test_uint8_input_and_fps(tmp_path):
    import av

    frames = to_uint8(smooth_frames(t=5)).to(torch.uint8).numpy()  # [T, H, W, 3]
    path = write_video(tmp_path / "u.mp4", frames, fps=16)
    video = read_video(path)
    assert tuple(video.shape) == (5, 64, 96, 3)
    assert np.abs(video.numpy().astype(float) - frames).mean() < MEAN_ABS_TOL
    with av.open(str(path)) as c:
        assert c.streams.video[0].average_rate == 16
        assert c.streams.video[0].codec_context.name == "h264"


def test_exception_leaves_no_partial_file(tmp_path):
    path = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(path) as w:
            w.write(smooth_frames(t=4))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_complete_file(tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, smooth_frames(t=3))
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with Mp4Writer(path) as w:
            w.write(smooth_frames(t=6))
            raise RuntimeError("killed")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_odd_size_fails_loudly_or_pads(tmp_path):
    odd = smooth_frames(t=2, h=33, w=48)
    with pytest.raises(UserError, match="even"):
        write_video(tmp_path / "odd.mp4", odd)
    assert list(tmp_path.iterdir()) == []
    path = write_video(tmp_path / "padded.mp4", odd, pad_odd=True)
    assert tuple(read_video(path).shape) == (2, 34, 48, 3)


def test_bad_inputs(tmp_path):
    with Mp4Writer(tmp_path / "a.mp4") as w:
        with pytest.raises(UserError, match=r"\[T, 3, H, W\]"):
            w.write(torch.zeros(2, 4, 8, 8))
        w.write(torch.zeros(1, 3, 8, 8))
        with pytest.raises(UserError, match="size changed"):
            w.write(torch.zeros(1, 3, 8, 16))
    with pytest.raises(UserError, match="no frames"):
        with Mp4Writer(tmp_path / "empty.mp4"):
            pass
    assert not (tmp_path / "empty.mp4").exists()


def test_unwritable_directory_names_path(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    target = blocker / "sub" / "v.mp4"
    with pytest.raises(UserError) as e:
        Mp4Writer(target)
    assert str(blocker / "sub") in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(UserError, match=str(ro)):
            Mp4Writer(ro / "v.mp4")
    finally:
        ro.chmod(0o700)


def test_read_missing(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_video(Path(tmp_path) / "nope.mp4")

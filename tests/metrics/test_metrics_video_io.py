import av
import numpy as np
import pytest

from deepforcing.errors import UserError
from deepforcing.metrics.video_io import decode_video


def _write(path, frames, fps=16, pix_fmt="yuv444p", codec="libx264rgb"):
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = pix_fmt
        for f in frames:
            fmt = "gray" if f.ndim == 2 else "rgb24"
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format=fmt)):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def test_decode_lossless_roundtrip(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)
    p = tmp_path / "v.mkv"
    _write(p, frames, pix_fmt="bgr0", codec="ffv1")
    v = decode_video(p)
    assert v.fps == 16.0 and v.frames.shape == (5, 16, 24, 3)
    assert np.array_equal(v.frames.numpy(), frames)


def test_grayscale_becomes_rgb(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    p = tmp_path / "g.mkv"
    _write(p, frames, pix_fmt="gray", codec="ffv1")
    v = decode_video(p)
    assert v.frames.shape == (3, 8, 8, 3)
    assert np.array_equal(v.frames[..., 0].numpy(), frames)


def test_bad_inputs_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        decode_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(UserError, match="cannot open|no video|no decodable"):
        decode_video(junk)
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    big = tmp_path / "big.mkv"
    _write(big, frames, pix_fmt="bgr0", codec="ffv1")
    with pytest.raises(UserError, match="pixels"):
        decode_video(big, max_pixels=1000)


def test_alpha_video_decodes_to_rgb(tmp_path):
    frames = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    p = tmp_path / "a.mkv"
    _write(p, frames, pix_fmt="yuva444p", codec="ffv1")
    assert decode_video(p).frames.shape == (2, 8, 8, 3)


def test_score_video_records_per_video_errors(tmp_path):
    """Bad videos become error rows; good ones are still scored."""
    from deepforcing.metrics.base import score_video
    from deepforcing.metrics.image_stats import ImageStatistics
    from deepforcing.metrics.rows import ClipRow, VideoErrorRow

    good = tmp_path / "good.mkv"
    _write(good, np.full((40, 8, 8, 3), 100, dtype=np.uint8), pix_fmt="bgr0", codec="ffv1")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    metric = ImageStatistics()
    rows = []
    for vid, path in [("bad", bad), ("good", good)]:
        try:
            v = decode_video(path)
        except UserError as err:
            rows.append(VideoErrorRow("*", vid, str(err)))
            continue
        rows += score_video(vid, v.frames, v.fps, [metric])
    assert any(isinstance(r, VideoErrorRow) and r.video_id == "bad" for r in rows)
    assert any(isinstance(r, ClipRow) and r.video_id == "good" for r in rows)

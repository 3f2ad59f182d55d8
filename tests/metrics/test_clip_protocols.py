"""The two clip protocols: decode-once (default) and vbench-long-exact (pooled clip mean, clips re-encoded)."""

import io
import math

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import (
    VBENCH_LONG,
    Aggregation,
    aggregate,
    aggregation_for_metric_id,
    for_protocol,
    protocol_of_metric_id,
)
from deepforcing.metrics.base import metric_ids_under, score_video
from deepforcing.metrics.clips import (
    VBENCH_LONG_EXACT,
    ClipProtocol,
    decode_clip,
    encode_clip,
    reencode_clips,
    reencode_frames,
    split_clips,
)
from deepforcing.metrics.rows import ClipRow, VideoErrorRow
from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering, temporal_flickering_score
from tests.metrics.parity.tiny import synthetic_clip


def _row(vid, idx, value, weight=1.0, metric="m"):
    return ClipRow(metric, vid, idx, idx * 32, idx * 32 + 32, idx * 32, 16.0, value, weight)


# ------------------------------------------------------------------------------------------------ aggregation
def test_the_two_aggregations_differ_exactly_as_by_hand():
    """Video a has clips 1, 2, 3 (mean 2), video b one clip 10 (mean 10).

    decode-once: (2 + 10) / 2 = 6; vbench-long-exact: (1 + 2 + 3 + 10) / 4 = 4; difference exactly 2.
    """
    rows = [_row("a", 0, 1.0), _row("a", 1, 2.0), _row("a", 2, 3.0), _row("b", 0, 10.0)]
    ours = aggregate(rows, "m", for_protocol(VBENCH_LONG, "decode-once"))
    exact = aggregate(rows, "m", for_protocol(VBENCH_LONG, "vbench-long-exact"))
    assert ours.value == 6.0 and exact.value == 4.0 and ours.value - exact.value == 2.0
    assert ours.per_video == exact.per_video == {"a": 2.0, "b": 10.0}  # only the suite value differs
    assert exact.clip_means == {"a": (2.0, 3), "b": (10.0, 1)} and exact.n_clips == 4
    # Equal clip counts per video: the two protocols agree.
    even = [_row("a", 0, 1.0), _row("a", 1, 3.0), _row("b", 0, 10.0), _row("b", 1, 0.5)]
    assert aggregate(even, "m").value == aggregate(even, "m", for_protocol(VBENCH_LONG, "vbench-long-exact")).value


def test_exact_pooling_ignores_weights_but_drops_clips_vbench_long_never_scores():
    """temporal_flickering with the static filter: weight 0 = clip removed; VBench-Long averages kept clips plainly."""
    spec = TemporalFlickering.aggregation
    rows = [_row("a", 0, 0.9, 15), _row("a", 1, 0.5, 0), _row("b", 0, 0.8, 15), _row("b", 1, 0.6, 7)]
    ours = aggregate(rows, "m", spec)
    exact = aggregate(rows, "m", for_protocol(spec, "vbench-long-exact"))
    assert ours.per_video == {"a": 0.9, "b": pytest.approx((15 * 0.8 + 7 * 0.6) / 22)}
    assert ours.value == pytest.approx((0.9 + (15 * 0.8 + 7 * 0.6) / 22) / 2)
    assert exact.value == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert exact.per_video == ours.per_video and exact.clip_means["a"] == (0.9, 1)


def test_protocol_from_metric_id():
    mid = "vbench.subject_consistency@backbone=dino_vitb16,res=224,ref=vbench0.1.5"
    tagged = VBENCH_LONG_EXACT.tag(mid)
    assert tagged == mid + ",clips=vbench_long_exact" and ClipProtocol().tag(mid) == mid
    assert protocol_of_metric_id(mid) == "decode-once" and protocol_of_metric_id(tagged) == "vbench-long-exact"
    assert aggregation_for_metric_id(VBENCH_LONG, mid) == VBENCH_LONG
    assert aggregation_for_metric_id(VBENCH_LONG, tagged) == Aggregation(video_to_suite="clip_mean")
    assert VBENCH_LONG_EXACT.tag("plain") == "plain@clips=vbench_long_exact"
    with pytest.raises(ValueError, match="already carries"):
        VBENCH_LONG_EXACT.tag(tagged)
    with pytest.raises(ValueError, match="unknown clips="):
        protocol_of_metric_id("m@clips=other")
    with pytest.raises(ValueError, match="unknown clip protocol"):
        for_protocol(VBENCH_LONG, "exact")
    with pytest.raises(UserError, match="unknown clip protocol 'vbench-long'"):
        ClipProtocol("vbench-long")


def test_fingerprints_differ_and_name_the_encoder():
    import av

    once, exact = ClipProtocol().fingerprint(), VBENCH_LONG_EXACT.fingerprint()
    assert once == {"clip_protocol": "decode-once"}
    assert exact["clip_protocol"] == "vbench-long-exact" and exact["codec"] == "libx264"
    assert exact["pix_fmt"] == "yuv420p" and exact["threads"] == 1 and exact["av"] == av.__version__


# ------------------------------------------------------------------------------------------------ re-encode
def _probe(data: bytes) -> tuple[str, int, str]:
    import av

    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        return s.codec_context.pix_fmt, int(s.average_rate), s.codec_context.name


def test_reencode_uses_vbench_longs_writer_settings():
    frames = synthetic_clip(1, frames=32, height=48, width=64)
    data = encode_clip(frames, 16.9)
    assert _probe(data) == ("yuv420p", 16, "h264")  # int(fps), as VBench-Long's int(avg_fps)
    # x264 writes its settings into the stream: its defaults (CRF 23, medium's ref=3 / subme=7) on one thread.
    assert b"x264" in data and b"crf=23.0" in data and b"ref=3" in data and b"subme=7" in data
    assert b" threads=1 " in data and b"sliced_threads=0" in data
    assert decode_clip(data).shape == frames.shape


def test_reencode_is_lossy_deterministic_and_keeps_every_frame():
    frames = synthetic_clip(2, frames=32, height=48, width=64)
    out = reencode_frames(frames, 16.0)
    assert out.shape == frames.shape and out.dtype == torch.uint8
    diff = (out.float() - frames.float()).abs()
    # The synthetic clip carries per-pixel noise of std ~7.7 grey levels, which CRF 23 smooths away; an unrelated
    # clip is ~70 grey levels off.
    assert 0 < diff.mean() < 12.0 < (synthetic_clip(9, 32, 48, 64).float() - frames.float()).abs().mean()
    # Two encodes agree (at small sizes not always bit for bit: libx264 is not bit-reproducible here, clips.py)
    # far better than either agrees with the input.
    assert (reencode_frames(frames, 16.0).float() - out.float()).abs().mean() < 0.6 * diff.mean()


def test_decoding_the_bytes_equals_decoding_the_file(tmp_path):
    """The in-memory decode reads exactly what the metrics' decoder reads from the same file."""
    from deepforcing.metrics.video_io import decode_video

    frames = synthetic_clip(3, frames=20, height=32, width=48)
    data = encode_clip(frames, 16.0)
    (tmp_path / "clip.mp4").write_bytes(data)
    decoded = decode_video(tmp_path / "clip.mp4")
    assert decoded.fps == 16.0 and torch.equal(decoded.frames, decode_clip(data))


def test_clips_are_reencoded_one_by_one_including_the_padded_last_one():
    frames = synthetic_clip(4, frames=40, height=240, width=416)  # a size whose encodes were bit-stable (clips.py)
    spans = split_clips(40, 16.0)  # [0, 32) and the padded [8, 40)
    out, new = reencode_clips(frames, spans, 16.0)
    assert [(s.index, s.start, s.stop, s.new_frame) for s in new] == [(0, 0, 32, 0), (1, 32, 64, 32)]
    # Each clip is its own file: equal (up to libx264's occasional wobble) to re-encoding its frames alone.
    err = (out[:32].float() - frames[:32].float()).abs().mean()
    assert (out[:32].float() - reencode_frames(frames[0:32], 16.0).float()).abs().mean() < 0.3 * err
    assert (out[32:].float() - reencode_frames(frames[8:40], 16.0).float()).abs().mean() < 0.3 * err
    assert (out[32:].float() - reencode_frames(frames[0:32], 16.0).float()).abs().mean() > err


def test_odd_sizes_are_refused_clearly():
    with pytest.raises(UserError, match="even width and height; this video is 47x32"):
        reencode_frames(synthetic_clip(5, frames=4, height=32, width=47), 16.0)


# ------------------------------------------------------------------------------------------------ scoring loop
def test_score_video_under_the_exact_protocol():
    frames = synthetic_clip(6, frames=40, height=240, width=416)
    metric = TemporalFlickering()
    once = score_video("v", frames, 16.0, [metric])
    exact = score_video("v", frames, 16.0, [metric], protocol=VBENCH_LONG_EXACT)
    assert all(isinstance(r, ClipRow) for r in once + exact)
    assert {r.metric for r in once} == set(metric.metric_ids)
    assert {r.metric for r in exact} == set(metric_ids_under(metric, VBENCH_LONG_EXACT))
    assert metric_ids_under(metric, VBENCH_LONG_EXACT) == [metric.id + ",clips=vbench_long_exact"]
    # Rows are placed by the original spans; values are those of the re-encoded clips.
    assert [(r.start_frame, r.stop_frame, r.new_frame) for r in exact] == [(0, 32, 0), (8, 40, 32)]
    assert exact[1].value == pytest.approx(temporal_flickering_score(reencode_frames(frames[8:40], 16.0)), abs=2e-3)
    assert exact[0].value != once[0].value  # lossy: the numbers move (that is why the ids differ)
    assert abs(exact[0].value - once[0].value) < 0.05
    agg = aggregate(exact, exact[0].metric, aggregation_for_metric_id(metric.aggregation, exact[0].metric))
    assert agg.value == pytest.approx(math.fsum(r.value for r in exact) / 2)


def test_score_video_odd_size_under_exact_protocol_is_an_error_row():
    frames = synthetic_clip(7, frames=32, height=32, width=47)
    rows = score_video("v", frames, 16.0, [TemporalFlickering()], protocol=VBENCH_LONG_EXACT)
    assert len(rows) == 1 and isinstance(rows[0], VideoErrorRow) and "47x32" in rows[0].reason
    assert rows[0].metric.endswith(",clips=vbench_long_exact")


def test_scenes_are_reencoded_before_their_clips(monkeypatch):
    """VBench-Long writes each scene to an mp4 and splits that file: two encodes per clip under the exact protocol."""
    from deepforcing.metrics import base, clips

    frames = torch.cat([synthetic_clip(10, 23, 48, 64), synthetic_clip(11, 17, 48, 64)])
    calls = []
    real = clips.encode_clip

    def counting(f, fps, protocol=VBENCH_LONG_EXACT):
        calls.append(int(f.shape[0]))
        return real(f, fps, protocol)

    monkeypatch.setattr(clips, "encode_clip", counting)
    monkeypatch.setattr(base, "detect_scene_cuts", lambda frames, fps, threshold: [23])
    rows = score_video("v", frames, 8.0, [TemporalFlickering()], scene_threshold=35.0, protocol=VBENCH_LONG_EXACT)
    assert calls == [23, 17, 16, 16, 16, 16]  # the two scenes, then the four 16-frame clips of split_scene_clips
    assert [(r.start_frame, r.stop_frame) for r in rows] == [(0, 16), (7, 23), (23, 39), (24, 40)]
    assert all(r.metric.endswith("clips=vbench_long_exact") for r in rows)

import math
import subprocess
import sys

import pytest

from deepforcing.errors import UserError
from deepforcing.metrics import available_metrics, get_metric
from deepforcing.metrics.aggregate import Aggregation, aggregate
from deepforcing.metrics.clips import ClipSpan, clip_length, split_clips
from deepforcing.metrics.identity import metric_id, parse_metric_id
from deepforcing.metrics.rows import ClipRow, VideoErrorRow


def test_import_is_lazy():
    code = (
        "import sys, deepforcing.metrics, deepforcing.metrics.base, deepforcing.metrics.drift, "
        "deepforcing.metrics.weights, deepforcing.metrics.aggregate, deepforcing.metrics.clips; "
        "bad = [m for m in ('torch', 'open_clip', 'timm', 'scipy', 'torchmetrics') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_metric_lists_choices():
    with pytest.raises(UserError) as err:
        get_metric("subject_consistancy")
    assert "subject_consistency" in str(err.value)
    assert "available:" in str(err.value) and "fvd" in str(err.value)


def test_registry_targets_resolve():
    for name in ["image_stats", "temporal_flickering"]:
        assert isinstance(get_metric(name), type)
    assert "fvd" in available_metrics()


def test_metric_id_roundtrip():
    mid = metric_id("fvd", {"i3d": "styleganv", "frames": 16, "res": 224, "cov": "n-1"})
    assert mid == "fvd@i3d=styleganv,frames=16,res=224,cov=n-1"
    assert parse_metric_id(mid) == ("fvd", {"i3d": "styleganv", "frames": "16", "res": "224", "cov": "n-1"})
    assert metric_id("x", {"w": 5.0, "a": True, "s": 0.5}) == "x@w=5,a=true,s=0.5"
    assert metric_id("x") == "x"
    with pytest.raises(ValueError):
        metric_id("x", {"k": "a,b"})


def test_split_61_frames_at_16fps():
    # 2 s at int(16) fps = 32 frames; 61 = 32 + 29 -> last clip borrows 3 frames: frames 29..60.
    spans = split_clips(61, 16.0)
    assert spans == [ClipSpan(0, 0, 32, 0), ClipSpan(1, 29, 61, 32)]
    assert spans[1].padded and spans[1].num_frames == 32


def test_split_exact_multiple_and_vbench_fps_truncation():
    assert [s.start for s in split_clips(96, 16)] == [0, 32, 64]
    assert not any(s.padded for s in split_clips(96, 16))
    assert clip_length(23.976) == 46  # int(23.976) * 2, as VBench-Long's int(avg_fps)
    spans = split_clips(100, 23.976)
    assert [(s.start, s.stop) for s in spans] == [(0, 46), (46, 92), (54, 100)]


def test_split_short_and_empty():
    with pytest.raises(UserError, match="shorter than one"):
        split_clips(20, 16)
    assert split_clips(20, 16, allow_short=True) == [ClipSpan(0, 0, 20, 0)]
    with pytest.raises(UserError, match="no frames"):
        split_clips(0, 16)
    with pytest.raises(UserError, match="below 1 fps"):
        split_clips(10, 0.5)


def _row(vid, idx, value, weight=1.0, metric="m"):
    return ClipRow(metric, vid, idx, idx * 32, idx * 32 + 32, idx * 32, 16.0, value, weight)


def test_aggregate_mean_and_weighted():
    rows = [_row("a", 0, 1.0, 3), _row("a", 1, 0.0, 1), _row("b", 0, 0.5, 2), _row("x", 0, 9.0, 1, "other")]
    res = aggregate(rows, "m")
    assert res.per_video == {"a": 0.5, "b": 0.5} and res.value == 0.5 and res.n_clips == 3
    w = aggregate(rows, "m", Aggregation(clip_to_video="weighted_mean", video_to_suite="weighted_mean"))
    assert w.per_video["a"] == 0.75
    assert w.value == pytest.approx((3 * 1.0 + 0 + 2 * 0.5) / 6)
    assert aggregate(rows, "m", Aggregation(suite_scale=0.01)).value == pytest.approx(0.005)


def test_aggregate_is_shard_invariant():
    import random

    rng = random.Random(0)
    rows = [_row(f"v{v}", c, rng.random(), rng.randint(1, 40)) for v in range(7) for c in range(rng.randint(1, 9))]
    spec = Aggregation(video_to_suite="weighted_mean")
    one = aggregate(rows, "m", spec)
    for _ in range(5):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        shards = [shuffled[i::3] for i in range(3)]
        merged = aggregate([r for s in shards for r in s], "m", spec)
        assert merged.value == one.value and merged.per_video == one.per_video


def test_aggregate_errors_and_duplicates():
    rows = [_row("a", 0, 1.0), VideoErrorRow("m", "bad", "corrupt file")]
    res = aggregate(rows, "m")
    assert res.errors == {"bad": "corrupt file"} and res.n_videos == 1
    with pytest.raises(ValueError, match="duplicate"):
        aggregate([_row("a", 0, 1.0), _row("a", 0, 2.0)], "m")
    with pytest.raises(ValueError, match="not 0.."):
        aggregate([_row("a", 1, 1.0)], "m")
    assert math.isnan(aggregate([], "m").value)


def test_row_json_roundtrip():
    r = ClipRow("m@a=1", "vid with spaces_and_underscores", 0, 0, 32, 0, 16.0, math.nan, extra={"k": 1.0})
    j = r.to_json()
    assert j["value"] is None
    back = ClipRow.from_json(j)
    assert math.isnan(back.value) and back.video_id == r.video_id and back.t_end == 2.0

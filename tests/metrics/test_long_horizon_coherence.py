"""Long-horizon coherence on a tiny seeded DINO (the real ViT code, released key layout): known answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig
from deepforcing.metrics.base import score_video
from deepforcing.metrics.clips import VBENCH_LONG_EXACT
from deepforcing.metrics.long_horizon_coherence import (
    LongHorizonCoherence,
    LongHorizonCoherenceConfig,
    coherence_ids,
    grid_frames,
    slope_per_decade,
)
from deepforcing.metrics.rows import ClipRow
from tests.metrics.parity.setup import TINY_DINO_ARCH
from tests.metrics.parity.tiny import synthetic_clip, tiny_dino_state_dict

ARCH = DinoViTConfig(**TINY_DINO_ARCH)


@pytest.fixture(scope="module")
def metric(tmp_path_factory):
    path = tmp_path_factory.mktemp("dino") / "dino_vitbase16_pretrain.pth"
    torch.save(tiny_dino_state_dict(seed=3, dim=32), path)
    torch.set_num_threads(1)
    return LongHorizonCoherence(LongHorizonCoherenceConfig(str(path), arch=ARCH))


def _by_id(rows):
    return {r.metric: r for r in rows if isinstance(r, ClipRow)}


def test_constant_video_is_coherent_at_every_gap(metric):
    frame = synthetic_clip(1, frames=1, height=32, width=48)
    video = frame.expand(2 * 61, -1, -1, -1).contiguous()  # 61 s at 2 fps
    rows = _by_id(score_video("v", video, 2.0, [metric]))
    assert set(rows) == set(metric.metric_ids)
    for mid in metric.curve_ids:
        assert rows[mid].value == pytest.approx(1.0, abs=1e-12)
        assert (rows[mid].start_frame, rows[mid].stop_frame, rows[mid].clip_index) == (0, 122, 0)
    assert rows[metric.slope_id].value == pytest.approx(0.0, abs=1e-12)
    pairs = [rows[m].extra["pairs"] for m in metric.curve_ids]
    assert pairs == [61 - 2, 61 - 5, 61 - 10, 61 - 20, 61 - 50]  # grid frames at 0..60 s


def test_alternating_scenes_pair_exactly_the_frames_dt_apart(metric):
    """Scene A on even seconds, scene B on odd ones: even gaps pair like with like (1.0), the 5-s gap A with B."""
    a = synthetic_clip(2, frames=1, height=32, width=48)
    b = synthetic_clip(3, frames=1, height=32, width=48)
    fps = 4
    video = torch.cat([(a if (i // fps) % 2 == 0 else b) for i in range(fps * 60)])  # 60 s
    rows = _by_id(score_video("v", video, float(fps), [metric]))
    fa, fb = F.normalize(metric.features(torch.cat([a, b])).double(), dim=-1)
    cab = float(fa @ fb)
    assert cab < 0.999  # the two scenes differ for this DINO
    values = [rows[m].value for m in metric.curve_ids]  # gaps 2, 5, 10, 20, 50 s
    assert values[0] == pytest.approx(1.0, abs=1e-12) and values[2] == pytest.approx(1.0, abs=1e-12)
    assert values[1] == pytest.approx(cab, abs=1e-6) and rows[metric.curve_ids[1]].extra["min"] == pytest.approx(cab)
    assert values[3] == pytest.approx(1.0, abs=1e-12) and values[4] == pytest.approx(1.0, abs=1e-12)
    assert rows[metric.slope_id].value == pytest.approx(slope_per_decade([2, 5, 10, 20, 50], values), abs=1e-15)


def test_gaps_longer_than_the_video_are_undefined_and_skipped(metric):
    video = torch.cat([synthetic_clip(4, frames=2, height=32, width=48)] * 15)  # 30 frames at 2 fps: 15 s
    rows = _by_id(score_video("v", video, 2.0, [metric]))
    values = [rows[m].value for m in metric.curve_ids]
    assert all(math.isfinite(v) for v in values[:3]) and math.isnan(values[3]) and math.isnan(values[4])
    assert [rows[m].extra["pairs"] for m in metric.curve_ids] == [13, 10, 5, 0, 0]
    assert math.isfinite(rows[metric.slope_id].value) and rows[metric.slope_id].extra["gaps"] == 3
    short = _by_id(score_video("w", video[:6], 2.0, [metric]))  # 3 s: only the 2-s gap
    assert math.isnan(short[metric.slope_id].value)
    agg = aggregate(list(rows.values()) + list(short.values()), metric.curve_ids[3], metric.aggregation)
    assert math.isnan(agg.value) and agg.n_videos == 0  # nobody has a 20-s pair
    agg = aggregate(list(rows.values()) + list(short.values()), metric.curve_ids[0], metric.aggregation)
    assert agg.n_videos == 2


def test_grid_frames_and_slope():
    assert grid_frames(60, 2.0, 1.0) == list(range(0, 60, 2))  # 30 s: grid 0..29 s
    assert grid_frames(100, 23.976, 1.0) == [0, 24, 48, 72, 96]  # ceil(k * fps)
    assert grid_frames(40, 16.0, 0.5) == [0, 8, 16, 24, 32]
    gaps = [2, 5, 10, 20, 50]
    assert slope_per_decade(gaps, [1 - 0.1 * math.log10(g) for g in gaps]) == pytest.approx(-0.1, abs=1e-14)
    assert slope_per_decade(gaps, [0.5, math.nan, math.nan, math.nan, math.nan]) != slope_per_decade(gaps, [0.5] * 5)
    assert math.isnan(slope_per_decade(gaps, [0.5, math.nan, math.nan, math.nan, math.nan]))


def test_ids_spell_out_every_choice():
    curve, slope = coherence_ids(LongHorizonCoherenceConfig("x.pth"))
    assert curve[0] == "long_horizon_coherence@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dt=2s"
    assert curve[-1].endswith("dt=50s") and len(curve) == 5
    assert (
        slope == "long_horizon_coherence.slope@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dts=2-5-10-20-50,fit=log10"
    )
    other, _ = coherence_ids(LongHorizonCoherenceConfig("x.pth", gaps_s=(1.5, 3), stride_s=0.5))
    assert other == [
        "long_horizon_coherence@backbone=dino_vitb16,res=224,feat=cls,grid=0.5s,dt=1.5s",
        "long_horizon_coherence@backbone=dino_vitb16,res=224,feat=cls,grid=0.5s,dt=3s",
    ]
    with pytest.raises(ValueError, match="not multiples"):
        LongHorizonCoherenceConfig("x.pth", gaps_s=(2.5,))
    with pytest.raises(ValueError, match="increasing"):
        LongHorizonCoherenceConfig("x.pth", gaps_s=(5, 2))


def test_not_affected_by_the_clip_protocol(metric):
    video = torch.cat([synthetic_clip(5, frames=2, height=32, width=48)] * 12)  # 12 s at 2 fps
    once = _by_id(score_video("v", video, 2.0, [metric]))
    exact = _by_id(score_video("v", video, 2.0, [metric], protocol=VBENCH_LONG_EXACT))
    assert set(once) == set(exact) == set(metric.metric_ids)  # ids are not tagged
    assert all(once[m].value == exact[m].value or math.isnan(once[m].value) for m in once)


def test_metrics_yaml_has_the_default_ids():
    from pathlib import Path

    import yaml

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    entry = next(m for m in meta["metrics"] if m["name"] == "long_horizon_coherence")
    curve, slope = coherence_ids(LongHorizonCoherenceConfig("dino_vitbase16_pretrain.pth"))
    assert entry["id"] == [*curve, slope]

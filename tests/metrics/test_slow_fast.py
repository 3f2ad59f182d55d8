"""VBench-Long slow–fast fusion: mapping table lookup, fusion rule, rows, on hand-computed examples."""

import math

import pytest
import torch

from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.slow_fast import (
    BACKGROUND_MAPPING,
    SUBJECT_MAPPING,
    SlowFastConfig,
    fuse,
    map_clip2clip,
    slow_fast_scores,
)

S50, S51 = 0.932674917380015, 0.933938855974875  # subject_mapping_table.yaml at 0.5 and 0.51


def test_tables_are_vbench_long_quantile_tables():
    for table in (SUBJECT_MAPPING, BACKGROUND_MAPPING):
        assert len(table) == 101 and table[0] == 0.0 and table[-1] == 1.0
        assert all(a <= b for a, b in zip(table, table[1:], strict=False))  # quantiles are non-decreasing
    assert SUBJECT_MAPPING[50] == S50 and BACKGROUND_MAPPING[1] == 0.873691544930448


def test_mapping_interpolates_between_keys():
    assert map_clip2clip(0.505, SUBJECT_MAPPING) == pytest.approx((S50 + S51) / 2, abs=1e-15)
    assert map_clip2clip(0.5075, SUBJECT_MAPPING) == pytest.approx(S50 + 0.75 * (S51 - S50), abs=1e-15)
    assert map_clip2clip(0.5, SUBJECT_MAPPING) == pytest.approx(S50, abs=1e-15)
    assert map_clip2clip(0.0, SUBJECT_MAPPING) == 0.0 and map_clip2clip(-0.3, SUBJECT_MAPPING) == 0.0
    assert map_clip2clip(1.0, SUBJECT_MAPPING) == 1.0 and map_clip2clip(1.2, BACKGROUND_MAPPING) == 1.0
    assert map_clip2clip(0.005, BACKGROUND_MAPPING) == pytest.approx(0.873691544930448 / 2, abs=1e-15)


def test_fusion_rule():
    assert fuse(0.8, 0.9, 0.5, 0.5) == pytest.approx(0.85)
    assert fuse(0.8, 0.9, 0.7, 0.3) == pytest.approx(0.83)
    assert fuse(0.8, 0.0, 0.5, 0.5) == 0.8  # no clip-to-clip score: the in-clip score alone


def _unit(*xy):
    return torch.tensor([list(v) for v in xy], dtype=torch.float32)


def test_rows_on_hand_computed_video():
    # 3 clips of 2 frames with 2-D features.
    # in-clip: clip 0 cos = 0.6 -> s = (0.6 + 0.6) / 2 = 0.6; clips 1 and 2 repeat a frame -> 1.0; mean 2.6 / 3
    # first frames (1,0), (0.6,0.8), (0,1): t=2 -> (0.6 + 0.6)/2 = 0.6; t=3 -> (0.8 + 0)/2 = 0.4; c2c = 0.5
    # mapped = subject table at 0.5; fused per video = 0.5 * 2.6/3 + 0.5 * S50
    feats = [_unit((1, 0), (0.6, 0.8)), _unit((0.6, 0.8), (0.6, 0.8)), _unit((0, 1), (0, 1))]
    rows = slow_fast_scores("m", feats, [0, 1, 2], SlowFastConfig("subject"))
    assert [r.extra["inclip"] for r in rows] == pytest.approx([0.6, 1.0, 1.0])
    assert all(r.extra["clip2clip"] == pytest.approx(0.5) for r in rows)
    assert all(r.extra["mapped"] == pytest.approx(S50) for r in rows)
    expected = 0.5 * 2.6 / 3 + 0.5 * S50
    assert math.fsum(r.value for r in rows) / 3 == pytest.approx(expected, abs=1e-6)  # float32 cosines
    assert [r.weight for r in rows] == [1, 1, 1]
    # VBench-Long's non-dev weights (1, 0) give back the in-clip score
    plain = slow_fast_scores("m", feats, [0, 1, 2], SlowFastConfig("subject", 1.0, 0.0))
    assert [r.value for r in plain] == pytest.approx([0.6, 1.0, 1.0])


def test_one_clip_or_opposite_first_frames_keep_the_inclip_score():
    one = slow_fast_scores("m", [_unit((1, 0), (0.6, 0.8))], [0], SlowFastConfig("background"))
    assert one[0].value == pytest.approx(0.6) and math.isnan(one[0].extra["clip2clip"])
    # first frames pointing in opposite directions: cosines clamp to 0 -> c2c = 0 -> mapped 0 -> in-clip only
    opp = slow_fast_scores("m", [_unit((1, 0), (1, 0)), _unit((-1, 0), (-1, 0))], [0, 1], SlowFastConfig("subject"))
    assert [r.value for r in opp] == [1.0, 1.0] and opp[0].extra["mapped"] == 0.0


def test_config_validation():
    with pytest.raises(ValueError, match="table"):
        SlowFastConfig("face")
    with pytest.raises(ValueError, match="weights"):
        SlowFastConfig("subject", -0.1, 0.5)


def test_subject_consistency_slow_fast_end_to_end(tmp_path):
    from deepforcing.metrics.backbones.dino_vit import DinoViTConfig
    from deepforcing.metrics.vbench.consistency import consistency
    from deepforcing.metrics.vbench.subject_consistency import SubjectConsistency, SubjectConsistencyConfig
    from tests.metrics.parity.setup import TINY_DINO_ARCH
    from tests.metrics.parity.tiny import synthetic_clip, tiny_dino_state_dict

    torch.set_num_threads(1)
    torch.save(tiny_dino_state_dict(seed=1), tmp_path / "dino.pth")
    cfg = SubjectConsistencyConfig(str(tmp_path / "dino.pth"), arch=DinoViTConfig(**TINY_DINO_ARCH), slow_fast=True)
    metric = SubjectConsistency(cfg)
    assert metric.metric_ids == [
        "vbench.subject_consistency@backbone=dino_vit32d2p16,res=224,ref=vbench0.1.5",
        "vbench.subject_consistency@backbone=dino_vit32d2p16,res=224,ref=vbench0.1.5,"
        "fast=first_frames,map=vbench_long,w_in=0.5,w_c2c=0.5",
    ]
    frames = synthetic_clip(30, frames=10, height=32, width=40)  # 2 fps, 2-s clips: 4 + 4 + padded last (6..9)
    rows = score_video("v", frames, 2.0, [metric])
    inclip = aggregate(rows, metric.id).per_video["v"]
    fused = aggregate(rows, metric.fused_id).per_video["v"]
    starts = [0, 4, 6]
    c2c, _ = consistency(metric.features(frames[starts]))
    by_hand = [consistency(metric.features(frames[s : s + 4]))[0] for s in starts]
    assert inclip == pytest.approx(sum(by_hand) / 3, abs=1e-6)
    assert fused == pytest.approx(0.5 * inclip + 0.5 * map_clip2clip(c2c, SUBJECT_MAPPING), abs=1e-6)

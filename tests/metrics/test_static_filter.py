"""temporal_flickering's RAFT static filter: VBench's rules, known answers, parity with vbench 0.1.5.

Parity is checked on the per-pair top-2 % flow scores (consecutive and loop pairs) and on the decisions,
against ``parity/fixtures/vbench_parity_static.json`` everywhere and against vbench itself when the isolated
reference install is present (``parity/vbench_ref.py``).
"""

import json
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.static_filter import is_static, static_thresholds, top2_flow_magnitude
from deepforcing.metrics.vbench.temporal_flickering import (
    TemporalFlickering,
    TemporalFlickeringConfig,
    temporal_flickering_score,
)
from tests.metrics.parity.static_filter_ref import build_static_scenario, ref_static_filter

pytest.importorskip("torchvision")
FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity_static.json").read_text())
TOL = 1e-4


#: The clips scored in one video by the "slow" random RAFT: vbench keeps the first and rejects the second.
SLOW_VIDEO = ("moving", "still")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    torch.set_num_threads(1)
    weights, clips, sha = build_static_scenario(tmp_path_factory.mktemp("raft"))
    for key, digest in sha.items():
        assert FIXTURE["sha256"][key] == digest, f"seeded {key} changed; regenerate with make_static_fixture.py"
    return weights, clips


@pytest.fixture(scope="module")
def slow_video(scenario):
    """One RAFT pass over a two-clip video: the metric's rows and the filter decisions it took (recorded)."""
    weights, clips = scenario
    config = TemporalFlickeringConfig(
        static_filter=True, raft_weights=str(weights["raft_slow"]), static_filter_early_exit=False
    )
    metric = TemporalFlickering(config)  # every pair scored, so that all scores can be compared with vbench's
    decisions = []
    decide = metric.filter.decide
    metric.filter.decide = lambda frames: decisions.append(decide(frames)) or decisions[-1]
    frames = torch.cat([clips[n] for n in SLOW_VIDEO])  # two 5-frame clips (5 fps, 1-s clips)
    rows = score_video("v", frames, 5.0, [metric], duration_s=1.0)
    return metric, rows, dict(zip(SLOW_VIDEO, decisions, strict=True))


def test_vbench_rules():
    assert static_thresholds(480, 832, 32) == (5.625, 4)
    assert static_thresholds(130, 150, 5) == (3 * 130 / 256, 1)  # round(0.625) = 1
    assert static_thresholds(130, 150, 4) == (3 * 130 / 256, 0)  # round(0.5) = 0 (half to even)
    # at most count_num consecutive pairs above thres
    assert is_static([6.0, 1.0, 1.0], [0.0, 0.0], 5.0, 1)
    assert not is_static([6.0, 6.0, 1.0], [0.0, 0.0], 5.0, 1)
    assert not is_static([5.1], [0.0, 0.0], 5.0, 0)
    assert is_static([5.0], [0.0, 0.0], 5.0, 0)  # strictly above counts
    # loop pairs (first<->last) may move up to 2 * count_num * thres
    assert is_static([0.0], [10.0, 10.0], 5.0, 1)
    assert not is_static([0.0], [10.01, 0.0], 5.0, 1)
    assert not is_static([0.0], [0.1, 0.0], 5.0, 0)  # count_num 0: any loop motion rejects the clip


def test_top2_flow_magnitude():
    flow = torch.zeros(1, 2, 10, 20)
    flow[0, 0].view(-1)[:4] = 3.0  # exactly 2 % of 200 pixels move by (3, 4) -> magnitude 5
    flow[0, 1].view(-1)[:4] = 4.0
    assert top2_flow_magnitude(flow).tolist() == [5.0]
    with pytest.raises(ValueError, match="top 2 %"):
        top2_flow_magnitude(torch.zeros(1, 2, 5, 5))


def test_still_clip_kept_and_moving_clip_filtered(scenario):
    weights, clips = scenario
    # zero-flow RAFT: the still clip is static; its flicker row keeps its weight (frame pairs)
    zero = TemporalFlickering(TemporalFlickeringConfig(static_filter=True, raft_weights=str(weights["raft_zero"])))
    still = zero.score_clip(clips["still"][:2], 0)[0]  # 2 frames: 1 pair + 2 loop pairs through RAFT
    assert still.value == 1.0 and still.weight == 1 and still.extra["static"] == 1.0
    # random RAFT with flows of ~4 px > 3 * 130 / 256 px on every pair: the clip is filtered, and a video none
    # of whose clips is static is not scored (one error row that says why)
    fast = TemporalFlickering(TemporalFlickeringConfig(static_filter=True, raft_weights=str(weights["raft"])))
    rows = score_video("w", clips["moving"][:2], 2.0, [fast], duration_s=1.0)  # one 2-frame clip
    assert len(rows) == 1 and "static filter" in rows[0].reason
    assert fast.id == "vbench.temporal_flickering@ref=vbench0.1.5,static_filter=true"


def test_video_value_is_mean_over_kept_clips(scenario, slow_video):
    _, clips = scenario
    metric, rows, _ = slow_video
    assert [r.extra["static"] for r in rows] == [1.0, 0.0]
    assert [r.weight for r in rows] == [4.0, 0.0]
    assert [r.value for r in rows] == pytest.approx([temporal_flickering_score(clips[n]) for n in SLOW_VIDEO])
    assert aggregate(rows, metric.id, metric.aggregation).per_video["v"] == pytest.approx(rows[0].value)


def test_config_needs_raft_weights():
    with pytest.raises(UserError, match="raft_weights"):
        TemporalFlickeringConfig(static_filter=True)


def _assert_matches(decisions, ref):
    worst = 0.0
    for name, d in decisions.items():
        r = ref[name]
        assert d.static == r["static"], name
        assert (d.thres, d.count_num) == (r["thres"], r["count_num"])
        ours, theirs = [*d.pair_scores, *d.loop_scores], [*r["pair_scores"], *r["loop_scores"]]
        assert len(ours) == len(theirs)
        worst = max([worst] + [abs(a - b) for a, b in zip(ours, theirs, strict=True)])
    assert worst <= TOL, f"max |ours - vbench| pair score = {worst:.3g}"
    return worst


def test_decisions_match_vbench_fixture(slow_video):
    _, _, decisions = slow_video
    ref = FIXTURE["static_filter"]["raft_slow"]
    assert [ref[n]["static"] for n in SLOW_VIDEO] == [True, False]  # both decisions occur
    _assert_matches(decisions, ref)


def test_live_matches_vbench(scenario, slow_video):
    weights, clips = scenario
    ref = ref_static_filter({n: clips[n] for n in SLOW_VIDEO}, weights["raft_slow"])
    _assert_matches(slow_video[2], ref)


def test_early_exit_takes_the_same_decisions_from_fewer_pairs(scenario, slow_video):
    weights, clips = scenario
    metric, rows, full = slow_video
    fast = TemporalFlickering(TemporalFlickeringConfig(static_filter=True, raft_weights=str(weights["raft_slow"])))
    assert fast.id == metric.id  # same protocol, same values
    scored = []
    for name in SLOW_VIDEO:
        d = fast.filter.decide(clips[name])
        scored.append(len(d.pair_scores))
        assert d.static == full[name].static and d.num_pairs == full[name].num_pairs == 4
        assert d.loop_scores == pytest.approx(full[name].loop_scores, abs=TOL)
        assert d.pair_scores == pytest.approx(full[name].pair_scores[: len(d.pair_scores)], abs=TOL)
    # "moving": no pair above thres after 3 of 4 (count_num 1 can no longer be exceeded) -> static;
    # "still" (this RAFT sees motion everywhere): 2 pairs above thres > count_num 1 -> rejected after 2 of 4
    assert scored == [3, 2]
    fast_rows = score_video("v", torch.cat([clips[n] for n in SLOW_VIDEO]), 5.0, [fast], duration_s=1.0)
    assert [(r.value, r.weight) for r in fast_rows] == [(r.value, r.weight) for r in rows]
    assert [r.extra["pairs_scored"] for r in fast_rows] == [3.0, 2.0]

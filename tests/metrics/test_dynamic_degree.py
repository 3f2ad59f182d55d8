"""dynamic_degree: RAFT converter, VBench's thresholds and decision, parity with vbench 0.1.5 on random weights.

The random checkpoints are full-size RAFT-large state dicts in ``raft-things.pth``'s format (``module.``
prefixed original keys); see ``parity/tiny.py``. Parity is checked on the per-pair flow scores (continuous)
and on the per-clip decision, against ``parity/fixtures/vbench_parity.json`` everywhere and against vbench
itself when the isolated reference install is present.
"""

import json
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.raft import (
    convert_raft_things_state_dict,
    load_raft_things,
    original_to_torchvision_key,
    pad_to_multiple_of_8,
)
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.dynamic_degree import (
    DynamicDegree,
    DynamicDegreeConfig,
    is_dynamic,
    motion_thresholds,
    sample_interval,
    top5_flow_magnitude,
)
from tests.metrics.parity import vbench_ref
from tests.metrics.parity.setup import FLOW_FPS, build_flow_scenario, static_flow_clip
from tests.metrics.parity.tiny import raft_things_state_dict

pytest.importorskip("torchvision")
FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity.json").read_text())
TOL = 1e-4


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    s = build_flow_scenario(tmp_path_factory.mktemp("raft"))
    for key in ("raft", "flow_clips"):
        assert s.sha256[key] == FIXTURE["sha256"][key], f"seeded {key} changed; regenerate the fixture"
    return s


@pytest.fixture(scope="module")
def metric(flow):
    return DynamicDegree(DynamicDegreeConfig(str(flow.raft)))


def test_converter_covers_every_torchvision_parameter():
    from torchvision.models.optical_flow import raft_large

    original = raft_things_state_dict(0)
    converted = convert_raft_things_state_dict(original)
    expected = raft_large(weights=None).state_dict()
    assert set(converted) == set(expected)
    assert all(converted[k].shape == expected[k].shape for k in expected)
    # the 10 dropped tensors are the duplicate registrations of the stride-2 blocks' downsample norm
    assert len(original) - len(converted) == 10
    assert original_to_torchvision_key("module.cnet.layer2.0.norm3.weight") is None
    assert original_to_torchvision_key("module.update_block.gru.convq2.bias") == (
        "update_block.recurrent_block.convgru2.convq.bias"
    )


def test_loader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_raft_things(tmp_path / "raft-things.pth")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="not an original RAFT"):
        load_raft_things(tmp_path / "bad.pth")


def test_padding_matches_raft_input_padder():
    x = torch.arange(2 * 3 * 13 * 21, dtype=torch.float32).reshape(2, 3, 13, 21)
    y = pad_to_multiple_of_8(x)  # pad 3 rows (1 top, 2 bottom) and 3 columns (1 left, 2 right)
    assert y.shape == (2, 3, 16, 24)
    assert torch.equal(y[..., 1:14, 1:22], x)
    assert torch.equal(y[..., 0, 1:22], x[..., 0, :]) and torch.equal(y[..., 15, 1:22], x[..., 12, :])


def test_vbench_rules():
    assert [sample_interval(f) for f in (1, 8, 12, 16, 20, 23, 24, 30)] == [1, 1, 2, 2, 2, 3, 3, 4]
    assert sample_interval(20) == 2  # round(2.5) -> 2 (half to even), as Python's round in vbench
    assert motion_thresholds(480, 832, 16) == (11.25, 4)
    assert motion_thresholds(480, 832, 2) == (11.25, 0)  # round(0.5) -> 0
    assert is_dynamic([12.0, 1.0, 13.0, 14.0, 15.0], 11.25, 4)
    assert not is_dynamic([12.0, 1.0, 13.0, 14.0], 11.25, 4)
    assert is_dynamic([0.0], 11.25, 0)  # count_num 0: any pair makes the clip dynamic (vbench's loop)
    assert not is_dynamic([], 11.25, 0)


def test_top5_flow_magnitude():
    flow = torch.zeros(1, 2, 10, 20)
    flow[0, 0].view(-1)[:10] = 3.0  # exactly 5 % of 200 pixels move by (3, 4) -> magnitude 5
    flow[0, 1].view(-1)[:10] = 4.0
    assert top5_flow_magnitude(flow).tolist() == [5.0]


def _ours(metric, frames):
    """Our pair scores and decision for one clip (one RAFT pass)."""
    sampled = frames[:: sample_interval(int(FLOW_FPS))]
    scores = metric.pair_scores(sampled).tolist()
    return scores, is_dynamic(scores, *motion_thresholds(frames.shape[1], frames.shape[2], sampled.shape[0]))


def _assert_matches(metric, clips, ref):
    worst = 0.0
    for name, frames in clips.items():
        scores, dynamic = _ours(metric, frames)
        assert len(scores) == len(ref[name]["pair_scores"])
        worst = max([worst] + [abs(a - b) for a, b in zip(scores, ref[name]["pair_scores"], strict=True)])
        assert dynamic == ref[name]["dynamic"], name
    assert worst <= TOL, f"max |ours - vbench| pair score = {worst:.3g}"


def test_pair_scores_and_decisions_match_vbench_fixture(flow, metric):
    expected = FIXTURE["dimensions"]["dynamic_degree"]
    assert expected["fps"] == FLOW_FPS
    _assert_matches(metric, flow.flow_clips, expected["per_video"])


def test_static_video_with_zero_flow_raft_is_not_dynamic(flow):
    m = DynamicDegree(DynamicDegreeConfig(str(flow.raft_zero)))
    s = m.score_frames(static_flow_clip(), FLOW_FPS)
    assert s.value == 0.0 and s.extra["moving_pairs"] == 0.0
    ref = FIXTURE["dimensions"]["dynamic_degree"]["zero_flow_per_video"]["static"]
    assert ref == {"dynamic": False, "pair_scores": [0.0, 0.0]}


def test_video_value_is_fraction_of_dynamic_clips(flow):
    # 1 fps, 2-s clips: 2 clips of 2 frames -> 1 pair each, count_num = round(4 * 2 / 16) = round(0.5) = 0.
    # VBench then calls any clip with a pair dynamic, even with zero flow: a quirk reproduced on purpose.
    frames = flow.flow_clips["moving"][:4]  # (4, 130, 150, 3)
    zero = DynamicDegree(DynamicDegreeConfig(str(flow.raft_zero)))
    rows = score_video("v", frames, 1.0, [zero])
    assert [r.clip_index for r in rows] == [0, 1] and [r.value for r in rows] == [1.0, 1.0]
    assert all(r.extra["count_num"] == 0 and r.extra["moving_pairs"] == 0 for r in rows)
    assert aggregate(rows, zero.id).per_video["v"] == 1.0


def test_small_frames_are_a_clear_error(metric):
    rows = score_video("tiny", torch.zeros(32, 64, 64, 3, dtype=torch.uint8), 16.0, [metric])
    assert len(rows) == 1 and "too small for RAFT" in rows[0].reason


def test_live_matches_vbench(flow, metric):
    _assert_matches(metric, flow.flow_clips, vbench_ref.ref_dynamic_degree(flow.flow_clips, flow.raft, FLOW_FPS))


def test_id_matches_metadata(metric):
    import yaml

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    assert next(m["id"] for m in meta["metrics"] if m["name"] == "dynamic_degree") == metric.id


def test_early_exit_same_value_fewer_pairs(flow, metric):
    # 3 sampled frames -> 2 pairs, count_num round(0.75) = 1: the first pair (3.48 px > 3.05 px) settles it
    full = DynamicDegree(DynamicDegreeConfig(str(flow.raft), early_exit=False))
    assert metric.config.early_exit and metric.id == full.id
    for name, frames in flow.flow_clips.items():
        fast, every = metric.score_frames(frames, FLOW_FPS), full.score_frames(frames, FLOW_FPS)
        assert fast.value == every.value == 1.0, name
        assert (fast.extra["pairs_scored"], every.extra["pairs_scored"], every.extra["pairs"]) == (1.0, 2.0, 2.0)

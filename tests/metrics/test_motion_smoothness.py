"""motion_smoothness (AMT-S frame interpolation): parity with vbench 0.1.5 and known answers.

Parity has two layers, like ``test_vbench_parity.py``:
* against ``parity/fixtures/vbench_parity_motion.json`` (numbers produced by vbench's own code on random
  full-size AMT-S weights, see ``parity/make_motion_fixture.py``) — runs everywhere;
* live against vbench itself when the isolated reference install is present (``parity/motion_ref.py``).

Besides the scores, the predicted frames and the finest flows are compared (average-pooled), so a bug that
happens to leave a score unchanged is still caught.
"""

import json
import math
import os
import pickle
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.amt import AmtS, load_amt_s, unpad
from deepforcing.metrics.base import score_video
from deepforcing.metrics.vbench.motion_smoothness import (
    MotionSmoothness,
    MotionSmoothnessConfig,
    score_from_predictions,
    to_model_input,
    to_uint8_like_vbench,
    vbench_interpolation_scale,
)
from tests.metrics.parity import motion_ref
from tests.metrics.parity.motion_setup import (
    SCALED_VRAM_BYTES,
    amt_s_state_dict,
    build_motion_scenario,
    save_amt_checkpoint,
    scaled_clip,
)

FIXTURE = json.loads((Path(__file__).parent / "parity" / "fixtures" / "vbench_parity_motion.json").read_text())
TOL = 1e-4  # scores (0..1)
FRAME_TOL = 1e-5  # pooled predicted frames (0..1)
FLOW_TOL = 1e-4  # pooled flows (pixels)
DIFF_TOL = 1e-3  # per-pair mean absolute differences (0..255)
UINT8_MEAN_TOL = 1e-2  # per-channel means of the uint8 predictions (0..255)
AMT_S_PARAMS = 2_990_543


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    torch.set_num_threads(1)
    s = build_motion_scenario(tmp_path_factory.mktemp("amt"))
    for key, digest in s.sha256.items():
        assert FIXTURE["sha256"][key] == digest, (
            f"seeded {key} differs from the one the fixture was made with; regenerate the fixture with "
            "tests/metrics/parity/make_motion_fixture.py"
        )
    return s


@pytest.fixture(scope="module")
def metric(scenario):
    return MotionSmoothness(MotionSmoothnessConfig(str(scenario.amt)), batch_size=4)


@pytest.fixture(scope="module")
def zero_motion(scenario):
    return MotionSmoothness(MotionSmoothnessConfig(str(scenario.amt_zero_motion)), batch_size=4)


def _ours(metric: MotionSmoothness, clips: dict[str, torch.Tensor]) -> dict:
    """Our numbers in the fixture's layout (per-video scores, aggregate, per-clip intermediates)."""
    per_video, per_clip = {}, {}
    for name, frames in clips.items():
        score, diffs = metric.score_frames(frames)
        per_video[name] = score
        keyframes, pad = to_model_input(frames[0::2])
        with torch.inference_mode():
            out = metric.model(keyframes[:-1], keyframes[1:], 0.5)
        preds = to_uint8_like_vbench(unpad(out.frame, pad))  # (P, H, W, 3)
        per_clip[name] = {
            "pair_mean_abs_diff": diffs.tolist(),
            "pred_uint8_mean": preds.double().mean(dim=(1, 2)).tolist(),
            "frame_pooled": motion_ref.pooled(out.frame, motion_ref.FRAME_POOL),
            "flow_t0_pooled": motion_ref.pooled(out.flow_t0, motion_ref.FLOW_POOL),
            "flow_t1_pooled": motion_ref.pooled(out.flow_t1, motion_ref.FLOW_POOL),
            "padded_hw": list(out.frame.shape[-2:]),
        }
    rows = [r for n, f in clips.items() for r in score_video(n, f, 1.0, [metric], duration_s=len(f))]
    return {"aggregate": aggregate(rows, metric.metric_ids[0]).value, "per_video": per_video, "clips": per_clip}


def _max_abs(a, b) -> float:
    ta, tb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    assert ta.shape == tb.shape, f"shape {tuple(ta.shape)} != {tuple(tb.shape)}"
    return float((ta - tb).abs().max()) if ta.numel() else 0.0


def _compare(ours: dict, ref: dict, what: str) -> dict[str, float]:
    """Assert every tolerance; return the measured maxima."""
    assert ours["per_video"].keys() == ref["per_video"].keys()
    names = sorted(ref["per_video"])
    measured = {
        "score": max(abs(ours["per_video"][n] - ref["per_video"][n]) for n in names),
        "aggregate": abs(ours["aggregate"] - ref["aggregate"]),
    }
    for key in ("pair_mean_abs_diff", "pred_uint8_mean", "frame_pooled", "flow_t0_pooled", "flow_t1_pooled"):
        present = [n for n in names if key in ref["clips"][n]]
        if present:
            measured[key] = max(_max_abs(ours["clips"][n][key], ref["clips"][n][key]) for n in present)
    for n in names:
        assert ours["clips"][n]["padded_hw"] == ref["clips"][n]["padded_hw"], n
    limits = {
        "score": TOL,
        "aggregate": TOL,
        "pair_mean_abs_diff": DIFF_TOL,
        "pred_uint8_mean": UINT8_MEAN_TOL,
        "frame_pooled": FRAME_TOL,
        "flow_t0_pooled": FLOW_TOL,
        "flow_t1_pooled": FLOW_TOL,
    }
    for key, value in measured.items():
        assert value <= limits[key], f"{what}: max |ours - vbench| of {key} = {value:.3g} > {limits[key]}"
    return measured


# ---- the network and its checkpoint ---------------------------------------------------------------------------


def test_checkpoint_layout_and_strict_load(scenario):
    model = load_amt_s(scenario.amt)
    assert sum(p.numel() for p in model.parameters()) == AMT_S_PARAMS
    assert not model.training
    state = torch.load(scenario.amt, weights_only=True)
    assert list(state) == ["epoch", "state_dict"]
    assert all(torch.equal(v, state["state_dict"][k]) for k, v in model.state_dict().items())


def test_loader_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_amt_s(tmp_path / "missing.pth")
    sd = amt_s_state_dict(seed=1)
    bad = dict(sd)
    bad["comb_block.0.weight"] = bad["comb_block.0.weight"][:, :6]
    del bad["update2.convc1.bias"]
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError, match=r"missing \(1\): update2.convc1.bias.*unexpected \(1\).*comb_block.0.weight"):
        load_amt_s(save_amt_checkpoint(bad, tmp_path / "bad.pth"))
    torch.save({"model": sd}, tmp_path / "nested.pth")
    with pytest.raises(UserError, match="no AMT state dict"):
        load_amt_s(tmp_path / "nested.pth")


def test_pickled_objects_need_trust(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "amt-s.pth"
    # Like a trainer checkpoint holding a numpy scalar: refused by weights_only=True (what breaks vbench 0.1.5).
    torch.save({"epoch": 1, "best_psnr": np.float64(35.0), "state_dict": amt_s_state_dict(seed=1)}, path)
    with pytest.raises(UserError, match="trust_pickle"):
        load_amt_s(path)
    assert isinstance(load_amt_s(path, trust_pickle=True), AmtS)


def test_frames_too_small_or_too_few_are_rejected(metric):
    g = torch.Generator().manual_seed(0)
    small = torch.randint(0, 256, (3, 100, 200, 3), generator=g, dtype=torch.uint8)  # pads to 112 x 208
    with pytest.raises(UserError, match="128 px"):
        metric.score_frames(small)
    with pytest.raises(UserError, match="at least 3 frames"):
        metric.score_frames(torch.zeros(2, 128, 128, 3, dtype=torch.uint8))


def test_vbench_scale_rule():
    assert vbench_interpolation_scale(480, 832) == 1.0  # CPU rule
    assert vbench_interpolation_scale(480, 832, 80 * 1024**3) == 1.0
    assert vbench_interpolation_scale(200, 240, SCALED_VRAM_BYTES) == 1 / 17 * 16
    assert int(16 / vbench_interpolation_scale(200, 240, SCALED_VRAM_BYTES)) == 17  # padding multiple
    with pytest.raises(UserError):
        vbench_interpolation_scale(480, 832, 1024**3)


# ---- known answers --------------------------------------------------------------------------------------------


def test_uint8_round_trip_is_lossless():
    """VBench truncates ``x * 255``; for ``x = v / 255`` in float32 that gives back ``v`` for every byte value."""
    v = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(to_uint8_like_vbench(v.float() / 255.0), v.permute(0, 2, 3, 1))


def test_static_clip_scores_one_with_an_exact_interpolator(metric, scenario, monkeypatch):
    """Identical frames + an interpolator returning the mean of its inputs: exactly 1.0 through the whole pipeline
    (frame selection, padding to 16, cropping, vbench's uint8 conversion)."""
    import types

    def mean_of_inputs(self, a, b, t, scale=1.0):
        return types.SimpleNamespace(frame=(a + b) / 2)

    still = scenario.clips["static"]
    monkeypatch.setattr(AmtS, "forward", mean_of_inputs)
    assert metric.score_frames(still)[0] == 1.0
    # The same interpolator on a moving clip: the score is the closed form of the midpoint predictions.
    moving = scenario.clips["landscape"]
    even = moving[0::2].to(torch.int16)
    mid = ((even[:-1] + even[1:]) / 2).floor()  # (a + b) / 2 in float32, truncated: x.5 -> x
    expected = (255 - float((mid - moving[1::2][: len(mid)].to(torch.int16)).abs().double().mean())) / 255
    assert metric.score_frames(moving)[0] == pytest.approx(expected, abs=1e-12)


def test_zero_motion_amt_predicts_the_mean_of_its_inputs(zero_motion, scenario):
    """Real AMT-S with flow, mask and residual heads zeroed (encoders, correlation, updates random): the prediction
    is ``(a + b) / 2`` to float rounding, and after vbench's truncation each byte is that mean rounded down, or
    one less where the mean is an integer and rounding noise fell below it."""
    for name, frames in scenario.clips.items():
        x, pad = to_model_input(frames[0::2])
        with torch.inference_mode():
            out = zero_motion.model(x[:-1], x[1:], 0.5)
        assert float(out.flow_t0.abs().max()) == 0.0 and float(out.flow_t1.abs().max()) == 0.0
        assert float((out.mask - 0.5).abs().max()) == 0.0
        assert float((out.frame - (x[:-1] + x[1:]) / 2).abs().max()) < 1e-5, name
        preds = to_uint8_like_vbench(unpad(out.frame, pad)).to(torch.int16)
        even = frames[0::2].to(torch.int16)
        total = even[:-1] + even[1:]
        low = torch.div(total, 2, rounding_mode="floor")
        assert bool(((preds == low) | ((preds == low - 1) & (total % 2 == 0))).all()), name
    # A static clip therefore scores in [1 - 1/255, 1]; below 1 only because of the truncation.
    score = zero_motion.score_frames(scenario.clips["static"])[0]
    assert 1 - 1 / 255 <= score <= 1.0


def test_score_formula():
    a = torch.full((2, 4, 4, 3), 10, dtype=torch.uint8)
    b = a.clone()
    b[0] += 3  # pair 0 off by 3 everywhere, pair 1 exact
    score, diffs = score_from_predictions(a, b)
    assert diffs.tolist() == [3.0, 0.0]
    assert score == pytest.approx((255 - 1.5) / 255, abs=1e-15)


# ---- parity with vbench 0.1.5 (fixture) -----------------------------------------------------------------------


def test_matches_vbench_fixture(metric, scenario):
    _compare(_ours(metric, scenario.clips), FIXTURE["motion_smoothness"], "motion_smoothness")
    assert 0.85 < FIXTURE["motion_smoothness"]["aggregate"] < 0.99  # a non-degenerate random interpolator


def test_zero_motion_matches_vbench_fixture(zero_motion, scenario):
    _compare(_ours(zero_motion, scenario.clips), FIXTURE["motion_smoothness_zero_motion"], "zero-motion")


def test_unbatched_pairs_match_vbench_fixture(scenario):
    one = MotionSmoothness(MotionSmoothnessConfig(str(scenario.amt)), batch_size=1)
    ref = FIXTURE["motion_smoothness"]["per_video"]
    for name, frames in scenario.clips.items():
        assert abs(one.score_frames(frames)[0] - ref[name]) <= TOL, name


def test_downscaled_path_matches_vbench_fixture(scenario):
    ref = FIXTURE["motion_smoothness_scaled"]
    m = MotionSmoothness(MotionSmoothnessConfig(str(scenario.amt), vram_bytes=ref["vram_bytes"]))
    assert "vram=" + str(ref["vram_bytes"]) in m.metric_ids[0]
    for name, frames in scaled_clip().items():
        score, diffs = m.score_frames(frames)
        assert ref["clips"][name]["scale"] == vbench_interpolation_scale(*frames.shape[1:3], ref["vram_bytes"])
        assert abs(score - ref["per_video"][name]) <= TOL
        assert _max_abs(diffs.tolist(), ref["clips"][name]["pair_mean_abs_diff"]) <= DIFF_TOL


def test_metric_id_and_rows(metric, scenario):
    assert metric.metric_ids == ["vbench.motion_smoothness@model=amt_s,t=0.5,vram=cpu,ref=vbench0.1.5"]
    (row,) = metric.score_clip(scenario.clips["portrait"], 3)
    assert row.clip_index == 3 and row.weight == 2.0 and row.extra["pairs"] == 2.0  # 6 frames: 2 predictions
    assert math.isclose(row.value, FIXTURE["motion_smoothness"]["per_video"]["portrait"], abs_tol=TOL)


# ---- live comparison with vbench's own code (skips unless the isolated install is configured) ----------------


def test_live_motion_smoothness(metric, zero_motion, scenario):
    ref = motion_ref.ref_motion_smoothness(scenario.clips, scenario.amt)
    _compare(_ours(metric, scenario.clips), ref, "motion_smoothness (live)")
    ref = motion_ref.ref_motion_smoothness(scenario.clips, scenario.amt_zero_motion)
    _compare(_ours(zero_motion, scenario.clips), ref, "zero-motion (live)")


def test_live_downscaled(scenario):
    clips = scaled_clip()
    ref = motion_ref.ref_motion_smoothness(clips, scenario.amt, vram_bytes=SCALED_VRAM_BYTES)
    m = MotionSmoothness(MotionSmoothnessConfig(str(scenario.amt), vram_bytes=SCALED_VRAM_BYTES))
    for name, frames in clips.items():
        assert abs(m.score_frames(frames)[0] - ref["per_video"][name]) <= TOL


def test_live_reference_still_refuses_pickled_checkpoints(tmp_path):
    """vbench 0.1.5's loader (torch.load defaults) fails on a checkpoint with pickled objects under torch >= 2.6."""
    mod, root = motion_ref.require_motion_reference()
    np = pytest.importorskip("numpy")
    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") or os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD"):
        pytest.skip("torch.load's default is overridden by the environment")
    path = tmp_path / "amt-s.pth"
    torch.save({"epoch": 1, "best_psnr": np.float64(35.0), "state_dict": amt_s_state_dict(seed=1)}, path)
    with pytest.raises(pickle.UnpicklingError):
        mod.MotionSmoothness(str(root / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"), str(path), "cpu")

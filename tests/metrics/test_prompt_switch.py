"""Prompt-switch metrics on synthetic multi-scene videos with tiny seeded ViCLIP / CLIP / DINO: known answers.

Each scene is one image held still, so every frame-level quantity inside a scene is known exactly. The prompts
are picked from a candidate list so that, for these random backbones, scene A is closer to prompt ``pa`` and
scene B to prompt ``pb`` under both ViCLIP and CLIP (the test asserts that before relying on it).
"""

import math

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig
from deepforcing.metrics.base import score_video
from deepforcing.metrics.rows import ClipRow, VideoErrorRow
from deepforcing.metrics.segments import Segment, parse_segments, segment_frames, time_to_frame
from tests.metrics.parity.overall_setup import TINY_VICLIP, tiny_viclip_state_dict
from tests.metrics.parity.setup import TINY_DINO_ARCH
from tests.metrics.parity.tiny import synthetic_clip, tiny_dino_state_dict, tiny_openai_clip_state_dict

pytest.importorskip("open_clip", reason="open_clip_torch not installed (CLIP and its tokenizer come from it)")

FPS = 4.0
CANDIDATES = [
    "a red square on a blue sea",
    "a snowy mountain at dawn",
    "a cat sleeping on a sofa",
    "city traffic at night",
    "a bowl of fresh fruit",
    "waves crashing on rocks",
    "a dancer in a studio",
    "autumn leaves in a park",
    "a spaceship over a desert",
    "an old man reading",
    "fireworks over a river",
    "a green field with cows",
    "a robot walking in the rain",
    "children playing football",
    "a candle on a dark table",
    "a horse running on a beach",
]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("switch")
    torch.save(tiny_openai_clip_state_dict(seed=21, embed_dim=64, patch=32, vocab=49408), root / "ViT-B-32.pt")
    torch.save({"model": tiny_viclip_state_dict()}, root / "ViClip-InternVid-10M-FLT.pth")
    torch.save(tiny_dino_state_dict(seed=3, dim=32), root / "dino.pth")
    torch.set_num_threads(1)
    return root


@pytest.fixture(scope="module")
def scenes():
    return synthetic_clip(60, frames=1, height=32, width=48), synthetic_clip(61, frames=1, height=32, width=48)


def _hold(image: torch.Tensor, seconds: float) -> torch.Tensor:
    return image.expand(round(seconds * FPS), -1, -1, -1).contiguous()


def _segments(*parts):
    out, t = [], 0.0
    for prompt, seconds in parts:
        out.append({"prompt": prompt, "start_s": t, "end_s": t + seconds})
        t += seconds
    return out


@pytest.fixture(scope="module")
def alignment(weights):
    from deepforcing.metrics.segment_text_alignment import SegmentTextAlignment, SegmentTextAlignmentConfig

    config = SegmentTextAlignmentConfig(
        str(weights / "ViClip-InternVid-10M-FLT.pth"), str(weights / "ViT-B-32.pt"), viclip_arch=TINY_VICLIP
    )
    return SegmentTextAlignment(config), config


@pytest.fixture(scope="module")
def prompts(alignment, scenes):
    """(pa, pb): under both encoders, scene A prefers pa over pb and scene B prefers pb over pa."""
    metric, _ = alignment
    scores = []
    for aligner in metric.aligners:
        ua, ub = aligner.segment_vector(_hold(scenes[0], 2)), aligner.segment_vector(_hold(scenes[1], 2))
        scores.append({p: (float(ua @ aligner.text(p)), float(ub @ aligner.text(p))) for p in CANDIDATES})
    best, pair = -math.inf, None
    for pa in CANDIDATES:
        for pb in CANDIDATES:
            if pa == pb:
                continue
            margin = min(min(s[pa][0] - s[pb][0], s[pb][1] - s[pa][1]) for s in scores)
            if margin > best:
                best, pair = margin, (pa, pb)
    assert best > 1e-4, "no candidate pair separates the two scenes for both tiny encoders"
    return pair


def _rows(metric, video, segments=None, prompt=None):
    rows = score_video("v", video, FPS, [metric], segments=segments, prompt=prompt)
    return [r for r in rows if isinstance(r, ClipRow)], [r for r in rows if isinstance(r, VideoErrorRow)]


# ------------------------------------------------------------------------------------------------ segments
def test_segments_parse_and_map_to_frames():
    segs = parse_segments(_segments(("a", 5.0), ("b", 2.5)))
    assert segs == (Segment("a", 0.0, 5.0), Segment("b", 5.0, 7.5))
    assert segment_frames(segs, 16.0, 120) == [(0, 80), (80, 120)]
    assert segment_frames(segs, 16.0, 121) == [(0, 80), (80, 121)]  # one frame of rounding is tolerated
    assert time_to_frame(5.0, 16.0) == 80 and time_to_frame(0.1, 16.0) == 2 and time_to_frame(1 / 3, 3.0) == 1
    with pytest.raises(UserError, match="the video has 200 frames"):
        segment_frames(segs, 16.0, 200)
    with pytest.raises(UserError) as err:
        parse_segments(
            [
                {"prompt": " ", "start_s": 0, "end_s": 1},
                {"prompt": "b", "start_s": 1.5, "end_s": 1.2},
                {"prompt": "c"},
            ]
        )
    msg = str(err.value)
    assert "segment 0: empty prompt" in msg and "segment 1: ends at 1.2 s" in msg
    assert "segment 1: starts at 1.5 s, but segment 0 ends at 1 s" in msg and "segment 2: needs prompt" in msg
    assert parse_segments(None) == () and parse_segments([]) == ()


def test_bad_segments_become_error_rows(alignment, scenes):
    metric, _ = alignment
    video = torch.cat([_hold(scenes[0], 5), _hold(scenes[1], 5)])
    rows, errors = _rows(metric, video, segments=[{"prompt": "x", "start_s": 0, "end_s": -1}])
    assert not rows and len(errors) == 2 and "bad prompt segments" in errors[0].reason


# ------------------------------------------------------------------------------------------------ text alignment
def test_segment_alignment_equals_the_vbench_parity_tested_scorers(alignment, scenes, prompts, weights):
    """Each segment's ViCLIP score is overall_consistency's on its frames, its CLIP score clip_text_similarity's."""
    from deepforcing.metrics.clip_text_similarity import ClipTextSimilarity, ClipTextSimilarityConfig
    from deepforcing.metrics.vbench.overall_consistency import OverallConsistency, OverallConsistencyConfig

    metric, config = alignment
    pa, pb = prompts
    a = synthetic_clip(62, frames=20, height=32, width=48)  # moving content: sampling matters
    video = torch.cat([a, _hold(scenes[1], 5)])
    rows, errors = _rows(metric, video, segments=_segments((pa, 5), (pb, 5)))
    assert not errors and len(rows) == 4
    viclip_rows = [r for r in rows if r.metric == metric.metric_ids[0]]
    clip_rows = [r for r in rows if r.metric == metric.metric_ids[1]]
    assert [(r.clip_index, r.start_frame, r.stop_frame) for r in viclip_rows] == [(0, 0, 20), (1, 20, 40)]
    overall = OverallConsistency(OverallConsistencyConfig(config.viclip_weights, arch=TINY_VICLIP))
    clip_text = ClipTextSimilarity(ClipTextSimilarityConfig(config.clip_weights))
    for r, (frames, prompt) in zip(viclip_rows, [(video[:20], pa), (video[20:], pb)], strict=True):
        assert r.value == pytest.approx(overall.score_frames(frames, prompt), abs=1e-6)
    for r, (frames, prompt) in zip(clip_rows, [(video[:20], pa), (video[20:], pb)], strict=True):
        assert r.value == pytest.approx(clip_text.score_segment(frames, prompt).value, abs=1e-6)
    assert metric.metric_ids == [
        "segment_text_alignment@backbone=viclip_w64d2,frames=8,sample=middle,res=224,text=trunc32",
        "segment_text_alignment@backbone=openai-vit-b32,frames=8,sample=middle,res=224,text=trunc77",
    ]
    agg = aggregate(rows, metric.metric_ids[1], metric.aggregation)
    assert agg.value == pytest.approx((clip_rows[0].value + clip_rows[1].value) / 2, abs=1e-12)


def test_a_single_prompt_video_is_one_segment(alignment, scenes, prompts):
    metric, _ = alignment
    video = _hold(scenes[0], 5)
    rows, _ = _rows(metric, video, prompt=prompts[0])
    same, _ = _rows(metric, video, segments=_segments((prompts[0], 5)))
    assert [(r.start_frame, r.stop_frame) for r in rows] == [(0, 20), (0, 20)]
    assert [r.value for r in rows] == [r.value for r in same]
    _, errors = _rows(metric, video)
    assert len(errors) == 2 and "needs the video's prompt segments" in errors[0].reason


# ------------------------------------------------------------------------------------------------ switch accuracy
@pytest.fixture(scope="module")
def accuracy(alignment):
    from deepforcing.metrics.switch_accuracy import SwitchAccuracy

    return SwitchAccuracy(alignment[1])


def test_switch_accuracy_known_answers(accuracy, scenes, prompts):
    pa, pb = prompts
    a, b = _hold(scenes[0], 5), _hold(scenes[1], 5)
    right, _ = _rows(accuracy, torch.cat([a, b, a]), segments=_segments((pa, 5), (pb, 5), (pa, 5)))
    assert len(right) == 6 and all(r.value == 1.0 for r in right)
    assert all(r.extra["own"] > r.extra["best_neighbour"] for r in right)
    wrong, _ = _rows(accuracy, torch.cat([a, b]), segments=_segments((pb, 5), (pa, 5)))
    assert len(wrong) == 4 and all(r.value == 0.0 for r in wrong)
    same, _ = _rows(accuracy, torch.cat([a, b]), segments=_segments((pa, 5), (pa, 5)))
    assert all(math.isnan(r.value) for r in same)  # no neighbour with another prompt: undefined
    agg = aggregate(right + [ClipRow(**{**r.__dict__, "video_id": "w"}) for r in wrong], accuracy.metric_ids[0])
    assert agg.per_video == {"v": 1.0, "w": 0.0} and agg.value == 0.5
    assert accuracy.metric_ids[1].endswith(",rule=own_gt_neighbours")


def test_switch_metrics_refuse_single_segment_videos(accuracy, scenes, prompts):
    _, errors = _rows(accuracy, _hold(scenes[0], 5), prompt=prompts[0])
    assert len(errors) == 2 and "has 0 segment(s)" in errors[0].reason
    _, errors = _rows(accuracy, _hold(scenes[0], 5), segments=_segments((prompts[0], 5)))
    assert "has 1 segment(s)" in errors[0].reason


# ------------------------------------------------------------------------------------------------ smoothness
@pytest.fixture(scope="module")
def smoothness(weights):
    from deepforcing.metrics.transition_smoothness import TransitionSmoothness, TransitionSmoothnessConfig

    config = TransitionSmoothnessConfig(
        str(weights / "dino.pth"), str(weights / "ViT-B-32.pt"), dino_arch=DinoViTConfig(**TINY_DINO_ARCH)
    )
    return TransitionSmoothness(config)


def test_transition_smoothness_known_answers(smoothness, scenes, prompts):
    from deepforcing.metrics.text_alignment import consistency_features

    pa, pb = prompts
    a, b = _hold(scenes[0], 5), _hold(scenes[1], 5)
    still, _ = _rows(smoothness, torch.cat([a, a]), segments=_segments((pa, 5), (pb, 5)))
    assert len(still) == 2 and all(r.value == pytest.approx(0.0, abs=1e-12) for r in still)
    assert [(r.start_frame, r.stop_frame) for r in still] == [(12, 28), (12, 28)]  # 2 s = 8 frames each side
    cut, _ = _rows(smoothness, torch.cat([a, b]), segments=_segments((pa, 5), (pb, 5)))
    c = smoothness.config
    for r, kind, w in zip(cut, ("dino", "clip"), (c.dino_weights, c.clip_weights), strict=True):
        fa, fb = consistency_features(kind, w, torch.cat([scenes[0], scenes[1]]), c.dino_arch).double()
        expected = max(0.0, float(fa @ fb)) - 1.0
        assert r.value == pytest.approx(expected, abs=1e-6) and r.value < -1e-3
        assert r.extra["within"] == pytest.approx(1.0, abs=1e-6)
    assert smoothness.metric_ids[0] == (
        "transition_smoothness@backbone=dino_vit32d2p16,res=224,window=2s,pair=adjacent,score=across_minus_within"
    )


# ------------------------------------------------------------------------------------------------ latency
@pytest.fixture(scope="module")
def latency(weights):
    from deepforcing.metrics.switch_latency import SwitchLatency, SwitchLatencyConfig

    return SwitchLatency(SwitchLatencyConfig(str(weights / "ViT-B-32.pt")))


def test_two_unrelated_halves_switch_at_the_boundary(latency, scenes, prompts):
    pa, pb = prompts
    rows, errors = _rows(latency, torch.cat([_hold(scenes[0], 5), _hold(scenes[1], 5)]), _segments((pa, 5), (pb, 5)))
    assert not errors and len(rows) == 1
    assert rows[0].value == 0.0 and rows[0].extra["switched"] == 1.0 and rows[0].extra["margin_at_switch"] > 0
    assert (rows[0].start_frame, rows[0].stop_frame) == (20, 40)


def test_a_late_switch_is_measured_in_seconds(latency, scenes, prompts):
    pa, pb = prompts
    video = torch.cat([_hold(scenes[0], 6.5), _hold(scenes[1], 3.5)])  # the picture changes 1.5 s after the prompt
    rows, _ = _rows(latency, video, _segments((pa, 5), (pb, 5)))
    assert rows[0].value == 1.5 and rows[0].extra["switched"] == 1.0


def test_no_switch_is_censored_at_the_search_range(latency, weights, scenes, prompts):
    from deepforcing.metrics.switch_latency import SwitchLatency, SwitchLatencyConfig

    pa, pb = prompts
    video = torch.cat([_hold(scenes[0], 5), _hold(scenes[0], 5)])  # the picture never changes
    rows, _ = _rows(latency, video, _segments((pa, 5), (pb, 5)))
    assert rows[0].value == 5.0 and rows[0].extra["switched"] == 0.0
    short = SwitchLatency(SwitchLatencyConfig(str(weights / "ViT-B-32.pt"), search_s=1.0))
    rows, _ = _rows(short, video, _segments((pa, 5), (pb, 5)))
    assert rows[0].value == 1.0 and (rows[0].start_frame, rows[0].stop_frame) == (20, 24)
    assert short.id.endswith("search=1s") and latency.id.endswith("search=segment")
    same, _ = _rows(latency, video, _segments((pa, 5), (pa, 5)))
    assert math.isnan(same[0].value)
    assert latency.aggregation.higher_is_better is False

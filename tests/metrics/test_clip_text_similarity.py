"""CLIP text–frame similarity per 10-s segment (LongLive), with a tiny OpenAI-format CLIP: known answers."""

import math
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import aggregate
from deepforcing.metrics.base import score_video
from deepforcing.metrics.drift import drift_summaries, first_last_delta, series_from_rows
from deepforcing.metrics.rows import ClipRow, VideoErrorRow
from tests.metrics.parity.tiny import synthetic_clip, tiny_openai_clip_state_dict

pytest.importorskip("open_clip", reason="open_clip_torch not installed (CLIP and its tokenizer come from it)")

PROMPT = "a red square slides over a colourful background"


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    """A tiny OpenAI-format CLIP (ViT-B/32 layout) with the real 49408-token vocabulary, as a plain state dict."""
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32.pt"
    torch.save(tiny_openai_clip_state_dict(seed=21, embed_dim=64, patch=32, vocab=49408), path)
    return path


def _metric(clip_path, **kw):
    from deepforcing.metrics.clip_text_similarity import ClipTextSimilarity, ClipTextSimilarityConfig

    torch.set_num_threads(1)
    return ClipTextSimilarity(ClipTextSimilarityConfig(str(clip_path), **kw))


@pytest.fixture(scope="module")
def metric(clip_path):
    return _metric(clip_path)


def _by_hand(model, frames: torch.Tensor, prompt: str) -> list[float]:
    """Per-frame cosine from the CLIP's own encoders, normalised here with plain arithmetic."""
    import open_clip

    from deepforcing.metrics.vbench.transforms import clip_transform_uint8

    with torch.no_grad():
        img = model.encode_image(clip_transform_uint8(frames, 224)).double()  # (T, D)
        txt = model.encode_text(open_clip.tokenize([prompt]))[0].double()  # (D,)
    return [float(i @ txt / (i.norm() * txt.norm())) for i in img]


def _rows(metric, video, fps=1.0, prompt=PROMPT, **kw):
    rows = score_video("v", video, fps, [metric], prompt=prompt, **kw)
    return [r for r in rows if isinstance(r, ClipRow)], [r for r in rows if isinstance(r, VideoErrorRow)]


def test_identical_segments_score_identically(metric):
    block = synthetic_clip(50, frames=10, height=36, width=48)
    rows, errors = _rows(metric, torch.cat([block] * 3))  # 1 fps: three 10-s segments with the same frames
    assert not errors
    assert [(r.start_frame, r.stop_frame) for r in rows] == [(0, 10), (10, 20), (20, 30)]
    assert rows[0].value == rows[1].value == rows[2].value
    assert -1.0 <= rows[0].value <= 1.0


def test_one_frame_segment_equals_the_cosine_by_hand(metric):
    frame = synthetic_clip(51, frames=1, height=40, width=56)
    rows, _ = _rows(metric, frame.expand(10, -1, -1, -1).contiguous())
    (expected,) = _by_hand(metric.model, frame, PROMPT)
    assert len(rows) == 1 and rows[0].value == pytest.approx(expected, abs=1e-6)
    assert rows[0].extra["min"] == pytest.approx(expected, abs=1e-6) == rows[0].extra["max"]


def test_all_frames_mean_and_middle_sampling(clip_path, metric):
    seg = synthetic_clip(52, frames=10, height=40, width=56)
    every = _metric(clip_path, num_frames=None)
    assert "frames=all" in every.id and every.id != metric.id
    per_frame = _by_hand(every.model, seg, PROMPT)
    assert every.score_segment(seg, PROMPT).value == pytest.approx(math.fsum(per_frame) / 10, abs=1e-6)
    # 8 middle frames of 10: bounds floor(linspace(0, 10, 9)) = 0,1,2,3,5,6,7,8,10 -> frames 0,1,2,3,5,6,7,8
    picked = [per_frame[i] for i in (0, 1, 2, 3, 5, 6, 7, 8)]
    assert metric.score_segment(seg, PROMPT).value == pytest.approx(math.fsum(picked) / 8, abs=1e-6)


def test_one_prompt_per_segment(metric):
    block = synthetic_clip(53, frames=10, height=36, width=48)
    video = torch.cat([block] * 3)
    other = "a quiet snowy forest at night"
    scores = metric.score_segments(video, 1.0, [PROMPT, other, PROMPT])
    assert [s.clip_index for s in scores] == [0, 1, 2]
    assert scores[0].value == scores[2].value != scores[1].value
    picked = block[[0, 1, 2, 3, 5, 6, 7, 8]]  # the 8 middle frames of a 10-frame segment
    assert scores[1].value == pytest.approx(math.fsum(_by_hand(metric.model, picked, other)) / 8, abs=1e-6)
    with pytest.raises(UserError, match="2 prompts for 3 segments"):
        metric.score_segments(video, 1.0, [PROMPT, other])


def test_long_prompts_are_truncated_not_rejected(metric):
    frame = synthetic_clip(54, frames=1)
    long_prompt = " ".join(["word"] * 120)
    value = metric.score_segment(frame, long_prompt).value
    assert value == pytest.approx(metric.score_segment(frame, " ".join(["word"] * 75)).value, abs=1e-6)


def test_rows_feed_the_drift_summaries(metric):
    """25 s at 2 fps: 10-s segments [0, 10), [10, 20) and the padded [15, 25); drift reads them by time."""
    video = torch.cat([synthetic_clip(55 + i, frames=10, height=36, width=48) for i in range(5)])
    rows, errors = _rows(metric, video, fps=2.0, duration_s=2.0)  # the suite's 2-s clips do not apply
    assert not errors
    assert [(r.t_start, r.t_end) for r in rows] == [(0.0, 10.0), (10.0, 20.0), (15.0, 25.0)]
    series = series_from_rows(rows, metric.id, "v")
    values = [r.value for r in rows]
    assert first_last_delta(series, 5.0) == pytest.approx(abs(values[0] - values[2]), abs=1e-12)
    summaries = drift_summaries(series)
    assert all(math.isfinite(v) for v in summaries.values())
    assert aggregate(rows, metric.id).value == pytest.approx(sum(values) / 3, abs=1e-12)


def test_errors_become_rows(metric):
    video = synthetic_clip(60, frames=12)
    _, errors = _rows(metric, video, fps=2.0)  # 6 s: shorter than one 10-s segment
    assert len(errors) == 1 and "shorter than one 10-s clip" in errors[0].reason
    rows, _ = _rows(metric, video, fps=2.0, allow_short=True)
    assert len(rows) == 1 and rows[0].stop_frame == 12
    _, errors = _rows(metric, video, fps=1.0, prompt=None)
    assert len(errors) == 1 and "prompt" in errors[0].reason


def test_metrics_yaml_has_the_default_id():
    import yaml

    from deepforcing.metrics.clip_text_similarity import ClipTextSimilarityConfig, clip_text_similarity_id

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    entry = next(m for m in meta["metrics"] if m["name"] == "clip_text_similarity")
    assert entry["id"] == clip_text_similarity_id(ClipTextSimilarityConfig("ViT-B-32.pt"))

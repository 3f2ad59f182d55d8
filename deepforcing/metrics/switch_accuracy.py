"""Switch accuracy: is each prompt segment closer to its own prompt than to its neighbours' (ViCLIP and CLIP)?

For a multi-prompt video (at least two segments, :mod:`deepforcing.metrics.segments`), segment ``k`` is scored
against its own prompt ``p_k`` and against the prompts of its neighbours ``p_{k-1}`` and ``p_{k+1}`` (those that
exist and whose text differs from ``p_k``), with the encoders and sampling of
:mod:`deepforcing.metrics.segment_text_alignment`. The segment's row is **1.0** if its alignment with ``p_k`` is
strictly higher than with every such neighbour prompt, **0.0** otherwise, and undefined (NaN, left out) when no
neighbour has a different prompt. A video's value is the fraction of its segments that are right; the suite's the
mean over videos. ``extra`` holds ``own`` and ``best_neighbour`` (the alignments compared).

Ids: ``switch_accuracy@<encoder protocol>,rule=own_gt_neighbours`` for ViCLIP and for CLIP. A single-segment
video is an error (it has no switch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.segment_text_alignment import SegmentTextAlignmentConfig, build_aligners
from deepforcing.metrics.segments import Segment, require_switches, segment_spans, video_segments

#: Switch accuracy is configured like per-segment text alignment (same encoders and sampling).
SwitchAccuracyConfig = SegmentTextAlignmentConfig


def segment_correct(alignment: dict[str, float], segments: Sequence[Segment], k: int) -> tuple[float, float, float]:
    """Whether segment ``k`` prefers its own prompt: ``(1.0 | 0.0 | nan, own, best neighbour)``.

    Args:
        alignment: Prompt -> the segment's alignment with it.
        segments: All segments of the video.
        k: The segment.
    """
    own = alignment[segments[k].prompt]
    others = {segments[j].prompt for j in (k - 1, k + 1) if 0 <= j < len(segments)} - {segments[k].prompt}
    if not others:
        return math.nan, own, math.nan
    best = max(alignment[p] for p in others)
    return (1.0 if own > best else 0.0), own, best


class SwitchAccuracy(ClipMetric):
    """Fraction of segments closer to their own prompt than to a neighbour's, with ViCLIP and with CLIP."""

    aggregation: ClassVar[Aggregation] = Aggregation(skip_undefined=True)
    uses_clips: ClassVar[bool] = False

    def __init__(self, config: SwitchAccuracyConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.aligners = build_aligners(config, device)
        self.ids = [metric_id("switch_accuracy", {**a.protocol, "rule": "own_gt_neighbours"}) for a in self.aligners]

    @property
    def metric_ids(self) -> list[str]:
        """The ViCLIP id, then the CLIP id."""
        return list(self.ids)

    def units(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        """One span per segment; at least two segments."""
        require_switches(context.segments, "switch_accuracy")
        return segment_spans(context.segments, context.fps, num_frames)

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """One row per segment and encoder."""
        if context is None:
            raise ValueError("switch_accuracy needs the video's context (fps and segments)")
        segments = video_segments(context.segments, None, int(frames.shape[0]), context.fps)
        out = []
        for mid, aligner in zip(self.ids, self.aligners, strict=True):
            for k, span in enumerate(clips):
                u = aligner.segment_vector(frames[span.start : span.stop])
                near = {segments[j].prompt for j in (k - 1, k, k + 1) if 0 <= j < len(segments)}
                value, own, best = segment_correct({p: float(u @ aligner.text(p)) for p in near}, segments, k)
                out.append(ClipScore(mid, span.index, value, 1.0, {"own": own, "best_neighbour": best}))
        return out

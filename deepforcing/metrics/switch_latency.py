"""Switch latency: seconds after a prompt switch until the video shows the new prompt more than the old one.

For every boundary of a multi-prompt video (segment ``k`` with prompt ``p_old`` ends, segment ``k + 1`` with
``p_new`` starts at frame ``f``), every frame ``t`` from ``f`` on, up to the end of segment ``k + 1`` (or
``search_s`` seconds), is scored against both prompts with CLIP ViT-B/32 (the frame–prompt cosine of
:class:`~deepforcing.metrics.text_alignment.ClipAligner`, per frame, no sampling, no smoothing). The latency is
``(t* - f) / fps`` for the first frame ``t*`` where the alignment with ``p_new`` is strictly higher than with
``p_old`` — 0 when the first frame of the new segment already shows the new prompt more. If no frame of the search
range does, the value is the length of the range (the latency is at least that: right-censored) and
``extra["switched"]`` is 0. A boundary between two identical prompts is undefined (NaN, left out).

Per-frame CLIP is used because ViCLIP embeds 8-frame clips, so its timeline could not resolve a switch finer than
a clip. One row per boundary (clip index = boundary index, the row's frames = the search range); a video's value
is the mean over its boundaries, the suite's the mean over videos; **lower is better**. Id:
``switch_latency@backbone=openai-vit-b32,res=224,text=trunc77,frames=every,rule=new_gt_old,search=segment``.
A single-segment video is an error (it has no switch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.segments import require_switches, segment_frames
from deepforcing.metrics.text_alignment import ClipAligner


@dataclass(frozen=True)
class SwitchLatencyConfig:
    """Configuration of switch latency.

    Attributes:
        clip_weights: ``ViT-B-32.pt``.
        clip_backbone: Name of the CLIP in the metric id.
        resolution: CLIP input size (224).
        context_length: Text tokens (77; longer prompts are truncated).
        search_s: Seconds searched after each switch; None: up to the end of the new segment.
    """

    clip_weights: str
    clip_backbone: str = "openai-vit-b32"
    resolution: int = 224
    context_length: int = 77
    search_s: float | None = None

    def __post_init__(self) -> None:
        if self.search_s is not None and not self.search_s > 0:
            raise ValueError(f"search_s must be positive or None, got {self.search_s}")


def first_crossing(new: torch.Tensor, old: torch.Tensor) -> int | None:
    """Index of the first entry where ``new > old`` (``(N,)`` each), or None."""
    hits = (new > old).nonzero()
    return int(hits[0, 0]) if hits.numel() else None


class SwitchLatency(ClipMetric):
    """Seconds from each prompt switch until CLIP aligns the frames more with the new prompt than the old."""

    aggregation: ClassVar[Aggregation] = Aggregation(higher_is_better=False, skip_undefined=True)
    uses_clips: ClassVar[bool] = False

    def __init__(self, config: SwitchLatencyConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.aligner = ClipAligner(
            config.clip_weights,
            config.clip_backbone,
            None,
            config.resolution,
            config.context_length,
            device,
            batch_size,
        )
        p = self.aligner.protocol
        search = "segment" if config.search_s is None else f"{config.search_s:g}s"
        self.id = metric_id(
            "switch_latency",
            {
                "backbone": p["backbone"],
                "res": p["res"],
                "text": p["text"],
                "frames": "every",
                "rule": "new_gt_old",
                "search": search,
            },
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    def _ranges(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        spans = segment_frames(context.segments, context.fps, num_frames)
        limit = None if self.config.search_s is None else max(1, round(self.config.search_s * context.fps))
        out = []
        for k in range(len(spans) - 1):
            f, stop = spans[k + 1]
            out.append(ClipSpan(k, f, stop if limit is None else min(stop, f + limit), f))
        return out

    def units(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        """The search range after each boundary; at least two segments."""
        require_switches(context.segments, "switch_latency")
        return self._ranges(num_frames, context)

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """One row per boundary."""
        if context is None:
            raise ValueError("switch_latency needs the video's context (fps and segments)")
        segments = context.segments
        out = []
        for span in clips:
            old, new = segments[span.index].prompt, segments[span.index + 1].prompt
            if old == new:
                out.append(ClipScore(self.id, span.index, math.nan, 1.0, {"switched": math.nan}))
                continue
            v = self.aligner.frames(frames[span.start : span.stop])  # (N, D)
            a_new, a_old = v @ self.aligner.text(new), v @ self.aligner.text(old)  # (N,) each
            t = first_crossing(a_new, a_old)
            latency = (span.num_frames if t is None else t) / context.fps
            extra = {"switched": 0.0 if t is None else 1.0, "margin_at_switch": float(a_new[0] - a_old[0])}
            out.append(ClipScore(self.id, span.index, latency, 1.0, extra))
        return out

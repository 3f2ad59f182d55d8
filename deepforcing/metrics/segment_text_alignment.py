"""Per-segment text alignment: how well each prompt segment of a video shows its own prompt (ViCLIP and CLIP).

For every segment of the video (:mod:`deepforcing.metrics.segments`; a single-prompt video is one segment with
its prompt), the segment's frames ``[start, stop)`` are scored against the segment's own prompt:

* ``segment_text_alignment@backbone=viclip_l14_internvid10m_flt,frames=8,sample=middle,res=224,text=trunc32`` —
  ViCLIP cosine between the video embedding of the segment's 8 middle-sampled frames and the prompt (what VBench's
  overall_consistency computes for a clip, here for a whole segment);
* ``segment_text_alignment@backbone=openai-vit-b32,frames=8,sample=middle,res=224,text=trunc77`` — mean over the
  segment's 8 middle-sampled frames of the CLIP ViT-B/32 frame–prompt cosine (VBench competition's CLIP score,
  LongLive's per-segment CLIP score without its x100).

Encoders: :mod:`deepforcing.metrics.text_alignment`. One row per segment and id (clip index = segment index, the
row's frames = the segment's), raw cosine (no x100, no clamp); a video's value is the mean over its segments, the
suite's the mean over videos. The metric reads segments, not clips, so the clip protocol's re-encode does not
apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.backbones.viclip import ViCLIPConfig
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.segments import segment_spans, video_segments
from deepforcing.metrics.text_alignment import ClipAligner, ViCLIPAligner


@dataclass(frozen=True)
class SegmentTextAlignmentConfig:
    """Configuration of per-segment text alignment (also used by switch accuracy).

    Attributes:
        viclip_weights: ``ViClip-InternVid-10M-FLT.pth``.
        clip_weights: ``ViT-B-32.pt``.
        viclip_arch: ViCLIP architecture (the released one unless testing).
        bpe_path: CLIP BPE vocabulary for ViCLIP's tokenizer (None: open_clip's copy).
        clip_backbone: Name of the CLIP in metric ids.
        clip_frames: Middle-sampled frames per segment for CLIP (None: every frame).
        resolution: Input size of both encoders (224).
    """

    viclip_weights: str
    clip_weights: str
    viclip_arch: ViCLIPConfig = field(default_factory=ViCLIPConfig)
    bpe_path: str | None = None
    clip_backbone: str = "openai-vit-b32"
    clip_frames: int | None = 8
    resolution: int = 224


def build_aligners(config: SegmentTextAlignmentConfig, device: str | torch.device) -> list[ViCLIPAligner | ClipAligner]:
    """ViCLIP then CLIP aligner of a configuration (models shared through the loader cache)."""
    return [
        ViCLIPAligner(config.viclip_weights, config.viclip_arch, config.bpe_path, config.resolution, device),
        ClipAligner(config.clip_weights, config.clip_backbone, config.clip_frames, config.resolution, device=device),
    ]


class SegmentTextAlignment(ClipMetric):
    """Each segment's alignment with its own prompt, with ViCLIP and with CLIP."""

    aggregation: ClassVar[Aggregation] = Aggregation()
    uses_clips: ClassVar[bool] = False

    def __init__(self, config: SegmentTextAlignmentConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.aligners = build_aligners(config, device)
        self.ids = [metric_id("segment_text_alignment", a.protocol) for a in self.aligners]

    @property
    def metric_ids(self) -> list[str]:
        """The ViCLIP id, then the CLIP id."""
        return list(self.ids)

    def units(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        """One span per segment (the whole video for a single-prompt video)."""
        segments = video_segments(context.segments, context.prompt, num_frames, context.fps)
        return segment_spans(segments, context.fps, num_frames)

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every segment against its prompt (``clips`` are the segments' spans from :meth:`units`)."""
        if context is None:
            raise ValueError("segment_text_alignment needs the video's context (fps, prompt or segments)")
        segments = video_segments(context.segments, context.prompt, int(frames.shape[0]), context.fps)
        out = []
        for mid, aligner in zip(self.ids, self.aligners, strict=True):
            for span, seg in zip(clips, segments, strict=True):
                u = aligner.segment_vector(frames[span.start : span.stop])
                out.append(ClipScore(mid, span.index, float(u @ aligner.text(seg.prompt))))
        return out

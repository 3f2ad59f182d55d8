"""CLIP text–frame similarity per 10-s segment: LongLive's prompt-adherence-over-time measure.

LongLive (arXiv 2509.22622) reports a "CLIP score" for each 10-s segment of its 60-s videos (0–10 s, …,
50–60 s), each segment against the prompt that was active during it (interactive videos switch prompt every
10 s; a single-prompt video uses its one prompt throughout). Its evaluation code is not public, so the
per-segment score here follows the CLIP score of the VBench competition suite (``competitions/clip_score.py``),
the CLIP text-alignment score of this family of papers:

* frames: 8 frames by VBench's ``middle`` sampling of the segment
  (:func:`~deepforcing.metrics.vbench.frame_sampling.middle_frame_indices`), or every frame with
  ``num_frames=None``;
* preprocessing: VBench's ``clip_transform(224)`` on uint8 frames (bicubic short side 224, centre crop, CLIP
  normalisation);
* model: OpenAI CLIP ViT-B/32 (``ViT-B-32.pt``) image and text embeddings, each L2-normalised; the prompt is
  tokenised with the 77-token CLIP BPE and **truncated** (``clip.tokenize`` in VBench would raise instead);
* score: mean over the sampled frames of the raw cosine (no ×100, no clamp at 0 — torchmetrics' CLIPScore
  reports ``max(100 cos, 0)``; published LongLive numbers are presumably on that ×100 scale, unverified).

Segments are VBench-Long clips of ``segment_s`` seconds (``int(fps) * segment_s`` frames; a remainder becomes
one more full-length segment that ends at the last frame and overlaps its predecessor), so each row's frame
span places it in time for :mod:`deepforcing.metrics.drift` (overlap-weighted windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.backbones.clip_tokenizer import PromptFeatures, load_clip_bpe_tokenizer
from deepforcing.metrics.backbones.openai_clip import load_openai_clip
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan, split_clips
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.frame_sampling import middle_frame_indices
from deepforcing.metrics.vbench.transforms import clip_transform_uint8


@dataclass(frozen=True)
class ClipTextSimilarityConfig:
    """Configuration of the per-segment CLIP text–frame similarity.

    Attributes:
        weights: OpenAI CLIP checkpoint (``ViT-B-32.pt``; any OpenAI-format CLIP works).
        backbone: Name of the CLIP recorded in the metric id.
        segment_s: Segment length in seconds (LongLive: 10).
        num_frames: Middle-sampled frames per segment (VBench CLIP score: 8); ``None`` uses every frame.
        resolution: CLIP input size (224).
        context_length: Text tokens (OpenAI CLIP: 77); longer prompts are truncated.
    """

    weights: str
    backbone: str = "openai-vit-b32"
    segment_s: float = 10.0
    num_frames: int | None = 8
    resolution: int = 224
    context_length: int = 77

    def __post_init__(self) -> None:
        if not self.segment_s > 0:
            raise ValueError(f"segment_s must be positive, got {self.segment_s}")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1 or None, got {self.num_frames}")


def clip_text_similarity_id(config: ClipTextSimilarityConfig) -> str:
    """The metric id of a configuration."""
    return metric_id(
        "clip_text_similarity",
        {
            "backbone": config.backbone,
            "seg": f"{config.segment_s:g}s",
            "frames": "all" if config.num_frames is None else config.num_frames,
            "sample": "all" if config.num_frames is None else "middle",
            "res": config.resolution,
            "text": f"trunc{config.context_length}",
            "scale": "cos",
        },
    )


class ClipTextSimilarity(ClipMetric):
    """Mean CLIP cosine between a segment's frames and its prompt, one row per segment."""

    aggregation: ClassVar[Aggregation] = Aggregation()  # segment mean per video, video mean per suite

    def __init__(self, config: ClipTextSimilarityConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.clip_seconds = config.segment_s
        self.model = load_openai_clip(Path(config.weights)).to(self.device)
        self.tokenizer = load_clip_bpe_tokenizer(None, config.context_length)
        #: prompt -> L2-normalised CLIP text embedding, ``(D,)`` float32 (cached per prompt)
        self.text_features = PromptFeatures(self.model, self.tokenizer, self.config.context_length, self.device)
        self.id = clip_text_similarity_id(config)

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """L2-normalised CLIP image embeddings of ``(T, H, W, 3)`` uint8 frames → ``(T, D)`` float32."""
        x = clip_transform_uint8(frames, self.config.resolution)  # (T, 3, 224, 224)
        out = [
            self.model.encode_image(x[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return F.normalize(torch.cat(out), dim=-1)  # (T, D)

    def sampled(self, frames: torch.Tensor) -> torch.Tensor:
        """The frames of one segment that are scored (middle sampling, or all of them)."""
        if self.config.num_frames is None:
            return frames
        return frames[middle_frame_indices(self.config.num_frames, frames.shape[0])]

    def score_segment(self, frames: torch.Tensor, prompt: str, index: int = 0) -> ClipScore:
        """Score one segment's ``(T, H, W, 3)`` uint8 frames against ``prompt``.

        Returns:
            The mean cosine as value (weight 1); ``extra`` holds the lowest and highest frame cosine.
        """
        cos = (self.frame_features(self.sampled(frames)) @ self.text_features(prompt)).double()  # (F,)
        return ClipScore(self.id, index, float(cos.mean()), 1.0, {"min": float(cos.min()), "max": float(cos.max())})

    def score_segments(self, frames: torch.Tensor, fps: float, prompts: Sequence[str]) -> list[ClipScore]:
        """Score an interactive video whose prompt changes every segment (LongLive's 60-s protocol).

        Args:
            frames: ``(T, H, W, 3)`` uint8 frames of the whole video.
            fps: Native frame rate.
            prompts: One prompt per segment, in order.

        Raises:
            UserError: If the number of prompts differs from the number of segments.
        """
        spans = split_clips(int(frames.shape[0]), fps, self.config.segment_s)
        if len(prompts) != len(spans):
            raise UserError(
                f"{len(prompts)} prompts for {len(spans)} segments of {self.config.segment_s:g} s",
                "give one prompt per segment",
            )
        return [self.score_segment(frames[s.start : s.stop], p, s.index) for s, p in zip(spans, prompts, strict=True)]

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every segment of a single-prompt video against ``context.prompt``.

        Raises:
            UserError: If the video has no prompt.
        """
        if context is None or not context.prompt:
            raise UserError(
                "clip_text_similarity needs the video's prompt",
                "pass prompt=... to deepforcing.metrics.base.score_video",
            )
        return [self.score_segment(frames[s.start : s.stop], context.prompt, s.index) for s in clips]

"""Transition smoothness: is a prompt switch as smooth as the video around it (subject and background)?

For every boundary of a multi-prompt video (segment ``k`` ends, segment ``k + 1`` starts at frame ``f``), with a
window of ``w = max(1, round(window_s * fps))`` frames on each side, clipped to the two segments:

* features: the VBench consistency backbones, L2-normalised
  (:func:`~deepforcing.metrics.text_alignment.consistency_features`) — DINO ViT-B/16 CLS as subject consistency,
  CLIP ViT-B/32 image features as background consistency;
* ``across`` = ``max(0, cos(φ_{f-1}, φ_f))``, the adjacent-frame similarity across the boundary (clamped at 0 as
  VBench's consistency terms are);
* ``within`` = the mean of ``max(0, cos(φ_{t-1}, φ_t))`` over the adjacent pairs inside the window that do not
  cross the boundary (``t`` in ``[f - w + 1, f - 1]`` and in ``[f + 1, f + w - 1]``);
* the boundary's value is ``across - within``: 0 when the switch changes the picture no more than the frames
  around it change from one to the next, negative for a jump (a hard cut to unrelated content gives about
  ``cos - 1``). Undefined (NaN, left out) when the window holds no pair besides the boundary one.

One row per boundary and backbone (clip index = boundary index, the row's frames = the window); a video's value
is the mean over its boundaries, the suite's the mean over videos; higher is better. Ids:
``transition_smoothness@backbone=dino_vitb16,res=224,window=2s,pair=adjacent,score=across_minus_within`` and the
same with ``backbone=openai-vit-b32``. A single-segment video is an error (it has no switch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.segments import require_switches, segment_frames
from deepforcing.metrics.text_alignment import consistency_backbone, consistency_features, dino_name


@dataclass(frozen=True)
class TransitionSmoothnessConfig:
    """Configuration of transition smoothness.

    Attributes:
        dino_weights: ``dino_vitbase16_pretrain.pth`` (subject consistency's backbone).
        clip_weights: ``ViT-B-32.pt`` (background consistency's backbone).
        dino_arch: DINO architecture (ViT-B/16 unless testing).
        clip_backbone: Name of the CLIP in metric ids.
        resolution: Input size (224).
        window_s: Seconds on each side of a boundary.
    """

    dino_weights: str
    clip_weights: str
    dino_arch: DinoViTConfig = field(default_factory=DinoViTConfig)
    clip_backbone: str = "openai-vit-b32"
    resolution: int = 224
    window_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")


def boundary_spans(
    segments_frames: Sequence[tuple[int, int]], fps: float, window_s: float
) -> list[tuple[ClipSpan, int]]:
    """``(window span, boundary frame)`` of every boundary (span index = boundary index)."""
    w = max(1, round(window_s * fps))
    out = []
    for k in range(len(segments_frames) - 1):
        (a, _), (f, b) = segments_frames[k], segments_frames[k + 1]
        lo, hi = max(a, f - w), min(b, f + w)
        out.append((ClipSpan(k, lo, hi, lo), f))
    return out


def across_minus_within(features: torch.Tensor, boundary: int) -> tuple[float, float, float]:
    """``(across - within, across, within)`` of L2-normalised window features ``(N, D)``; ``boundary`` is local."""
    f = features.double()
    cos = (f[:-1] * f[1:]).sum(-1).clamp_min(0.0)  # (N - 1,): pair (t-1, t) at index t-1
    across = float(cos[boundary - 1])
    inside = [float(c) for i, c in enumerate(cos) if i != boundary - 1]
    if not inside:
        return math.nan, across, math.nan
    within = math.fsum(inside) / len(inside)
    return across - within, across, within


class TransitionSmoothness(ClipMetric):
    """Subject (DINO) and background (CLIP) consistency across each prompt switch, relative to around it."""

    aggregation: ClassVar[Aggregation] = Aggregation(skip_undefined=True)
    uses_clips: ClassVar[bool] = False

    def __init__(self, config: TransitionSmoothnessConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        common = {"res": config.resolution, "window": f"{config.window_s:g}s", "pair": "adjacent"}
        score = {"score": "across_minus_within"}
        self.ids = [
            metric_id("transition_smoothness", {"backbone": dino_name(config.dino_arch), **common, **score}),
            metric_id("transition_smoothness", {"backbone": config.clip_backbone, **common, **score}),
        ]
        # Load both backbones now (a bad file fails before any video); shared with other metrics through the cache.
        consistency_backbone("dino", config.dino_weights, config.dino_arch, self.device)
        consistency_backbone("clip", config.clip_weights, None, self.device)

    def _backbones(self) -> list[tuple[str, str]]:
        return [("dino", self.ids[0]), ("clip", self.ids[1])]

    def _features(self, kind: str, frames: torch.Tensor) -> torch.Tensor:
        weights = self.config.dino_weights if kind == "dino" else self.config.clip_weights
        return consistency_features(
            kind, weights, frames, self.config.dino_arch, self.config.resolution, self.device, self.batch_size
        )

    @property
    def metric_ids(self) -> list[str]:
        """The DINO (subject) id, then the CLIP (background) id."""
        return list(self.ids)

    def units(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        """One window per boundary; at least two segments."""
        require_switches(context.segments, "transition_smoothness")
        spans = segment_frames(context.segments, context.fps, num_frames)
        return [span for span, _ in boundary_spans(spans, context.fps, self.config.window_s)]

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """One row per boundary and backbone."""
        if context is None:
            raise ValueError("transition_smoothness needs the video's context (fps and segments)")
        spans = segment_frames(context.segments, context.fps, int(frames.shape[0]))
        windows = boundary_spans(spans, context.fps, self.config.window_s)
        out = []
        for kind, mid in self._backbones():
            for span, f in windows:
                feats = self._features(kind, frames[span.start : span.stop])  # (N, D)
                value, across, within = across_minus_within(feats, f - span.start)
                out.append(ClipScore(mid, span.index, value, 1.0, {"across": across, "within": within}))
        return out

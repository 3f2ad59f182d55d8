"""VBench subject_consistency: DINO ViT-B/16 CLS features, first-frame + previous-frame cosine.

Preprocessing (``dino_transform``): bilinear short-side resize to 224 without antialias and without a centre
crop, /255, ImageNet mean/std; feature = DINO CLS token, L2-normalised; formula in
:mod:`deepforcing.metrics.vbench.consistency`. VBench runs DINO one frame at a time; here frames are batched.

Option ``slow_fast`` (default off): also write VBench-Long's slow–fast fused rows under a second id
(``...,fast=first_frames,map=vbench_long,w_in=0.5,w_c2c=0.5``): the clip-to-clip consistency of the clips'
first frames, mapped through VBench-Long's quantile table and fused with the in-clip score
(:mod:`deepforcing.metrics.vbench.slow_fast`). The plain in-clip rows are written either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig, load_dino_vit
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id, parse_metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.consistency import consistency
from deepforcing.metrics.vbench.slow_fast import SlowFastConfig, consistency_video_scores
from deepforcing.metrics.vbench.transforms import dino_transform


@dataclass(frozen=True)
class SubjectConsistencyConfig:
    """Configuration of subject_consistency.

    Attributes:
        weights: Path of ``dino_vitbase16_pretrain.pth``.
        arch: DINO architecture (ViT-B/16 unless testing).
        resolution: Short side fed to DINO (VBench: 224).
        slow_fast: Also write VBench-Long's slow–fast fused rows (:mod:`deepforcing.metrics.vbench.slow_fast`)
            under a second id; the plain in-clip rows are written either way.
        w_inclip: Fusion weight of the in-clip score (VBench-Long ``--dev_flag``: 0.5).
        w_clip2clip: Fusion weight of the mapped clip-to-clip score (0.5).
    """

    weights: str
    arch: DinoViTConfig = field(default_factory=DinoViTConfig)
    resolution: int = 224
    slow_fast: bool = False
    w_inclip: float = 0.5
    w_clip2clip: float = 0.5


class SubjectConsistency(ClipMetric):
    """VBench subject_consistency per clip."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: SubjectConsistencyConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_dino_vit(Path(config.weights), config.arch).to(self.device)
        a = config.arch
        backbone = f"dino_vit{a.embed_dim}d{a.depth}p{a.patch_size}"
        if a == DinoViTConfig():
            backbone = "dino_vitb16"
        self.id = metric_id(
            "vbench.subject_consistency",
            {"backbone": backbone, "res": config.resolution, "ref": "vbench0.1.5"},
        )
        self.slow_fast = None
        self.fused_id = None
        if config.slow_fast:
            self.slow_fast = SlowFastConfig("subject", config.w_inclip, config.w_clip2clip)
            name, protocol = parse_metric_id(self.id)
            self.fused_id = metric_id(name, {**protocol, **self.slow_fast.protocol})

    @property
    def metric_ids(self) -> list[str]:
        """The in-clip id, plus the fused id with ``slow_fast``."""
        return [self.id] + ([self.fused_id] if self.fused_id else [])

    @torch.inference_mode()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """DINO CLS features of ``(T, H, W, 3)`` uint8 frames → ``(T, D)`` float32 (not normalised)."""
        x = dino_transform(frames, self.config.resolution)  # (T, 3, 224, W')
        out = [
            self.model(x[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out)  # (T, D)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8, ``T >= 2``)."""
        value, pairs = consistency(self.features(frames))
        return [ClipScore(self.id, clip_index, value, pairs)]

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every clip; with ``slow_fast`` also the fused rows (one backbone pass per clip)."""
        if self.slow_fast is None:
            return super().score_video(frames, clips, context)
        return consistency_video_scores(self.features, frames, clips, self.id, self.fused_id, self.slow_fast)

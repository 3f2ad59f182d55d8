"""VBench background_consistency: OpenAI CLIP ViT-B/32 image features, first-frame + previous-frame cosine.

Preprocessing (``clip_transform``): bicubic short-side resize to 224 (no antialias), centre crop 224, /255,
CLIP mean/std; feature = ``encode_image``, L2-normalised; formula in
:mod:`deepforcing.metrics.vbench.consistency`. VBench runs this without ``torch.no_grad``; here no gradients
are tracked and frames go through CLIP in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.openai_clip import load_openai_clip
from deepforcing.metrics.base import ClipMetric
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.consistency import consistency
from deepforcing.metrics.vbench.transforms import clip_transform


@dataclass(frozen=True)
class BackgroundConsistencyConfig:
    """Configuration of background_consistency.

    Attributes:
        weights: Path of OpenAI ``ViT-B-32.pt``.
        backbone: Name recorded in the metric id.
        resolution: CLIP input size (224).
    """

    weights: str
    backbone: str = "openai-vit-b32"
    resolution: int = 224


class BackgroundConsistency(ClipMetric):
    """VBench background_consistency per clip."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: BackgroundConsistencyConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_openai_clip(Path(config.weights)).to(self.device)
        self.id = metric_id(
            "vbench.background_consistency",
            {"backbone": config.backbone, "res": config.resolution, "ref": "vbench0.1.5"},
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """CLIP image features of ``(T, H, W, 3)`` uint8 frames → ``(T, D)`` float32 (not normalised)."""
        x = clip_transform(frames, self.config.resolution)  # (T, 3, 224, 224)
        out = [
            self.model.encode_image(x[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out)  # (T, D)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8, ``T >= 2``)."""
        value, pairs = consistency(self.features(frames))
        return [ClipScore(self.id, clip_index, value, pairs)]

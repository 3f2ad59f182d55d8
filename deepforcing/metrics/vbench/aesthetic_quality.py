"""VBench aesthetic_quality: LAION v1 linear head on OpenAI CLIP ViT-L/14 embeddings, ÷10, mean over frames.

Per frame: ``clip_transform`` (bicubic 224, centre crop, CLIP norm) → ``encode_image`` → float32 →
L2-normalise → ``nn.Linear(768, 1)`` from ``sa_0_4_vit_l_14_linear.pth`` → ÷10. Clip score = mean over frames.
This is not the "improved" LAION predictor (``sac+logos+ava1-l14-linearMSE.pth``), which is a separate metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.laion_aesthetic import load_laion_linear_head
from deepforcing.metrics.backbones.openai_clip import load_openai_clip
from deepforcing.metrics.base import ClipMetric
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.transforms import clip_transform


@dataclass(frozen=True)
class AestheticQualityConfig:
    """Configuration of aesthetic_quality.

    Attributes:
        clip_weights: Path of OpenAI ``ViT-L-14.pt``.
        head_weights: Path of ``sa_0_4_vit_l_14_linear.pth``.
        resolution: CLIP input size (224).
    """

    clip_weights: str
    head_weights: str
    resolution: int = 224


class AestheticQuality(ClipMetric):
    """VBench aesthetic_quality per clip (0–1 scale)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: AestheticQualityConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.clip = load_openai_clip(Path(config.clip_weights)).to(self.device)
        self.head = load_laion_linear_head(Path(config.head_weights)).to(self.device)
        self.id = metric_id(
            "vbench.aesthetic_quality",
            {
                "clip": "openai-vit-l14",
                "head": "laion-v1-linear",
                "res": config.resolution,
                "ref": "vbench0.1.5",
            },
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame aesthetic scores ÷10 of ``(T, H, W, 3)`` uint8 frames → ``(T,)`` float32."""
        x = clip_transform(frames, self.config.resolution)  # (T, 3, 224, 224)
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            emb = self.clip.encode_image(x[i : i + self.batch_size].to(self.device)).float()  # (b, 768)
            out.append(self.head(F.normalize(emb, dim=-1, p=2)).squeeze(-1).cpu())  # (b,)
        return torch.cat(out) / 10  # (T,)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8)."""
        s = self.frame_scores(frames)
        return [ClipScore(self.id, clip_index, float(s.double().mean()), s.numel())]

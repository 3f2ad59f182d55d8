"""VBench imaging_quality: MUSIQ trained on SPAQ, per frame, mean over frames, reported on a 0–1 scale.

Per clip (VBench 0.1.5 ``vbench/imaging_quality.py``, default preprocessing mode ``longer``): frames as float
0–255; if the longer side exceeds 512 px, bilinear resize (no antialias) to ``(int(s * H), int(s * W))`` with
``s = 512 / max(H, W)``; ÷255; MUSIQ-SPAQ score per frame (0–100); clip score = mean over frames.

VBench keeps per-video values on MUSIQ's 0–100 scale and divides only the dimension aggregate by 100. Here
every row is already ÷100 (so clip, video and suite values share the 0–1 scale of the other dimensions and of
published tables); ``100 * value`` is VBench's per-video number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torchvision.transforms import functional as TF

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.musiq import MusiqConfig, load_musiq
from deepforcing.metrics.base import ClipMetric, require_rgb_uint8
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore

Preprocess = Literal["longer", "shorter", "shorter_centercrop", "none"]


def imaging_transform(frames: torch.Tensor, mode: Preprocess = "longer", limit: int = 512) -> torch.Tensor:
    """VBench's imaging-quality preprocessing.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        mode: ``longer`` (VBench's default): cap the longer side at ``limit``; ``shorter``: cap the shorter side;
            ``shorter_centercrop``: cap the shorter side, then centre-crop ``limit``; ``none``: no resize.
        limit: Side length cap (512).

    Returns:
        ``(T, 3, H', W')`` float32 in 0–1.
    """
    require_rgb_uint8(frames)
    x = frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W), 0..255
    h, w = x.shape[-2:]
    side = {"longer": max(h, w), "shorter": min(h, w), "shorter_centercrop": min(h, w), "none": 0}[mode]
    if side > limit:
        s = limit / side
        x = TF.resize(x, [int(s * h), int(s * w)], antialias=False)  # bilinear, as transforms.Resize
        if mode == "shorter_centercrop":
            x = TF.center_crop(x, [limit, limit])
    return x / 255.0


@dataclass(frozen=True)
class ImagingQualityConfig:
    """Configuration of imaging_quality.

    Attributes:
        weights: Path of ``musiq_spaq_ckpt-358bb6af.pth``.
        preprocess: VBench's ``imaging_quality_preprocessing_mode`` (default ``longer``).
        arch: MUSIQ architecture (pyiqa's defaults).
    """

    weights: str
    preprocess: Preprocess = "longer"
    arch: MusiqConfig = MusiqConfig()

    def __post_init__(self) -> None:
        if self.preprocess not in ("longer", "shorter", "shorter_centercrop", "none"):
            raise ValueError(f"unknown preprocess mode {self.preprocess!r}")


class ImagingQuality(ClipMetric):
    """VBench imaging_quality per clip, on a 0–1 scale (MUSIQ-SPAQ ÷ 100)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: ImagingQualityConfig, device: str | torch.device = "cpu", batch_size: int | None = None):
        self.config = config
        self.device = torch.device(device)
        # On CPU, MUSIQ is ~25 % slower per frame in batches than one frame at a time (its multi-scale token
        # sets outgrow the caches; benchmarks/bench_metrics.py); batches pay off on an accelerator.
        self.batch_size = batch_size or (1 if self.device.type == "cpu" else 8)
        self.model = load_musiq(Path(config.weights), config.arch).to(self.device)
        self.id = metric_id(
            "vbench.imaging_quality",
            {"model": "musiq_spaq", "pre": config.preprocess, "scale": "0-1", "ref": "vbench0.1.5"},
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        """MUSIQ scores (0–100 scale) of ``(T, H, W, 3)`` uint8 frames → ``(T,)`` float32."""
        x = imaging_transform(frames, self.config.preprocess)  # (T, 3, H', W')
        out = [
            self.model(x[i : i + self.batch_size].to(self.device)).float().cpu()
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out)  # (T,)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8)."""
        s = self.frame_scores(frames).double()
        return [ClipScore(self.id, clip_index, float(s.mean()) / 100.0, s.numel())]

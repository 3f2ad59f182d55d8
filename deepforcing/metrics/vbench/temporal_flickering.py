"""VBench temporal_flickering: ``(255 − mean_t MAE(f_t, f_{t+1})) / 255`` on full-resolution frames.

VBench (``vbench/temporal_flickering.py``) decodes with OpenCV (BGR; the channel order does not change a mean
absolute difference) and takes the mean absolute difference of consecutive frames in float32. It is meant for
(near-)static videos; VBench-Long's RAFT static filter is not applied here (the clip is scored as given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.base import ClipMetric
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore


def temporal_flickering_score(frames: torch.Tensor) -> float:
    """VBench's flicker score of one clip.

    Args:
        frames: ``(T, H, W, 3)`` uint8, ``T >= 2``.

    Returns:
        ``(255 - mean over pairs of the pair's mean |f_t - f_{t+1}|) / 255``; 1.0 for identical frames.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"need (T >= 2, H, W, C) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
    x = frames.float()  # (T, H, W, 3), 0..255
    mae = (x[1:] - x[:-1]).abs().flatten(1).double().mean(dim=1)  # (T-1,)
    return (255.0 - float(mae.mean())) / 255.0


@dataclass(frozen=True)
class TemporalFlickeringConfig:
    """Protocol of temporal_flickering (no choices yet; the static filter is not implemented)."""

    static_filter: bool = False

    def __post_init__(self) -> None:
        if self.static_filter:
            raise NotImplementedError("the RAFT static filter is not implemented yet")


class TemporalFlickering(ClipMetric):
    """VBench temporal_flickering per clip; clip mean per video, video mean per suite (VBench-Long)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: TemporalFlickeringConfig | None = None):
        self.config = config or TemporalFlickeringConfig()
        self.id = metric_id("vbench.temporal_flickering", {"ref": "vbench0.1.5", "static_filter": False})

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8)."""
        return [ClipScore(self.id, clip_index, temporal_flickering_score(frames), frames.shape[0] - 1)]

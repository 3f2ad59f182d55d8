"""VBench temporal_flickering: ``(255 − mean_t MAE(f_t, f_{t+1})) / 255`` on full-resolution frames.

VBench (``vbench/temporal_flickering.py``) decodes with OpenCV (BGR; the channel order does not change a mean
absolute difference) and takes the mean absolute difference of consecutive frames in float32.

Options (:class:`TemporalFlickeringConfig`):

* ``static_filter`` (default off): VBench-Long's ``--static_filter_flag``. Every clip first goes through
  VBench's RAFT static filter (:mod:`deepforcing.metrics.vbench.static_filter`, needs ``raft-things.pth``);
  only static clips count. A filtered-out clip still gets a row (its flicker value, ``extra["static"] = 0``)
  but with weight 0, and the per-video value is the weight-averaged clip score, i.e. the mean over the kept
  clips — what VBench-Long's ``reorganize_clips_results`` computes on the filtered clip list. A video none of
  whose clips is static is not scored (one error row naming the reason), as VBench-Long drops it.
  The metric id records the choice (``static_filter=true``).

Without the filter every clip is scored as given. All clips of a video have the same length, so the
weight-averaged clip mean (weights = frame pairs) equals VBench-Long's plain clip mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
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
    """Protocol of temporal_flickering.

    Attributes:
        static_filter: Score only the clips VBench's RAFT static filter keeps (VBench-Long
            ``--static_filter_flag``).
        raft_weights: Path of ``raft-things.pth``; required with ``static_filter``.
        raft_iters: RAFT refinement iterations of the filter (VBench: 20).
        static_filter_early_exit: Let the filter stop scoring pairs once its decision is fixed (same
            decision, fewer RAFT passes; see :mod:`deepforcing.metrics.vbench.static_filter`).
    """

    static_filter: bool = False
    raft_weights: str | None = None
    raft_iters: int = 20
    static_filter_early_exit: bool = True

    def __post_init__(self) -> None:
        if self.static_filter and not self.raft_weights:
            raise UserError(
                "temporal_flickering with static_filter needs the RAFT weights (raft_weights=raft-things.pth)",
                "run `deepforcing-eval weights list` to see where raft-things.pth goes",
            )
        if self.raft_iters < 1:
            raise ValueError(f"raft_iters must be >= 1, got {self.raft_iters}")


class TemporalFlickering(ClipMetric):
    """VBench temporal_flickering per clip; clip mean per video (over kept clips), video mean per suite."""

    #: Per video: weight-averaged clips (weight 0 = removed by the static filter); per suite: mean of videos.
    aggregation: ClassVar[Aggregation] = Aggregation(clip_to_video="weighted_mean", video_to_suite="mean")

    def __init__(
        self, config: TemporalFlickeringConfig | None = None, device: str | torch.device = "cpu", batch_size: int = 4
    ):
        self.config = config or TemporalFlickeringConfig()
        self.filter = None
        if self.config.static_filter:
            from deepforcing.metrics.vbench.static_filter import RaftStaticFilter

            self.filter = RaftStaticFilter(
                self.config.raft_weights,
                device,
                self.config.raft_iters,
                batch_size,
                self.config.static_filter_early_exit,
            )
        self.id = metric_id(
            "vbench.temporal_flickering", {"ref": "vbench0.1.5", "static_filter": self.config.static_filter}
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8); with the static filter, weight 0 if the clip moves."""
        value = temporal_flickering_score(frames)
        if self.filter is None:
            return [ClipScore(self.id, clip_index, value, frames.shape[0] - 1)]
        d = self.filter.decide(frames)
        extra = {
            "static": float(d.static),
            "moving_pairs": float(d.moving_pairs),
            "pairs_scored": float(len(d.pair_scores)),
            "thres": d.thres,
        }
        weight = frames.shape[0] - 1 if d.static else 0.0
        return [ClipScore(self.id, clip_index, value, weight, extra)]

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every clip; with the static filter, a video without any static clip is an error."""
        out = super().score_video(frames, clips, context)
        if self.filter is not None and not any(s.weight > 0 for s in out):
            raise UserError(
                f"none of the video's {len(out)} clip(s) passed the RAFT static filter, so temporal_flickering "
                "has nothing to score (VBench-Long drops such videos)",
                "expected for moving content; turn static_filter off to score flickering on every clip",
            )
        return out

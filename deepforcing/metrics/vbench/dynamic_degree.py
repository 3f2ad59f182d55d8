"""VBench dynamic_degree: is a clip moving? RAFT flow on ~8-fps frames, VBench's thresholds.

Per clip (VBench 0.1.5 ``vbench/dynamic_degree.py``, applied per 2-s clip by VBench-Long):

1. keep every ``k``-th frame, ``k = max(1, round(fps / 8))`` (Python rounding), starting at the clip's first
   frame; ``N`` = number of kept frames. VBench-Long writes its clips at ``int(fps)``, so that is the rate
   used here by default;
2. for each consecutive kept pair, RAFT (raft-things, 20 iterations) flow on the replicate-padded pair; the
   pair's score is the mean of the largest 5 % flow magnitudes, counted over the *padded* frame
   (``int(H' * W' * 0.05)`` values);
3. ``thres = 6 * min(H, W) / 256`` (unpadded size), ``count_num = round(4 * N / 16)``;
4. the clip is dynamic (1.0) iff it has at least one pair and at least ``count_num`` pairs score above
   ``thres`` (VBench's early-exit loop, written as a count).

A video's value is the fraction of its clips that are dynamic (VBench-Long clip mean); the suite value is the
mean over videos. Pairs are batched through RAFT (VBench runs one pair at a time).

Early exit (``DynamicDegreeConfig.early_exit``, on by default): pairs are scored in order only until the count
settles the decision (:mod:`deepforcing.metrics.vbench.early_exit`) — a 2-s clip at 16 fps has 15 pairs and
``count_num = 4``, so a clip whose first 4 pairs move costs 4 RAFT passes instead of 15, a still one 12. The
value is VBench's decision exactly, so the metric id does not change; ``extra`` records how many pairs were
scored (``pairs_scored``) out of ``pairs``, and ``moving_pairs`` counts the scored ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.raft import load_raft_things, pad_to_multiple_of_8, raft_flow
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.early_exit import count_at_least


def sample_interval(fps: float) -> int:
    """VBench's frame stride for ~8 fps: ``max(1, round(fps / 8))`` with Python's round-half-to-even."""
    return max(1, round(fps / 8))


def motion_thresholds(height: int, width: int, num_frames: int) -> tuple[float, int]:
    """VBench's ``(thres, count_num)`` for frames of ``height x width`` and ``num_frames`` sampled frames."""
    return 6.0 * (min(height, width) / 256.0), round(4 * (num_frames / 16.0))


def top5_flow_magnitude(flow: torch.Tensor) -> torch.Tensor:
    """Mean of the largest 5 % flow magnitudes of each flow field.

    Args:
        flow: ``(B, 2, H, W)`` flow in pixels.

    Returns:
        ``(B,)`` float64 scores (``int(H * W * 0.05)`` values averaged per field).
    """
    b, _, h, w = flow.shape
    rad = torch.sqrt(flow[:, 0] ** 2 + flow[:, 1] ** 2).reshape(b, h * w)  # (B, H*W) float32
    k = int(h * w * 0.05)
    if k < 1:
        raise ValueError(f"a {h}x{w} flow field has no top 5 %")
    return rad.topk(k, dim=1).values.double().mean(dim=1)  # (B,)


def is_dynamic(pair_scores: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench's ``check_move``: True iff there is a pair and at least ``count_num`` pairs exceed ``thres``."""
    return len(pair_scores) > 0 and sum(s > thres for s in pair_scores) >= count_num


@dataclass(frozen=True)
class DynamicDegreeConfig:
    """Configuration of dynamic_degree.

    Attributes:
        weights: Path of ``raft-things.pth``.
        iters: RAFT refinement iterations (VBench: 20).
        fps_rule: Frame rate the stride is computed from: ``int`` (VBench-Long writes clips at ``int(fps)``)
            or ``native`` (short-video VBench on the original file, OpenCV's reported fps).
        early_exit: Stop scoring a clip's pairs once its decision is fixed (same value, fewer RAFT passes);
            ``False`` scores every pair, e.g. to study per-pair motion in ``extra``.
    """

    weights: str
    iters: int = 20
    fps_rule: Literal["int", "native"] = "int"
    early_exit: bool = True

    def __post_init__(self) -> None:
        if self.fps_rule not in ("int", "native"):
            raise ValueError(f"fps_rule must be 'int' or 'native', got {self.fps_rule!r}")
        if self.iters < 1:
            raise ValueError(f"iters must be >= 1, got {self.iters}")


class DynamicDegree(ClipMetric):
    """VBench dynamic_degree per clip (1.0 dynamic, 0.0 static); per video the fraction of dynamic clips."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: DynamicDegreeConfig, device: str | torch.device = "cpu", batch_size: int = 4):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_raft_things(Path(config.weights)).to(self.device)
        self.id = metric_id(
            "vbench.dynamic_degree",
            {"flow": "raft_things", "iters": config.iters, "fps": config.fps_rule, "ref": "vbench0.1.5"},
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    def pair_scores(self, frames: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Top-5 % flow magnitude of consecutive pairs of already-sampled frames.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB.
            start: First pair (pair ``i`` is frames ``i, i + 1``).
            stop: One past the last pair (default ``N - 1``).

        Returns:
            ``(stop - start,)`` float64.
        """
        stop = frames.shape[0] - 1 if stop is None else stop
        x = pad_to_multiple_of_8(frames[start : stop + 1].permute(0, 3, 1, 2).float())  # (n + 1, 3, H', W'), 0..255
        out = []
        for i in range(0, x.shape[0] - 1, self.batch_size):
            j = min(i + self.batch_size, x.shape[0] - 1)
            a, b = x[i:j].to(self.device), x[i + 1 : j + 1].to(self.device)  # (b, 3, H', W') each
            out.append(top5_flow_magnitude(raft_flow(self.model, a, b, self.config.iters)).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def score_frames(self, frames: torch.Tensor, fps: float) -> ClipScore:
        """Score one clip given its frame rate (clip index 0)."""
        rate = int(fps) if self.config.fps_rule == "int" else fps
        sampled = frames[:: sample_interval(rate)]  # (N, H, W, 3)
        thres, count_num = motion_thresholds(frames.shape[1], frames.shape[2], sampled.shape[0])
        num_pairs = sampled.shape[0] - 1
        dynamic, scores = count_at_least(
            lambda i, j: self.pair_scores(sampled, i, j),
            num_pairs,
            thres,
            count_num,
            self.batch_size,
            self.config.early_exit,
        )
        dynamic = dynamic and num_pairs > 0  # vbench: no pair, not dynamic (even with count_num 0)
        extra = {
            "moving_pairs": float(sum(s > thres for s in scores)),
            "pairs_scored": float(len(scores)),
            "pairs": float(num_pairs),
            "thres": thres,
            "count_num": count_num,
        }
        return ClipScore(self.id, 0, 1.0 if dynamic else 0.0, 1.0, extra)

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every clip of a video; needs ``context.fps``."""
        if context is None:
            raise ValueError("dynamic_degree needs the video's frame rate (context)")
        out = []
        for span in clips:
            s = self.score_frames(frames[span.start : span.stop], context.fps)
            out.append(ClipScore(s.metric, span.index, s.value, s.weight, s.extra))
        return out

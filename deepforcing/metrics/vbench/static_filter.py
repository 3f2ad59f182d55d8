"""VBench's RAFT static filter: is a clip (near-)static, so that temporal_flickering may score it?

VBench intends temporal_flickering for static scenes only; VBench-Long (``--static_filter_flag``) runs the
filter of ``static_filter.py`` on every 2-s clip and scores flickering on the clips it keeps. The decision for
one clip of ``N`` frames (all frames, no sub-sampling, at native resolution):

1. pairs: the ``N - 1`` consecutive pairs ``(f_t, f_{t+1})``, then the two "loop" pairs ``(f_1, f_N)`` and
   ``(f_N, f_1)``;
2. per pair, RAFT (raft-things, 20 iterations) flow on the replicate-padded pair; score = mean of the largest
   2 % flow magnitudes over the padded frame (``int(H' * W' * 0.02)`` values);
3. ``thres = 3 * min(H, W) / 256`` (unpadded size), ``count_num = round(2 * N / 16)`` (Python rounding);
4. the clip is static iff at most ``count_num`` consecutive pairs score above ``thres`` **and** neither loop
   pair scores above ``2 * count_num * thres`` (so with ``count_num = 0`` any loop motion rejects the clip).

What is not reproduced: in standard mode VBench keeps at most 5 static videos per prompt of its own prompt list
(the first in file-name order) — a cross-video rule that only makes sense for VBench's prompt suite; here every
clip is judged on its own. Pairs are batched through RAFT (VBench runs one pair at a time).

Early exit (on by default): the two loop pairs are scored first — for moving content they usually reject the
clip at once — then consecutive pairs only until the count settles the decision
(:mod:`deepforcing.metrics.vbench.early_exit`). The decision is VBench's exactly; a 2-s clip at 16 fps costs
2 RAFT passes instead of 33 when its loop pairs reject it, 7 when they do not but its pairs move
(``count_num + 1 = 5`` moving pairs reject it), 29 when it is still. :class:`StaticDecision` keeps the
scores that were computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from deepforcing.metrics.backbones.raft import load_raft_things, pad_to_multiple_of_8, raft_flow
from deepforcing.metrics.vbench.early_exit import count_at_least


def static_thresholds(height: int, width: int, num_frames: int) -> tuple[float, int]:
    """VBench's ``(thres, count_num)`` for a clip of ``num_frames`` frames of ``height x width`` pixels."""
    return 3.0 * (min(height, width) / 256.0), round(2 * (num_frames / 16.0))


def top2_flow_magnitude(flow: torch.Tensor) -> torch.Tensor:
    """Mean of the largest 2 % flow magnitudes of each flow field.

    Args:
        flow: ``(B, 2, H, W)`` flow in pixels.

    Returns:
        ``(B,)`` float64 scores (``int(H * W * 0.02)`` values averaged per field).
    """
    b, _, h, w = flow.shape
    rad = torch.sqrt(flow[:, 0] ** 2 + flow[:, 1] ** 2).reshape(b, h * w)  # (B, H*W) float32
    k = int(h * w * 0.02)
    if k < 1:
        raise ValueError(f"a {h}x{w} flow field has no top 2 %")
    return rad.topk(k, dim=1).values.double().mean(dim=1)  # (B,)


def is_static(pair_scores: Sequence[float], loop_scores: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench's ``check_static``.

    Args:
        pair_scores: Scores of the consecutive pairs.
        loop_scores: Scores of the two loop pairs (first→last, last→first).
        thres: Motion threshold in pixels.
        count_num: Consecutive pairs allowed above ``thres``.

    Returns:
        True iff at most ``count_num`` pair scores exceed ``thres`` and no loop score exceeds
        ``2 * count_num * thres``.
    """
    if sum(s > thres for s in pair_scores) > count_num:
        return False
    return loops_still(loop_scores, thres, count_num)


def loops_still(loop_scores: Sequence[float], thres: float, count_num: int) -> bool:
    """VBench's loop-pair rule: no first↔last score above ``2 * count_num * thres``."""
    return not any(s > thres * count_num * 2 for s in loop_scores)


@dataclass(frozen=True)
class StaticDecision:
    """The filter's verdict on one clip, with what it was based on.

    Attributes:
        static: True if the clip is kept.
        pair_scores: Top-2 % flow magnitude of the consecutive pairs that were scored, in order (all
            ``num_pairs`` of them without early exit).
        loop_scores: Same for the first→last and last→first pairs (always scored).
        thres: Motion threshold (px).
        count_num: Consecutive pairs allowed above ``thres``.
        num_pairs: Consecutive pairs in the clip (``N - 1``).
    """

    static: bool
    pair_scores: tuple[float, ...]
    loop_scores: tuple[float, float]
    thres: float
    count_num: int
    num_pairs: int

    @property
    def moving_pairs(self) -> int:
        """Scored consecutive pairs above ``thres``."""
        return sum(s > self.thres for s in self.pair_scores)


class RaftStaticFilter:
    """VBench's static filter on the shared RAFT backbone (torchvision ``raft_large`` + ``raft-things.pth``)."""

    def __init__(
        self,
        weights: str | Path,
        device: str | torch.device = "cpu",
        iters: int = 20,
        batch_size: int = 4,
        early_exit: bool = True,
    ):
        self.device = torch.device(device)
        self.iters = iters
        self.batch_size = batch_size
        self.early_exit = early_exit
        self.model = load_raft_things(Path(weights)).to(self.device)

    def pair_scores(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Top-2 % flow magnitudes of frame pairs.

        Args:
            first: ``(P, H, W, 3)`` uint8 RGB.
            second: ``(P, H, W, 3)`` uint8 RGB.

        Returns:
            ``(P,)`` float64.
        """
        out = []
        for i in range(0, first.shape[0], self.batch_size):
            a = pad_to_multiple_of_8(first[i : i + self.batch_size].permute(0, 3, 1, 2).float())  # (b, 3, H', W')
            b = pad_to_multiple_of_8(second[i : i + self.batch_size].permute(0, 3, 1, 2).float())
            flow = raft_flow(self.model, a.to(self.device), b.to(self.device), self.iters)  # (b, 2, H', W')
            out.append(top2_flow_magnitude(flow).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def decide(self, frames: torch.Tensor) -> StaticDecision:
        """Judge one clip.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB, ``N >= 1``.

        Returns:
            The decision and its scores.
        """
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[0] < 1 or frames.shape[-1] != 3:
            raise ValueError(f"need (N >= 1, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
        thres, count_num = static_thresholds(frames.shape[1], frames.shape[2], frames.shape[0])
        ends = torch.stack([frames[0], frames[-1]])  # (2, H, W, 3)
        loops = tuple(self.pair_scores(ends, ends.flip(0)).tolist())  # first→last, last→first
        loops_ok = loops_still(loops, thres, count_num)
        pairs: list[float] = []
        moving = False
        if loops_ok or not self.early_exit:
            moving, pairs = count_at_least(
                lambda i, j: self.pair_scores(frames[i:j], frames[i + 1 : j + 1]),
                frames.shape[0] - 1,
                thres,
                count_num + 1,  # static allows count_num moving pairs
                self.batch_size,
                self.early_exit,
            )
        static = loops_ok and not moving
        return StaticDecision(static, tuple(pairs), (loops[0], loops[1]), thres, count_num, frames.shape[0] - 1)

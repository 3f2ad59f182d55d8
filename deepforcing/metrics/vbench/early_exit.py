"""Threshold-count decisions that stop scoring frame pairs once the answer is fixed.

VBench's two RAFT decisions are counts over per-pair flow scores: dynamic_degree calls a clip dynamic when at
least ``count_num`` pairs exceed ``thres``; the static filter rejects a clip when more than ``count_num`` do.
VBench runs RAFT on every pair first and counts afterwards. The count's answer is often fixed long before the
last pair: a clip whose first 4 sampled pairs all move is dynamic whatever the other 11 show. Scoring pairs in
order and stopping there gives **the same decision** (the count over the scored prefix already settles it)
for a fraction of the RAFT passes.

The scorer never asks for more pairs than could possibly be needed: with ``need`` hits still missing and
``left`` pairs unscored, no answer is possible before ``min(need, left - need + 1)`` more pairs, so that many
are scored next (at most ``batch_size``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: ``score(i, j)`` → the ``(j - i,)`` scores of pairs ``i .. j - 1``.
PairScorer = Callable[[int, int], torch.Tensor]


def count_at_least(
    score: PairScorer, num_pairs: int, thres: float, target: int, batch_size: int, early_exit: bool = True
) -> tuple[bool, list[float]]:
    """Whether at least ``target`` of ``num_pairs`` pair scores exceed ``thres``.

    Args:
        score: Scores pairs ``i .. j - 1``.
        num_pairs: Pairs in the clip.
        thres: A pair counts if its score is strictly above ``thres``.
        target: Hits needed for ``True`` (``target <= 0`` is ``True`` without scoring anything).
        batch_size: Most pairs scored in one call.
        early_exit: Stop as soon as the answer is fixed; ``False`` scores every pair (in batches).

    Returns:
        The answer and the scores of the pairs that were scored (a prefix of all pairs, in order).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    scores: list[float] = []
    hits = 0
    while len(scores) < num_pairs:
        need, left = target - hits, num_pairs - len(scores)
        if early_exit and (need <= 0 or need > left):
            break
        k = min(need, left - need + 1) if early_exit else left
        new = score(len(scores), len(scores) + min(k, batch_size)).tolist()
        scores += new
        hits += sum(s > thres for s in new)
    return hits >= target, scores

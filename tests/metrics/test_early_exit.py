"""Early exit of VBench's RAFT decisions: the same answer as scoring every pair, from fewer pairs."""

import itertools
import random

import pytest
import torch

from deepforcing.metrics.vbench.dynamic_degree import is_dynamic
from deepforcing.metrics.vbench.early_exit import count_at_least
from deepforcing.metrics.vbench.static_filter import is_static


class Scorer:
    """Serves precomputed pair scores and records which pairs were asked for."""

    def __init__(self, scores):
        self.scores, self.calls = list(scores), []

    def __call__(self, i, j):
        self.calls.append((i, j))
        return torch.tensor(self.scores[i:j], dtype=torch.float64)


def test_known_answers_and_pairs_scored():
    # 15 pairs, count_num 4 (a 2-s clip at 16 fps): four moving pairs first -> decided after exactly 4
    s = Scorer([20.0] * 4 + [0.0] * 11)
    assert count_at_least(s, 15, 11.25, 4, batch_size=4) == (True, [20.0] * 4)
    assert s.calls == [(0, 4)]
    # a still clip: "no" is certain once 12 pairs have no hit (3 left < 4 needed); never more than needed per call
    s = Scorer([0.0] * 15)
    dynamic, seen = count_at_least(s, 15, 11.25, 4, batch_size=4)
    assert not dynamic and len(seen) == 12 and all(j - i <= 4 for i, j in s.calls)
    # target 0 needs nothing; a target above the pair count is "no" without scoring
    s = Scorer([0.0] * 3)
    assert count_at_least(s, 3, 1.0, 0, 4) == (True, []) and count_at_least(s, 3, 1.0, 4, 4) == (False, [])
    assert s.calls == []
    # without early exit every pair is scored, in batches
    s = Scorer([20.0] * 15)
    assert count_at_least(s, 15, 11.25, 4, 4, early_exit=False) == (True, [20.0] * 15)
    assert s.calls == [(0, 4), (4, 8), (8, 12), (12, 15)]
    with pytest.raises(ValueError, match="batch_size"):
        count_at_least(s, 15, 11.25, 4, 0)


def test_same_decisions_as_vbench_rules_on_every_small_case():
    # every hit pattern of up to 7 pairs, every target and batch size: the answer is vbench's count's
    for n in range(8):
        for hits in itertools.product((0.0, 9.0), repeat=n):
            for target, batch in itertools.product(range(n + 2), (1, 2, 4)):
                s = Scorer(hits)
                answer, seen = count_at_least(s, n, 5.0, target, batch)
                assert answer == (sum(h > 5.0 for h in hits) >= target)
                assert list(hits[: len(seen)]) == seen  # a prefix, in order
                if n and target:  # the dynamic_degree rule (a clip with no pair is never dynamic)
                    assert answer == is_dynamic(list(hits), 5.0, target)


def test_static_rule_equivalence_on_random_scores():
    rng = random.Random(0)
    for _ in range(2000):
        n, count_num = rng.randint(1, 33), rng.randint(0, 5)
        pairs = [rng.choice((0.0, 1.0, 6.0)) for _ in range(n)]
        loops = [rng.choice((0.0, 9.0, 60.0)), 0.0]
        moving, _ = count_at_least(Scorer(pairs), n, 5.0, count_num + 1, rng.randint(1, 4))
        loops_ok = not any(s > 5.0 * count_num * 2 for s in loops)
        assert (loops_ok and not moving) == is_static(pairs, loops, 5.0, count_num)

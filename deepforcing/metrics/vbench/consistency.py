"""The VBench consistency formula shared by subject_consistency and background_consistency.

For L2-normalised per-frame features ``phi_1..phi_T`` and ``t >= 2``::

    s_t = (max(0, cos(phi_{t-1}, phi_t)) + max(0, cos(phi_1, phi_t))) / 2

The clip score is the mean of ``s_t`` over ``t = 2..T``; its weight is ``T - 1`` (the number of frame pairs,
which short-video VBench uses to weight videos in the dimension's aggregate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def consistency_scores(features: torch.Tensor) -> torch.Tensor:
    """Per-frame consistency terms ``s_t`` for ``t = 2..T``.

    Args:
        features: ``(T, D)`` per-frame features (normalised here).

    Returns:
        ``(T - 1,)`` float64 terms.
    """
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (T >= 2, D) features, got {tuple(features.shape)}")
    f = F.normalize(features.float(), dim=-1, p=2)  # (T, D)
    prev = F.cosine_similarity(f[:-1], f[1:]).clamp_min(0.0)  # (T-1,)
    first = F.cosine_similarity(f[:1].expand(f.shape[0] - 1, -1), f[1:]).clamp_min(0.0)  # (T-1,)
    return (prev.double() + first.double()) / 2


def consistency(features: torch.Tensor) -> tuple[float, int]:
    """Clip consistency score and its frame-pair weight.

    Args:
        features: ``(T, D)`` per-frame features.

    Returns:
        ``(mean_t s_t, T - 1)``.
    """
    s = consistency_scores(features)
    return float(s.mean()), int(s.numel())

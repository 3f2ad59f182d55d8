"""LoL — multi-head RoPE jitter (arXiv 2601.16914v1, Alg. 1), implemented from the paper: no reference code exists.

The paper targets "sink collapse": with a frame sink, many temporal RoPE frequencies re-align with the sink's phase at
the same distances, and all heads of a layer snap back to the sink together. Its fix gives every attention head its
own temporal RoPE base

    θ̂_h = θ0 · (1 + σ · ε_h),   ε_h ~ U[−1, 1],   θ0 = 10000,   σ = 0.8   (so θ̂_h ∈ [2000, 18000])

used for the queries **and** keys of that head (relative positions stay meaningful per head; heads just run at
different speeds). Positions themselves are unchanged: absolute and growing, which with integer positions (no table)
is "infinite streaming".

Choices the paper leaves open, made here and recorded in the config: ε is drawn once per video **per (layer, head)**
from a ``torch.Generator`` seeded with ``seed`` (Algorithm 1 indexes heads only); only the **temporal** channels get
θ̂_h ("ν_i = −2i / d_time"), height/width keep θ0. The base cache is LongLive's geometry (3-frame sink, 12-frame window:
the paper applies LoL to LongLive and Self-Forcing++, "local attention window size of 12 and sink frames of 3").

With σ = 0 every base is θ0 and the policy is exactly ``fifo`` with the same window (tested bitwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from deepforcing.cache import KVCache
from deepforcing.model.rope import THETA, RotaryEmbedding, rotate
from deepforcing.policies.configs import LolConfig
from deepforcing.policies.fifo import FifoPolicy


def head_bases(num_layers: int, num_heads: int, sigma: float, seed: int, theta: float = THETA) -> torch.Tensor:
    """θ̂ of every (layer, head): ``theta · (1 + sigma · ε)``, ε ~ U[−1, 1] from ``Generator(seed)``; float64 [L, H]."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.rand(num_layers, num_heads, generator=g, dtype=torch.float64) * 2 - 1
    return theta * (1 + sigma * eps)


class HeadJitteredRope(RotaryEmbedding):
    """A layer's RoPE whose temporal pairs rotate with one base per head (spatial pairs as Wan's).

    Its phase tables carry a head axis (``[L, H, D/2]`` where Wan's have ``[L, 1, D/2]``); :func:`rotate`
    broadcasts either over ``[B, L, H, D/2]``, so the engine rotates queries and cached keys of this layer
    exactly as it does with the plain embedding.

    Args:
        head_dim: Channels per head.
        bases: θ̂ of each head, float64 [H].
    """

    def __init__(self, head_dim: int, bases: torch.Tensor):
        super().__init__(head_dim)
        dim = 2 * self.pairs_t
        exponents = torch.arange(0, dim, 2).to(torch.float64).div(dim)  # 2i / d_time, as Wan's rope_params
        self.bases = bases.to(torch.float64)
        self.inv_t_heads = 1.0 / torch.pow(self.bases.unsqueeze(1), exponents.unsqueeze(0))  # [H, pairs_t]
        self._head_tables: dict[tuple, torch.Tensor] = {}

    def temporal_phases(self, positions: torch.Tensor, bounds: tuple[int, int] | None = None) -> torch.Tensor:
        """Per-head temporal phases: positions [L] -> complex128 [L, H, pairs_t] (``bounds`` is unused)."""
        angles = positions.to(torch.float64).view(-1, 1, 1) * self.inv_t_heads.to(positions.device).unsqueeze(0)
        return torch.polar(torch.ones_like(angles), angles)

    def phases(
        self, frame_positions: Sequence[int] | torch.Tensor, height: int, width: int, device: torch.device
    ) -> torch.Tensor:
        """Full phases of frame-major tokens -> complex128 [F*h*w, H, D/2] (memoised per chunk layout)."""
        if isinstance(frame_positions, torch.Tensor):
            frame_positions = frame_positions.tolist()
        device = torch.device(device)
        key = (tuple(frame_positions), height, width, device)
        table = self._head_tables.get(key)
        if table is None:
            heads = len(self.bases)
            temporal = self.temporal_phases(torch.tensor(key[0], dtype=torch.long, device=device))  # [F, H, pt]
            spatial = self.spatial_phases(height, width, device)  # [h*w, ph + pw]
            table = torch.cat(
                [
                    temporal.repeat_interleave(height * width, dim=0),
                    spatial.unsqueeze(1).expand(-1, heads, -1).repeat(len(key[0]), 1, 1),
                ],
                dim=2,
            )
            if len(self._head_tables) >= 2:  # the chunk in flight and its clean pass, as the plain embedding
                self._head_tables.pop(next(iter(self._head_tables)))
            self._head_tables[key] = table
        return table

    def temporal_only_phases(self, positions: torch.Tensor) -> torch.Tensor:
        """Phases rotating only the temporal pairs, per head: complex128 [L, H, D/2] (spatial pairs times 1)."""
        temporal = self.temporal_phases(positions)  # [L, H, pt]
        ones = torch.ones(
            *temporal.shape[:2], self.pairs_h + self.pairs_w, dtype=temporal.dtype, device=temporal.device
        )
        return torch.cat([temporal, ones], dim=2)

    def apply_temporal(self, x: torch.Tensor, token_positions: torch.Tensor) -> torch.Tensor:
        """Rotate the temporal pairs of x [B, L, H, D], head h with its own base."""
        t = self.temporal_channels
        out = x.clone()
        rotate(x[..., :t], self.temporal_phases(token_positions), out=out[..., :t])
        return out


class LolPolicy(FifoPolicy):
    """LongLive-style sink + window whose temporal RoPE base differs per (layer, head)."""

    name: ClassVar[str] = "lol"

    def __init__(self, cfg: LolConfig | None = None):
        super().__init__(cfg or LolConfig())
        self.bases: torch.Tensor | None = None

    def attach(self, kv: KVCache) -> None:
        """Give every layer its jittered RoPE (the engine rotates that layer's queries and keys with it)."""
        cfg = self.cfg
        layers = len(kv.layers)
        heads = kv.layers[0].k.shape[2]
        self.bases = head_bases(layers, heads, cfg.sigma, cfg.seed, cfg.theta)
        head_dim = kv.rope.head_dim
        kv.layer_ropes = [HeadJitteredRope(head_dim, self.bases[i]) for i in range(layers)]

"""Wan 3-D rotary position embedding with temporal positions as data.

Each attention head's ``D`` channels form ``D/2`` complex pairs of adjacent channels ``(x0, x1), (x2, x3), …``.
They split into temporal / height / width groups as in Wan: ``c = D/2`` pairs split as
``[c - 2(c//3), c//3, c//3]`` (22/21/21 at D = 128). Rotations are computed in float64 / complex128 and cast
back to the input dtype, as the reference does.

Because every pair is rotated independently, the rotation can be applied in two exact stages: the spatial
(height/width) pairs once when a key is computed, and the temporal pairs from a *stored position* whenever the
key is attended to. Moving a cached key in time is therefore a change of an integer, never an accumulating
in-place rotation.
"""

from __future__ import annotations

import torch

THETA = 10000


def rope_pair_split(head_dim: int) -> tuple[int, int, int]:
    """Number of complex pairs for (temporal, height, width) at this head dim."""
    c = head_dim // 2
    return c - 2 * (c // 3), c // 3, c // 3


def _inverse_frequencies(num_pairs: int) -> torch.Tensor:
    """``1 / theta^(2k / (2·num_pairs))`` for ``k < num_pairs`` in float64, exactly as Wan's ``rope_params``."""
    dim = 2 * num_pairs
    return 1.0 / torch.pow(THETA, torch.arange(0, dim, 2).to(torch.float64).div(dim))


def _phases(positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Unit complex numbers ``exp(i · p · ω)``: positions [L] (int) x inv_freq [P] -> complex128 [L, P]."""
    angles = positions.to(torch.float64).unsqueeze(1) * inv_freq.to(positions.device).unsqueeze(0)
    return torch.polar(torch.ones_like(angles), angles)


class RotaryEmbedding:
    """Phase tables for one head dim; applies full, spatial-only or temporal-only rotations.

    Args:
        head_dim: Channels per attention head (even).
    """

    def __init__(self, head_dim: int):
        self.head_dim = head_dim
        self.pairs_t, self.pairs_h, self.pairs_w = rope_pair_split(head_dim)
        self.inv_t = _inverse_frequencies(self.pairs_t)
        self.inv_h = _inverse_frequencies(self.pairs_h)
        self.inv_w = _inverse_frequencies(self.pairs_w)
        self._spatial_cache: dict[tuple[int, int, str], torch.Tensor] = {}

    @property
    def temporal_channels(self) -> int:
        """Real channels (per head) that carry the temporal rotation: the first ``2 * pairs_t``."""
        return 2 * self.pairs_t

    def temporal_phases(self, positions: torch.Tensor) -> torch.Tensor:
        """Temporal phases for token positions [L] -> complex128 [L, pairs_t]."""
        return _phases(positions, self.inv_t)

    def spatial_phases(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Height/width phases of one frame's tokens in row-major order -> complex128 [h*w, pairs_h + pairs_w]."""
        key = (height, width, str(device))
        if key not in self._spatial_cache:
            rows = _phases(torch.arange(height, device=device), self.inv_h)  # [h, pairs_h]
            cols = _phases(torch.arange(width, device=device), self.inv_w)  # [w, pairs_w]
            grid = torch.cat(
                [
                    rows.view(height, 1, -1).expand(height, width, -1),
                    cols.view(1, width, -1).expand(height, width, -1),
                ],
                dim=-1,
            )
            self._spatial_cache[key] = grid.reshape(height * width, -1)
        return self._spatial_cache[key]

    @staticmethod
    def _rotate(x: torch.Tensor, phases: torch.Tensor) -> torch.Tensor:
        """Rotate channel pairs of x [B, L, H, 2P] by phases [L, P] (complex128); returns x's dtype."""
        b, length, heads, channels = x.shape
        xc = torch.view_as_complex(x.to(torch.float64).reshape(b, length, heads, channels // 2, 2))
        out = torch.view_as_real(xc * phases.view(1, length, 1, -1)).flatten(3)
        return out.type_as(x)

    def apply_spatial(self, x: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
        """Rotate only the height/width pairs of frame-major tokens x [B, F*h*w, H, D]."""
        phases = self.spatial_phases(height, width, x.device).repeat(num_frames, 1)  # [F*h*w, ph+pw]
        t = self.temporal_channels
        return torch.cat([x[..., :t], self._rotate(x[..., t:], phases)], dim=-1)

    def apply_temporal(self, x: torch.Tensor, token_positions: torch.Tensor) -> torch.Tensor:
        """Rotate only the temporal pairs of x [B, L, H, D] by per-token positions [L] (int64)."""
        t = self.temporal_channels
        return torch.cat([self._rotate(x[..., :t], self.temporal_phases(token_positions)), x[..., t:]], dim=-1)

    def apply(self, x: torch.Tensor, frame_positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Full 3-D rotation of frame-major tokens x [B, F*h*w, H, D], frame f at temporal position p[f]."""
        tokens_per_frame = height * width
        token_positions = frame_positions.repeat_interleave(tokens_per_frame)
        return self.apply_temporal(self.apply_spatial(x, len(frame_positions), height, width), token_positions)

"""Wan 3-D rotary position embedding with temporal positions as data.

Each attention head's ``D`` channels form ``D/2`` complex pairs of adjacent channels ``(x0, x1), (x2, x3), …``.
They split into temporal / height / width groups as in Wan: ``c = D/2`` pairs split as
``[c - 2(c//3), c//3, c//3]`` (22/21/21 at D = 128). A token at temporal position ``p`` and grid cell ``(i, j)``
has one unit phase per pair, ``exp(i·p·ω_t)``, ``exp(i·i·ω_h)``, ``exp(i·j·ω_w)`` (angles in float64, phases by
``torch.polar``), and is rotated by one complex128 multiply over all ``D/2`` pairs, then rounded to the input
dtype — Wan's ``rope_apply``.

Exactness: the phases are computed once per position and memoised (a temporal table per position range, a
spatial table per grid, a full table per chunk layout); a memoised phase is the same ``torch.polar`` of the same
float64 angle, so it is bit for bit the one Wan computes (``polar`` is evaluated element by element).
:func:`rotate` then makes the same ATen multiply on the same layout (``[..., D/2]`` times ``[L, 1, D/2]``), so a
rotated query or key equals Wan's formula at its position bit for bit; ``tests/test_rope.py`` pins this at
temporal positions 0, 1023, 1024 and 14,399. (The float64 formula itself differs from exact arithmetic by the
rounding of the angle ``p·ω``: below 2e-12 rad at p = 14,399, some 7·10^4 times below a float32 ulp.)

Because every pair is rotated independently, the temporal pairs of a *cached* key can be rotated again from its
raw temporal channels and a stored position at any time. Moving a cached key in time is therefore a change of an
integer, never an accumulating in-place rotation (see ``deepforcing.cache``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch

THETA = 10000
#: The temporal table grows in blocks of this many positions.
_TABLE_BLOCK = 1024
#: Full phase tables kept per rotary embedding (the chunk in flight; a rolling window and its clean chunk).
_MAX_TABLES = 2


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


def rotate(x: torch.Tensor, phases: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate the channel pairs of ``x`` [..., 2P] by unit phases (complex128, broadcastable to [..., P]).

    Every pair ``(a, b)`` is multiplied as ``a + ib`` in complex128 and rounded once to the output dtype (the
    float64 formula). A float32 ``x`` is read as complex64 and widened exactly inside the multiply, and a float32
    ``out`` receives the rounded product directly; other dtypes go through a float64 copy.

    Args:
        x: Real tensor [..., 2P] whose last dim has stride 1 (a slice of a buffer is fine).
        phases: complex128, broadcastable to [..., P].
        out: Where to write (same shape as ``x``, any floating dtype; e.g. a slot range of a cache buffer);
            default a new tensor like ``x``.

    Returns:
        ``out``.
    """
    if x.requires_grad and torch.is_grad_enabled():  # training: the differentiable form of the same formula
        rotated = torch.view_as_real(torch.view_as_complex(x.to(torch.float64).unflatten(-1, (-1, 2))) * phases)
        return rotated.flatten(-2).to(x.dtype) if out is None else out.copy_(rotated.flatten(-2))
    if out is None:
        out = torch.empty_like(x)
    if x.dtype == torch.float32 and out.dtype == torch.float32:
        pairs_out = torch.view_as_complex(out.unflatten(-1, (-1, 2)))
        torch.mul(torch.view_as_complex(x.unflatten(-1, (-1, 2))), phases, out=pairs_out)
    else:
        product = torch.view_as_complex(x.to(torch.float64).unflatten(-1, (-1, 2))) * phases
        out.copy_(torch.view_as_real(product).flatten(-2))
    return out


class RotaryEmbedding:
    """Memoised phase tables for one head dim; applies full, spatial-only or temporal-only rotations.

    Args:
        head_dim: Channels per attention head (even).
    """

    def __init__(self, head_dim: int):
        self.head_dim = head_dim
        self.pairs_t, self.pairs_h, self.pairs_w = rope_pair_split(head_dim)
        self.inv_t = _inverse_frequencies(self.pairs_t)
        self.inv_h = _inverse_frequencies(self.pairs_h)
        self.inv_w = _inverse_frequencies(self.pairs_w)
        self._spatial_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}
        self._temporal: dict[torch.device, tuple[int, torch.Tensor]] = {}  # first position, complex128 [n, pt]
        self._tables: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # full tables, least recently used first
        self._ones: dict[torch.device, torch.Tensor] = {}  # complex128 [ph + pw] of 1 + 0i

    @property
    def temporal_channels(self) -> int:
        """Real channels (per head) that carry the temporal rotation: the first ``2 * pairs_t``."""
        return 2 * self.pairs_t

    def _temporal_table(self, lo: int, hi: int, device: torch.device) -> tuple[int, torch.Tensor]:
        """The memoised temporal table covering positions [lo, hi): (first position, complex128 [n, pairs_t])."""
        entry = self._temporal.get(device)
        if entry is None or lo < entry[0] or hi > entry[0] + len(entry[1]):
            first = min(lo, 0) if entry is None else min(lo, entry[0])
            end = hi if entry is None else max(hi, entry[0] + len(entry[1]))
            end = first + -(-(end - first) // _TABLE_BLOCK) * _TABLE_BLOCK
            entry = (first, _phases(torch.arange(first, end, device=device), self.inv_t))
            self._temporal[device] = entry
        return entry

    def temporal_phases(self, positions: torch.Tensor, bounds: tuple[int, int] | None = None) -> torch.Tensor:
        """Temporal phases for token positions [L] (int64) -> complex128 [L, pairs_t], from the memoised table.

        Args:
            positions: Temporal positions.
            bounds: ``(min, max)`` of ``positions`` if the caller knows them (saves a device synchronisation).
        """
        if positions.numel() == 0:
            return torch.empty(0, self.pairs_t, dtype=torch.complex128, device=positions.device)
        if bounds is None:
            lo, hi = torch.aminmax(positions)
            bounds = (int(lo), int(hi))
        first, table = self._temporal_table(bounds[0], bounds[1] + 1, positions.device)
        return table[positions - first] if first else table[positions]

    def spatial_phases(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """Height/width phases of one frame's tokens in row-major order -> complex128 [h*w, pairs_h + pairs_w]."""
        key = (height, width, torch.device(device))
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

    def phases(
        self, frame_positions: Sequence[int] | torch.Tensor, height: int, width: int, device: torch.device
    ) -> torch.Tensor:
        """Full phases of frame-major tokens, frame f at temporal position p[f] -> complex128 [F*h*w, 1, D/2].

        Memoised per (positions, grid, device): a chunk's table is built once and reused by every layer and pass.
        """
        if isinstance(frame_positions, torch.Tensor):
            frame_positions = frame_positions.tolist()
        device = torch.device(device)
        key = (tuple(frame_positions), height, width, device)
        table = self._tables.get(key)
        if table is not None:
            self._tables.move_to_end(key)
            return table
        positions = torch.tensor(key[0], dtype=torch.long, device=device)
        temporal = self.temporal_phases(positions, (min(key[0]), max(key[0])))  # [F, pt]
        spatial = self.spatial_phases(height, width, device)  # [h*w, ph + pw]
        table = torch.cat(
            [temporal.repeat_interleave(height * width, dim=0), spatial.repeat(len(key[0]), 1)], dim=1
        ).unsqueeze(1)
        self._tables[key] = table
        if len(self._tables) > _MAX_TABLES:
            self._tables.popitem(last=False)
        return table

    def temporal_only_phases(self, positions: torch.Tensor) -> torch.Tensor:
        """Phases that rotate only the temporal pairs: [exp(i·p·ω_t) | 1 … 1] -> complex128 [L, 1, D/2].

        Used to re-rotate cached keys whose spatial pairs are already rotated; multiplying those by exactly 1
        keeps the multiply's layout (and so its rounding) that of the full formula. A spatial value comes back
        unchanged, up to the sign of a zero (``-0.0`` may come back as ``0.0``).
        """
        device = positions.device
        ones = self._ones.get(device)
        if ones is None:
            ones = self._ones[device] = torch.ones(self.pairs_h + self.pairs_w, dtype=torch.complex128, device=device)
        temporal = self.temporal_phases(positions)
        return torch.cat([temporal, ones.expand(len(positions), -1)], dim=1).unsqueeze(1)

    def apply_spatial(self, x: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
        """Rotate only the height/width pairs of frame-major tokens x [B, F*h*w, H, D]."""
        phases = self.spatial_phases(height, width, x.device).repeat(num_frames, 1).unsqueeze(1)  # [F*h*w, 1, ps]
        t = self.temporal_channels
        out = x.clone()
        rotate(x[..., t:], phases, out=out[..., t:])
        return out

    def apply_temporal(self, x: torch.Tensor, token_positions: torch.Tensor) -> torch.Tensor:
        """Rotate only the temporal pairs of x [B, L, H, D] by per-token positions [L] (int64)."""
        t = self.temporal_channels
        out = x.clone()
        rotate(x[..., :t], self.temporal_phases(token_positions).unsqueeze(1), out=out[..., :t])
        return out

    def apply(self, x: torch.Tensor, frame_positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Full 3-D rotation of frame-major tokens x [B, F*h*w, H, D], frame f at temporal position p[f]."""
        return rotate(x, self.phases(frame_positions, height, width, x.device))

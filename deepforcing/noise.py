"""Noise from outside the engine: one seeded stream per sample, or a recorded stream to replay.

A sample's noise depends only on ``(prompt_id, seed)``: it is drawn on the CPU from its own
``torch.Generator`` and then moved to the device, so batch position, rank and device never change it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import torch


class RenoiseFn(Protocol):
    """Supplies every re-noising draw of a sampler, in order."""

    def __call__(self, shape: tuple[int, ...], chunk_index: int, step_index: int) -> torch.Tensor:
        """Return standard normal noise of ``shape`` for ``step_index`` of chunk ``chunk_index``."""
        ...


def sample_seed(prompt_id: str, seed: int) -> int:
    """A 63-bit generator seed derived from (prompt id, seed) by sha256; stable across machines."""
    digest = hashlib.sha256(f"{prompt_id}\x00{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class NoiseStream:
    """Initial noise and re-noising draws of one sample from one CPU generator.

    Args:
        prompt_id: Stable prompt id.
        seed: User seed.
        device: Where the drawn tensors go.
        dtype: Their dtype (drawn in float32, then cast).
    """

    def __init__(self, prompt_id: str, seed: int, device: torch.device | str = "cpu", dtype=torch.float32):
        self.generator = torch.Generator("cpu").manual_seed(sample_seed(prompt_id, seed))
        self.device = torch.device(device)
        self.dtype = dtype

    def draw(self, shape: Sequence[int]) -> torch.Tensor:
        """Next standard normal tensor of ``shape``."""
        x = torch.randn(tuple(shape), generator=self.generator, dtype=torch.float32)
        return x.to(self.device, self.dtype)

    def initial(self, shape: Sequence[int]) -> torch.Tensor:
        """Initial noise for the whole video, e.g. [B, F, C, H, W] (draw this first)."""
        return self.draw(shape)

    def __call__(self, shape: tuple[int, ...], chunk_index: int, step_index: int) -> torch.Tensor:
        """Re-noising draw (a :class:`RenoiseFn`)."""
        return self.draw(shape)


class ReplayNoise:
    """Replays recorded re-noising draws in order (for parity against another implementation).

    Args:
        draws: Recorded draws [N, ...]; each is reshaped to the requested shape.
    """

    def __init__(self, draws: torch.Tensor):
        self.draws = draws
        self.used = 0

    def __call__(self, shape: tuple[int, ...], chunk_index: int, step_index: int) -> torch.Tensor:
        """Next recorded draw, reshaped to ``shape``."""
        if self.used >= len(self.draws):
            raise RuntimeError(f"replay stream exhausted after {self.used} draws")
        x = self.draws[self.used].reshape(shape)
        self.used += 1
        return x

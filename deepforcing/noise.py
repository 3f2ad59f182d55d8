"""Noise from outside the engine: one seeded stream per sample, or a recorded stream to replay.

A sample's noise depends only on ``(prompt_id, seed)``: it is drawn on the CPU from its own
``torch.Generator`` and then moved to the device, so batch position, rank and device never change it.

Every re-noising draw a sampler takes is described by a :class:`NoiseRequest` whose fields mean the same in
every sampler: the draw re-noises chunk ``chunk`` (absolute chunk index) after that chunk's denoising step
``step``; ``window`` is the rolling window the draw belongs to (rolling sampler only). The chunk-wise sampler
asks for the chunk's shape ``[B, n, C, H, W]``; the rolling sampler, as Rolling Forcing's release does, asks
for the whole window's shape ``[B, m, C, H, W]`` and uses the chunk's slice of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from deepforcing.errors import UserError


@dataclass(frozen=True)
class NoiseRequest:
    """One re-noising draw a sampler asks for.

    Attributes:
        shape: Shape of the standard normal tensor wanted.
        chunk: Absolute index of the chunk this draw re-noises.
        step: Index (in the sampler's step list) of the denoising step the chunk just finished; the draw takes
            it to step ``step + 1``'s noise level.
        window: Rolling window index (rolling sampler), None for the chunk-wise sampler.
    """

    shape: tuple[int, ...]
    chunk: int
    step: int
    window: int | None = None


class RenoiseFn(Protocol):
    """Supplies every re-noising draw of a sampler, in order."""

    def __call__(self, request: NoiseRequest) -> torch.Tensor:
        """Return standard normal noise of ``request.shape``."""
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

    def __call__(self, request: NoiseRequest) -> torch.Tensor:
        """Re-noising draw (a :class:`RenoiseFn`)."""
        return self.draw(request.shape)


class ReplayNoise:
    """Replays recorded re-noising draws in order (for parity against another implementation).

    Each draw must have exactly the shape the sampler asks for: nothing is reshaped, so a recording made with
    another layout (e.g. batch and frames flattened, or height and width swapped) fails loudly at the first
    draw instead of silently giving other noise.

    Args:
        draws: The recorded draws, in call order: a sequence of tensors (shapes may differ, as Rolling
            Forcing's window-shaped draws do), or one stacked tensor ``[N, ...]`` read as N draws.

    Raises:
        UserError: (on a call) the stream is exhausted, or a draw's shape differs from the request.
    """

    def __init__(self, draws: Sequence[torch.Tensor] | torch.Tensor):
        self.draws = list(draws.unbind(0)) if isinstance(draws, torch.Tensor) else list(draws)
        self.used = 0
        self.requests: list[NoiseRequest] = []

    def __call__(self, request: NoiseRequest) -> torch.Tensor:
        """Next recorded draw; its shape must equal ``request.shape``."""
        if self.used >= len(self.draws):
            raise UserError(
                f"replay stream exhausted: the sampler asks for draw {self.used + 1} ({request}) but only "
                f"{len(self.draws)} were recorded",
                "record the reference with the same length, sampler and settings",
            )
        x = self.draws[self.used]
        if tuple(x.shape) != tuple(request.shape):
            raise UserError(
                f"replayed draw {self.used} has shape {tuple(x.shape)}, the sampler asks for {tuple(request.shape)} "
                f"({request})",
                "store each draw in the layout the sampler asks for (no reshaping is done)",
            )
        self.used += 1
        self.requests.append(request)
        return x

    @property
    def remaining(self) -> int:
        """Recorded draws not yet used."""
        return len(self.draws) - self.used

    def assert_all_used(self) -> None:
        """Check that the sampler consumed every recorded draw.

        Raises:
            UserError: Some draws were not used (the run was shorter or took fewer draws than the recording).
        """
        if self.remaining:
            raise UserError(
                f"replay stream not exhausted: {self.used} of {len(self.draws)} recorded draws used",
                "the run took fewer draws than the recording: check the length, sampler and settings",
            )

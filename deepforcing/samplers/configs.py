"""Frozen config dataclasses of every sampler, in one torch-free module.

Listing commands resolve every method's config hash, which needs these classes but none of the samplers'
tensor code; keeping them here lets those commands run without importing torch (methods that need torch import
it when called). Each sampler module imports its config from here (and re-exports it). See
:mod:`deepforcing.samplers` for the convention a new sampler follows.

This module must import nothing heavier than the standard library at import time
(``tests/test_cli_startup.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from deepforcing.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from deepforcing.samplers.schedule import FlowSchedule


@dataclass(frozen=True)
class StepConfig:
    """Few-step sampler settings shared by the chunk-wise and rolling samplers.

    Attributes:
        chunk_frames: Latent frames per chunk (``num_frame_per_block``).
        denoising_steps: Nominal timesteps; warped onto the shifted table when ``warp`` is set.
        warp: Map nominal steps through the shifted schedule (``warp_denoising_step``).
        shift: Schedule shift.
        context_timestep: Timestep of the clean pass that writes a chunk's K/V (``context_noise``).
    """

    chunk_frames: int = 3
    denoising_steps: tuple[int, ...] = (1000, 750, 500, 250)
    warp: bool = True
    shift: float = 5.0
    context_timestep: int = 0

    @property
    def schedule(self) -> FlowSchedule:
        """The flow schedule for this config."""
        from deepforcing.samplers.schedule import FlowSchedule

        return FlowSchedule(shift=self.shift)

    def timesteps(self) -> torch.Tensor:
        """The timesteps actually fed to the model, float32 [S]."""
        import torch

        if self.warp:
            return self.schedule.warp(self.denoising_steps)
        return torch.tensor(self.denoising_steps, dtype=torch.float32)


@dataclass(frozen=True)
class ChunkwiseConfig(StepConfig):
    """Chunk-wise sampler settings (defaults: Self-Forcing DMD, ``configs/self_forcing_dmd.yaml``).

    ``[1000, 750, 500, 250]`` warped with shift 5 gives ``[1000, 937.5, 833.33, 625]``; see :class:`StepConfig`.

    Attributes:
        renoise: How x0 is taken to the next step's noise level. ``fresh`` (Self-Forcing and every method built on
            it): a fresh Gaussian draw from the noise stream. ``predicted``: the noise the model's own flow implies
            (``ε̂ = x0 + v``), i.e. the deterministic Euler / DDIM step of the flow ODE — what a non-distilled
            flow-matching model (the toy model) needs to resolve small objects in a few steps.
    """

    renoise: Literal["fresh", "predicted"] = "fresh"

    def __post_init__(self) -> None:
        if self.renoise not in ("fresh", "predicted"):
            raise UserError(f"renoise must be 'fresh' or 'predicted', got {self.renoise!r}")


@dataclass(frozen=True)
class RollingConfig(StepConfig):
    """Rolling sampler settings (defaults: ``configs/rolling_forcing_dmd.yaml``); the window holds one chunk per step.

    ``[1000, 800, 600, 400, 200]`` warped with shift 5 gives ``[1000, 952.4, 882.4, 769.2, 555.6]``.
    """

    denoising_steps: tuple[int, ...] = (1000, 800, 600, 400, 200)

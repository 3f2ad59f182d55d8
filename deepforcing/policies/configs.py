"""Frozen config dataclasses of every cache policy, in one torch-free module.

Listing commands (``methods list``, ``suites list``) resolve every method's config hash, which needs these
classes but none of the policies' tensor code; keeping them here lets those commands run without importing
torch. Each policy module imports its config from here (and re-exports it), so
``from deepforcing.policies.fifo import FifoConfig`` keeps working. See :mod:`deepforcing.policies` for the
convention a new policy follows.

This module must import nothing heavier than the standard library (``tests/test_cli_startup.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where a re-aligned Deep Sink sits (see :mod:`deepforcing.policies.deep_sink`).
PLACEMENTS = ("released", "paper")

#: Which queries score the Top-C candidates (see :mod:`deepforcing.policies.participative_compression`).
QUERY_SOURCES = ("both", "past", "denoising")


@dataclass(frozen=True)
class FullCacheConfig:
    """No parameters: memory grows with the video (preallocated for its full length)."""


@dataclass(frozen=True)
class FifoConfig:
    """Rolling-window settings.

    Attributes:
        window_frames: Latent frames attended to, the chunk itself included (21 = Self-Forcing's horizon).
        sink_frames: First frames never evicted (0 = plain FIFO).
    """

    window_frames: int = 21
    sink_frames: int = 0

    def __post_init__(self) -> None:
        if self.window_frames <= 0 or self.sink_frames < 0 or self.sink_frames >= self.window_frames:
            raise ValueError(f"need 0 <= sink_frames < window_frames, got {self}")


@dataclass(frozen=True)
class DeepSinkConfig:
    """Deep Sink settings.

    Attributes:
        window_frames: Latent frames attended to, chunk included (21: Self-Forcing's trained horizon).
        sink_frames: Frames kept permanently (10 in the paper; the release's DS-only script uses 14).
        placement: ``released`` or ``paper`` (see module docs).
    """

    window_frames: int = 21
    sink_frames: int = 10
    placement: str = "released"

    def __post_init__(self) -> None:
        if not 0 <= self.sink_frames < self.window_frames:
            raise ValueError(f"need 0 <= sink_frames < window_frames (0 = plain FIFO), got {self}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got '{self.placement}'")


@dataclass(frozen=True)
class ParticipativeCompressionConfig:
    """Deep Sink + Participative Compression settings (all sizes in latent frames).

    Attributes:
        window_frames: Maximum cache length, chunk included (M = 21).
        sink_frames: Deep Sink size (S = 10).
        budget_frames: Cache length after compression (N = 16).
        recent_frames: Most recent frames never compressed, the chunk included (R = 4).
        query_source: ``both`` | ``past`` | ``denoising``.
        reuse_cap: Maximum Top-C selections per token (None: no cap).
        unify_topc_rope: Re-position Top-C tokens contiguously before the recent frames (paper Eq. 10–11).
        sink_placement: ``released`` | ``paper``.
    """

    window_frames: int = 21
    sink_frames: int = 10
    budget_frames: int = 16
    recent_frames: int = 4
    query_source: str = "both"
    reuse_cap: int | None = 7
    unify_topc_rope: bool = False
    sink_placement: str = "released"

    def __post_init__(self) -> None:
        if self.sink_frames < 0 or self.sink_frames + self.recent_frames > self.budget_frames:
            raise ValueError(f"need sink + recent <= budget, got {self}")
        if not self.budget_frames < self.window_frames:
            raise ValueError(f"budget must be below the window, got {self}")
        if self.query_source not in QUERY_SOURCES:
            raise ValueError(f"query_source must be one of {QUERY_SOURCES}, got '{self.query_source}'")
        if self.sink_placement not in PLACEMENTS:
            raise ValueError(f"sink_placement must be one of {PLACEMENTS}, got '{self.sink_placement}'")
        if self.reuse_cap is not None and self.reuse_cap < 1:
            raise ValueError("reuse_cap must be >= 1 or None")

    @property
    def topc_frames(self) -> int:
        """C in frames' worth of tokens: budget − sink − recent."""
        return self.budget_frames - self.sink_frames - self.recent_frames


@dataclass(frozen=True)
class RollingSinkConfig:
    """Rolling Forcing cache settings (frames).

    Attributes:
        sink_frames: The first chunk, kept forever (3).
        cache_frames: Cache capacity (24 in the release).
        attention_frames: Longest attention span of a pass (21 = the trained horizon).
    """

    sink_frames: int = 3
    cache_frames: int = 24
    attention_frames: int = 21

    def __post_init__(self) -> None:
        if not 0 < self.sink_frames < self.attention_frames <= self.cache_frames:
            raise ValueError(f"need 0 < sink < attention <= cache frames, got {self}")

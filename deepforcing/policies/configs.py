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
class RollingForcingSinkConfig:
    """Rolling Forcing cache settings (frames); registered as ``rolling-forcing-sink`` (formerly ``rolling-sink``).

    Attributes:
        sink_frames: The first frames, kept forever (3 = the first chunk, as released).
        cache_frames: Cache capacity (24 in the release).
        attention_frames: Longest attention span of a pass (21 = the trained horizon).
    """

    sink_frames: int = 3
    cache_frames: int = 24
    attention_frames: int = 21

    def __post_init__(self) -> None:
        if not 0 < self.sink_frames < self.attention_frames <= self.cache_frames:
            raise ValueError(
                f"rolling-forcing-sink needs 0 < sink_frames < attention_frames <= cache_frames, got "
                f"sink_frames={self.sink_frames}, attention_frames={self.attention_frames}, "
                f"cache_frames={self.cache_frames}"
            )


@dataclass(frozen=True)
class RollingSinkConfig:
    """Rolling Sink settings (latent frames; see :mod:`deepforcing.policies.rolling_sink`).

    Attributes:
        window_frames: Cache and attention window, chunk included (21: the release's default buffer).
        source_frames: Frames whose clean K/V are kept as sources, R (18 = the window minus one chunk, as
            released).
        reverse: Ping-pong through the sources (forward, then reversed, …) as released; False only slides forward
            (wrapping to frame 0).
    """

    window_frames: int = 21
    source_frames: int = 18
    reverse: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.source_frames <= self.window_frames:
            raise ValueError(
                f"rolling-sink needs 0 < source_frames <= window_frames, got source_frames={self.source_frames}, "
                f"window_frames={self.window_frames}"
            )

    def source_of(self, position: int) -> int:
        """Frame whose clean K/V fills the slot at temporal position ``position``."""
        r = self.source_frames
        offset = position % r
        return r - 1 - offset if self.reverse and (position // r) % 2 else offset


@dataclass(frozen=True)
class InfinityRopeConfig:
    """Infinity-RoPE settings (latent frames; see :mod:`deepforcing.policies.infinity_rope`).

    Attributes:
        window_frames: Cache and attention window, chunk included (6: ``local_attn_size``).
        sink_frames: First frames kept forever, at position 0… (1: ``sink_size``).
        cut_position: Where a RoPE cut puts the new scene's first chunk (45: ``rope_cut(transition_from=45)``; the
            paper ablates jumps of 6, 21, 45, 90).
    """

    window_frames: int = 6
    sink_frames: int = 1
    cut_position: int = 45

    def __post_init__(self) -> None:
        if not 0 <= self.sink_frames < self.window_frames or self.cut_position < 0:
            raise ValueError(
                f"infinity-rope needs 0 <= sink_frames < window_frames and cut_position >= 0, got "
                f"sink_frames={self.sink_frames}, window_frames={self.window_frames}, cut_position={self.cut_position}"
            )


@dataclass(frozen=True)
class MemRopeConfig:
    """MemRoPE settings (latent frames; see :mod:`deepforcing.policies.memrope`).

    Attributes:
        window_frames: Cache and attention window, chunk included (12: ``local_attn_size``).
        sink_frames: First frames kept forever (3: ``sink_size``).
        alpha_long: EMA rate of the long-term memory (0.01: ``ema_alpha_long``).
        alpha_short: EMA rate of the short-term memory (0.1: ``ema_alpha_short``).
    """

    window_frames: int = 12
    sink_frames: int = 3
    alpha_long: float = 0.01
    alpha_short: float = 0.1

    def __post_init__(self) -> None:
        if self.sink_frames < 0 or not 0 <= self.alpha_long <= 1 or not 0 <= self.alpha_short <= 1:
            raise ValueError(f"memrope needs sink_frames >= 0 and alphas in [0, 1], got {self}")


@dataclass(frozen=True)
class LolConfig(FifoConfig):
    """LoL settings (see :mod:`deepforcing.policies.lol`): LongLive's cache and the per-head RoPE jitter.

    Attributes:
        window_frames: Frames attended to, chunk included (12).
        sink_frames: First frames never evicted (3).
        sigma: Jitter strength σ (0.8; the paper's ablation: 0.1 still collapses, 0.5 reduces, 0.8 none seen).
        seed: Seed of the per-(layer, head) draws.
        theta: θ0 (10000, Wan's base).
    """

    window_frames: int = 12
    sink_frames: int = 3
    sigma: float = 0.8
    seed: int = 0
    theta: float = 10000.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.sigma < 1 or self.theta <= 0:
            raise ValueError(f"lol needs 0 <= sigma < 1 (bases stay positive) and theta > 0, got {self}")

"""Rolling Sink (arXiv 2602.07775; Rolling-Sink/Rolling-Sink @ d7fc0d9, ``wan/modules/causal_model.py:234-281``).

Training-free, on vanilla Self-Forcing weights. The cache is Self-Forcing's 21-frame window, evicted first in
first out with **no** static sink (the release removes Self-Forcing's ``local_attn_size != -1`` guard, so its
default 21-frame buffer rolls). What makes it Rolling Sink: the slots of history that has rolled past the
trained horizon are refilled with **earlier clean frames, re-positioned at the slots' own absolute positions**.

As the release does it (confirmed by running it, ``tests/fixtures/parity/rolling_sink/README.md``):

* the clean K/V of the first ``source_frames`` (18) frames are kept, un-rotated (here: the cache's own keys,
  whose temporal rotation is applied from stored positions anyway), as the chunks finish;
* after the clean pass of every chunk starting at frame ``s >= window_frames`` (21), the slots of the
  *previous* chunk — positions ``p = s − n … s − 1`` — are overwritten: value = stored V of frame ``src(p)``, key =
  stored K of ``src(p)`` rotated at ``p``, with ``src(p) = p mod R`` when ``⌊p / R⌋`` is even, else
  ``R − 1 − (p mod R)`` (R = ``source_frames``): the source slides forward through frames 0…R−1, then back,
  then forward ("sliding semantics"); a reversed slice reverses frame order only, tokens inside a frame keep
  their order;
* so while denoising chunk ``k`` the model attends to 15 substituted frames, the genuine chunk ``k − 1`` and
  chunk ``k`` itself, all at absolute positions ("sliding indices"); positions grow without bound (the release
  enlarges its RoPE table to 8,192 rows; here phases are computed from the integers, so any length is exact).

The paper (§3.2) describes the same thing as a 5-block sink and 1 recent block out of 6 cached blocks (S/K =
83 %); the release has no sink-ratio knob, and neither has this policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import RollingSinkConfig
from deepforcing.policies.fifo import evict_to_window


@dataclass(frozen=True)
class Substitution:
    """One refill (layer 0; every layer does the same).

    Attributes:
        chunk: Chunk whose clean pass triggered it.
        positions: Temporal positions of the refilled frames.
        sources: Source frame of each refilled frame.
    """

    chunk: int
    positions: tuple[int, ...]
    sources: tuple[int, ...]


class RollingSinkPolicy(CachePolicy):
    """FIFO window whose rolled history is refilled from the first frames, at absolute positions."""

    name: ClassVar[str] = "rolling-sink"
    #: Prompt switches: keep only. The refill expects the genuine previous chunk right before the new one, so a
    #: flush would break it, and refilled (non-consecutive) frames cannot be recached.
    switch_modes: ClassVar[tuple[str, ...]] = ("keep",)

    def __init__(self, cfg: RollingSinkConfig | None = None):
        self.cfg = cfg or RollingSinkConfig()
        self.history: list[Substitution] = []
        self._k: list[torch.Tensor] = []  # per layer: stored clean K of the source frames [B, R·tpf, H, D]
        self._v: list[torch.Tensor] = []

    def reset(self) -> None:
        """Forget the substitution history (the source bank is rewritten by every video)."""
        self.history = []

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The window (or the whole video if shorter).

        Raises:
            UserError: The chunk does not divide the source range or does not fit the window.
        """
        cfg = self.cfg
        if cfg.source_frames % chunk_frames or cfg.window_frames % chunk_frames:
            raise UserError(
                f"rolling-sink: window_frames={cfg.window_frames} and source_frames={cfg.source_frames} must be "
                f"whole numbers of the {chunk_frames}-frame chunk (sources are taken a chunk at a time)"
            )
        return min(total_frames, cfg.window_frames)

    def attach(self, kv: KVCache) -> None:
        """Allocate the source bank (clean K/V of the first ``source_frames`` frames) once per video."""
        tokens = self.cfg.source_frames * kv.tokens_per_frame
        self._k = [torch.zeros_like(layer.k[:, :tokens]) for layer in kv.layers]
        self._v = [torch.zeros_like(layer.v[:, :tokens]) for layer in kv.layers]

    def memory_bytes(self) -> int:
        """Bytes of the source bank."""
        return sum(t.numel() * t.element_size() for t in (*self._k, *self._v))

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """FIFO eviction, no sink."""
        evict_to_window(kv, self.cfg.window_frames, 0, chunk.num_frames)

    def after_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Bank the chunk's clean K/V if it holds source frames; refill the previous chunk's slots once rolled."""
        cfg, tpf, n = self.cfg, kv.tokens_per_frame, chunk.num_frames
        s = chunk.start_frame
        if s < cfg.source_frames:
            frames = min(n, cfg.source_frames - s)
            for layer, k, v in zip(kv.layers, self._k, self._v, strict=True):
                start = layer.length - n * tpf  # the chunk's committed slots
                k[:, s * tpf : (s + frames) * tpf] = layer.k[:, start : start + frames * tpf]
                v[:, s * tpf : (s + frames) * tpf] = layer.v[:, start : start + frames * tpf]
        if s < cfg.window_frames:
            return
        positions = list(range(s - n, s))
        sources = [cfg.source_of(p) for p in positions]
        device = kv.layers[0].positions.device
        index = torch.cat([torch.arange(f * tpf, (f + 1) * tpf) for f in sources]).to(device)
        token_positions = torch.tensor(positions, device=device).repeat_interleave(tpf)
        token_frames = torch.tensor(sources, device=device).repeat_interleave(tpf)
        for layer, k, v in zip(kv.layers, self._k, self._v, strict=True):
            start = layer.length - 2 * n * tpf  # the previous chunk's slots
            layer.overwrite(start, k[:, index], v[:, index], token_positions, token_frames)
        self.history.append(Substitution(chunk.index, tuple(positions), tuple(sources)))

"""Deep Sink (Deep Forcing §4.2): keep the first S frames forever and re-align their temporal RoPE.

A FIFO rolling window of ``window_frames`` whose first ``sink_frames`` frames are never evicted. Whenever the
window rolls (a new chunk evicts frames), the sink's temporal positions are moved so that it sits just before
the rolling tail; height/width positions and values are untouched.

Placements:

* ``released`` (default) — as the authors' code (``causal_model_DS.py`` @ ea9961a): for a chunk starting at
  frame ``cs`` the sink starts at ``cs − (cached frames incl. the chunk)``, i.e. ``cs − 21`` with a full
  window. This leaves a gap of one chunk (3 frames) between the sink's end and the tail's true start.
* ``paper`` — Eq. 5–6 read literally: the sink ends exactly where the tail starts (contiguous).

Re-alignment here is exact: positions are stored as integers and the rotation is applied when keys are read.
The released code rotates the stored (bf16) sink keys in place by Δ each roll, which accumulates rounding;
this is a deliberate, tested improvement (``tests/test_policies.py``), not a behaviour change.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import DeepSinkConfig
from deepforcing.policies.fifo import evict_to_window


def sink_start_for(placement: str, chunk_start: int, chunk_frames: int, cached_frames: int, sink_frames: int) -> int:
    """Temporal position of the sink's first frame for a chunk, given the cache size after the chunk is added.

    Args:
        placement: ``released`` or ``paper``.
        chunk_start: Absolute frame index of the chunk (cs).
        chunk_frames: Frames in the chunk.
        cached_frames: Frames in the cache including the chunk.
        sink_frames: Sink frames.
    """
    if placement == "released":
        return chunk_start - cached_frames
    tail_start = chunk_start + chunk_frames - (cached_frames - sink_frames)  # true position of the first tail frame
    return tail_start - sink_frames


class DeepSinkPolicy(CachePolicy):
    """FIFO window with a deep, re-aligned sink."""

    name: ClassVar[str] = "deep-sink"

    def __init__(self, cfg: DeepSinkConfig | None = None):
        self.cfg = cfg or DeepSinkConfig()
        self.sink_starts: list[tuple[int, int]] = []  # (chunk index, sink start) after each re-alignment

    def reset(self) -> None:
        """Forget the re-alignment history."""
        self.sink_starts = []

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The window (or the whole video if shorter)."""
        if chunk_frames > self.cfg.window_frames - self.cfg.sink_frames:
            raise ValueError(f"a {chunk_frames}-frame chunk does not fit {self.cfg}")
        return min(total_frames, self.cfg.window_frames)

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Evict the oldest non-sink frames; on a roll, move the sink next to the tail."""
        tpf = kv.tokens_per_frame
        if not evict_to_window(kv, self.cfg.window_frames, self.cfg.sink_frames, chunk.num_frames):
            return
        cached = kv.layers[0].length // tpf + chunk.num_frames
        start = sink_start_for(self.cfg.placement, chunk.start_frame, chunk.num_frames, cached, self.cfg.sink_frames)
        positions = torch.arange(start, start + self.cfg.sink_frames).repeat_interleave(tpf)
        for layer in kv.layers:
            layer.set_positions(0, positions)
        self.sink_starts.append((chunk.index, start))

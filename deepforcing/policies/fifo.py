"""FIFO rolling window (Self-Forcing's long-video baseline), with an optional static sink.

With ``window_frames = W`` and ``sink_frames = S``: before a chunk of ``n`` frames is written, the oldest
non-sink frames are evicted until committed + n <= W. Keys keep their absolute temporal positions (no
re-alignment), exactly as Self-Forcing's ``local_attn_size`` / ``sink_size`` cache.
"""

from __future__ import annotations

from typing import ClassVar

from deepforcing.cache import ChunkState, KVCache
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import FifoConfig


class FifoPolicy(CachePolicy):
    """Evict the oldest non-sink frames when the window would overflow."""

    name: ClassVar[str] = "fifo"

    def __init__(self, cfg: FifoConfig | None = None):
        self.cfg = cfg or FifoConfig()

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The window (or the whole video if shorter)."""
        if chunk_frames > self.cfg.window_frames - self.cfg.sink_frames:
            raise ValueError(f"a {chunk_frames}-frame chunk does not fit a {self.cfg} window")
        return min(total_frames, self.cfg.window_frames)

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Evict the oldest non-sink tokens so the chunk fits the window."""
        evict_to_window(kv, self.cfg.window_frames, self.cfg.sink_frames, chunk.num_frames)


def evict_to_window(kv: KVCache, window_frames: int, sink_frames: int, incoming_frames: int) -> bool:
    """FIFO-evict the oldest tokens after the first ``sink_frames`` so that ``incoming_frames`` more fit the window.

    Returns:
        Whether anything was evicted (the window "rolled").
    """
    tpf = kv.tokens_per_frame
    rolled = False
    for layer in kv.layers:
        overflow = layer.length + incoming_frames * tpf - min(window_frames * tpf, layer.capacity)
        if overflow > 0:
            layer.evict(sink_frames * tpf, overflow)
            rolled = True
    return rolled

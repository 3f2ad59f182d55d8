"""Infinity-RoPE (arXiv 2511.20649; yesiltepe-hidir/infinity-rope @ 63d7b84, ``wan/modules/causal_model.py``).

**Block-relative RoPE.** A short cache (``window_frames`` = 6, the first ``sink_frames`` = 1 frame kept forever)
whose keys are stored un-rotated and rotated at their **slot** index on every call, so positions never grow: the
sink sits at 0, the other cached frames at 1…, and the new chunk at the slots right after them (3–5 once the
cache is full; 0–2 and 3–5 for the first two chunks). With positions as data this policy only rewrites integers:
before each chunk it evicts FIFO behind the sink, sets every cached frame's position to its slot and assigns the
chunk's own positions (``chunk.frame_positions``).

As released (confirmed by running it, ``tests/fixtures/parity/infinity_rope/README.md``):

* the sink is rotated once, at 0, during the first chunk and then used as stored; rotation at 0 leaves the
  temporal channels unchanged, so sitting at position 0 is the same thing;
* **KV flush** (``pipeline/causal_inference.py:214-222``) keeps the sink and the last 2 cached frames — exactly what
  the next eviction of this 6-frame cache leaves — and re-encodes the text: in this code a flush only switches
  the prompt (``flush`` here). The paper's flush keeps the sink and the last frame (``flush-paper``);
* **RoPE cut** (``causal_model.py:27-44, 63-66``): for every pass of the new scene's first chunk its queries and keys
  sit at ``cut_position``… (45, 46, 47), the cached frames at their slots; later chunks return to slot indices.
  The code also flushes at a cut. A ``#`` anywhere in a scene of its prompt syntax makes the boundary *after* that
  scene a cut (``:420``) — whatever its README says (``A[6s#] | B`` cuts between A and B);
* the paper's onset index f0 = 21 (§5) is not what the code does: the chunk's positions follow the cache (the
  code's "onset" is the cache size, 6). We follow the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.policies.base import CachePolicy, flush
from deepforcing.policies.configs import InfinityRopeConfig
from deepforcing.policies.fifo import evict_to_window


@dataclass(frozen=True)
class Placement:
    """Positions of one chunk (every layer alike).

    Attributes:
        chunk: Chunk index.
        cached_frames: Cached frames before the chunk, at positions 0 … cached_frames − 1.
        chunk_start: Position of the chunk's first frame.
        cut: Whether the chunk is a RoPE cut's first chunk.
    """

    chunk: int
    cached_frames: int
    chunk_start: int
    cut: bool


class InfinityRopePolicy(CachePolicy):
    """Short FIFO cache with a sink, every position block-relative (slot indices)."""

    name: ClassVar[str] = "infinity-rope"
    switch_modes: ClassVar[tuple[str, ...]] = ("keep", "flush", "flush-paper", "cut", "recache")

    def __init__(self, cfg: InfinityRopeConfig | None = None):
        self.cfg = cfg or InfinityRopeConfig()
        self.history: list[Placement] = []
        self._cut = False

    def reset(self) -> None:
        """Forget the placements and a pending cut."""
        self.history = []
        self._cut = False

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The window (or the whole video if shorter).

        Raises:
            UserError: The chunk does not fit the window behind the sink.
        """
        if chunk_frames > self.cfg.window_frames - self.cfg.sink_frames:
            raise UserError(f"infinity-rope: a {chunk_frames}-frame chunk does not fit {self.cfg}")
        return min(total_frames, self.cfg.window_frames)

    def on_switch(self, kv: KVCache, chunk: ChunkState, mode: str) -> None:
        """``cut``: the code's flush, then the next chunk goes to ``cut_position``; other modes as the base."""
        if mode == "cut":
            flush(kv, self.cfg.sink_frames, 2)
            self._cut = True
            return
        super().on_switch(kv, chunk, mode)

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Evict behind the sink, put every cached frame at its slot and the chunk right after (or at the cut)."""
        evict_to_window(kv, self.cfg.window_frames, self.cfg.sink_frames, chunk.num_frames)
        tpf = kv.tokens_per_frame
        cached = kv.layers[0].length // tpf
        slots = torch.arange(cached).repeat_interleave(tpf)
        for layer in kv.layers:
            layer.set_positions(0, slots)
        start = self.cfg.cut_position if self._cut else cached
        chunk.frame_positions = torch.arange(start, start + chunk.num_frames)
        self.history.append(Placement(chunk.index, cached, start, self._cut))
        self._cut = False

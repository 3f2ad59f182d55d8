"""Rolling Forcing's cache (TencentARC/RollingForcing @ a1477d0, ``wan/modules/causal_model.py``).

Registered as ``rolling-forcing-sink``. (Until the Rolling Sink method arrived this policy was called
``rolling-sink``; the method presets that use it hash exactly as before, see
:data:`deepforcing.policies.HASH_NAMES`.)

Only the first chunk of every rolling window is cached, as clean K/V written by a re-encode pass. The cache
holds at most ``cache_frames`` (24) frames: the first ``sink_frames`` frames are a permanent sink (stored
un-rotated in the release, here simply re-positioned), the rest a FIFO. What a pass attends to depends on the
pass:

* a **window** pass (the joint denoising of up to 5 chunks) attends to ``[sink | working | window]``: the
  window's own fresh K/V, the last ``attention_frames − window − sink`` committed frames (the *working cache*:
  one chunk for a full window) and the sink re-positioned to sit right before the working cache. Windows that
  start at frame 0 attend to themselves only;
* the **re-encode** pass of the window's clean first chunk attends to the last ``attention_frames`` (21)
  frames of the cache, its own K/V included; the sink is at its true positions when it is in that range (once
  the cache holds more than 21 frames it is not).

The release's sink is one chunk (its ``block_length``). A longer sink (``sink_frames`` > one chunk) is a
generalisation: the sink is the first ``sink_frames`` *committed* frames (while fewer are committed, those
there are), and ``sink + window`` must fit the ``attention_frames`` span, which
:meth:`RollingForcingSinkPolicy.capacity_frames` checks (a 15-frame window leaves room for a sink of at most 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache, LayerCache
from deepforcing.errors import UserError
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import RollingForcingSinkConfig


@dataclass(frozen=True)
class SinkPlacement:
    """Where the sink sat for one pass (layer 0; every layer places it alike).

    Attributes:
        window: Rolling window index.
        is_context_pass: True for the window's re-encode pass.
        sink_frames: Sink frames attended (0: the pass did not attend to the sink).
        sink_start: Temporal position of the sink's first frame for this pass (-1 when not attended).
        working_frames: Committed non-sink frames attended besides the sink.
    """

    window: int
    is_context_pass: bool
    sink_frames: int
    sink_start: int
    working_frames: int


class RollingForcingSinkPolicy(CachePolicy):
    """Sink + working cache of Rolling Forcing; pairs with the rolling sampler."""

    name: ClassVar[str] = "rolling-forcing-sink"
    uses_attention_hook: ClassVar[bool] = True
    #: Prompt switches: the rolling sampler takes one prompt (Rolling Forcing defines no switch).
    switch_modes: ClassVar[tuple[str, ...]] = ("keep",)

    def __init__(self, cfg: RollingForcingSinkConfig | None = None):
        self.cfg = cfg or RollingForcingSinkConfig()
        self._tpf = 0
        self.history: list[SinkPlacement] = []

    def reset(self) -> None:
        """Forget the sink history."""
        self.history = []

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The cache plus the largest pass in flight (a whole window of ``chunk_frames``).

        Raises:
            UserError: The sink and a whole window do not fit the attention span.
        """
        if self.cfg.sink_frames + chunk_frames > self.cfg.attention_frames:
            raise UserError(
                f"rolling-forcing-sink: a {self.cfg.sink_frames}-frame sink plus the sampler's {chunk_frames}-frame "
                f"window exceed attention_frames={self.cfg.attention_frames}",
                f"use sink_frames <= {self.cfg.attention_frames - chunk_frames} (the release uses 3)",
            )
        return self.cfg.cache_frames + chunk_frames

    def attach(self, kv: KVCache) -> None:
        """Remember the token size of a frame."""
        self._tpf = kv.tokens_per_frame

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Before a re-encode: drop a stale copy of the same chunk, then FIFO-evict behind the sink."""
        if not chunk.is_context_pass:
            return
        tpf = kv.tokens_per_frame
        for layer in kv.layers:
            stale = int((layer.frames[: layer.length] >= chunk.start_frame).sum())  # warm-up re-encodes chunk 0
            if stale:
                layer.evict(layer.length - stale, stale)
            overflow = layer.length + chunk.num_frames * tpf - self.cfg.cache_frames * tpf
            if overflow > 0:
                layer.evict(self.cfg.sink_frames * tpf, overflow)

    def on_attention(self, layer_idx: int, layer: LayerCache, q: torch.Tensor, chunk: ChunkState) -> None:
        """Choose the slots this pass attends to and where the sink sits for it."""
        tpf = self._tpf
        committed, pending = layer.length, layer.pending
        sink = min(self.cfg.sink_frames * tpf, committed)  # committed tokens only: never the pass's own
        device = layer.positions.device
        if chunk.is_context_pass:
            start = max(0, committed + pending - self.cfg.attention_frames * tpf)
            if start < sink:  # the (part of the) sink in range sits at its true place
                layer.set_positions(start, layer.frames[start:sink].clone())
            if start == 0:
                self._record(layer_idx, chunk, sink, int(layer.frames[0]) if sink else -1, committed - sink)
                return  # attend to every valid slot
            layer.attend = torch.arange(start, committed + pending, device=device)
            seen = max(0, sink - start)
            self._record(layer_idx, chunk, seen, int(layer.frames[start]) if seen else -1, committed - max(sink, start))
            return
        window = torch.arange(committed, committed + pending, device=device)
        if chunk.start_frame == 0:
            layer.attend = window
            self._record(layer_idx, chunk, 0, -1, 0)
            return
        working_max = self.cfg.attention_frames * tpf - pending - sink
        working_start = max(sink, committed - working_max)
        working_frames = (committed - working_start) // tpf
        sink_start = chunk.start_frame - working_frames - sink // tpf
        layer.set_positions(0, sink_start + torch.arange(sink, device=device) // tpf)
        layer.attend = torch.cat(
            [torch.arange(sink, device=device), torch.arange(working_start, committed, device=device), window]
        )
        self._record(layer_idx, chunk, sink, sink_start, committed - working_start)

    def _record(self, layer_idx: int, chunk: ChunkState, sink_tokens: int, start: int, working_tokens: int) -> None:
        if layer_idx == 0:
            tpf = self._tpf
            placement = SinkPlacement(
                chunk.index, chunk.is_context_pass, sink_tokens // tpf, start, working_tokens // tpf
            )
            self.history.append(placement)

"""Rolling Forcing's cache (TencentARC/RollingForcing @ a1477d0, ``wan/modules/causal_model.py``).

Only the first chunk of every rolling window is cached, as clean K/V written by a re-encode pass. The cache
holds at most ``cache_frames`` (24) frames: the first chunk is a permanent sink (stored un-rotated in the
release, here simply re-positioned), the rest a FIFO. What a pass attends to depends on the pass:

* a **window** pass (the joint denoising of up to 5 chunks) attends to ``[sink | working | window]``: the
  window's own fresh K/V, the last ``attention_frames − window − sink`` committed frames (the *working cache*:
  one chunk for a full window) and the sink re-positioned to sit right before the working cache. Windows that
  start at frame 0 attend to themselves only;
* the **re-encode** pass of the window's clean first chunk attends to the last ``attention_frames`` (21)
  frames of the cache, its own K/V included; the sink is at its true positions when it is in that range (once
  the cache holds more than 21 frames it is not).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache, LayerCache
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import RollingSinkConfig


class RollingSinkPolicy(CachePolicy):
    """Sink + working cache of Rolling Forcing; pairs with the rolling sampler."""

    name: ClassVar[str] = "rolling-sink"
    uses_attention_hook: ClassVar[bool] = True

    def __init__(self, cfg: RollingSinkConfig | None = None):
        self.cfg = cfg or RollingSinkConfig()
        self._tpf = 0

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The cache plus the largest pass in flight (a whole window)."""
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
        sink = min(self.cfg.sink_frames * tpf, committed + pending)
        device = layer.positions.device
        if chunk.is_context_pass:
            start = max(0, committed + pending - self.cfg.attention_frames * tpf)
            if start == 0:
                layer.set_positions(0, layer.frames[:sink].clone())  # the sink at its true place
                return  # attend to every valid slot
            layer.attend = torch.arange(start, committed + pending, device=device)
            return
        window = torch.arange(committed, committed + pending, device=device)
        if chunk.start_frame == 0:
            layer.attend = window
            return
        working_max = self.cfg.attention_frames * tpf - pending - self.cfg.sink_frames * tpf
        working_start = max(self.cfg.sink_frames * tpf, committed - working_max)
        working_frames = (committed - working_start) // tpf
        sink_start = chunk.start_frame - working_frames - self.cfg.sink_frames
        layer.set_positions(0, sink_start + torch.arange(sink, device=device) // tpf)
        layer.attend = torch.cat(
            [torch.arange(sink, device=device), torch.arange(working_start, committed, device=device), window]
        )

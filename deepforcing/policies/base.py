"""The cache-policy contract: what a policy may do, and when the engine calls it.

A policy decides only what stays in the KV cache and at which temporal position; it knows nothing about
timesteps or denoising. The engine calls, for every chunk:

* :meth:`CachePolicy.attach` — once per video, with the freshly allocated cache;
* :meth:`CachePolicy.frame_positions` — temporal RoPE positions of the chunk's frames;
* :meth:`CachePolicy.on_switch` — at a prompt switch, before the new segment's first chunk (see
  ``deepforcing.samplers.switching``);
* :meth:`CachePolicy.before_chunk` — before the chunk's first denoising pass (evict, re-position). It may also
  assign the chunk's own temporal positions by replacing ``chunk.frame_positions`` (the positions of the chunk's
  queries and new keys for all its passes): the engine reads them only after this call. Positions are data, so
  a policy with block-relative positions (Infinity-RoPE) is a policy that rewrites integers here;
* :meth:`CachePolicy.on_attention` — inside every layer's self-attention, after the chunk's K/V are written
  and before attention, only if :attr:`CachePolicy.uses_attention_hook` is set (token scoring, compression);
* :meth:`CachePolicy.after_chunk` — after the clean pass has committed the chunk's K/V.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache, LayerCache
from deepforcing.errors import UserError


class CachePolicy(ABC):
    """Base class of all cache policies (one small file each)."""

    #: Registry name.
    name: ClassVar[str]
    #: Whether the engine should install :meth:`on_attention` as the cache's per-layer hook.
    uses_attention_hook: ClassVar[bool] = False
    #: Prompt-switch modes this policy defines (``deepforcing.samplers.switching``); others are refused.
    switch_modes: ClassVar[tuple[str, ...]] = ("keep", "flush", "flush-paper", "recache")

    @property
    def switch_sink_frames(self) -> int:
        """Frames at the head of the cache that a flush keeps and a recache leaves alone (the policy's sink)."""
        return int(getattr(getattr(self, "cfg", None), "sink_frames", 0) or 0)

    @abstractmethod
    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """Latent frames of K/V slots to preallocate per layer for a video of ``total_frames``."""

    def frame_positions(self, start_frame: int, num_frames: int) -> torch.Tensor:
        """Temporal positions of a chunk's frames; default: absolute latent-frame indices."""
        return torch.arange(start_frame, start_frame + num_frames)

    def memory_bytes(self) -> int:
        """Bytes of per-video state the policy holds besides the cache (e.g. stored K/V); counted as KV memory."""
        return 0

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget per-video state (called before each video)."""

    def attach(self, kv: KVCache) -> None:  # noqa: B027 - optional hook
        """Called once with the freshly allocated cache, before the first chunk (allocate per-token columns)."""

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:  # noqa: B027 - optional hook
        """Make room for / re-position tokens before the chunk's first pass."""

    def on_attention(self, layer_idx: int, layer: LayerCache, q: torch.Tensor, chunk: ChunkState) -> None:  # noqa: B027
        """Per-layer hook with the chunk's roped queries q [B, n, H, D] (see class docs)."""

    def after_chunk(self, kv: KVCache, chunk: ChunkState) -> None:  # noqa: B027 - optional hook
        """Observe the committed chunk."""

    def check_switch(self, mode: str) -> None:
        """Refuse a switch mode this policy does not define.

        Raises:
            UserError: Naming the modes it does define.
        """
        if mode not in self.switch_modes:
            why = {
                "cut": "the RoPE cut moves a scene to other block-relative positions; this policy's positions are "
                "its own (absolute or re-aligned), so a cut has no defined meaning here",
                "recache": "recomputing cached K/V needs whole consecutive frames without a per-layer hook",
            }.get(mode, "not defined for this cache")
            raise UserError(
                f"switch mode '{mode}' is not defined for cache policy '{self.name}': {why}",
                f"use one of: {', '.join(self.switch_modes)}",
            )

    def on_switch(self, kv: KVCache, chunk: ChunkState, mode: str) -> None:
        """A prompt switch before ``chunk``: ``flush`` / ``flush-paper`` keep the sink and the last 2 / 1 frames.

        ``keep`` and ``recache`` leave the token table alone (the sampler runs the recache pass, see
        :meth:`recache_frames`). Subclasses add modes (``cut``) by overriding this and ``switch_modes``.
        """
        from deepforcing.samplers.switching import FLUSH_KEEP_FRAMES

        self.check_switch(mode)
        if mode in FLUSH_KEEP_FRAMES:
            flush(kv, self.switch_sink_frames, FLUSH_KEEP_FRAMES[mode])

    def recache_frames(self, kv: KVCache) -> tuple[int, torch.Tensor, torch.Tensor]:
        """What a ``recache`` recomputes: every committed frame after the sink.

        Returns:
            (first slot, source frame of each recomputed frame [m], its temporal position [m]).

        Raises:
            UserError: The cached tokens after the sink are not whole consecutive frames at one position each (a
                token-level or refilled cache cannot be recomputed frame by frame).
        """
        tpf = kv.tokens_per_frame
        layer = kv.layers[0]
        first = min(self.switch_sink_frames * tpf, layer.length)
        count = layer.length - first
        frames = layer.frames[first : layer.length]
        positions = layer.positions[first : layer.length]
        ok = count % tpf == 0 and not self.uses_attention_hook
        if ok and count:
            frames, positions = frames.view(-1, tpf), positions.view(-1, tpf)
            ok = bool((frames == frames[:, :1]).all() and (positions == positions[:, :1]).all())
            frames, positions = frames[:, 0], positions[:, 0]
            ok = ok and bool((frames == frames[0] + torch.arange(len(frames), device=frames.device)).all())
        if not ok:
            raise UserError(
                f"cache policy '{self.name}' cannot recache: its cached tokens after the sink are not whole "
                "consecutive frames",
                "use switch mode keep or flush",
            )
        return first, frames.clone(), positions.clone()


def flush(kv: KVCache, sink_frames: int, keep_frames: int) -> None:
    """Drop every committed token between the first ``sink_frames`` and the last ``keep_frames`` frames."""
    tpf = kv.tokens_per_frame
    for layer in kv.layers:
        sink = min(sink_frames * tpf, layer.length)
        drop = layer.length - sink - keep_frames * tpf
        if drop > 0:
            layer.evict(sink, drop)

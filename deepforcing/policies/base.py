"""The cache-policy contract: what a policy may do, and when the engine calls it.

A policy decides only what stays in the KV cache and at which temporal position; it knows nothing about
timesteps or denoising. The engine calls, for every chunk:

* :meth:`CachePolicy.attach` — once per video, with the freshly allocated cache;
* :meth:`CachePolicy.frame_positions` — temporal RoPE positions of the chunk's frames;
* :meth:`CachePolicy.before_chunk` — before the chunk's first denoising pass (evict, re-position);
* :meth:`CachePolicy.on_attention` — inside every layer's self-attention, after the chunk's K/V are written
  and before attention, only if :attr:`CachePolicy.uses_attention_hook` is set (token scoring, compression);
* :meth:`CachePolicy.after_chunk` — after the clean pass has committed the chunk's K/V.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache, LayerCache


class CachePolicy(ABC):
    """Base class of all cache policies (one small file each)."""

    #: Registry name.
    name: ClassVar[str]
    #: Whether the engine should install :meth:`on_attention` as the cache's per-layer hook.
    uses_attention_hook: ClassVar[bool] = False

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

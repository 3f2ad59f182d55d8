"""MemRoPE (arXiv 2603.12513; YoungRaeKimm/MemRoPE @ b89bf5b, ``wan/modules/causal_model.py``, ``configs/``).

A fixed 12-frame cache laid out as ``[sink 3] [long-term memory 1] [short-term memory 1] [recent 4] [chunk 3]``. Frames
leaving the recent window are not dropped: their keys and values are averaged into one vector (over every evicted
token; ``ema_adaptive: false``, the default) and folded into the two memory frames by an exponential moving average,
``mem ← α·mean + (1 − α)·mem`` with α = 0.01 (long-term) and 0.1 (short-term); the vector is broadcast over the
frame's token positions. Keys are kept un-rotated and RoPE is applied at attention time at **slot** indices 0 … 11
("online RoPE indexing"), so positions never leave the trained range.

As released (confirmed by running it, ``tests/fixtures/parity/memrope/README.md``):

* the first time the cache would overflow (the 5th chunk), the three evicted tokens' frames are the ones **after
  the memory slots** (frames 5–7), both memories are initialised to their mean, and the two frames that sat in the
  memory slots (frames 3 and 4) are dropped without being averaged; from then on the evicted frames are always the
  oldest three of the recent window;
* the update happens once per chunk, at its first denoising step; later steps and the clean pass reuse it;
* the mean is over **raw** keys (before any rotation). This engine stores keys with their spatial rotation applied,
  so the policy undoes it exactly (rotation by the conjugate phases in float64) before averaging and applies it to
  the memory frame's token positions afterwards.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import MemRopeConfig

#: Memory frames (one long-term, one short-term), as released.
MEMORY_FRAMES = 2


class MemRopePolicy(CachePolicy):
    """Sink + two EMA memory frames + recent window, all at slot positions."""

    name: ClassVar[str] = "memrope"
    #: Prompt switches: keep only (the release is single-prompt; memory frames have no frame to recompute).
    switch_modes: ClassVar[tuple[str, ...]] = ("keep",)

    def __init__(self, cfg: MemRopeConfig | None = None):
        self.cfg = cfg or MemRopeConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the memories."""
        self._memory: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # per layer, raw
        self.updates: list[int] = []  # chunks whose first pass updated the memories

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The window.

        Raises:
            UserError: No room for a recent window between the memories and the chunk.
        """
        recent = self.cfg.window_frames - self.cfg.sink_frames - MEMORY_FRAMES - chunk_frames
        if recent < chunk_frames:
            raise UserError(f"memrope: {self.cfg} leaves {recent} recent frames for {chunk_frames}-frame chunks")
        return self.cfg.window_frames

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Fold the evicted frames into the memories (once the window is full), then assign slot positions."""
        tpf = kv.tokens_per_frame
        if kv.layers[0].length + chunk.num_frames * tpf > self.cfg.window_frames * tpf:
            self._fold(kv, chunk)
        cached = kv.layers[0].length // tpf
        slots = torch.arange(cached).repeat_interleave(tpf)
        for layer in kv.layers:
            layer.set_positions(0, slots)
        chunk.frame_positions = torch.arange(cached, cached + chunk.num_frames)

    def _fold(self, kv: KVCache, chunk: ChunkState) -> None:
        cfg, tpf = self.cfg, kv.tokens_per_frame
        mem_start = cfg.sink_frames * tpf
        recent_start = mem_start + MEMORY_FRAMES * tpf
        first = not self._memory
        for i, layer in enumerate(kv.layers):
            evicted = layer.length + chunk.num_frames * tpf - cfg.window_frames * tpf
            k_raw = self._unrotate(kv, layer.k[:, recent_start : recent_start + evicted])
            mean_k = k_raw.mean(dim=1, keepdim=True).to(layer.k.dtype)  # [B, 1, H, D]
            mean_v = layer.v[:, recent_start : recent_start + evicted].mean(dim=1, keepdim=True)
            if first:
                self._memory.append((mean_k, mean_v, mean_k, mean_v))
            else:
                lk, lv, sk, sv = self._memory[i]
                a, b = cfg.alpha_long, cfg.alpha_short
                self._memory[i] = (
                    a * mean_k + (1 - a) * lk,
                    a * mean_v + (1 - a) * lv,
                    b * mean_k + (1 - b) * sk,
                    b * mean_v + (1 - b) * sv,
                )
            lk, lv, sk, sv = self._memory[i]
            keys = torch.cat(
                [self._rotate(kv, lk.expand(-1, tpf, -1, -1)), self._rotate(kv, sk.expand(-1, tpf, -1, -1))], 1
            )
            values = torch.cat([lv.expand(-1, tpf, -1, -1), sv.expand(-1, tpf, -1, -1)], dim=1)
            frames = torch.full((MEMORY_FRAMES * tpf,), -1, dtype=torch.long)  # synthetic: no source frame
            positions = torch.arange(cfg.sink_frames, cfg.sink_frames + MEMORY_FRAMES).repeat_interleave(tpf)
            layer.overwrite(mem_start, keys, values, positions, frames)
            layer.evict(recent_start, evicted)
        self.updates.append(chunk.index)

    @staticmethod
    def _phases(kv: KVCache, device: torch.device) -> torch.Tensor:
        if kv.frame_grid is None:
            raise RuntimeError("memrope needs the cache's frame grid (set by the sampler that allocates it)")
        return kv.rope.spatial_phases(*kv.frame_grid, device)  # [tpf, ph + pw] complex128

    @classmethod
    def _unrotate(cls, kv: KVCache, k: torch.Tensor) -> torch.Tensor:
        """Undo the spatial rotation of stored keys k [B, n·tpf, H, D] -> raw keys in float64."""
        b, length, heads, dim = k.shape
        t = kv.rope.temporal_channels
        phases = cls._phases(kv, k.device).conj().repeat(length // kv.tokens_per_frame, 1)  # [L, P]
        kc = torch.view_as_complex(k[..., t:].to(torch.float64).reshape(b, length, heads, -1, 2))
        spatial = torch.view_as_real(kc * phases.view(1, length, 1, -1)).flatten(3)
        return torch.cat([k[..., :t].to(torch.float64), spatial], dim=-1)

    @classmethod
    def _rotate(cls, kv: KVCache, raw: torch.Tensor) -> torch.Tensor:
        """Spatially rotate one frame of raw keys [B, tpf, H, D] at its token positions (as the cache stores keys)."""
        h, w = kv.frame_grid
        return kv.rope.apply_spatial(raw, 1, h, w)

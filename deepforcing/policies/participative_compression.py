"""Deep Forcing = Deep Sink + Participative Compression (Deep Forcing §4.3, Alg. 1).

The cache fills like Self-Forcing's until the next chunk would overflow the ``window_frames`` window. On that
chunk's first denoising pass, independently in every layer, the cache (with the new chunk's keys appended) is
compressed to ``budget_frames`` worth of tokens: the ``sink_frames`` sink and the last ``recent_frames`` (which
include the 3 frames being generated) are kept, and from the candidates in between the Top-C tokens by

    φ_j = Σ_{recent queries r} Σ_heads q_r · k_j        (raw logits, Eq. 7)

are kept, in temporal order (C = budget − sink − recent frames' worth of tokens). The selection then stays fixed
for the chunk's remaining passes. After compressing, the sink is re-aligned as in ``deep_sink`` (the released
code does this only at compression steps). With the defaults (21 / 10 / 16 / 4) the cache length goes
3, 6, …, 21, then 16 → 19 → 16 … frames.

Switches (defaults reproduce the released code, ``causal_model.py`` @ ea9961a):

* ``query_source`` — ``both`` (released, paper Table 5's best: the last R frames of all queries seen, i.e. the
  previous chunk's clean frame and the chunk's 3 noisy frames), ``past`` (clean-pass queries only),
  ``denoising`` (the chunk's own first-pass queries only).
* ``reuse_cap`` — a token may be selected as Top-C at most this many times (7 in the release; not in the paper;
  ``None`` disables).
* ``unify_topc_rope`` — paper Eq. 10–11: move the kept Top-C tokens' temporal positions to a contiguous block
  just before the recent frames. Inactive in the released default path (deepforcing.md §5.1), so off.
* ``sink_placement`` — ``released`` or ``paper`` (see ``deep_sink``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from deepforcing.cache import ChunkState, KVCache, LayerCache
from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import ParticipativeCompressionConfig

#: Compressions kept in ``history`` (every layer of each): a ring of tensors allocated once per video, so an
#: hour-long video's memory does not grow (one small allocation per record fragmented the heap: +130 MB per hour).
HISTORY_COMPRESSIONS = 64


@dataclass
class Compression:
    """What one compression did in one layer (kept for tests, plots and debugging).

    Attributes:
        chunk: Chunk index.
        layer: Layer index.
        cache_frames_before: Cache length (frames' worth, the new chunk included) before pruning.
        selected_frames: Source frame of every kept Top-C token, int64 [C].
        sink_start: Sink position after the re-alignment.
        selected: Slot of every kept Top-C token in the cache before pruning (ascending), int32 [C]; two
            different token selections from the same frames differ here.
        selected_scores: φ of every kept Top-C token, float32 [C] (aligned with ``selected``).
        threshold: Highest φ among the candidates that were not kept, a 0-dim float32 tensor (−inf when every
            candidate was kept).
        sink_tokens: Sink tokens kept (slots ``[0, sink_tokens)``).
        recent_tokens: Recent tokens kept (the last ``recent_tokens`` slots before pruning).
        tokens_before: Tokens in the cache before pruning (the new chunk included).
    """

    chunk: int
    layer: int
    cache_frames_before: float
    selected_frames: torch.Tensor
    sink_start: int
    selected: torch.Tensor | None = None
    selected_scores: torch.Tensor | None = None
    threshold: torch.Tensor | None = None
    sink_tokens: int = 0
    recent_tokens: int = 0
    tokens_before: int = 0

    @property
    def kept(self) -> torch.Tensor:
        """Every kept slot of the cache before pruning, ascending: sink, Top-C, recent (int64, CPU)."""
        total = self.tokens_before
        selected = (
            self.selected.to(torch.int64).cpu() if self.selected is not None else torch.zeros(0, dtype=torch.long)
        )
        return torch.cat([torch.arange(self.sink_tokens), selected, torch.arange(total - self.recent_tokens, total)])


class ParticipativeCompressionPolicy(CachePolicy):
    """Deep Forcing's full policy (Deep Sink + Participative Compression)."""

    name: ClassVar[str] = "participative-compression"
    uses_attention_hook: ClassVar[bool] = True
    #: Prompt switches: token-level Top-C selections cannot be recomputed frame by frame.
    switch_modes: ClassVar[tuple[str, ...]] = ("keep", "flush", "flush-paper")

    def __init__(self, cfg: ParticipativeCompressionConfig | None = None):
        self.cfg = cfg or ParticipativeCompressionConfig()
        self.reset()

    def reset(self) -> None:
        """Forget query windows and history."""
        self._kv: KVCache | None = None
        self._compress = False
        self._stream: dict[int, torch.Tensor] = {}  # layer -> last R frames of all queries
        self._past: dict[int, torch.Tensor] = {}  # layer -> last R frames of clean-pass queries
        self._ring: dict[str, torch.Tensor] = {}
        self._count = 0  # compressions so far

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """Window plus one chunk: the new chunk is appended before the cache is compressed."""
        if chunk_frames > self.cfg.recent_frames:
            raise ValueError(f"a {chunk_frames}-frame chunk must fit in the {self.cfg.recent_frames} recent frames")
        return min(total_frames, self.cfg.window_frames + chunk_frames)

    def attach(self, kv: KVCache) -> None:
        """Allocate the per-token Top-C reuse counter and the history ring up front (constant memory)."""
        self._kv = kv
        for layer in kv.layers:
            layer.add_column("topc_uses")
        k, layers, c = HISTORY_COMPRESSIONS, len(kv.layers), max(1, self.cfg.topc_frames * kv.tokens_per_frame)
        device = kv.layers[0].positions.device
        self._ring = {
            "selected": torch.zeros(k, layers, c, dtype=torch.int32, device=device),
            "frames": torch.zeros(k, layers, c, dtype=torch.long, device=device),
            "scores": torch.zeros(k, layers, c, dtype=torch.float32, device=device),
            # chunk, layer, take, sink start, sink tokens, recent tokens, tokens before, threshold
            "meta": torch.zeros(k, layers, 8, dtype=torch.float64, device=device),
        }
        self._count = 0

    @property
    def history(self) -> list[Compression]:
        """The last :data:`HISTORY_COMPRESSIONS` compressions, every layer of each, oldest first."""
        out = []
        k = HISTORY_COMPRESSIONS
        for n in range(max(0, self._count - k), self._count):
            meta = self._ring["meta"][n % k].cpu()
            for layer in range(meta.shape[0]):
                chunk, _, take, sink_start, sink, recent, before, threshold = meta[layer].tolist()
                take = int(take)
                out.append(
                    Compression(
                        int(chunk),
                        layer,
                        before / self._kv.tokens_per_frame,
                        self._ring["frames"][n % k, layer, :take].cpu().clone(),
                        int(sink_start),
                        selected=self._ring["selected"][n % k, layer, :take].cpu().clone(),
                        selected_scores=self._ring["scores"][n % k, layer, :take].cpu().clone(),
                        threshold=torch.tensor(threshold, dtype=torch.float32),
                        sink_tokens=int(sink),
                        recent_tokens=int(recent),
                        tokens_before=int(before),
                    )
                )
        return out

    def before_chunk(self, kv: KVCache, chunk: ChunkState) -> None:
        """Decide whether this chunk compresses (cache + chunk would exceed the window)."""
        self._kv = kv
        incoming = chunk.num_frames * kv.tokens_per_frame
        self._compress = kv.layers[0].length + incoming > self.cfg.window_frames * kv.tokens_per_frame
        if self._compress:
            self._count += 1

    def _remember(self, store: dict[int, torch.Tensor], layer_idx: int, q: torch.Tensor, keep: int) -> None:
        prev = store.get(layer_idx)
        store[layer_idx] = (q if prev is None else torch.cat([prev, q], dim=1))[:, -keep:]

    def on_attention(self, layer_idx: int, layer: LayerCache, q: torch.Tensor, chunk: ChunkState) -> None:
        """Track recent queries; on a compressing chunk's first pass, compress this layer and re-align the sink."""
        tpf = self._kv.tokens_per_frame
        recent = self.cfg.recent_frames * tpf
        self._remember(self._stream, layer_idx, q, recent)
        if chunk.is_context_pass:
            self._remember(self._past, layer_idx, q, recent)
        if chunk.is_first_pass and self._compress:
            queries = {"both": self._stream, "past": self._past}.get(self.cfg.query_source, {layer_idx: q})
            self._compress_layer(layer_idx, layer, queries.get(layer_idx, q), chunk, tpf)

    def scores(self, layer: LayerCache, queries: torch.Tensor) -> torch.Tensor:
        """φ for every valid token of the layer: (Σ_r q_r)·k_j summed over heads, / (√D·H). -> float32 [valid]."""
        valid = layer.valid
        layer.refresh(self._kv.rope)
        keys = layer.k_rot[:, :valid]  # [B, L, H, D], rotated to the stored positions
        b, _, heads, dim = keys.shape
        if b != 1:
            raise ValueError("participative compression selects tokens per sample; generate with batch size 1")
        q_sum = queries.reshape(b, queries.shape[1], heads * dim).sum(dim=1, keepdim=True)  # [1, 1, H*D]
        logits = torch.bmm(q_sum, keys.reshape(b, valid, heads * dim).transpose(1, 2).contiguous())
        return logits.squeeze(1).to(torch.float32)[0] * (1.0 / (math.sqrt(dim) * heads))

    def _compress_layer(
        self, layer_idx: int, layer: LayerCache, queries: torch.Tensor, chunk: ChunkState, tpf: int
    ) -> None:
        cfg = self.cfg
        valid = layer.valid
        sink = min(cfg.sink_frames * tpf, valid)
        recent = min(cfg.recent_frames * tpf, valid - sink)
        phi = self.scores(layer, queries)
        uses = layer.add_column("topc_uses")
        candidates = torch.arange(sink, valid - recent, device=phi.device)
        if cfg.reuse_cap is not None:
            candidates = candidates[uses[candidates] < cfg.reuse_cap]
        take = min(cfg.topc_frames * tpf, candidates.numel())
        order = torch.topk(phi[candidates], take).indices if take else candidates[:0]
        selected = torch.sort(candidates[order])[0]
        uses[selected] += 1
        rejected = torch.ones(candidates.numel(), dtype=torch.bool, device=phi.device)
        rejected[order] = False
        threshold = phi[candidates].masked_fill(~rejected, float("-inf")).amax() if candidates.numel() else None
        keep = torch.cat([torch.arange(sink), selected, torch.arange(valid - recent, valid)])
        selected_frames = layer.frames[selected]
        layer.keep(keep)
        if cfg.unify_topc_rope and take:
            recent_start = int(layer.positions[sink + take])  # first recent token's (true) position
            block = math.ceil(take / tpf)
            offsets = torch.arange(take, device=layer.positions.device) // tpf
            layer.set_positions(sink, recent_start - block + offsets)
        sink_start = self._realign_sink(layer, sink, chunk, tpf)
        self._record(
            layer_idx,
            chunk,
            selected,
            selected_frames,
            phi[selected],
            threshold,
            (take, sink_start, sink, recent, valid),
        )

    def _record(self, layer_idx, chunk, selected, frames, scores, threshold, info) -> None:
        if not self._ring:  # used outside a sampler (no attach): nothing to record into
            return
        take, sink_start, sink, recent, valid = info
        slot = (self._count - 1) % HISTORY_COMPRESSIONS
        ring = self._ring
        ring["selected"][slot, layer_idx, :take] = selected
        ring["frames"][slot, layer_idx, :take] = frames
        ring["scores"][slot, layer_idx, :take] = scores
        meta = (chunk.index, layer_idx, take, sink_start, sink, recent, valid)
        ring["meta"][slot, layer_idx, :7] = torch.tensor(meta, dtype=torch.float64)
        ring["meta"][slot, layer_idx, 7] = threshold if threshold is not None else float("-inf")

    def _realign_sink(self, layer: LayerCache, sink: int, chunk: ChunkState, tpf: int) -> int:
        frames = self.cfg.sink_frames
        if self.cfg.sink_placement == "released":
            start = chunk.start_frame - layer.valid // tpf
        else:
            start = int(layer.positions[sink : layer.valid].min()) - frames
        layer.set_positions(0, torch.arange(start, start + frames).repeat_interleave(tpf)[:sink])
        return start

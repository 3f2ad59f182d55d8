"""Preallocated per-layer key/value cache with a token table.

Every cached token carries its source latent-frame index and its temporal RoPE position **as data**. Keys are
stored with their spatial (height/width) rotation applied and their temporal channels un-rotated; the temporal
rotation is applied from the stored positions each time the cache is read. A cache policy can therefore move
tokens in time (Deep Sink re-alignment, Rolling-Forcing sink re-roping, Top-C unification) exactly, by editing
positions, with no accumulated rounding.

For speed the cache also keeps ``k_rot``, the keys rotated to their current positions (a memo per slot). The
engine writes a chunk's keys together with their full rotation (one multiply, no re-rotation later); slots whose
positions change (a re-aligned sink, re-positioned tokens) are re-rotated from their raw temporal channels at
the next read, all changed slots of a layer in one multiply. Positions must therefore be changed through
:meth:`LayerCache.set_positions`.

The engine drives the cache chunk by chunk:

1. ``begin_chunk`` announces the chunk (its frames and their temporal positions); the policy makes room;
2. every DiT pass over the chunk calls ``update`` once per layer: the chunk's K/V are (over)written into the
   *pending* slots right after the committed tokens, then the layer attends to committed + pending tokens;
3. ``end_chunk`` commits the pending tokens (by then they hold the chunk's clean K/V).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from deepforcing.model.rope import RotaryEmbedding, rope_pair_split, rotate


@dataclass
class ChunkState:
    """The chunk currently being generated.

    Attributes:
        index: Chunk number, from 0.
        start_frame: Absolute latent-frame index of the chunk's first frame.
        num_frames: Latent frames in the chunk.
        frame_positions: Temporal RoPE position of each chunk frame, int64 [num_frames].
        pass_index: DiT passes already begun over this chunk minus one (0 = first denoising pass).
        is_context_pass: True during the clean pass that writes the chunk's final K/V.
    """

    index: int
    start_frame: int
    num_frames: int
    frame_positions: torch.Tensor
    pass_index: int = 0
    is_context_pass: bool = False

    @property
    def is_first_pass(self) -> bool:
        """True on the chunk's first denoising pass (where eviction / compression may fire)."""
        return self.pass_index == 0


class LayerCache:
    """K/V buffers and token table of one transformer block.

    Args:
        batch: Batch size.
        capacity: Token slots (fixed for the whole video).
        num_heads: Attention heads.
        head_dim: Channels per head.
        dtype: Storage dtype of K/V.
        device: Storage device.
    """

    def __init__(
        self,
        batch: int,
        capacity: int,
        num_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ):
        self.k = torch.zeros(batch, capacity, num_heads, head_dim, dtype=dtype, device=device)  # [B, S, H, D]
        self.k_rot = torch.zeros_like(self.k)  # keys rotated to `positions` (valid outside the dirty ranges)
        self.v = torch.zeros(batch, capacity, num_heads, head_dim, dtype=dtype, device=device)  # [B, S, H, D]
        self.temporal_channels = 2 * rope_pair_split(head_dim)[0]  # per head, the channels rotated in time
        self.positions = torch.zeros(capacity, dtype=torch.long, device=device)  # temporal RoPE position [S]
        self.frames = torch.full((capacity,), -1, dtype=torch.long, device=device)  # source latent frame [S]
        self.length = 0  # committed tokens, slots [0, length)
        self.pending = 0  # in-flight chunk tokens, slots [length, length + pending)
        #: Per-token columns owned by policies (e.g. Top-C reuse counts) [S]; moved with their tokens.
        self.extras: dict[str, torch.Tensor] = {}
        #: Slots the current pass attends to (set by a policy hook for this pass only); None = all valid slots.
        self.attend: torch.Tensor | None = None
        self._dirty: list[tuple[int, int]] = []  # slot ranges whose k_rot is stale
        self._pending_moved = False  # a pending slot's position was changed since its chunk was written
        self._slots: torch.Tensor | None = None  # arange(S), made on first use by slot_mask

    def set_positions(self, start: int, values: torch.Tensor) -> None:
        """Move tokens ``[start, start + len(values))`` to new temporal positions (int64 [n])."""
        end = start + len(values)
        self.positions[start:end] = values.to(self.positions.device)
        self._dirty.append((start, end))
        if end > self.length and self.pending:
            self._pending_moved = True

    def refresh(self, rope: RotaryEmbedding) -> None:
        """Re-rotate the keys of every slot changed since the last refresh (their span, in one multiply)."""
        if not self._dirty:
            return
        start = min(s for s, _ in self._dirty)
        end = max(e for _, e in self._dirty)
        self._dirty.clear()
        if end > start:  # spatial pairs times exactly 1: the multiply keeps the full formula's layout
            phases = rope.temporal_only_phases(self.positions[start:end])
            rotate(self.k[:, start:end], phases, out=self.k_rot[:, start:end])

    def slot_mask(self) -> torch.Tensor:
        """Bool [S]: the slots the current pass attends to (``attend``, or every valid slot)."""
        if self.attend is None:
            if self._slots is None:
                self._slots = torch.arange(self.capacity, device=self.positions.device)
            return self._slots < self.valid
        mask = torch.zeros(self.capacity, dtype=torch.bool, device=self.positions.device)
        mask[self.attend] = True
        return mask

    def _moved(self) -> None:
        # Rows of k_rot move with their tokens, so they stay valid; pending dirty ranges no longer point at the
        # right slots: refresh everything still valid instead (rare: evict/keep right after a write).
        if self._dirty:
            self._dirty = [(0, self.valid)]

    def add_column(self, name: str, fill: int = 0) -> torch.Tensor:
        """Create (or return) a per-token int64 column that evict/keep move along with the tokens."""
        if name not in self.extras:
            self.extras[name] = torch.full_like(self.positions, fill)
        return self.extras[name]

    def _columns(self) -> list[torch.Tensor]:
        return [self.positions, self.frames, *self.extras.values()]

    @property
    def capacity(self) -> int:
        """Token slots of the preallocated buffers."""
        return self.k.shape[1]

    @property
    def valid(self) -> int:
        """Committed plus pending tokens."""
        return self.length + self.pending

    def write_pending(
        self,
        k: torch.Tensor,
        v: torch.Tensor,
        positions: torch.Tensor,
        frames: torch.Tensor,
        phases: torch.Tensor | None = None,
    ):
        """(Over)write the in-flight chunk's tokens right after the committed ones.

        Args:
            k: Keys [B, n, H, D]: raw (un-rotated) when ``phases`` is given, else spatially rotated with the
                temporal channels raw.
            v: Values [B, n, H, D].
            positions: Temporal positions [n].
            frames: Source latent frames [n].
            phases: The tokens' full rotation (complex128 [n, 1, D/2], ``RotaryEmbedding.phases``) at
                ``positions``: the rotated keys are then written here directly instead of at the next refresh.
        """
        n = k.shape[1]
        if self.pending not in (0, n):
            raise RuntimeError(f"chunk size changed mid-chunk ({self.pending} -> {n} tokens)")
        start, end = self.length, self.length + n
        if end > self.capacity:
            raise RuntimeError(
                f"KV cache overflow: {self.length} committed + {n} new tokens > capacity {self.capacity}; "
                "the cache policy must make room in before_chunk"
            )
        if phases is None:
            self.k[:, start:end] = k
            self.k_rot[:, start:end] = k  # spatial pairs final; temporal ones rotated at the next refresh
            self._dirty.append((start, end))
        else:  # k_rot = fully rotated; k = the same, with the temporal channels raw
            rotated = rotate(k, phases, out=self.k_rot[:, start:end])
            self.k[:, start:end] = rotated
            self.k[:, start:end, :, : self.temporal_channels] = k[..., : self.temporal_channels]
        self.v[:, start:end] = v
        if self.pending == 0 or self._pending_moved:  # later passes of a chunk: the token table is unchanged
            self.positions[start:end] = positions
            self.frames[start:end] = frames
            self._pending_moved = False
        if self.pending == 0:  # a new chunk: its policy columns start at zero
            for column in self.extras.values():
                column[start:end] = 0
        self.pending = n

    def overwrite(
        self, start: int, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor, frames: torch.Tensor
    ) -> None:
        """Replace the K/V and token-table rows of committed slots ``[start, start + n)`` (e.g. with stored K/V).

        Args:
            start: First slot.
            k: Keys [B, n, H, D], spatially rotated, temporal channels raw (as the cache stores them).
            v: Values [B, n, H, D].
            positions: Temporal positions of the new tokens [n].
            frames: Source latent frames of the new tokens [n].
        """
        end = start + k.shape[1]
        if start < 0 or end > self.length:
            raise RuntimeError(f"cannot overwrite [{start}, {end}) of {self.length} committed tokens")
        self.k[:, start:end] = k
        self.v[:, start:end] = v
        self.frames[start:end] = frames.to(self.frames.device)
        self.set_positions(start, positions)

    def commit(self) -> None:
        """Make the pending tokens part of the committed cache."""
        self.length += self.pending
        self.pending = 0

    def evict(self, start: int, count: int) -> None:
        """Remove committed tokens [start, start + count) and shift later tokens left (in place)."""
        if count <= 0:
            return
        if start < 0 or start + count > self.length:
            raise RuntimeError(f"cannot evict [{start}, {start + count}) from {self.length} committed tokens")
        rest = self.valid - start - count
        src = slice(start + count, start + count + rest)
        dst = slice(start, start + rest)
        self.k[:, dst] = self.k[:, src].clone()
        self.k_rot[:, dst] = self.k_rot[:, src].clone()
        self.v[:, dst] = self.v[:, src].clone()
        for column in self._columns():
            column[dst] = column[src].clone()
        self.length -= count
        self._moved()

    def keep(self, indices: torch.Tensor) -> None:
        """Keep only the tokens at ``indices`` (ascending, over committed + pending), packed to the front.

        The pending tokens (the in-flight chunk) must all be kept; they stay pending.
        """
        indices = indices.to(self.positions.device)
        if self.pending and not torch.equal(
            indices[-self.pending :], torch.arange(self.length, self.valid, device=indices.device)
        ):
            raise RuntimeError("keep() must retain every pending token of the in-flight chunk")
        if indices.numel() > 1 and not bool((indices[1:] > indices[:-1]).all()):
            raise RuntimeError("keep() indices must be strictly ascending (temporal order)")
        n = indices.numel()
        self.k[:, :n] = self.k[:, indices].clone()
        self.k_rot[:, :n] = self.k_rot[:, indices].clone()
        self.v[:, :n] = self.v[:, indices].clone()
        for column in self._columns():
            column[:n] = column[indices].clone()
        self.length = n - self.pending
        self._moved()

    def reset(self) -> None:
        """Forget every token (buffers stay allocated)."""
        self.length = 0
        self.pending = 0
        self.frames.fill_(-1)
        self.extras.clear()
        self._dirty.clear()
        self._pending_moved = False


@dataclass
class AttendedKeys:
    """What one layer attended to in one DiT call (recorded only when ``KVCache.record_attended`` is set).

    Attributes:
        slots: Cache slots attended, in attention order, int64 [L].
        frames: Source latent frame of each attended token [L].
        positions: Temporal RoPE position each attended key was rotated at [L].
    """

    slots: torch.Tensor
    frames: torch.Tensor
    positions: torch.Tensor


#: Signature of the per-layer hook a policy may install: (layer index, layer cache, roped queries, chunk).
AttentionHook = Callable[[int, LayerCache, torch.Tensor, ChunkState], None]


class KVCache:
    """Per-layer caches of one generation, plus the state of the chunk in flight.

    Args:
        num_layers: Transformer blocks.
        batch: Batch size.
        capacity_tokens: Token slots per layer, fixed for the whole video.
        num_heads: Attention heads.
        head_dim: Channels per head.
        tokens_per_frame: Tokens one latent frame becomes.
        rope: The model's rotary embedding (used to rotate cached keys to their stored positions).
        dtype: Storage dtype.
        device: Storage device.
    """

    def __init__(
        self,
        num_layers: int,
        batch: int,
        capacity_tokens: int,
        num_heads: int,
        head_dim: int,
        tokens_per_frame: int,
        rope: RotaryEmbedding,
        dtype: torch.dtype,
        device: torch.device | str,
    ):
        device = torch.device(device)
        self.layers = [
            LayerCache(batch, capacity_tokens, num_heads, head_dim, dtype, device) for _ in range(num_layers)
        ]
        self.tokens_per_frame = tokens_per_frame
        #: (h, w) patch grid of one frame, row-major token order (set by the sampler that allocates the cache).
        self.frame_grid: tuple[int, int] | None = None
        self.rope = rope
        #: Per-layer rotary embeddings set by a policy (``attach``) that changes the RoPE itself; None = ``rope``.
        self.layer_ropes: list[RotaryEmbedding] | None = None
        self.chunk: ChunkState | None = None
        self.attention_hook: AttentionHook | None = None
        #: Opt-in observation: when True, ``update`` records each layer's attended slots in ``attended``.
        self.record_attended = False
        self.attended: list[AttendedKeys | None] = [None] * num_layers
        self._token_positions: torch.Tensor | None = None
        self._token_frames: torch.Tensor | None = None

    def rope_for(self, layer_idx: int) -> RotaryEmbedding:
        """The rotary embedding of one layer: its queries and its cached keys are rotated with it."""
        return self.rope if self.layer_ropes is None else self.layer_ropes[layer_idx]

    @property
    def capacity_frames(self) -> int:
        """Latent frames' worth of token slots per layer."""
        return self.layers[0].capacity // self.tokens_per_frame

    def memory_bytes(self) -> int:
        """Bytes held by the K/V buffers and token tables of all layers."""
        total = 0
        for layer in self.layers:
            for t in (layer.k, layer.k_rot, layer.v, *layer._columns()):
                total += t.numel() * t.element_size()
        return total

    def begin_chunk(self, chunk: ChunkState) -> None:
        """Announce the chunk about to be denoised (call before its first pass)."""
        if any(layer.pending for layer in self.layers):
            raise RuntimeError("begin_chunk called while a chunk is still pending (missing end_chunk)")
        self.chunk = chunk
        device = self.layers[0].positions.device
        tpf = self.tokens_per_frame
        self._token_positions = chunk.frame_positions.to(device).repeat_interleave(tpf)
        frames = torch.arange(chunk.start_frame, chunk.start_frame + chunk.num_frames, device=device)
        self._token_frames = frames.repeat_interleave(tpf)

    def begin_pass(self, pass_index: int, is_context_pass: bool) -> None:
        """Mark the start of a DiT pass over the current chunk."""
        if self.chunk is None:
            raise RuntimeError("begin_pass called before begin_chunk")
        self.chunk.pass_index = pass_index
        self.chunk.is_context_pass = is_context_pass

    def update(
        self,
        layer_idx: int,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        phases: torch.Tensor | None = None,
        static: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Write the chunk's K/V for one layer and return what that layer attends to.

        Args:
            layer_idx: Transformer block index.
            q: The chunk's queries [B, n, H, D], fully rotated (for policies that score tokens).
            k: The chunk's keys [B, n, H, D]: raw if ``phases`` is given, else spatially rotated with the
                temporal channels raw.
            v: The chunk's values [B, n, H, D].
            phases: The chunk tokens' full rotation at their positions (``RotaryEmbedding.phases``).
            static: Return the whole buffers and a slot mask instead of the attended slots (fixed shapes, for
                the compiled path).

        Returns:
            Keys [B, L, H, D] rotated to their stored temporal positions, and values [B, L, H, D], where L is
            the layer's committed plus pending tokens (or the slots a policy chose for this pass). With
            ``static``: the rotated-key and value buffers [B, S, H, D] and a bool mask [1, S] of those L slots.
        """
        if self.chunk is None:
            raise RuntimeError("KVCache.update called outside a chunk")
        layer = self.layers[layer_idx]
        layer.write_pending(k, v, self._token_positions, self._token_frames, phases)
        layer.attend = None
        if self.attention_hook is not None:
            self.attention_hook(layer_idx, layer, q, self.chunk)
        layer.refresh(self.rope_for(layer_idx))
        if self.record_attended:
            self._record(layer_idx, layer)
        if static:
            return layer.k_rot, layer.v, layer.slot_mask().unsqueeze(0)
        if layer.attend is not None:  # a policy chose a subset of slots for this pass
            return layer.k_rot[:, layer.attend], layer.v[:, layer.attend]
        return layer.k_rot[:, : layer.valid], layer.v[:, : layer.valid]

    def _record(self, layer_idx: int, layer: LayerCache) -> None:
        slots = layer.attend if layer.attend is not None else torch.arange(layer.valid, device=layer.frames.device)
        self.attended[layer_idx] = AttendedKeys(
            slots.clone(), layer.frames[slots].clone(), layer.positions[slots].clone()
        )

    def end_chunk(self) -> None:
        """Commit the chunk's (clean) K/V in every layer."""
        for layer in self.layers:
            layer.commit()
        self.chunk = None

    def discard_chunk(self) -> None:
        """Drop the pending tokens of every layer (a pass whose K/V must not stay in the cache)."""
        for layer in self.layers:
            layer.pending = 0
        self.chunk = None

    def reset(self) -> None:
        """Empty every layer (for a new video; buffers stay allocated)."""
        for layer in self.layers:
            layer.reset()
        self.chunk = None

"""Per-DiT-call observation, shared by every sampler (opt-in: nothing is recorded when no observer is given).

Pass ``observer=`` to a sampler's ``sample`` (or :meth:`deepforcing.pipeline.VideoGenerator.generate`) and it is
called once after every DiT call with a :class:`DiTCall`: which chunk or window, the per-frame timesteps, the
temporal positions of the call's queries, the predicted x0 and, per layer, the slots of the KV cache the call
attended to with their source frames and the temporal positions their keys were rotated at. Without an
observer the samplers skip all of it (no copies, no extra work).

Example::

    calls = []
    sampler.sample(model, text, policy, noise, stream, observer=calls.append)
    [c.attended[0].positions for c in calls if not c.is_context_pass]   # key positions of layer 0, per call
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from deepforcing.cache import AttendedKeys, KVCache


@dataclass
class DiTCall:
    """One DiT call of a sampler.

    Attributes:
        sampler: ``chunkwise`` or ``rolling``.
        index: Chunk index (chunkwise) or window index (rolling).
        call: Running index of the DiT call within the video, from 0.
        start_frame: Absolute latent frame of the call's first frame.
        num_frames: Latent frames in the call.
        pass_index: Pass over this chunk / window (0 = first denoising pass).
        is_context_pass: True for the clean pass that writes the chunk's final K/V.
        timesteps: Timestep of every frame of the call, float32 [num_frames].
        query_positions: Temporal RoPE position of every frame of the call (its queries and new keys), int64
            [num_frames].
        x0: Predicted clean latents [B, num_frames, C, H, W]; for a context pass, the clean latents it encodes.
        attended: Per layer, the cache slots attended, their source frames and key positions.
    """

    sampler: str
    index: int
    call: int
    start_frame: int
    num_frames: int
    pass_index: int
    is_context_pass: bool
    timesteps: torch.Tensor
    query_positions: torch.Tensor
    x0: torch.Tensor
    attended: list[AttendedKeys]


#: Called after every DiT call.
CallObserver = Callable[[DiTCall], None]


class CallRecorder:
    """Builds :class:`DiTCall` records for one video (used by the samplers when an observer is given).

    Args:
        sampler: Sampler name.
        observer: The user's callback.
        kv: The video's cache (switched to recording attended slots).
    """

    def __init__(self, sampler: str, observer: CallObserver, kv: KVCache):
        self.sampler = sampler
        self.observer = observer
        self.kv = kv
        self.calls = 0
        kv.record_attended = True

    def __call__(self, timesteps: torch.Tensor, x0: torch.Tensor) -> None:
        """Report the call that just ran (the chunk in ``kv.chunk``) with its per-frame timesteps and x0."""
        chunk = self.kv.chunk
        self.observer(
            DiTCall(
                sampler=self.sampler,
                index=chunk.index,
                call=self.calls,
                start_frame=chunk.start_frame,
                num_frames=chunk.num_frames,
                pass_index=chunk.pass_index,
                is_context_pass=chunk.is_context_pass,
                timesteps=timesteps.detach().to(torch.float32).cpu().reshape(-1)[: chunk.num_frames].clone(),
                query_positions=chunk.frame_positions.detach().cpu().clone(),
                x0=x0.detach().clone(),
                attended=list(self.kv.attended),
            )
        )
        self.calls += 1

"""Self-Forcing's chunk-wise few-step sampler (also the loop of Deep Forcing and the sink baselines).

For every chunk of ``chunk_frames`` latent frames: starting from the chunk's initial noise, each step predicts
x0 from the KV cache and re-noises it to the next (warped) timestep with a fresh draw; the last x0 is the
chunk's output. One more pass at the context timestep (0) over the clean x0 rewrites the chunk's K/V, which
are then committed. The cache policy is consulted at fixed moments (see ``deepforcing.policies.base``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel, TextConditioning
from deepforcing.noise import NoiseRequest, RenoiseFn
from deepforcing.policies.base import CachePolicy
from deepforcing.samplers.configs import ChunkwiseConfig
from deepforcing.samplers.observe import CallObserver, CallRecorder
from deepforcing.samplers.switching import TextSegment, as_segments


@dataclass
class ChunkTiming:
    """Wall time of one chunk (all its passes), in seconds, and the frames it attended to."""

    index: int
    seconds: float
    attended_frames: float


@dataclass
class SampleResult:
    """Latents, KV-cache size and per-chunk timings of one sampled video."""

    latents: torch.Tensor
    kv_cache_bytes: int = 0
    chunks: list[ChunkTiming] = field(default_factory=list)


#: Called after each finished chunk with (chunk index, clean latents [B, n, C, H, W]).
ChunkCallback = Callable[[int, torch.Tensor], None]


class ChunkwiseSampler:
    """Runs the chunk loop for one batch of videos.

    Args:
        cfg: Sampler settings.
    """

    def __init__(self, cfg: ChunkwiseConfig | None = None):
        self.cfg = cfg or ChunkwiseConfig()
        self.schedule = self.cfg.schedule
        self.timesteps = self.cfg.timesteps()

    def new_cache(self, model: CausalWanModel, policy: CachePolicy, noise: torch.Tensor) -> KVCache:
        """Allocate the KV cache this policy needs for a video shaped like ``noise`` [B, F, C, H, W]."""
        return self.allocate_cache(model, policy, noise, self.cfg.chunk_frames)

    @staticmethod
    def allocate_cache(model: CausalWanModel, policy: CachePolicy, noise: torch.Tensor, pass_frames: int) -> KVCache:
        """Allocate a cache for a video like ``noise`` whose passes cover at most ``pass_frames`` frames."""
        b, num_frames, _, height, width = noise.shape
        cfg = model.cfg
        tpf = cfg.tokens_per_frame(height, width)
        capacity = policy.capacity_frames(num_frames, pass_frames) * tpf
        kv = KVCache(
            cfg.num_layers,
            b,
            capacity,
            cfg.num_heads,
            cfg.head_dim,
            tpf,
            model.rope,
            model.dtype,
            model.device,
        )
        kv.frame_grid = (height // cfg.patch_size[1], width // cfg.patch_size[2])  # (h, w) tokens of one frame
        return kv

    @torch.no_grad()
    def sample(
        self,
        model: CausalWanModel,
        text: TextConditioning | Sequence[TextSegment],
        policy: CachePolicy,
        noise: torch.Tensor,
        renoise: RenoiseFn,
        on_chunk: ChunkCallback | None = None,
        observer: CallObserver | None = None,
    ) -> SampleResult:
        """Generate latents for the whole video.

        Args:
            model: The causal DiT.
            text: Prompt conditioning from ``model.encode_text``, or prompt segments (each later one starts at a
                chunk boundary and switches the text there, treating the cache as its ``switch`` mode says; see
                ``deepforcing.samplers.switching``).
            policy: The cache policy.
            noise: Initial noise for every frame [B, F, C, H, W]; F must be a multiple of ``chunk_frames``.
            renoise: Source of every re-noising draw.
            on_chunk: Called after each chunk with its clean latents (streaming decode, progress).
            observer: Called after every DiT call with a :class:`~deepforcing.samplers.observe.DiTCall`
                (opt-in; nothing is recorded without it).

        Returns:
            Clean latents [B, F, C, H, W] (model dtype) and per-chunk timings.

        Raises:
            UserError: F is not a whole number of chunks, bad segments or a switch mode the policy does not
                define (before any compute), or latents become NaN/Inf (names the chunk).
        """
        b, num_frames = noise.shape[:2]
        n = self.cfg.chunk_frames
        if num_frames <= 0 or num_frames % n:
            raise UserError(f"{num_frames} latent frames is not a whole number of {n}-frame chunks")
        segments = as_segments(text, num_frames, n)
        for seg in segments[1:]:
            policy.check_switch(seg.switch)
        starts = {seg.start_frame: seg for seg in segments}
        kv = self.new_cache(model, policy, noise)
        policy.reset()
        policy.attach(kv)
        kv.attention_hook = policy.on_attention if policy.uses_attention_hook else None
        noise = noise.to(model.device, model.dtype)
        output = torch.zeros_like(noise)  # touched up front: memory does not grow while a long video runs
        steps = self.timesteps.tolist()
        result = SampleResult(output, kv_cache_bytes=kv.memory_bytes() + policy.memory_bytes())
        record = CallRecorder("chunkwise", observer, kv) if observer is not None else None

        for c in range(num_frames // n):
            t0 = time.perf_counter()
            start = c * n
            chunk = ChunkState(c, start, n, policy.frame_positions(start, n))
            if start in starts:  # a prompt segment starts here
                text = starts[start].text
                if start > 0:
                    policy.on_switch(kv, chunk, starts[start].switch)
                    if starts[start].switch == "recache":
                        self._recache(model, text, policy, kv, output, c, record)
            policy.before_chunk(kv, chunk)
            kv.begin_chunk(chunk)
            x = noise[:, start : start + n]
            for i, t in enumerate(steps):
                kv.begin_pass(i, is_context_pass=False)
                flow = model(x, torch.full((b, n), t, device=model.device), text, kv)
                x0 = self.schedule.flow_to_x0(flow, x, t)
                if record is not None:
                    record(torch.full((n,), t), x0)
                if i + 1 < len(steps):
                    if self.cfg.renoise == "fresh":
                        eps = renoise(NoiseRequest(tuple(x0.shape), chunk=c, step=i)).to(x0)
                    else:  # the flow's own noise: x_t = (1 - σ) x0 + σ ε and v = ε - x0
                        eps = (x0.to(torch.float64) + flow.to(torch.float64)).to(x0.dtype)
                    x = self.schedule.add_noise(x0, eps, steps[i + 1])
            if not torch.isfinite(x0).all():
                raise UserError(
                    f"NaN/Inf in latents at chunk {c} (latent frames {start}-{start + n - 1})",
                    "check the checkpoint, the dtype (try --dtype float32) and the method's settings",
                )
            attended = kv.layers[0].valid / kv.tokens_per_frame
            kv.begin_pass(len(steps), is_context_pass=True)
            model(x0, torch.full((b, n), float(self.cfg.context_timestep), device=model.device), text, kv)
            if record is not None:
                record(torch.full((n,), float(self.cfg.context_timestep)), x0)
            kv.end_chunk()
            policy.after_chunk(kv, chunk)
            output[:, start : start + n] = x0
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            result.chunks.append(ChunkTiming(c, time.perf_counter() - t0, attended))
            if on_chunk is not None:
                on_chunk(c, x0)
        return result

    def _recache(
        self,
        model: CausalWanModel,
        text: TextConditioning,
        policy: CachePolicy,
        kv: KVCache,
        output: torch.Tensor,
        chunk_index: int,
        record: CallRecorder | None,
    ) -> None:
        """LongLive's KV re-cache: recompute the cached non-sink frames' K/V under ``text`` in one clean pass.

        The frames are taken out of the cache and run again as one pending block at their own positions (so they
        attend to the sink and to each other, as LongLive's recache call does), then committed in place.
        """
        first, frames, positions = policy.recache_frames(kv)
        if not len(frames):
            return
        b = output.shape[0]
        for layer in kv.layers:
            layer.evict(first, layer.length - first)
        block = ChunkState(chunk_index, int(frames[0]), len(frames), positions.cpu(), is_context_pass=True)
        kv.begin_chunk(block)
        kv.begin_pass(0, is_context_pass=True)
        hook, kv.attention_hook = kv.attention_hook, None
        try:
            latents = output[:, int(frames[0]) : int(frames[0]) + len(frames)]
            t = float(self.cfg.context_timestep)
            model(latents, torch.full((b, len(frames)), t, device=model.device), text, kv)
            if record is not None:
                record(torch.full((len(frames),), t), latents)
        finally:
            kv.attention_hook = hook
        kv.end_chunk()

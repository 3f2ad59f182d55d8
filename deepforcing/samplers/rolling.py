"""Rolling Forcing's rolling-window joint denoising (TencentARC/RollingForcing @ a1477d0).

A window of up to ``W = len(steps)`` chunks is denoised in one DiT call, the chunks at increasing noise levels
(oldest = cleanest). After each call every unfinished chunk is re-noised to its next level with a fresh draw
(of the whole window's shape, as released) and the window slides by one chunk, so exactly one chunk finishes per
call; its clean x0 is then re-encoded at the context timestep into the cache (see
``deepforcing.policies.rolling_forcing_sink``). Warm-up windows (starting at frame 0) use the noisiest levels, tail
windows the cleanest; attention inside a window is full (no causal mask).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from deepforcing.cache import ChunkState
from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel, TextConditioning
from deepforcing.noise import NoiseRequest, RenoiseFn
from deepforcing.policies.base import CachePolicy
from deepforcing.samplers.chunkwise import ChunkCallback, ChunkTiming, ChunkwiseSampler, SampleResult
from deepforcing.samplers.configs import RollingConfig
from deepforcing.samplers.observe import CallObserver, CallRecorder
from deepforcing.samplers.switching import TextSegment, as_segments


class RollingSampler:
    """Runs the rolling-window loop for one video.

    Args:
        cfg: Sampler settings.
    """

    def __init__(self, cfg: RollingConfig | None = None):
        self.cfg = cfg or RollingConfig()
        self.schedule = self.cfg.schedule
        self.timesteps = self.cfg.timesteps()

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
        """Generate latents [B, F, C, H, W]; ``on_chunk`` receives each chunk when it is final, in order.

        ``renoise`` is called once per unfinished chunk of every window (ascending), as released: with the
        window's shape ``(B, m, C, H, W)`` (only the chunk's slice is used), ``chunk`` = the chunk's absolute
        index, ``step`` = the step it just finished and ``window`` = the window index. ``observer`` (opt-in) is
        called after both DiT calls of every window (see ``deepforcing.samplers.observe``).
        """
        b, num_frames = noise.shape[:2]
        n, steps = self.cfg.chunk_frames, self.timesteps
        levels = len(steps)
        if num_frames % n or num_frames // n < levels:
            raise UserError(
                f"rolling windows need a whole number of at least {levels} chunks of {n} frames, got {num_frames}"
            )
        num_chunks = num_frames // n
        segments = as_segments(text, num_frames, n)
        if len(segments) > 1:
            raise UserError(
                "the rolling sampler (Rolling Forcing) takes one prompt: it denoises 5 chunks jointly, and its release "
                "defines no prompt switch",
                "generate with a single prompt, or use a chunk-wise method for prompt schedules",
            )
        text = segments[0].text
        kv = ChunkwiseSampler.allocate_cache(model, policy, noise, levels * n)
        policy.reset()
        policy.attach(kv)
        kv.attention_hook = policy.on_attention if policy.uses_attention_hook else None
        noise = noise.to(model.device, model.dtype)
        output = torch.zeros_like(noise)  # touched up front: memory does not grow while a long video runs
        noisy = torch.zeros_like(noise)
        level_of_slot = torch.arange(levels - 1, -1, -1)  # window slot 0 (oldest) is at the last (cleanest) step
        step_values = steps.tolist()
        result = SampleResult(output, kv_cache_bytes=kv.memory_bytes() + policy.memory_bytes())
        record = CallRecorder("rolling", observer, kv) if observer is not None else None

        for w in range(num_chunks + levels - 1):
            t0 = time.perf_counter()
            first, last = max(0, w - levels + 1), min(num_chunks - 1, w)
            s, e = first * n, (last + 1) * n
            m = e - s
            if m == levels * n or s == 0:  # the newest chunk enters as fresh noise
                x = torch.cat([noisy[:, s : e - n], noise[:, e - n : e]], dim=1)
            else:  # tail windows: nothing new enters
                x = noisy[:, s:e]
            slots = (
                level_of_slot if m == levels * n else level_of_slot[-(m // n) :] if s == 0 else level_of_slot[: m // n]
            )
            chunk_levels = slots.tolist()  # step index of each chunk of this window
            t = steps[torch.tensor(chunk_levels)].repeat_interleave(n)  # [m] per-frame timesteps

            window = ChunkState(w, s, m, policy.frame_positions(s, m))
            policy.before_chunk(kv, window)
            kv.begin_chunk(window)
            kv.begin_pass(0, is_context_pass=False)
            flow = model(x, t.expand(b, m).to(model.device), text, kv)
            x0 = self.schedule.flow_to_x0(flow, x, t)
            if record is not None:
                record(t, x0)
            view = kv.layers[0].attend
            attended = (len(view) if view is not None else kv.layers[0].valid) / kv.tokens_per_frame
            kv.discard_chunk()
            if not torch.isfinite(x0).all():
                raise UserError(f"NaN/Inf in latents at rolling window {w} (latent frames {s}-{e - 1})")
            output[:, s:e] = x0
            for i, level in enumerate(chunk_levels):
                if level + 1 < levels:
                    eps = renoise(NoiseRequest((b, m, *x0.shape[2:]), chunk=first + i, step=level, window=w)).to(x0)
                    own = slice(i * n, (i + 1) * n)  # only this chunk's slice of the window-shaped draw is used
                    noisy[:, s + i * n : s + (i + 1) * n] = self.schedule.add_noise(
                        x0[:, own], eps[:, own], step_values[level + 1]
                    )

            clean = ChunkState(w, s, n, policy.frame_positions(s, n), is_context_pass=True)
            policy.before_chunk(kv, clean)
            kv.begin_chunk(clean)
            kv.begin_pass(0, is_context_pass=True)
            model(x0[:, :n], torch.full((b, n), float(self.cfg.context_timestep), device=model.device), text, kv)
            if record is not None:
                record(torch.full((n,), float(self.cfg.context_timestep)), x0[:, :n])
            kv.end_chunk()
            policy.after_chunk(kv, clean)
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            result.chunks.append(ChunkTiming(w, time.perf_counter() - t0, attended))
            if chunk_levels[0] == levels - 1 and on_chunk is not None:  # the window's first chunk is final
                on_chunk(first, output[:, s : s + n])
        return result

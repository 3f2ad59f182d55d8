"""Text -> causal Wan DiT chunk loop -> streaming VAE decode -> mp4, for one method and one model preset."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepforcing import methods, model_kinds
from deepforcing.errors import UserError
from deepforcing.methods import MethodConfig
from deepforcing.model.config import ModelPreset
from deepforcing.model.text_encoder import PromptTokens
from deepforcing.model_kinds import ModelKind
from deepforcing.noise import NoiseStream, RenoiseFn
from deepforcing.prompt_schedule import PromptSchedule, segments_metadata
from deepforcing.samplers.observe import CallObserver
from deepforcing.samplers.switching import TextSegment

log = logging.getLogger(__name__)

#: The segment text recorded for a video generated from precomputed text states (``context=``) without a prompt.
CONTEXT_PROMPT = "(precomputed context)"

#: Output frame rate of Wan2.1 / Self-Forcing videos.
FPS = 16
#: Pixel frames per latent frame (after the first) of the Wan VAE.
TEMPORAL_COMPRESSION = 4


def latent_frames_for(seconds: float, chunk_frames: int = 3) -> int:
    """Latent frames for a duration: ``ceil(seconds·16/4)`` rounded up to whole chunks (5 s -> 21, 60 s -> 240)."""
    if not seconds > 0 or not math.isfinite(seconds):
        raise UserError(f"duration must be positive and finite, got {seconds}")
    frames = math.ceil(seconds * FPS / TEMPORAL_COMPRESSION)
    return chunk_frames * math.ceil(frames / chunk_frames)


def pixel_frames_for(latent_frames: int, frames_per_latent: int = TEMPORAL_COMPRESSION) -> int:
    """Pixel frames decoded from ``latent_frames`` (Wan VAE: 1 + 4·(F − 1))."""
    return 1 + frames_per_latent * (latent_frames - 1)


def prompt_id_for(prompt: str) -> str:
    """Default prompt id: the first 12 hex digits of the prompt's sha256."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:12]


def get_preset(name: str) -> ModelPreset:
    """The preset of a registered model (UserError listing the choices)."""
    return model_kinds.preset(name)


@dataclass
class GenerationResult:
    """What one generation produced and how long it took.

    Attributes:
        latents: Clean latents [B, F, C, H, W] (CPU, float32).
        video_path: Where the mp4 went (None when not decoded).
        chunk_seconds: Wall time of each chunk's denoising + context passes.
        attended_frames: Latent frames each chunk attended to (cache + itself).
        sampling_seconds: Total time in the chunk loop (decode excluded).
        decode_seconds: Total time in streaming VAE decode and mp4 writing.
        peak_memory_bytes: Peak accelerator memory (CUDA) or None on CPU.
        kv_cache_bytes: Bytes of the preallocated KV cache.
        frames_per_latent: Video frames per latent frame of the model's latent space (Wan VAE: 4).
        prompts: ``{"segments": [{prompt, start_s, end_s, …}], "switch_frames": [...]}`` of a prompt schedule
            (``deepforcing.prompt_schedule.segments_metadata``); one segment for a plain prompt.
        prompt_tokens: The prompt's length in text-encoder tokens and the encoder's limit (None when the caller
            passed ``context``).
    """

    latents: torch.Tensor
    video_path: Path | None
    chunk_seconds: list[float] = field(default_factory=list)
    attended_frames: list[float] = field(default_factory=list)
    sampling_seconds: float = 0.0
    decode_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    kv_cache_bytes: int = 0
    frames_per_latent: int = TEMPORAL_COMPRESSION
    prompts: dict | None = None
    prompt_tokens: PromptTokens | None = None

    @property
    def prompt_truncated(self) -> bool | None:
        """Whether the text encoder cut the prompt (None when unknown: ``context`` was given)."""
        return None if self.prompt_tokens is None else self.prompt_tokens.truncated

    @property
    def num_pixel_frames(self) -> int:
        """Frames of the decoded video."""
        return pixel_frames_for(self.latents.shape[1], self.frames_per_latent)

    @property
    def fps(self) -> float:
        """Generated pixel frames per second of sampling (the papers' throughput measure, decode excluded)."""
        return self.num_pixel_frames / self.sampling_seconds if self.sampling_seconds else float("nan")


class VideoGenerator:
    """Loads a model and a method once, then generates videos.

    Args:
        model: A registered model name (``tiny``, ``toyworld``, ``wan2.1-t2v-1.3b`` …, see
            :mod:`deepforcing.model_kinds`) or a :class:`~deepforcing.model_kinds.ModelKind` (e.g.
            :func:`~deepforcing.model_kinds.from_files` for a checkpoint and a :class:`WanConfig` of your own).
        method: A method name, a preset YAML path, or a :class:`MethodConfig` (e.g. from
            :meth:`MethodConfig.with_overrides`). It is adapted to the model once
            (:meth:`ModelKind.resolve_method`); :attr:`method` is what runs.
        device: ``cpu`` / ``cuda`` (default: CUDA when available).
        dtype: Model dtype (default: bfloat16 on CUDA, float32 on CPU).
        checkpoint: Generator checkpoint file (default: the method's registry entry, or the model's own).
        weights_dir: Extra directory to look for registry weights in.
        share_from: Another generator of the same model and device whose loaded text encoder and VAE are reused
            (a suite switching methods loads them once).

    The text encoder and the VAE are located and loaded only when used: not at all when ``generate`` gets
    ``context=`` and ``output=None``.
    """

    def __init__(
        self,
        model: str | ModelKind = "tiny",
        method: str | MethodConfig = "self-forcing",
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        checkpoint: str | Path | None = None,
        weights_dir: str | Path | None = None,
        share_from: VideoGenerator | None = None,
    ):
        self.kind = model_kinds.get(model)
        self.preset: ModelPreset = self.kind.preset
        self.method: MethodConfig = self.kind.resolve_method(methods.resolve(method), checkpoint)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.weights_dir = weights_dir
        self.parts = self.kind.load(
            self.method, device=self.device, dtype=self.dtype, checkpoint=checkpoint, weights_dir=weights_dir
        )
        self.model = self.parts.dit
        self.checkpoint_path = self.parts.checkpoint
        self.sampler = methods.build_sampler(self.method)
        self.compiled = False  # see compile()
        if share_from is not None and share_from.kind is self.kind and share_from.device == self.device:
            # Same text encoder and VAE files, already loaded: reuse them (methods differ only in the DiT/loop).
            if share_from.dtype == self.dtype:
                self.parts.share(share_from.parts)

    def compile(self) -> bool:
        """Run the DiT's blocks compiled (``--compile``, :mod:`deepforcing.model.compiled`).

        Returns:
            Whether the compiled path is in use (False where compilation is unavailable: logged once, eager).
        """
        from deepforcing.model.compiled import compile_model

        self.compiled = self.compiled or compile_model(self.model)
        return self.compiled

    @property
    def video_crf(self) -> int | None:
        """x264 CRF of written videos (the model kind's; None: the encoder default)."""
        return self.kind.video_crf

    @property
    def text_encoder(self):
        """The text encoder (loaded on first use)."""
        return self.parts.text_encoder

    @property
    def vae(self):
        """The VAE (loaded on first use)."""
        return self.parts.vae

    # ---------------------------------------------------------------------------------------- generate
    def latent_shape(self, num_latent_frames: int, batch: int = 1) -> tuple[int, int, int, int, int]:
        """[B, F, C, H, W] of a video's latents."""
        p = self.preset
        return (batch, num_latent_frames, p.wan.in_dim, p.latent_height, p.latent_width)

    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        *,
        num_latent_frames: int,
        seed: int = 0,
        prompt_id: str | None = None,
        output: str | Path | None = None,
        context: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        renoise: RenoiseFn | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
        observer: CallObserver | None = None,
        schedule: PromptSchedule | None = None,
        switch: str | None = None,
    ) -> GenerationResult:
        """Generate one video.

        Args:
            prompt: Text prompt (non-empty unless ``context`` is given).
            num_latent_frames: Latent frames, a whole number of chunks.
            seed: Seed; with ``prompt_id`` it fixes all noise.
            prompt_id: Stable id of the prompt (default: hash of the text, or of a multi-prompt schedule).
            output: mp4 path; frames are decoded and written chunk by chunk. None: latents only.
            context: Precomputed text-encoder states [1, Lt, text_dim] (skips the text encoder).
            noise: Explicit initial noise [1, F, C, H, W] (default: from the seeded stream).
            renoise: Explicit source of re-noising draws (default: the seeded stream).
            on_chunk: Progress callback (chunk index, number of chunks).
            observer: Called after every DiT call (see ``deepforcing.samplers.observe``); opt-in.
            schedule: A prompt schedule instead of ``prompt`` (which is then ignored); ``num_latent_frames`` must
                be its total. The text encoder runs once per distinct prompt.
            switch: Switch mode of its boundaries that do not name one (default: the method's).

        Returns:
            Latents, output path, timings and memory.
        """
        has_prompt = bool(prompt and prompt.strip())
        if schedule is None:
            if not has_prompt and context is None:
                raise UserError("the prompt is empty", "pass a non-empty prompt (or a precomputed context=)")
            id_text = prompt or ""  # the noise of a one-prompt video depends on its text (or "")
            schedule = PromptSchedule.single(prompt if has_prompt else CONTEXT_PROMPT, num_latent_frames)
        else:
            if context is not None and len(schedule.prompts) > 1:
                raise UserError("context= gives the states of one prompt; a prompt schedule needs the text encoder")
            id_text = schedule.prompts[0]
        if context is None:
            for p in schedule.prompts:
                self.parts.check_prompt(p)
        n = self.method.sampler_config.chunk_frames
        if num_latent_frames <= 0 or num_latent_frames % n:
            raise UserError(f"{num_latent_frames} latent frames is not a positive multiple of the {n}-frame chunk")
        resolved = schedule.resolve(n, switch or self.method.switch)
        if resolved[-1].end_frame != num_latent_frames:
            raise UserError(
                f"the prompt schedule lasts {resolved[-1].end_frame} latent frames, not {num_latent_frames}",
                "omit the length, or make it the schedule's total",
            )
        policy = methods.build_policy(self.method)
        for seg in resolved[1:]:
            policy.check_switch(seg.switch)  # before any compute
        needed = (() if context is not None else ("text_encoder",)) + (("vae",) if output is not None else ())
        self.kind.check_assets(self.method, self.weights_dir, parts=needed)  # every missing file, before compute
        default_id = prompt_id_for(id_text) if len(resolved) == 1 else schedule.sha256[:12]
        stream = NoiseStream(prompt_id or default_id, seed, self.device, self.dtype)
        if noise is None:
            noise = stream.initial(self.latent_shape(num_latent_frames))
        tokens = None
        texts = {}
        for p in schedule.prompts:  # the text encoder runs once per distinct prompt
            ctx = context
            if ctx is None:
                counted = self.text_encoder.count_tokens(p)
                if tokens is None or counted.count > tokens.count:  # the longest prompt: any cut is reported
                    tokens = counted
                ctx = self.text_encoder.encode([p])
            texts[p] = self.model.encode_text(ctx)
        text = [TextSegment(seg.start_frame, texts[seg.prompt], seg.switch or "keep") for seg in resolved]
        num_chunks = num_latent_frames // n

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        decode_seconds = 0.0
        with contextlib.ExitStack() as stack:
            writer = decoder = None
            if output is not None:  # frames are decoded and written as each chunk finishes
                from deepforcing.video_io import Mp4Writer

                writer = stack.enter_context(Mp4Writer(Path(output), fps=self.preset.fps, crf=self.video_crf))
                decoder = self.vae.streaming_decoder()

            def chunk_done(index: int, latents: torch.Tensor) -> None:
                nonlocal decode_seconds
                if writer is not None:
                    t0 = time.perf_counter()
                    writer.write(decoder.decode(latents)[0])  # [T, 3, H, W] in [-1, 1]
                    decode_seconds += time.perf_counter() - t0
                if on_chunk is not None:
                    on_chunk(index, num_chunks)

            t0 = time.perf_counter()
            sampled = self.sampler.sample(
                self.model, text, policy, noise, renoise or stream, chunk_done, observer=observer
            )
            total = time.perf_counter() - t0
        return GenerationResult(
            latents=sampled.latents.float().cpu(),
            video_path=Path(output) if output is not None else None,
            chunk_seconds=[c.seconds for c in sampled.chunks],
            attended_frames=[c.attended_frames for c in sampled.chunks],
            sampling_seconds=total - decode_seconds,
            decode_seconds=decode_seconds,
            peak_memory_bytes=torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None,
            kv_cache_bytes=sampled.kv_cache_bytes,
            frames_per_latent=self.preset.frames_per_latent,
            prompts=segments_metadata(resolved, self.preset.fps, self.preset.frames_per_latent),
            prompt_tokens=tokens,
        )


def create_generator(model: str | ModelKind = "tiny", method: str | MethodConfig = "self-forcing", **kwargs):
    """A :class:`VideoGenerator` (kept for callers of the earlier API; every model kind uses the same class).

    Args:
        model: Model name or kind.
        method: Method name, preset path or config.
        **kwargs: Passed to the generator (device, dtype, checkpoint, weights_dir, share_from).
    """
    return VideoGenerator(model, method, **kwargs)

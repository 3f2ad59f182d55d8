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

from deepforcing import methods, weights
from deepforcing.errors import UserError
from deepforcing.methods import MethodConfig
from deepforcing.model.checkpoint import load_generator
from deepforcing.model.config import PRESETS, ModelPreset
from deepforcing.model.wan import CausalWanModel
from deepforcing.noise import NoiseStream, RenoiseFn
from deepforcing.prompt_schedule import PromptSchedule, segments_metadata
from deepforcing.samplers.observe import CallObserver
from deepforcing.samplers.switching import TextSegment

log = logging.getLogger(__name__)

#: Output frame rate of Wan2.1 / Self-Forcing videos.
FPS = 16
#: Pixel frames per latent frame (after the first) of the Wan VAE.
TEMPORAL_COMPRESSION = 4
#: Registry groups of the Diffusers-layout Wan2.1 components the real model needs besides the DiT checkpoint.
DIFFUSERS_COMPONENTS = (
    "wan2.1-t2v-1.3b-diffusers/text_encoder",
    "wan2.1-t2v-1.3b-diffusers/tokenizer",
    "wan2.1-t2v-1.3b-diffusers/vae",
)


def latent_frames_for(seconds: float, chunk_frames: int = 3) -> int:
    """Latent frames for a duration: ``ceil(seconds·16/4)`` rounded up to whole chunks (5 s -> 21, 60 s -> 240)."""
    if not seconds > 0:
        raise UserError(f"duration must be positive, got {seconds}")
    frames = math.ceil(seconds * FPS / TEMPORAL_COMPRESSION)
    return chunk_frames * math.ceil(frames / chunk_frames)


def pixel_frames_for(latent_frames: int, frames_per_latent: int = TEMPORAL_COMPRESSION) -> int:
    """Pixel frames decoded from ``latent_frames`` (Wan VAE: 1 + 4·(F − 1))."""
    return 1 + frames_per_latent * (latent_frames - 1)


def prompt_id_for(prompt: str) -> str:
    """Default prompt id: the first 12 hex digits of the prompt's sha256."""
    return hashlib.sha256(prompt.encode()).hexdigest()[:12]


def get_preset(name: str) -> ModelPreset:
    """Resolve a model preset name (UserError listing the choices)."""
    if name not in PRESETS:
        raise UserError(f"unknown model '{name}'", f"choose one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


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

    @property
    def num_pixel_frames(self) -> int:
        """Frames of the decoded video."""
        return pixel_frames_for(self.latents.shape[1], self.frames_per_latent)

    @property
    def fps(self) -> float:
        """Generated pixel frames per second of sampling (the papers' throughput measure, decode excluded)."""
        return self.num_pixel_frames / self.sampling_seconds if self.sampling_seconds else float("nan")


class VideoGenerator:
    """Loads a model preset and a method once, then generates videos.

    Args:
        model: Model preset name (``tiny``, ``wan2.1-t2v-1.3b`` …).
        method: Method name (see ``deepforcing-eval methods list``).
        device: ``cpu`` / ``cuda`` (default: CUDA when available).
        dtype: Model dtype (default: bfloat16 on CUDA, float32 on CPU).
        checkpoint: Generator checkpoint file (default: the method's registry entry, or the tiny asset).
        weights_dir: Extra directory to look for registry weights in.
        share_from: Another generator of the same model preset and device whose loaded text encoder and VAE
            are reused (a suite switching methods loads them once).
    """

    #: x264 CRF of written videos (None: the encoder default).
    video_crf: int | None = None

    def __init__(
        self,
        model: str = "tiny",
        method: str = "self-forcing",
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        checkpoint: str | Path | None = None,
        weights_dir: str | Path | None = None,
        share_from: VideoGenerator | None = None,
    ):
        self.preset = get_preset(model)
        self.method: MethodConfig = methods.get(method)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.weights_dir = weights_dir
        self._assets = self._locate_assets(checkpoint)
        self.checkpoint_path = Path(self._assets["checkpoint"])
        self.model = self._load_model()
        self.sampler = methods.build_sampler(self.method)
        self._text_encoder = None
        self._vae = None
        if share_from is not None and share_from.preset == self.preset and share_from.device == self.device:
            # Same text encoder and VAE files, already loaded: reuse them (methods differ only in the DiT/loop).
            self._text_encoder, self._vae = share_from._text_encoder, share_from._vae

    # ----------------------------------------------------------------------------------------- loading
    def _locate_assets(self, checkpoint: str | Path | None) -> dict[str, Path]:
        if self.preset.name in ("tiny", "medium"):
            from deepforcing.model.tiny import ensure_tiny_assets

            tiny = ensure_tiny_assets(PRESETS["tiny"].wan)
            assets = {
                "checkpoint": tiny.checkpoint,
                "text_encoder": tiny.text_encoder_dir,
                "vae": tiny.vae_dir,
            }
            if self.preset.name == "medium":
                assets["checkpoint"] = None  # random weights, benchmarks only
        else:
            # Every file is located (or reported missing, with the command that fetches it) before any compute.
            needed = {group: weights.expand(group) for group in DIFFUSERS_COMPONENTS}
            if checkpoint is None:
                entry = weights.get(self.method.checkpoint)
                needed[self.method.checkpoint] = [self.method.checkpoint, *([entry.lora] if entry.lora else [])]
            missing: list[tuple[str, UserError]] = []
            for group, keys in needed.items():
                for key in keys:
                    try:
                        weights.resolve(key, self.weights_dir)
                    except UserError as exc:
                        missing.append((group, exc))
            if missing:
                groups = " ".join(dict.fromkeys(group for group, _ in missing))
                raise UserError(
                    f"{len(missing)} weight file(s) missing for {self.preset.name} / {self.method.name}; "
                    f"first: {missing[0][1].message}",
                    f"run `deepforcing-eval weights download {groups}` (or see `deepforcing-eval weights verify`)",
                )
            root = weights.resolve("wan2.1-t2v-1.3b-diffusers/text_encoder/config.json", self.weights_dir).parents[1]
            vae = weights.resolve_dir("wan2.1-t2v-1.3b-diffusers/vae/config.json", self.weights_dir)
            assets = {"checkpoint": None, "text_encoder": root, "vae": vae}
        if checkpoint is not None:
            assets["checkpoint"] = Path(checkpoint)
        elif assets["checkpoint"] is None and self.preset.name != "medium":
            assets["checkpoint"] = weights.resolve(self.method.checkpoint, self.weights_dir)
            entry = weights.get(self.method.checkpoint)
            assets["state_key"] = entry.state_key
            if entry.lora:  # merged at load (LongLive)
                assets["lora"] = (weights.resolve(entry.lora, self.weights_dir), entry.lora_rank, entry.lora_alpha)
        return assets

    def _load_model(self) -> CausalWanModel:
        if self.preset.name == "medium" and self._assets["checkpoint"] is None:
            from deepforcing.model.tiny import build_random_generator

            model = build_random_generator(self.preset.wan, seed=0)
        else:
            model = CausalWanModel(self.preset.wan)
            load_generator(model, self._assets["checkpoint"], self._assets.get("state_key"), self._assets.get("lora"))
        return model.to(self.device, self.dtype).eval().requires_grad_(False)

    @property
    def text_encoder(self):
        """The UMT5 text encoder (loaded on first use)."""
        if self._text_encoder is None:
            from deepforcing.model.text_encoder import UMT5TextEncoder

            self._text_encoder = UMT5TextEncoder.from_diffusers(
                self._assets["text_encoder"], text_len=self.preset.wan.text_len, dtype=self.dtype, device=self.device
            )
        return self._text_encoder

    @property
    def vae(self):
        """The Wan VAE (loaded on first use)."""
        if self._vae is None:
            from deepforcing.model.vae import WanVAE

            self._vae = WanVAE.from_diffusers(self._assets["vae"], dtype=self.dtype, device=self.device)
        return self._vae

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
            prompt: Text prompt (non-empty).
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
        n = self.method.sampler_config.chunk_frames
        if num_latent_frames <= 0 or num_latent_frames % n:
            raise UserError(f"{num_latent_frames} latent frames is not a positive multiple of the {n}-frame chunk")
        if schedule is None:
            if not prompt or not prompt.strip():
                raise UserError("the prompt is empty", "pass a non-empty --prompt")
            schedule = PromptSchedule.single(prompt, num_latent_frames)
        resolved = schedule.resolve(n, switch or self.method.switch)
        if resolved[-1].end_frame != num_latent_frames:
            raise UserError(
                f"the prompt schedule lasts {resolved[-1].end_frame} latent frames, not {num_latent_frames}",
                "omit the length, or make it the schedule's total",
            )
        policy = methods.build_policy(self.method)
        for seg in resolved[1:]:
            policy.check_switch(seg.switch)  # before any compute
        from deepforcing.estimate import available_bytes, check_fits, estimate

        est = estimate(
            self.method, self.preset.wan, self.latent_shape(1)[2:], num_latent_frames, self.model.dtype.itemsize
        )
        check_fits(est, self.method.name, num_latent_frames, available_bytes(self.device))  # before any allocation
        default_id = prompt_id_for(schedule.prompts[0]) if len(resolved) == 1 else schedule.sha256[:12]
        stream = NoiseStream(prompt_id or default_id, seed, self.device, self.dtype)
        if noise is None:
            noise = stream.initial(self.latent_shape(num_latent_frames))
        if context is not None and len(schedule.prompts) > 1:
            raise UserError("context= gives the states of one prompt; a prompt schedule needs the text encoder")
        texts = {}
        for p in schedule.prompts:  # once per distinct prompt
            ctx = context if context is not None else self.text_encoder.encode([p])
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
        )


def create_generator(model: str = "tiny", method: str = "self-forcing", **kwargs) -> VideoGenerator:
    """The generator for a model preset: :class:`VideoGenerator`, or the toy world's for ``toyworld``.

    Args:
        model: Model preset name.
        method: Method name.
        **kwargs: Passed to the generator (device, dtype, checkpoint, weights_dir, share_from).
    """
    if get_preset(model).name == "toyworld":
        from deepforcing.toyworld.pipeline import ToyVideoGenerator

        return ToyVideoGenerator(model, method, **kwargs)
    return VideoGenerator(model, method, **kwargs)

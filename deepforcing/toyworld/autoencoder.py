"""The toy model's latent space: a small convolutional autoencoder in place of the Wan VAE (stage 0 of training).

A frame of ``S×S`` RGB pixels becomes ``channels`` (16, as Wan's VAE) latent channels at ``S/4 × S/4``. There is no
temporal compression: **one video frame is one latent frame**, so the trained horizon of 21 latent frames is 21
video frames and a chunk of 3 latent frames is 3 video frames. Latents are normalised per channel (the mean and
standard deviation of the encoder's outputs on rendered frames, stored with the weights), as Wan normalises its
VAE latents, so the DiT sees unit-scale data.

Why a learned autoencoder and not the exact pixel-unshuffle the first two toy models used: with pixel-unshuffle
the DiT writes every pixel itself, and the teacher's samples came out mottled — flat shapes drawn with a per-pixel
spread of 10–22 RGB units per channel, colour error 0.074 after 12 000 steps, never near the renderer's 0.013
(docs/toyworld.md, "Where the colour error and the slowness come from"). A decoder trained on rendered frames
draws flat colours and clean outlines from whatever latent it is given, as the real VAE's decoder does for Wan.
Measured at equal teacher cost (1 000 steps, 8 held-out scenes, guidance 3): colour error 0.124 → 0.081, motion
2.8 → 1.0 px/frame (renderer 0.93), background error 0.061 → 0.037.

Training (:func:`train_autoencoder`): batches of 7 consecutive frames from 8 scenes at random times (so pans and
lighting phases past the trained horizon are covered); loss ``L1 + MSE`` in ``[-1, 1]`` pixel units plus an L1
loss on neighbouring-pixel differences (outlines as sharp as the renderer's: the oracle's colour error counts
the rim pixels of every shape); Gaussian noise of ``latent_noise`` × the batch's per-channel standard deviation
added to the latents before decoding, so the decoder also draws clean frames from latents a little off the
encoder's (the DiT's samples are such latents; a VAE's posterior sampling does the same). Deterministic on one
thread; resumable from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.errors import UserError
from deepforcing.toyworld.stage_checkpoint import read_stage, restore_progress, write_stage
from deepforcing.toyworld.world import WorldConfig, sample_scene

log = logging.getLogger(__name__)

#: Spatial downsampling of the latent (32×32 pixels → 8×8 latents).
FACTOR = 4
#: Scenes of stage-0 step ``s`` come from seeds ``AUTOENCODER_SEED_BASE + s·scenes + i``.
AUTOENCODER_SEED_BASE = 5 * 10**8
#: Consecutive frames taken from each scene of a batch.
FRAMES_PER_SCENE = 7
#: Latest start frame of a batch's frame run (frames past the trained horizon cover pans and lighting phases).
MAX_START = 400


@dataclass(frozen=True)
class AutoencoderConfig:
    """Shape and training settings of the toy autoencoder.

    Attributes:
        channels: Latent channels.
        width: Channels of the encoder and decoder at 1/2 and 1/4 resolution.
        steps: Optimiser steps.
        scenes: Scenes per batch (each gives ``FRAMES_PER_SCENE`` frames).
        lr: Peak AdamW learning rate (linear warm-up, then cosine decay to ``lr·min_lr_ratio``).
        min_lr_ratio: Final learning rate as a fraction of ``lr``.
        warmup_steps: Warm-up steps.
        latent_noise: Noise added to the latents while training, in units of each channel's batch std.
        edge_weight: Weight of the L1 loss on horizontal and vertical pixel differences (sharp outlines).
        seed: Seed of the initial weights, the scenes and the noise.
        normalisation_scenes: Scenes whose frames fix the latent mean and std at the end.
        checkpoint_every: Steps between checkpoints.
    """

    channels: int = 16
    width: int = 64
    steps: int = 5000
    scenes: int = 8
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    latent_noise: float = 0.05
    edge_weight: float = 1.0
    seed: int = 0
    normalisation_scenes: int = 64
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.channels < 1 or self.width < 1 or self.steps < 1 or self.scenes < 1:
            raise UserError(
                f"autoencoder channels, width, steps and scenes must be positive, got {self.channels}, "
                f"{self.width}, {self.steps}, {self.scenes}"
            )

    def learning_rate(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based)."""
        warm = min(1.0, (step + 1) / self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * step / self.steps))
        return self.lr * warm * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class ToyAutoencoder(nn.Module):
    """Frames ↔ normalised latents, frame by frame.

    Args:
        channels: Latent channels.
        width: Feature channels at 1/2 and 1/4 resolution.
    """

    def __init__(self, channels: int = 16, width: int = 64):
        super().__init__()
        self.channels, self.width = channels, width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),  # [N, 32, S, S]
            nn.SiLU(),
            nn.Conv2d(32, width, 4, stride=2, padding=1),  # [N, w, S/2, S/2]
            nn.SiLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1),  # [N, w, S/4, S/4]
            _Residual(width),
            nn.SiLU(),
            nn.Conv2d(width, channels, 1),  # [N, C, S/4, S/4]
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),  # [N, w, S/4, S/4]
            _Residual(width),
            _Residual(width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width, 3, padding=1),  # [N, w, S/2, S/2]
            nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, 32, 3, padding=1),  # [N, 32, S, S]
            nn.SiLU(),
            nn.Conv2d(32, 3, 3, padding=1),  # [N, 3, S, S]
        )
        self.register_buffer("latent_mean", torch.zeros(channels))
        self.register_buffer("latent_std", torch.ones(channels))

    def encode_raw(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [N, 3, S, S] in [-1, 1] -> unnormalised latents [N, C, S/4, S/4]."""
        return self.encoder(pixels)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised latents [N, C, h, w] -> pixels [N, 3, 4h, 4w] (unclamped, [-1, 1] scale)."""
        return self.decoder(z)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames to normalised latents.

        Args:
            frames: uint8 [..., H, W, 3] RGB (H, W multiples of 4).

        Returns:
            float32 [..., C, H/4, W/4].
        """
        lead = frames.shape[:-3]
        x = frames.reshape(-1, *frames.shape[-3:]).to(self.latent_mean.device, torch.float32)
        x = x.permute(0, 3, 1, 2) / 127.5 - 1.0  # [N, 3, H, W]
        z = (self.encode_raw(x) - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]
        return z.reshape(*lead, *z.shape[1:])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents to frames (clamped to [-1, 1], rounded to uint8).

        Args:
            latents: [..., C, h, w] (any float dtype).

        Returns:
            uint8 [..., 4h, 4w, 3] on the CPU.
        """
        lead = latents.shape[:-3]
        z = latents.reshape(-1, *latents.shape[-3:]).to(self.latent_mean.device, torch.float32)
        x = self.decode_raw(z * self.latent_std[:, None, None] + self.latent_mean[:, None, None])
        frames = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
        return frames.reshape(*lead, *frames.shape[1:])


def training_frames(seeds: list[int], starts: list[int], world: WorldConfig) -> torch.Tensor:
    """``FRAMES_PER_SCENE`` consecutive frames of each scene from its start frame: uint8 [N, S, S, 3]."""
    return torch.cat(
        [sample_scene(s, world).render(FRAMES_PER_SCENE, start) for s, start in zip(seeds, starts, strict=True)]
    )


def _edge_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of the horizontal and vertical neighbour differences of images [N, 3, S, S]."""
    dx = (y[..., :, 1:] - y[..., :, :-1]) - (x[..., :, 1:] - x[..., :, :-1])
    dy = (y[..., 1:, :] - y[..., :-1, :]) - (x[..., 1:, :] - x[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def _pixels(frames: torch.Tensor) -> torch.Tensor:
    return frames.to(torch.float32).permute(0, 3, 1, 2) / 127.5 - 1.0  # [N, 3, S, S]


@dataclass
class AutoencoderState:
    """Everything a stage-0 checkpoint holds (resume continues bit-for-bit on one thread)."""

    step: int
    model: ToyAutoencoder
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    segments: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _new_state(cfg: AutoencoderConfig) -> AutoencoderState:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = ToyAutoencoder(cfg.channels, cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    return AutoencoderState(0, model, opt, torch.Generator().manual_seed(cfg.seed + 1))


def _save(state: AutoencoderState, cfg: AutoencoderConfig, path: Path) -> None:
    tensors = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
    }
    write_stage(path, cfg, state, tensors)


def _load(cfg: AutoencoderConfig, path: Path) -> AutoencoderState:
    raw = read_stage(path, cfg)
    state = _new_state(cfg)
    state.model.load_state_dict(raw["model"])
    state.optimizer.load_state_dict(raw["optimizer"])
    state.generator.set_state(raw["generator"])
    restore_progress(state, raw)
    return state


@torch.no_grad()
def _normalise(model: ToyAutoencoder, cfg: AutoencoderConfig, world: WorldConfig) -> None:
    """Set the latent mean and std from the encoder's outputs on fixed frames (seeds past the training ones)."""
    base = AUTOENCODER_SEED_BASE - 10**6
    seeds = [base + i for i in range(cfg.normalisation_scenes)]
    starts = [(37 * i) % MAX_START for i in range(cfg.normalisation_scenes)]
    z = model.encode_raw(_pixels(training_frames(seeds, starts, world)))  # [N, C, h, w]
    model.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
    model.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-6))


def train_autoencoder(
    cfg: AutoencoderConfig,
    checkpoint: str | Path,
    *,
    world: WorldConfig | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    command: str = "",
) -> AutoencoderState:
    """Run (or resume) stage 0; the returned state's model (normalised, eval mode) is the toy VAE.

    Args:
        cfg: Shape and training settings.
        checkpoint: Checkpoint path (written every ``checkpoint_every`` steps and at the end).
        world: World the frames come from (default :class:`WorldConfig`).
        resume: Continue from ``checkpoint`` (a finished run is returned as it is).
        on_step: Called after every step with (steps done, row of numbers).
        command: Command line recorded with the run's segments.

    Returns:
        The final state.
    """
    world = world or WorldConfig()
    ckpt = Path(checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if resume:
        if not ckpt.is_file():
            raise UserError(f"--resume: no checkpoint at {ckpt}", "start without --resume")
        state = _load(cfg, ckpt)
        if state.step < cfg.steps:
            log.info("resuming stage 0 at step %d of %d", state.step, cfg.steps)
    else:
        if ckpt.exists():
            raise UserError(
                f"{ckpt.parent} already holds a training run", "pass --resume to continue it, or a new --out"
            )
        state = _new_state(cfg)
    if state.step < cfg.steps:
        _run(state, cfg, world, ckpt, on_step, command)
    state.model.eval().requires_grad_(False)
    return state


def _run(
    state: AutoencoderState,
    cfg: AutoencoderConfig,
    world: WorldConfig,
    ckpt: Path,
    on_step: Callable[[int, dict[str, float]], None] | None,
    command: str,
) -> None:
    model = state.model.train()
    smooth = state.history[-1]["loss_smooth"] if state.history else float("nan")
    wall0, cpu0 = time.perf_counter() - state.seconds, time.process_time() - state.cpu_seconds
    state.segments.append({"command": command, "to_step": cfg.steps, "threads": torch.get_num_threads()})
    while state.step < cfg.steps:
        s = state.step
        lr = cfg.learning_rate(s)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        seeds = [AUTOENCODER_SEED_BASE + s * cfg.scenes + i for i in range(cfg.scenes)]
        starts = torch.randint(0, MAX_START, (cfg.scenes,), generator=state.generator).tolist()
        x = _pixels(training_frames(seeds, starts, world))  # [N, 3, S, S]
        z = model.encode_raw(x)  # [N, C, S/4, S/4]
        scale = z.detach().std(dim=(0, 2, 3), keepdim=True)  # [1, C, 1, 1]
        z = z + cfg.latent_noise * scale * torch.randn(z.shape, generator=state.generator)
        y = model.decode_raw(z)
        loss = (y - x).abs().mean() + (y - x).square().mean() + cfg.edge_weight * _edge_loss(y, x)
        if not torch.isfinite(loss):
            raise UserError(f"autoencoder loss became {float(loss)} at step {s}", "lower the learning rate")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        state.optimizer.step()
        state.step = s + 1
        value = float(loss.detach())
        smooth = value if math.isnan(smooth) else 0.98 * smooth + 0.02 * value
        row = {
            "step": state.step,
            "loss": value,
            "loss_smooth": smooth,
            "lr": lr,
            "grad_norm": grad_norm,
            "seconds": time.perf_counter() - wall0,
            "cpu_seconds": time.process_time() - cpu0,
        }
        state.history.append(row)
        state.seconds, state.cpu_seconds = row["seconds"], row["cpu_seconds"]
        if state.step == cfg.steps:
            _normalise(model, cfg, world)
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            _save(state, cfg, ckpt)
        if on_step is not None:
            on_step(state.step, row)
    state.segments[-1]["to_step"] = state.step
    _save(state, cfg, ckpt)

"""Stage 1 of the toy model's training: the teacher, by flow matching on clips of the trained horizon.

Objective. Every training clip is the first ``num_frames`` (21) frames of a freshly drawn scene, encoded with the
toy autoencoder (stage 0) and split into chunks of 3 frames. The loss is the MSE between the predicted flow and
``v = ε − x0`` on the noisy chunks. One network is trained in two attention modes, one per optimiser step:

* *full attention* (probability ``p_bidirectional``): every frame at one timestep, every frame attends to every
  frame — a bidirectional video diffusion model, the **teacher** (the real score of stage 2, like the
  bidirectional Wan model behind Self-Forcing) and the initial fake score;
* *block-causal* (the rest): a chunk attends to itself and earlier chunks (``causal_chunk_frames=3``), the view
  that chunk-wise cached generation gives it — the **initialisation of the causal student** of stage 2. Its clips
  are mixed per clip between *diffusion forcing* (every chunk at its own timestep) and *teacher forcing* (a random
  chunk ``c`` noisy, every chunk before it clean at t = 0 and not scored, exactly the cache's context pass).

Captions are dropped (replaced by the empty caption, all padding) with probability ``p_uncond``, so the teacher
also learns the unconditional flow that classifier-free guidance needs.

Timesteps are drawn uniformly from the shifted 1000-entry table of ``FlowSchedule(shift)``, the table the samplers
use. The output head is zero-initialised (it first predicts v = 0); what stage 2 starts from is an exponential
moving average of the weights.

Everything is deterministic for a seed on one thread: scene ``i`` of step ``s`` is drawn from seed
``seed·10⁹ + s·batch + i``, mode, caption dropout, noise and timesteps from one ``torch.Generator``. Training
resumes from its checkpoint exactly as an uninterrupted run would continue.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel
from deepforcing.samplers.schedule import FlowSchedule
from deepforcing.toyworld.autoencoder import ToyAutoencoder
from deepforcing.toyworld.model import new_text_encoder, toy_preset
from deepforcing.toyworld.stage_checkpoint import read_stage, restore_progress, write_stage
from deepforcing.toyworld.text import ToyTextEncoder
from deepforcing.toyworld.world import WorldConfig, sample_scene

log = logging.getLogger(__name__)

#: Scenes of the validation batch come from seeds at and above this (never used for training).
VALIDATION_SEED_BASE = 10**12


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run.

    Attributes:
        steps: Optimiser steps.
        batch_size: Clips per step.
        lr: Peak AdamW learning rate (linear warm-up, then cosine decay to ``lr·min_lr_ratio``).
        min_lr_ratio: Final learning rate as a fraction of ``lr``.
        warmup_steps: Warm-up steps.
        weight_decay: AdamW weight decay.
        grad_clip: Gradient-norm clip.
        ema_decay: Decay of the weight EMA (the exported weights); ramps up as ``(1 + s) / (10 + s)`` early on.
        seed: Seeds model init, scenes, noise and timesteps.
        num_frames: Frames per training clip (the trained horizon; latent frames = video frames).
        chunk_frames: Frames per causal chunk.
        shift: Shift of the timestep table (the sampler uses the same).
        p_teacher: Share of block-causal clips in the teacher-forcing layout (clean past, see the module docs).
        p_bidirectional: Share of steps in full attention (the teacher's mode).
        p_uncond: Share of clips whose caption is dropped (for classifier-free guidance).
        validation_clips: Clips of the fixed validation batch.
        validate_every: Steps between validation losses.
        oracle_every: Steps between oracle checks of the teacher's samples (when the caller passes ``validate``).
        checkpoint_every: Steps between resumable checkpoints.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.998
    seed: int = 0
    num_frames: int = 21
    chunk_frames: int = 3
    shift: float = 3.0
    p_teacher: float = 0.5
    p_bidirectional: float = 0.5
    p_uncond: float = 0.1
    validation_clips: int = 16
    validate_every: int = 250
    oracle_every: int = 1000
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise UserError(f"steps and batch size must be positive, got {self.steps}, {self.batch_size}")
        if self.num_frames % self.chunk_frames:
            raise UserError(f"num_frames {self.num_frames} must be a multiple of chunk_frames {self.chunk_frames}")
        for name in ("p_teacher", "p_bidirectional", "p_uncond"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def learning_rate(self, step: int) -> float:
        """Learning rate at optimiser step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


@dataclass
class Batch:
    """One training batch.

    Attributes:
        x0: Clean latents [B, F, C, 8, 8].
        captions: One caption per clip.
    """

    x0: torch.Tensor
    captions: list[str]


def make_batch(seeds: list[int], world: WorldConfig, num_frames: int, autoencoder: ToyAutoencoder) -> Batch:
    """Render the first ``num_frames`` frames of the scenes drawn from ``seeds`` and encode them."""
    scenes = [sample_scene(s, world) for s in seeds]
    frames = torch.stack([sc.render(num_frames) for sc in scenes])  # [B, F, H, W, 3]
    return Batch(autoencoder.encode(frames), [sc.caption for sc in scenes])


def noise_layout(
    cfg: TrainConfig, batch_size: int, gen: torch.Generator, bidirectional: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-chunk table indices and loss mask.

    Args:
        cfg: Training settings (chunks, share of teacher-forcing clips).
        batch_size: Clips.
        gen: Random source.
        bidirectional: One timestep for all chunks of a clip (the layout of a full-attention pass).

    Returns:
        index: long [B, chunks] into the shifted timestep table, or -1 for a clean (t = 0) chunk.
        scored: bool [B, chunks], True where the chunk's loss counts.
    """
    chunks = cfg.num_frames // cfg.chunk_frames
    index = torch.randint(0, 1000, (batch_size, chunks), generator=gen)
    teacher = torch.rand(batch_size, generator=gen) < cfg.p_teacher  # [B]
    first_noisy = torch.randint(0, chunks, (batch_size,), generator=gen)  # [B]
    if bidirectional:
        return index[:, :1].expand(batch_size, chunks).clone(), torch.ones(batch_size, chunks, dtype=torch.bool)
    clean = teacher[:, None] & (torch.arange(chunks)[None, :] < first_noisy[:, None])  # [B, chunks]
    index = torch.where(clean, torch.full_like(index, -1), index)
    return index, ~clean


def flow_loss(
    dit: CausalWanModel,
    text_encoder: ToyTextEncoder,
    batch: Batch,
    index: torch.Tensor,
    scored: torch.Tensor,
    noise: torch.Tensor,
    cfg: TrainConfig,
    causal: bool = True,
) -> torch.Tensor:
    """Masked flow-matching MSE of one batch (differentiable).

    Args:
        dit: The DiT.
        text_encoder: The caption embedding.
        batch: Clean latents and captions.
        index: long [B, chunks] table indices (-1 = clean).
        scored: bool [B, chunks] loss mask.
        noise: Standard normal noise like ``batch.x0``.
        cfg: Training settings (chunking, shift).
        causal: Block-causal attention in chunks (the student's view); False: full attention (the teacher's).

    Returns:
        Scalar loss: mean squared error of the flow over the scored chunks' elements.
    """
    sigmas, timesteps = FlowSchedule(shift=cfg.shift).table()
    clean = index < 0
    safe = index.clamp_min(0)
    sigma = torch.where(clean, torch.zeros(()), sigmas[safe])  # [B, chunks]
    t = torch.where(clean, torch.zeros(()), timesteps[safe])
    sigma_f = sigma.repeat_interleave(cfg.chunk_frames, dim=1)  # [B, F]
    t_f = t.repeat_interleave(cfg.chunk_frames, dim=1)
    s = sigma_f[:, :, None, None, None]
    x_t = (1 - s) * batch.x0 + s * noise  # [B, F, C, H, W]
    text = dit.encode_text(text_encoder(text_encoder.tokenize(batch.captions)))
    pred = dit(x_t, t_f, text, causal_chunk_frames=cfg.chunk_frames if causal else None)  # [B, F, C, H, W]
    err = (pred.float() - (noise - batch.x0)).square().mean(dim=(2, 3, 4))  # [B, F]
    mask = scored.repeat_interleave(cfg.chunk_frames, dim=1).to(err.dtype)
    return (err * mask).sum() / mask.sum().clamp_min(1)


def build_models(cfg: TrainConfig) -> tuple[CausalWanModel, ToyTextEncoder]:
    """Freshly initialised DiT (zero output head) and caption embedding, from ``cfg.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        dit = CausalWanModel(toy_preset().wan)
        torch.nn.init.zeros_(dit.head.head.weight)
        torch.nn.init.zeros_(dit.head.head.bias)
        text = new_text_encoder()
    return dit, text


@dataclass
class TrainState:
    """Everything a stage-1 checkpoint holds (resume continues bit-for-bit on one thread)."""

    step: int
    dit: CausalWanModel
    text: ToyTextEncoder
    ema_dit: CausalWanModel
    ema_text: ToyTextEncoder
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    #: Every command that contributed to the run, with the step it ran to (a resumed run has several).
    segments: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _new_state(cfg: TrainConfig) -> TrainState:
    dit, text = build_models(cfg)
    params = list(dit.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    return TrainState(0, dit, text, copy.deepcopy(dit), copy.deepcopy(text), opt, gen)


def _save_checkpoint(state: TrainState, cfg: TrainConfig, path: Path) -> None:
    tensors = {
        "dit": state.dit.state_dict(),
        "text": state.text.state_dict(),
        "ema_dit": state.ema_dit.state_dict(),
        "ema_text": state.ema_text.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
    }
    write_stage(path, cfg, state, tensors)


def load_checkpoint(cfg: TrainConfig, path: Path) -> TrainState:
    """A stage-1 state from its checkpoint (same settings; only ``steps`` may differ).

    Raises:
        UserError: The checkpoint was written with other settings.
    """
    raw = read_stage(path, cfg)
    state = _new_state(cfg)
    state.dit.load_state_dict(raw["dit"])
    state.text.load_state_dict(raw["text"])
    state.ema_dit.load_state_dict(raw["ema_dit"])
    state.ema_text.load_state_dict(raw["ema_text"])
    state.optimizer.load_state_dict(raw["optimizer"])
    state.generator.set_state(raw["generator"])
    restore_progress(state, raw)
    return state


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)


@torch.no_grad()
def validation_loss(
    dit: CausalWanModel,
    text: ToyTextEncoder,
    cfg: TrainConfig,
    world: WorldConfig,
    autoencoder: ToyAutoencoder,
    *,
    causal: bool = False,
) -> float:
    """Loss on a fixed held-out batch with fixed noise and layout (comparable across steps and runs).

    Args:
        dit: The DiT.
        text: The caption embedding.
        cfg: Training settings.
        world: World of the validation scenes.
        autoencoder: The latent space.
        causal: Block-causal layouts (the student's mode) instead of full attention (the teacher's).
    """
    n = cfg.validation_clips
    batch = make_batch([VALIDATION_SEED_BASE + i for i in range(n)], world, cfg.num_frames, autoencoder)
    gen = torch.Generator().manual_seed(12345)
    index, scored = noise_layout(cfg, n, gen, bidirectional=not causal)
    noise = torch.randn(batch.x0.shape, generator=gen)
    was_training = dit.training
    dit.eval()
    loss = float(flow_loss(dit, text, batch, index, scored, noise, cfg, causal=causal))
    dit.train(was_training)
    return loss


def train_teacher(
    cfg: TrainConfig,
    checkpoint: str | Path,
    autoencoder: ToyAutoencoder,
    *,
    world: WorldConfig | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    validate: Callable[[CausalWanModel, ToyTextEncoder], dict[str, float]] | None = None,
    command: str = "",
) -> TrainState:
    """Run (or resume) stage 1; the returned state's EMA weights are the teacher.

    Args:
        cfg: Training settings.
        checkpoint: Checkpoint path (written every ``checkpoint_every`` steps and at the end).
        autoencoder: The latent space (stage 0's autoencoder).
        world: World settings the clips are drawn from (default :class:`WorldConfig`).
        resume: Continue from ``checkpoint`` (a finished run is returned as it is).
        on_step: Called after every step with (steps done, row of numbers).
        validate: Called with the EMA teacher every ``oracle_every`` steps; its numbers (prefixed ``teacher_``)
            join the history.
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
        state = load_checkpoint(cfg, ckpt)
        if state.step >= cfg.steps:
            return state
        log.info("resuming stage 1 at step %d of %d", state.step, cfg.steps)
    else:
        if ckpt.exists():
            raise UserError(
                f"{ckpt.parent} already holds a training run", "pass --resume to continue it, or a new --out"
            )
        state = _new_state(cfg)
    state.dit.train()
    params = list(state.dit.parameters()) + list(state.text.parameters())
    smooth = state.history[-1]["loss_smooth"] if state.history else float("nan")
    if not state.history:
        state.history.append(
            {
                "step": 0,
                "val_loss": validation_loss(state.ema_dit, state.ema_text, cfg, world, autoencoder),
                "val_loss_causal": validation_loss(state.ema_dit, state.ema_text, cfg, world, autoencoder, causal=True),
            }
        )
    wall0, cpu0 = time.perf_counter() - state.seconds, time.process_time() - state.cpu_seconds
    state.segments.append({"command": command, "to_step": cfg.steps, "threads": torch.get_num_threads()})
    while state.step < cfg.steps:
        s = state.step
        lr = cfg.learning_rate(s)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        seeds = [cfg.seed * 10**9 + s * cfg.batch_size + i for i in range(cfg.batch_size)]
        batch = make_batch(seeds, world, cfg.num_frames, autoencoder)
        bidirectional = bool(torch.rand((), generator=state.generator) < cfg.p_bidirectional)
        dropped = (torch.rand(cfg.batch_size, generator=state.generator) < cfg.p_uncond).tolist()
        batch.captions = ["" if d else c for c, d in zip(batch.captions, dropped, strict=True)]
        index, scored = noise_layout(cfg, cfg.batch_size, state.generator, bidirectional=bidirectional)
        noise = torch.randn(batch.x0.shape, generator=state.generator)
        loss = flow_loss(state.dit, state.text, batch, index, scored, noise, cfg, causal=not bidirectional)
        if not torch.isfinite(loss):
            raise UserError(f"training loss became {float(loss)} at step {s}", "lower --lr")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
        state.optimizer.step()
        decay = min(cfg.ema_decay, (1 + s) / (10 + s))
        _ema_update(state.ema_dit, state.dit, decay)
        _ema_update(state.ema_text, state.text, decay)
        state.step = s + 1
        value = float(loss.detach())
        smooth = value if math.isnan(smooth) else 0.98 * smooth + 0.02 * value
        row = {
            "step": state.step,
            "loss": value,
            "loss_smooth": smooth,
            "mode": "full" if bidirectional else "causal",
            "lr": lr,
            "grad_norm": grad_norm,
            "seconds": time.perf_counter() - wall0,
            "cpu_seconds": time.process_time() - cpu0,
        }
        if state.step % cfg.validate_every == 0 or state.step == cfg.steps:
            row["val_loss"] = validation_loss(state.ema_dit, state.ema_text, cfg, world, autoencoder)
            row["val_loss_causal"] = validation_loss(
                state.ema_dit, state.ema_text, cfg, world, autoencoder, causal=True
            )
        if validate is not None and (state.step % cfg.oracle_every == 0 or state.step == cfg.steps):
            row.update({f"teacher_{k}": v for k, v in validate(state.ema_dit, state.ema_text).items()})
        state.history.append(row)
        state.seconds, state.cpu_seconds = row["seconds"], row["cpu_seconds"]
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            _save_checkpoint(state, cfg, ckpt)
        if on_step is not None:
            on_step(state.step, row)
    state.segments[-1]["to_step"] = state.step
    _save_checkpoint(state, cfg, ckpt)
    return state

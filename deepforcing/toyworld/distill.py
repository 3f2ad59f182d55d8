"""Stage 2 of the toy model's training: a few-step causal student distilled by self-rollout and DMD.

This is Self-Forcing's recipe (arXiv 2506.08009, §3) at toy scale, written from the paper's description:

* **Generator** (the student, what ships): the causal DiT, initialised from the ODE-regressed student of stage 1b
  (:mod:`deepforcing.toyworld.ode`, Self-Forcing's ``ode_init``). Every training
  video is *rolled out by the generator itself* chunk by chunk, exactly as the engine's chunk-wise sampler does
  at inference (:class:`~deepforcing.samplers.chunkwise.ChunkwiseSampler`): the same warped few-step timesteps,
  fresh re-noising between steps, a clean pass at the context timestep that writes the chunk's K/V, and the
  engine's own :class:`~deepforcing.cache.KVCache` driven by the method's cache policy. Each chunk stops at a
  random denoising step (one per chunk, shared by the batch) whose x0 prediction is the chunk's output and the
  only pass that carries gradient; the cache holds no gradient (the context pass runs without it), so each chunk
  is trained on the model's own past, not on ground truth.
* **Distribution matching** (DMD): the rolled-out clip is noised to a random level and denoised by the
  *real score* — the stage-1 teacher with full attention over the clip, with classifier-free guidance — and by
  the *fake score* — a copy of the teacher that keeps learning (flow matching) on the generator's own clips. The
  generator moves its clip along ``x0_fake − x0_real`` (normalised by the mean ``|x̂ − x0_real|`` per clip,
  as DMD does): towards what the teacher would draw and away from what it currently draws.
* **Regression** on the teacher's ODE pairs (``regression_weight``), added to the DMD loss as the first DMD
  paper does: without it DMD's mode seeking slows the shapes (0.79 px/frame after 100 updates from the ODE
  student, renderer 1.00); with it they keep 0.92 (docs/toyworld.md, "ODE initialisation").
* **Critic** updates (the fake score) run ``critic_updates`` times per generator update, each on a fresh
  rollout without gradient (two-time-scale updates, as DMD2 and Self-Forcing do).

Everything is deterministic for a seed on one thread; a checkpoint holds the three models, both optimisers, the
generator EMA and every random state, so an interrupted run resumes exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepforcing import methods
from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel, TextConditioning
from deepforcing.policies.base import CachePolicy
from deepforcing.samplers.chunkwise import ChunkwiseConfig, ChunkwiseSampler
from deepforcing.toyworld.flow import predict_x0
from deepforcing.toyworld.ode import OdePairs, regression_loss
from deepforcing.toyworld.stage_checkpoint import read_stage, restore_progress, write_stage
from deepforcing.toyworld.text import ToyTextEncoder
from deepforcing.toyworld.world import WorldConfig, sample_scene

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    """Settings of the DMD stage.

    Attributes:
        steps: Generator updates.
        batch_size: Clips per rollout.
        critic_updates: Fake-score updates per generator update (each on a fresh rollout).
        lr_generator: AdamW learning rate of the generator (constant after ``warmup_steps``).
        lr_critic: AdamW learning rate of the fake score.
        betas: AdamW betas of both (β1 = 0, as Self-Forcing).
        warmup_steps: Linear learning-rate warm-up, in generator updates.
        weight_decay: AdamW weight decay.
        grad_clip: Gradient-norm clip of both.
        guidance: Classifier-free guidance scale of the real score.
        regression_weight: Weight of the regression loss on the teacher's ODE pairs added to the DMD loss
            (:func:`deepforcing.toyworld.ode.regression_loss`, as the first DMD paper; 0 = DMD alone).
        min_sigma: Smallest noise level of the DMD / critic noising (before the shift).
        max_sigma: Largest noise level (before the shift).
        shift: Shift applied to the uniformly drawn noise level (Self-Forcing: the model's timestep shift).
        ema_decay: Decay of the generator EMA (the exported weights).
        ema_start: Generator updates before the EMA starts tracking (it copies the weights then).
        method: Method preset whose chunk-wise sampler settings and cache policy the rollout uses.
        num_frames: Frames per rolled-out clip (the trained horizon).
        seed: Seeds scenes, noise, exits and timesteps.
        validate_every: Generator updates between validation numbers.
        checkpoint_every: Generator updates between checkpoints.
    """

    steps: int = 600
    batch_size: int = 8
    critic_updates: int = 2
    lr_generator: float = 1e-4
    lr_critic: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.999)
    warmup_steps: int = 20
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    guidance: float = 3.0
    regression_weight: float = 0.0
    min_sigma: float = 0.02
    max_sigma: float = 0.98
    shift: float = 5.0
    ema_decay: float = 0.99
    ema_start: int = 50
    method: str = "self-forcing"
    num_frames: int = 21
    seed: int = 0
    validate_every: int = 50
    checkpoint_every: int = 25

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.critic_updates < 0:
            raise UserError(f"bad distillation sizes: steps {self.steps}, batch {self.batch_size}")
        if self.regression_weight < 0:
            raise UserError(f"regression_weight must be >= 0, got {self.regression_weight}")
        if not 0 <= self.min_sigma < self.max_sigma <= 1:
            raise UserError(f"need 0 <= min_sigma < max_sigma <= 1, got {self.min_sigma}, {self.max_sigma}")

    def sampler_config(self) -> ChunkwiseConfig:
        """The chunk-wise sampler settings the student is trained for (those of ``method``)."""
        method = methods.get(self.method)
        if method.sampler != "chunkwise":
            raise UserError(f"distillation rolls out with the chunk-wise sampler; '{self.method}' is {method.sampler}")
        return method.sampler_config

    def draw_sigma(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Noise levels for DMD / critic noising: uniform in [min, max], then shifted: float32 [n]."""
        s = self.min_sigma + (self.max_sigma - self.min_sigma) * torch.rand(n, generator=gen)
        return self.shift * s / (1 + (self.shift - 1) * s)


def _detach_cache(kv: KVCache) -> None:
    """Give every layer fresh K/V buffers holding the same values.

    Later in-place writes then leave the autograd graph of an earlier pass intact, and no gradient flows into the
    past through the cache.
    """
    for layer in kv.layers:
        layer.k = layer.k.detach().clone()
        layer.k_rot = layer.k_rot.detach().clone()
        layer.v = layer.v.detach().clone()


def self_rollout(
    dit: CausalWanModel,
    text: TextConditioning,
    noise: torch.Tensor,
    cfg: ChunkwiseConfig,
    policy: CachePolicy,
    exits: list[int],
    gen: torch.Generator,
    *,
    grad: bool,
) -> torch.Tensor:
    """Roll out a clip chunk by chunk through the KV cache, as the chunk-wise sampler does, to each exit step.

    Args:
        dit: The generator.
        text: Caption conditioning.
        noise: Initial noise [B, F, C, H, W] (F a multiple of the chunk size).
        cfg: Chunk-wise sampler settings (steps, shift, warp, context timestep).
        policy: The cache policy (reset here).
        exits: Per chunk, the index of the denoising step whose x0 is the chunk's output.
        gen: Source of the re-noising draws (fresh Gaussian noise between steps, as ``renoise: fresh``).
        grad: Let the exit passes carry gradient (the generator update); False for critic rollouts.

    Returns:
        The clip's x0 [B, F, C, H, W] (float32; differentiable through the exit passes when ``grad``).
    """
    b, num_frames = noise.shape[:2]
    n = cfg.chunk_frames
    if num_frames % n or len(exits) != num_frames // n:
        raise ValueError(f"{num_frames} frames, chunk {n}, {len(exits)} exits")
    steps = cfg.timesteps().tolist()
    schedule = cfg.schedule
    kv = ChunkwiseSampler.allocate_cache(dit, policy, noise, n)
    policy.reset()
    policy.attach(kv)
    kv.attention_hook = policy.on_attention if policy.uses_attention_hook else None
    chunks = []
    for c in range(num_frames // n):
        start = c * n
        chunk = ChunkState(c, start, n, policy.frame_positions(start, n))
        policy.before_chunk(kv, chunk)
        kv.begin_chunk(chunk)
        x = noise[:, start : start + n]
        for i, t in enumerate(steps[: exits[c] + 1]):
            kv.begin_pass(i, is_context_pass=False)
            with torch.set_grad_enabled(grad and i == exits[c]):
                flow = dit(x, torch.full((b, n), t), text, kv)
                x0 = schedule.flow_to_x0(flow.float(), x, t)
            if i < exits[c]:
                eps = torch.randn(x0.shape, generator=gen)
                x = schedule.add_noise(x0, eps, steps[i + 1])
        if grad:
            _detach_cache(kv)
        kv.begin_pass(len(steps), is_context_pass=True)
        with torch.no_grad():
            dit(x0.detach(), torch.full((b, n), float(cfg.context_timestep)), text, kv)
        kv.end_chunk()
        policy.after_chunk(kv, chunk)
        chunks.append(x0)
    return torch.cat(chunks, dim=1)


def dmd_loss(
    x: torch.Tensor,
    sigma: torch.Tensor,
    eps: torch.Tensor,
    real: CausalWanModel,
    real_text: TextConditioning,
    real_uncond: TextConditioning,
    fake: CausalWanModel,
    fake_text: TextConditioning,
    guidance: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The distribution-matching loss of generated clips (differentiable in ``x`` only).

    Args:
        x: Generated clips [B, F, C, H, W].
        sigma: Noise level per clip [B].
        eps: Noise like ``x``.
        real: The teacher (full attention, guided).
        real_text: The captions' conditioning through the teacher.
        real_uncond: The empty caption's conditioning through the teacher (batch B).
        fake: The fake score (full attention).
        fake_text: The captions' conditioning through the fake score.
        guidance: Guidance scale of the teacher.

    Returns:
        Scalar loss whose gradient in ``x`` is the normalised DMD direction, and numbers to log.
    """
    s = sigma[:, None].expand(x.shape[0], x.shape[1])  # [B, F]
    with torch.no_grad():
        x_t = (1 - s)[:, :, None, None, None] * x.detach() + s[:, :, None, None, None] * eps
        x0_real = predict_x0(real, x_t, s, real_text, uncond=real_uncond, guidance=guidance)
        x0_fake = predict_x0(fake, x_t, s, fake_text)
        norm = (x.detach() - x0_real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)  # [B, 1, 1, 1, 1]
        direction = (x0_fake - x0_real) / norm
        target = x.detach() - direction
    loss = 0.5 * (x - target).square().mean()
    return loss, {"dmd_direction": float(direction.abs().mean()), "real_gap": float(norm.mean())}


def critic_loss(
    fake: CausalWanModel, x: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor, text: TextConditioning
) -> torch.Tensor:
    """Flow-matching loss of the fake score on generated clips x [B, F, C, H, W] (full attention)."""
    s = sigma[:, None].expand(x.shape[0], x.shape[1])
    x_t = (1 - s)[:, :, None, None, None] * x + s[:, :, None, None, None] * eps
    v = fake(x_t, s * 1000.0, text).float()
    return (v - (eps - x)).square().mean()


@dataclass
class DistillState:
    """Everything a distillation checkpoint holds."""

    step: int
    generator: CausalWanModel
    ema: CausalWanModel
    fake: CausalWanModel
    opt_generator: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer
    gen: torch.Generator
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    segments: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _new_state(cfg: DistillConfig, teacher: CausalWanModel, init: CausalWanModel | None = None) -> DistillState:
    generator = copy.deepcopy(init if init is not None else teacher).train().requires_grad_(True)
    fake = copy.deepcopy(teacher).train().requires_grad_(True)
    opt_g = torch.optim.AdamW(
        generator.parameters(), lr=cfg.lr_generator, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    opt_c = torch.optim.AdamW(fake.parameters(), lr=cfg.lr_critic, betas=cfg.betas, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    return DistillState(0, generator, copy.deepcopy(generator).requires_grad_(False), fake, opt_g, opt_c, gen)


def save_checkpoint(state: DistillState, cfg: DistillConfig, path: Path) -> None:
    """Write a resumable checkpoint atomically."""
    tensors = {
        "generator": state.generator.state_dict(),
        "ema": state.ema.state_dict(),
        "fake": state.fake.state_dict(),
        "opt_generator": state.opt_generator.state_dict(),
        "opt_critic": state.opt_critic.state_dict(),
        "gen": state.gen.get_state(),
    }
    write_stage(path, cfg, state, tensors)


def load_checkpoint(
    cfg: DistillConfig, teacher: CausalWanModel, path: Path, init: CausalWanModel | None = None
) -> DistillState:
    """Resume a distillation run (same settings; only ``steps`` may change)."""
    raw = read_stage(path, cfg)
    state = _new_state(cfg, teacher, init)
    state.generator.load_state_dict(raw["generator"])
    state.ema.load_state_dict(raw["ema"])
    state.fake.load_state_dict(raw["fake"])
    state.opt_generator.load_state_dict(raw["opt_generator"])
    state.opt_critic.load_state_dict(raw["opt_critic"])
    state.gen.set_state(raw["gen"])
    restore_progress(state, raw)
    return state


def distill(
    cfg: DistillConfig,
    teacher: CausalWanModel,
    text_encoder: ToyTextEncoder,
    checkpoint: Path,
    *,
    init: CausalWanModel | None = None,
    pairs: OdePairs | None = None,
    world: WorldConfig | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    validate: Callable[[CausalWanModel], dict[str, float]] | None = None,
    command: str = "",
) -> DistillState:
    """Run (or resume) the DMD stage from a stage-1 teacher.

    Args:
        cfg: Settings.
        teacher: The stage-1 DiT (frozen here; it is the real score and the initial fake score).
        text_encoder: The stage-1 caption embedding (frozen; the generator keeps it).
        checkpoint: Checkpoint path (written every ``checkpoint_every`` updates and at the end).
        init: The initial generator (the ODE-initialised student); None = the teacher.
        pairs: The teacher's ODE pairs of the regression term (needed when ``cfg.regression_weight`` > 0).
        world: World the captions and scenes come from.
        resume: Continue from ``checkpoint``.
        on_step: Called after every generator update with (updates done, numbers).
        validate: Called with the generator EMA every ``validate_every`` updates; its numbers join the history.
        command: Command line recorded with the run's segments.

    Returns:
        The final state (its ``ema`` is the student to export).
    """
    world = world or WorldConfig()
    if cfg.regression_weight > 0 and pairs is None:
        raise ValueError("regression_weight > 0 needs the ODE pairs (stage 1b)")
    teacher = teacher.eval().requires_grad_(False)
    text_encoder = text_encoder.eval().requires_grad_(False)
    sampler_cfg = cfg.sampler_config()
    policy = methods.build_policy(methods.get(cfg.method))
    chunks = cfg.num_frames // sampler_cfg.chunk_frames
    n_steps = len(sampler_cfg.denoising_steps)
    if resume:
        if not checkpoint.is_file():
            raise UserError(f"--resume: no distillation checkpoint at {checkpoint}", "start without --resume")
        state = load_checkpoint(cfg, teacher, checkpoint, init)
    else:
        state = _new_state(cfg, teacher, init)
    state.segments.append({"command": command, "to_step": cfg.steps, "threads": torch.get_num_threads()})
    with torch.no_grad():
        uncond_1 = text_encoder.encode([""])
    wall0, cpu0 = time.perf_counter() - state.seconds, time.process_time() - state.cpu_seconds

    def scenes(index: int) -> list[str]:
        """Captions of the ``index``-th rollout of the run (scene seeds never reused, as in stage 1)."""
        first = cfg.seed * 10**9 + index * cfg.batch_size
        return [sample_scene(s, world).caption for s in range(first, first + cfg.batch_size)]

    def rollout(captions: list[str], grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            context = text_encoder.encode(captions)  # [B, Lt, text_dim]
        with torch.set_grad_enabled(grad):
            text = state.generator.encode_text(context)
        noise = torch.randn(len(captions), cfg.num_frames, *_latent_shape(teacher), generator=state.gen)
        exits = torch.randint(0, n_steps, (chunks,), generator=state.gen).tolist()
        return self_rollout(state.generator, text, noise, sampler_cfg, policy, exits, state.gen, grad=grad), context

    while state.step < cfg.steps:
        s = state.step
        warm = min(1.0, (s + 1) / max(1, cfg.warmup_steps))
        for group in state.opt_generator.param_groups:
            group["lr"] = cfg.lr_generator * warm
        for group in state.opt_critic.param_groups:
            group["lr"] = cfg.lr_critic * warm
        row: dict[str, float] = {"step": s + 1}
        # Critic (fake score) updates on fresh rollouts of the current generator.
        critic_values = []
        for k in range(cfg.critic_updates):
            with torch.no_grad():
                x, context = rollout(scenes(s * (cfg.critic_updates + 1) + k), grad=False)
            sigma = cfg.draw_sigma(cfg.batch_size, state.gen)
            eps = torch.randn(x.shape, generator=state.gen)
            loss_c = critic_loss(state.fake, x, sigma, eps, state.fake.encode_text(context))
            state.opt_critic.zero_grad(set_to_none=True)
            loss_c.backward()
            torch.nn.utils.clip_grad_norm_(state.fake.parameters(), cfg.grad_clip)
            state.opt_critic.step()
            critic_values.append(float(loss_c.detach()))
        if critic_values:
            row["critic_loss"] = sum(critic_values) / len(critic_values)
        # Generator update: self-rollout with gradient, DMD against the teacher and the fake score.
        x, context = rollout(scenes(s * (cfg.critic_updates + 1) + cfg.critic_updates), grad=True)
        sigma = cfg.draw_sigma(cfg.batch_size, state.gen)
        eps = torch.randn(x.shape, generator=state.gen)
        with torch.no_grad():
            real_text = teacher.encode_text(context)
            real_uncond = teacher.encode_text(uncond_1.expand(cfg.batch_size, -1, -1))
            fake_text = state.fake.encode_text(context)
        loss_g, info = dmd_loss(x, sigma, eps, teacher, real_text, real_uncond, state.fake, fake_text, cfg.guidance)
        info["dmd_loss"] = float(loss_g.detach())
        if cfg.regression_weight > 0:
            assert pairs is not None
            reg = regression_loss(
                state.generator, text_encoder, pairs, state.gen, cfg.batch_size, sampler_cfg.chunk_frames
            )
            info["regression_loss"] = float(reg.detach())
            loss_g = loss_g + cfg.regression_weight * reg
        state.opt_generator.zero_grad(set_to_none=True)
        loss_g.backward()
        row["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(state.generator.parameters(), cfg.grad_clip))
        state.opt_generator.step()
        state.step = s + 1
        if state.step == cfg.ema_start:
            state.ema.load_state_dict(state.generator.state_dict())
        elif state.step > cfg.ema_start:
            with torch.no_grad():
                for e, p in zip(state.ema.parameters(), state.generator.parameters(), strict=True):
                    e.lerp_(p, 1 - cfg.ema_decay)
        else:
            state.ema.load_state_dict(state.generator.state_dict())
        row.update(info)
        row["seconds"] = time.perf_counter() - wall0
        row["cpu_seconds"] = time.process_time() - cpu0
        state.seconds, state.cpu_seconds = row["seconds"], row["cpu_seconds"]
        if validate is not None and (state.step % cfg.validate_every == 0 or state.step == cfg.steps):
            row.update(validate(state.ema))
        state.history.append(row)
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            save_checkpoint(state, cfg, checkpoint)
        if on_step is not None:
            on_step(state.step, row)
    return state


def _latent_shape(dit: CausalWanModel) -> tuple[int, int, int]:
    from deepforcing.toyworld.model import toy_preset

    preset = toy_preset()
    return (dit.cfg.in_dim, preset.latent_height, preset.latent_width)

"""Stage 1b of the toy training: ODE initialisation of the causal few-step student (as CausVid and Self-Forcing).

The teacher (full attention, classifier-free guidance) integrates its flow ODE from Gaussian noise for
``trajectories`` clips of held-apart captions. Each trajectory is kept as an *ODE pair*: the states it passes at
the student's noise levels (the sampler's 4 timesteps after the shift, on the integration grid) and the clip it
ends at. The student, initialised from the teacher, then regresses block-causally from those states to the
endpoint: each 3-frame chunk is drawn at one of the student's noise levels, and with probability
:data:`P_CLEAN_CONTEXT` a random number of leading chunks are given clean (the context the student's own KV cache
holds at inference). Self-Forcing initialises its DMD stage from such a student (their ``ode_init`` checkpoint).

The same regression is added to the DMD loss of stage 2 (``DistillConfig.regression_weight``), as the first DMD
paper (Yin et al. 2024) adds a regression loss on noise–image pairs of the teacher to keep the student from
collapsing onto the modes the guided teacher prefers. Measured on the toy world (docs/toyworld.md, "ODE
initialisation"): DMD alone slows the student's shapes to 0.74 px/frame against the renderer's 1.00; this stage
and the regression term keep them at 0.92.

Deterministic on one thread; resumable from its checkpoint (the pairs are stored in it as they are made).
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
from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel
from deepforcing.toyworld.flow import predict_x0, shifted_sigmas
from deepforcing.toyworld.stage_checkpoint import read_stage, restore_progress, write_stage
from deepforcing.toyworld.text import ToyTextEncoder
from deepforcing.toyworld.world import WorldConfig, sample_scene

log = logging.getLogger(__name__)

#: Trajectory ``i`` of a run with seed ``s`` is the caption of scene ``ODE_SEED_BASE + s·10⁶ + i``.
ODE_SEED_BASE = 3 * 10**9
#: Probability that a regression clip gets a random number of clean leading chunks (teacher-forced context).
P_CLEAN_CONTEXT = 0.5


@dataclass(frozen=True)
class OdeInitConfig:
    """Settings of the ODE-initialisation stage.

    Attributes:
        trajectories: Teacher ODE trajectories (pairs) to make.
        ode_steps: Steps of the teacher's integration grid (shifted like its sampler); the student's noise
            levels are added to it so that the trajectory passes through them exactly.
        ode_shift: Shift of the integration grid.
        guidance: Classifier-free guidance scale of the teacher (the DMD stage's real score uses the same).
        steps: Regression steps of the student.
        batch_size: Trajectories per integration batch and clips per regression step.
        lr: AdamW learning rate of the regression (constant).
        weight_decay: AdamW weight decay.
        grad_clip: Gradient-norm clip.
        method: Method preset whose sampler (noise levels, chunk size) the student is made for.
        num_frames: Frames per trajectory (the trained horizon).
        seed: Seeds the captions, the noise and the regression draws.
        checkpoint_every: Regression steps between checkpoints (pairs are checkpointed after every batch).
    """

    trajectories: int = 128
    ode_steps: int = 24
    ode_shift: float = 3.0
    guidance: float = 3.0
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    method: str = "self-forcing"
    num_frames: int = 21
    seed: int = 0
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        if self.trajectories < 1 or self.ode_steps < 1 or self.steps < 0 or self.batch_size < 1:
            raise UserError(
                f"bad ODE-initialisation sizes: trajectories {self.trajectories}, ode_steps {self.ode_steps}, "
                f"steps {self.steps}, batch {self.batch_size}"
            )

    @property
    def batches(self) -> int:
        """Integration batches (the last may be smaller)."""
        return -(-self.trajectories // self.batch_size)

    def student_sigmas(self) -> tuple[float, ...]:
        """The student's noise levels (its sampler's timesteps after the shift, / 1000), first = noisiest."""
        cfg = methods.get(self.method).sampler_config
        return tuple(round(float(t) / 1000.0, 6) for t in cfg.timesteps())

    def grid(self) -> list[float]:
        """Integration grid: the shifted ``ode_steps`` grid and the student's noise levels, descending, ending at 0."""
        base = [round(float(s), 6) for s in shifted_sigmas(self.ode_steps, self.ode_shift).tolist()]
        return sorted(set(base) | set(self.student_sigmas()) | {0.0}, reverse=True)


@dataclass
class OdePairs:
    """Teacher ODE trajectories (float16, so that 128 of them weigh 28 MB).

    Attributes:
        states: [N, S, F, C, H, W]: the state at each of the student's S noise levels.
        x0: [N, F, C, H, W]: where the trajectory ends.
        captions: N captions.
        sigmas: The S noise levels, noisiest first.
    """

    states: torch.Tensor
    x0: torch.Tensor
    captions: list[str]
    sigmas: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.captions)


@torch.no_grad()
def teacher_trajectories(
    teacher: CausalWanModel,
    text_encoder: ToyTextEncoder,
    captions: list[str],
    noise: torch.Tensor,
    grid: list[float],
    keep: tuple[float, ...],
    guidance: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate the teacher's guided flow ODE (Euler in the x0 / noise form) over ``grid``.

    Args:
        teacher: Full-attention teacher.
        text_encoder: Its caption embedding.
        captions: B captions.
        noise: Starting noise [B, F, C, H, W] at ``grid[0]`` (= 1).
        grid: Descending noise levels ending at 0.
        keep: Noise levels (members of ``grid``) whose states are returned.
        guidance: Classifier-free guidance scale.

    Returns:
        States [B, len(keep), F, C, H, W] and the endpoint [B, F, C, H, W] (float32).
    """
    missing = [s for s in keep if s not in grid]
    if missing or grid[-1] != 0.0:
        raise ValueError(f"grid must contain the kept levels {missing} and end at 0")
    b, f = noise.shape[:2]
    text = teacher.encode_text(text_encoder.encode(captions))
    uncond = teacher.encode_text(text_encoder.encode([""] * b))
    x, states = noise.float(), {}
    for s, s_next in zip(grid[:-1], grid[1:], strict=True):
        if s in keep:
            states[s] = x.clone()
        x0 = predict_x0(teacher, x, torch.full((b, f), s), text, uncond=uncond, guidance=guidance)
        eps = (x - (1 - s) * x0) / s
        x = (1 - s_next) * x0 + s_next * eps  # [B, F, C, H, W]
    return torch.stack([states[s] for s in keep], dim=1), x


def regression_loss(
    student: CausalWanModel,
    text_encoder: ToyTextEncoder,
    pairs: OdePairs,
    gen: torch.Generator,
    batch_size: int,
    chunk_frames: int,
) -> torch.Tensor:
    """Block-causal regression of the student from ODE states to the trajectories' endpoints.

    Each clip of the batch is a random pair; each chunk is drawn at one of the student's noise levels; with
    probability :data:`P_CLEAN_CONTEXT` the first ``k`` chunks (``k`` uniform) are the clean endpoint instead and
    are left out of the loss. Differentiable in the student's weights.

    Returns:
        Mean squared error of the student's x0 prediction on the noisy chunks (scalar).
    """
    n_sig = len(pairs.sigmas)
    f = pairs.x0.shape[1]
    chunks = f // chunk_frames
    idx = torch.randint(0, len(pairs), (batch_size,), generator=gen)
    level = torch.randint(0, n_sig, (batch_size, chunks), generator=gen)  # [B, chunks]
    teacher_forced = torch.rand(batch_size, generator=gen) < P_CLEAN_CONTEXT
    cut = torch.where(teacher_forced, torch.randint(0, chunks, (batch_size,), generator=gen), 0)  # [B]
    clean = (torch.arange(chunks)[None] < cut[:, None]).repeat_interleave(chunk_frames, 1)  # [B, F]
    level = level.repeat_interleave(chunk_frames, 1)  # [B, F]
    states = pairs.states[idx].float()  # [B, S, F, C, H, W]
    x0 = pairs.x0[idx].float()  # [B, F, C, H, W]
    pick = level[:, None, :, None, None, None].expand(-1, 1, -1, *states.shape[3:])
    x_t = torch.gather(states, 1, pick)[:, 0]  # [B, F, C, H, W]
    x_t = torch.where(clean[..., None, None, None], x0, x_t)
    sigma = torch.where(clean, 0.0, torch.tensor(pairs.sigmas)[level])  # [B, F]
    with torch.no_grad():
        context = text_encoder.encode([pairs.captions[i] for i in idx.tolist()])
    pred = predict_x0(student, x_t, sigma, student.encode_text(context), causal_chunk_frames=chunk_frames)
    err = (pred - x0).square().mean(dim=(2, 3, 4))  # [B, F]
    noisy = (~clean).float()
    return (err * noisy).sum() / noisy.sum()


@dataclass
class OdeInitState:
    """Everything an ODE-initialisation checkpoint holds (resume continues bit-for-bit on one thread)."""

    step: int
    states: list[torch.Tensor]
    x0: list[torch.Tensor]
    captions: list[str]
    student: CausalWanModel
    optimizer: torch.optim.Optimizer
    gen: torch.Generator
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)
    segments: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def pairs(self, cfg: OdeInitConfig) -> OdePairs:
        """The trajectories made so far."""
        return OdePairs(torch.cat(self.states), torch.cat(self.x0), list(self.captions), cfg.student_sigmas())


def _new_state(cfg: OdeInitConfig, teacher: CausalWanModel) -> OdeInitState:
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return OdeInitState(0, [], [], [], student, opt, torch.Generator().manual_seed(cfg.seed + 3))


def _save(state: OdeInitState, cfg: OdeInitConfig, path: Path) -> None:
    tensors = {
        "states": state.states,
        "x0": state.x0,
        "captions": state.captions,
        "student": state.student.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "gen": state.gen.get_state(),
    }
    write_stage(path, cfg, state, tensors)


def _load(cfg: OdeInitConfig, teacher: CausalWanModel, path: Path) -> OdeInitState:
    raw = read_stage(path, cfg)
    state = _new_state(cfg, teacher)
    state.student.load_state_dict(raw["student"])
    state.optimizer.load_state_dict(raw["optimizer"])
    state.gen.set_state(raw["gen"])
    state.states, state.x0, state.captions = raw["states"], raw["x0"], raw["captions"]
    restore_progress(state, raw)
    return state


def ode_init(
    cfg: OdeInitConfig,
    teacher: CausalWanModel,
    text_encoder: ToyTextEncoder,
    checkpoint: str | Path,
    *,
    world: WorldConfig | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    command: str = "",
) -> OdeInitState:
    """Run (or resume) the stage: make the teacher's trajectories, then regress the student on them.

    Args:
        cfg: Settings.
        teacher: The stage-1 DiT (frozen; it is also the student's initialisation).
        text_encoder: The stage-1 caption embedding (frozen).
        checkpoint: Checkpoint path.
        world: World the captions come from.
        resume: Continue from ``checkpoint`` (a finished stage is returned as it is).
        on_step: Called after every integration batch and regression step with (units done, numbers); the
            stage has ``cfg.batches + cfg.steps`` units.
        command: Command line recorded with the run's segments.

    Returns:
        The final state (its ``student`` initialises stage 2; ``pairs(cfg)`` feeds its regression term).
    """
    world = world or WorldConfig()
    teacher = teacher.eval().requires_grad_(False)
    text_encoder = text_encoder.eval().requires_grad_(False)
    ckpt = Path(checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if resume:
        if not ckpt.is_file():
            raise UserError(f"--resume: no ODE-initialisation checkpoint at {ckpt}", "start without --resume")
        state = _load(cfg, teacher, ckpt)
    else:
        if ckpt.exists():
            raise UserError(f"{ckpt} already exists", "pass --resume to continue it, or a new --out")
        state = _new_state(cfg, teacher)
    if len(state.captions) >= cfg.trajectories and state.step >= cfg.steps:
        return state
    state.segments.append({"command": command, "to_step": cfg.steps, "threads": torch.get_num_threads()})
    wall0, cpu0 = time.perf_counter() - state.seconds, time.process_time() - state.cpu_seconds
    sampler = methods.get(cfg.method).sampler_config
    grid, keep = cfg.grid(), cfg.student_sigmas()
    latent = teacher.cfg.in_dim
    from deepforcing.toyworld.model import toy_preset

    preset = toy_preset()

    def clock(row: dict[str, float]) -> None:
        row["seconds"], row["cpu_seconds"] = time.perf_counter() - wall0, time.process_time() - cpu0
        state.seconds, state.cpu_seconds = row["seconds"], row["cpu_seconds"]

    while len(state.captions) < cfg.trajectories:
        first = len(state.captions)
        b = min(cfg.batch_size, cfg.trajectories - first)
        base = ODE_SEED_BASE + cfg.seed * 10**6 + first
        captions = [sample_scene(s, world).caption for s in range(base, base + b)]
        noise = torch.randn(b, cfg.num_frames, latent, preset.latent_height, preset.latent_width, generator=state.gen)
        states, x0 = teacher_trajectories(teacher, text_encoder, captions, noise, grid, keep, cfg.guidance)
        state.states.append(states.half())
        state.x0.append(x0.half())
        state.captions.extend(captions)
        row: dict[str, float] = {"trajectories": len(state.captions)}
        clock(row)
        _save(state, cfg, ckpt)
        if on_step is not None:
            on_step(-(-len(state.captions) // cfg.batch_size), row)
    pairs = state.pairs(cfg)
    student = state.student.train()
    while state.step < cfg.steps:
        loss = regression_loss(student, text_encoder, pairs, state.gen, cfg.batch_size, sampler.chunk_frames)
        if not torch.isfinite(loss):
            raise UserError(f"ODE regression loss became {float(loss)} at step {state.step}", "lower the lr")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip))
        state.optimizer.step()
        state.step += 1
        row = {"step": state.step, "loss": float(loss.detach()), "grad_norm": grad_norm}
        clock(row)
        state.history.append(row)
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            _save(state, cfg, ckpt)
        if on_step is not None:
            on_step(cfg.batches + state.step, row)
    state.segments[-1]["to_step"] = state.step
    _save(state, cfg, ckpt)
    return state

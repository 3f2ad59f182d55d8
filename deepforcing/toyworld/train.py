"""Train the toy-world model: causal flow matching on clips of the trained horizon, block-causal in chunks.

Objective. Every training clip is the first ``num_frames`` (21) frames of a freshly drawn scene, encoded with the
pixel-unshuffle latent. The clip is split into chunks of 3 frames; each chunk gets its own timestep and the DiT
sees the whole clip in one call with the block-causal mask (``causal_chunk_frames=3``): a chunk attends to
itself and to earlier chunks, exactly the view that chunk-wise cached generation gives it. The loss is the MSE
between the predicted flow and ``v = ε − x0`` on the noisy chunks.

Noise layouts, mixed per clip:

* *diffusion forcing* (probability ``1 − p_teacher``): every chunk at an independent timestep. Later chunks learn
  to continue from partly noisy pasts, which makes them robust to an imperfect context;
* *teacher forcing* (``p_teacher``): a random chunk ``c`` is noisy and every chunk before it is clean (t = 0)
  and not scored — the exact regime of generation, where the cache holds the t = 0 pass over the model's own
  finished chunks; chunks after ``c`` are noisy at independent timesteps and scored too.

Timesteps are drawn uniformly from the shifted 1000-entry table of ``FlowSchedule(shift)`` — the same table the
sampler uses — so training and sampling agree on what every timestep means. The model's output head is
zero-initialised (it first predicts v = 0); the shipped weights are an exponential moving average.

Everything is deterministic for a seed on one thread: scene ``i`` of step ``s`` is drawn from seed
``seed·10⁹ + s·batch + i``, noise and timesteps from one ``torch.Generator``. Training can resume from its
checkpoint (``--resume``, same options) and then continues exactly as an uninterrupted run would; a larger
``--steps`` extends the run but changes the learning-rate schedule from the resume point on.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
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
from deepforcing.toyworld import latent
from deepforcing.toyworld.model import PRESET_NAME, ToySampling, new_text_encoder, save_bundle, toy_preset
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
        p_teacher: Share of clips in the teacher-forcing layout (clean past, see the module docs).
        validation_clips: Clips of the fixed validation batch.
        validate_every: Steps between validation losses.
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
    validation_clips: int = 16
    validate_every: int = 250
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise UserError(f"steps and batch size must be positive, got {self.steps}, {self.batch_size}")
        if self.num_frames % self.chunk_frames:
            raise UserError(f"num_frames {self.num_frames} must be a multiple of chunk_frames {self.chunk_frames}")
        if not 0 <= self.p_teacher <= 1:
            raise UserError(f"p_teacher must be in [0, 1], got {self.p_teacher}")

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
        x0: Clean latents [B, F, 48, 8, 8].
        captions: One caption per clip.
    """

    x0: torch.Tensor
    captions: list[str]


def make_batch(seeds: list[int], world: WorldConfig, num_frames: int) -> Batch:
    """Render the first ``num_frames`` frames of the scenes drawn from ``seeds``."""
    scenes = [sample_scene(s, world) for s in seeds]
    frames = torch.stack([sc.render(num_frames) for sc in scenes])  # [B, F, H, W, 3]
    return Batch(latent.encode(frames), [sc.caption for sc in scenes])


def noise_layout(cfg: TrainConfig, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-chunk table indices and loss mask.

    Returns:
        index: long [B, chunks] into the shifted timestep table, or -1 for a clean (t = 0) chunk.
        scored: bool [B, chunks], True where the chunk's loss counts.
    """
    chunks = cfg.num_frames // cfg.chunk_frames
    index = torch.randint(0, 1000, (batch_size, chunks), generator=gen)
    teacher = torch.rand(batch_size, generator=gen) < cfg.p_teacher  # [B]
    first_noisy = torch.randint(0, chunks, (batch_size,), generator=gen)  # [B]
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

    Returns:
        Scalar loss: mean squared error over the scored chunks' elements.
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
    target = noise - batch.x0
    text = dit.encode_text(text_encoder(text_encoder.tokenize(batch.captions)))
    pred = dit(x_t, t_f, text, causal_chunk_frames=cfg.chunk_frames)  # [B, F, C, H, W]
    err = (pred.float() - target).square().mean(dim=(2, 3, 4))  # [B, F]
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
    """Everything a checkpoint holds (resume continues bit-for-bit on one thread)."""

    step: int
    dit: CausalWanModel
    text: ToyTextEncoder
    ema_dit: CausalWanModel
    ema_text: ToyTextEncoder
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    seconds: float = 0.0
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
    if state.segments:
        state.segments[-1]["to_step"] = state.step  # how far the current command got
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": dataclasses.asdict(cfg),
            "step": state.step,
            "dit": state.dit.state_dict(),
            "text": state.text.state_dict(),
            "ema_dit": state.ema_dit.state_dict(),
            "ema_text": state.ema_text.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "generator": state.generator.get_state(),
            "seconds": state.seconds,
            "history": state.history,
            "segments": state.segments,
        },
        tmp,
    )
    tmp.replace(path)


def _load_checkpoint(cfg: TrainConfig, path: Path) -> TrainState:
    raw = torch.load(path, map_location="cpu", weights_only=True)
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["config"].items()}
    changed = {k for k, v in dataclasses.asdict(cfg).items() if k != "steps" and saved.get(k) != v}
    if changed:
        raise UserError(
            f"--resume: checkpoint {path} was written with different settings ({', '.join(sorted(changed))})",
            "resume with the same options (only --steps may change) or use a new --out",
        )
    state = _new_state(cfg)
    state.dit.load_state_dict(raw["dit"])
    state.text.load_state_dict(raw["text"])
    state.ema_dit.load_state_dict(raw["ema_dit"])
    state.ema_text.load_state_dict(raw["ema_text"])
    state.optimizer.load_state_dict(raw["optimizer"])
    state.generator.set_state(raw["generator"])
    state.step, state.seconds, state.history = raw["step"], raw["seconds"], raw["history"]
    # Checkpoints written before segments were recorded: the first command follows from its saved settings.
    first = raw["config"]
    state.segments = raw.get("segments") or [
        {
            "command": f"deepforcing-eval toyworld train --steps {first['steps']} --batch-size {first['batch_size']} "
            f"--lr {first['lr']:g} --seed {first['seed']} --out OUT",
            "to_step": raw["step"],
            "threads": 1,
        }
    ]
    return state


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)


@torch.no_grad()
def validation_loss(dit: CausalWanModel, text: ToyTextEncoder, cfg: TrainConfig, world: WorldConfig) -> float:
    """Loss on a fixed held-out batch with fixed noise and layout (comparable across steps and runs)."""
    n = cfg.validation_clips
    batch = make_batch([VALIDATION_SEED_BASE + i for i in range(n)], world, cfg.num_frames)
    gen = torch.Generator().manual_seed(12345)
    index, scored = noise_layout(cfg, n, gen)
    noise = torch.randn(batch.x0.shape, generator=gen)
    was_training = dit.training
    dit.eval()
    loss = float(flow_loss(dit, text, batch, index, scored, noise, cfg))
    dit.train(was_training)
    return loss


def train(
    cfg: TrainConfig,
    out: str | Path,
    *,
    world: WorldConfig | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run (or resume) a training run and export the EMA weights as a toy bundle in ``out``.

    Args:
        cfg: Training settings.
        out: Output directory: bundle files, ``loss.csv``, ``loss.svg``, ``checkpoint.pt``.
        world: World settings the clips are drawn from (default :class:`WorldConfig`).
        resume: Continue from ``out/checkpoint.pt``.
        on_step: Called after every step with (steps done, row of numbers).
        command: Command line recorded in the model card.

    Returns:
        The model card written to ``out/card.json``.
    """
    world = world or WorldConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.is_file():
            raise UserError(f"--resume: no checkpoint at {ckpt}", "start without --resume")
        state = _load_checkpoint(cfg, ckpt)
        log.info("resuming at step %d of %d", state.step, cfg.steps)
    else:
        if ckpt.exists():
            raise UserError(f"{out} already holds a training run", "pass --resume to continue it, or a new --out")
        state = _new_state(cfg)
    state.dit.train()
    params = list(state.dit.parameters()) + list(state.text.parameters())
    smooth = state.history[-1]["loss_smooth"] if state.history else float("nan")
    if not state.history:
        state.history.append({"step": 0, "val_loss": validation_loss(state.ema_dit, state.ema_text, cfg, world)})
    t_start = time.perf_counter() - state.seconds
    state.segments.append({"command": command, "to_step": cfg.steps, "threads": torch.get_num_threads()})
    while state.step < cfg.steps:
        s = state.step
        lr = cfg.learning_rate(s)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        seeds = [cfg.seed * 10**9 + s * cfg.batch_size + i for i in range(cfg.batch_size)]
        batch = make_batch(seeds, world, cfg.num_frames)
        index, scored = noise_layout(cfg, cfg.batch_size, state.generator)
        noise = torch.randn(batch.x0.shape, generator=state.generator)
        loss = flow_loss(state.dit, state.text, batch, index, scored, noise, cfg)
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
            "lr": lr,
            "grad_norm": grad_norm,
            "seconds": time.perf_counter() - t_start,
        }
        if state.step % cfg.validate_every == 0 or state.step == cfg.steps:
            row["val_loss"] = validation_loss(state.ema_dit, state.ema_text, cfg, world)
        state.history.append(row)
        state.seconds = row["seconds"]
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            _save_checkpoint(state, cfg, ckpt)
            write_loss_curve(state.history, out)
        if on_step is not None:
            on_step(state.step, row)
    state.segments[-1]["to_step"] = state.step
    card = model_card(cfg, world, state, command)
    save_bundle(out, state.ema_dit, state.ema_text, card)
    write_loss_curve(state.history, out)
    (out / "MODEL_CARD.md").write_text(render_model_card(card))
    return card


def model_card(cfg: TrainConfig, world: WorldConfig, state: TrainState, command: str) -> dict[str, Any]:
    """The machine-readable model card of a finished run."""
    rows = [r for r in state.history if "loss" in r]
    last = rows[-min(100, len(rows)) :]
    vals = [r for r in state.history if "val_loss" in r]
    preset = toy_preset()
    return {
        "preset": PRESET_NAME,
        "wan": _jsonable(preset.wan),
        "latent": {"kind": "pixel_unshuffle", "factor": latent.FACTOR, "channels": latent.CHANNELS, "temporal": 1},
        "world": _jsonable(world),
        "training": _jsonable(cfg),
        "sampling": _jsonable(ToySampling(shift=cfg.shift)),
        "run": {
            "command": command,
            "segments": state.segments,
            "steps": state.step,
            "clips_seen": state.step * cfg.batch_size,
            "wall_seconds": round(state.seconds, 1),
            "final_loss_mean_last_100": round(sum(r["loss"] for r in last) / max(1, len(last)), 5),
            "final_val_loss": round(vals[-1]["val_loss"], 5) if vals else None,
            "initial_val_loss": round(vals[0]["val_loss"], 5) if vals else None,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "weights_dtype": "float16",
            "parameters": sum(p.numel() for p in state.dit.parameters())
            + sum(p.numel() for p in state.text.parameters()),
        },
    }


def _jsonable(cfg: Any) -> dict[str, Any]:
    """A frozen dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def render_model_card(card: dict[str, Any]) -> str:
    """Markdown model card from the machine-readable one (the hand-written findings live in MODEL_CARD.md)."""
    run = card["run"]
    lines = [
        "# toyworld — causal Wan DiT trained on the toy world",
        "",
        f"- preset `{card['preset']}`: `{json.dumps(card['wan'])}`",
        f"- parameters: {run['parameters']:,} (weights stored as {run['weights_dtype']})",
        "- latent: 4×4 pixel-unshuffle, 48 channels at 8×8 for 32×32 RGB; one latent frame = one video frame",
        f"- sampling: `{json.dumps(card['sampling'])}` (chunk-wise engine, 3-frame chunks)",
        f"- training: `{json.dumps(card['training'])}`",
        f"- world: `{json.dumps(card['world'])}`",
        "- commands (in order; a resumed run lists each part with the step it ran to and its CPU threads):",
        *(f"  - `{seg['command']}` → step {seg['to_step']}, {seg['threads']} thread(s)" for seg in run["segments"]),
        f"- steps: {run['steps']} ({run['clips_seen']} clips), wall time {run['wall_seconds']} s, "
        f"torch {run['torch']}, {run['threads']} thread(s)",
        f"- final training loss (mean of last 100 steps): {run['final_loss_mean_last_100']}; "
        f"validation loss {run['initial_val_loss']} → {run['final_val_loss']}",
        "",
    ]
    return "\n".join(lines)


def write_loss_curve(history: list[dict[str, float]], out: Path) -> None:
    """Write ``loss.csv`` (every step) and ``loss.svg`` (smoothed training loss and validation loss, log scale)."""
    fields = ["step", "loss", "loss_smooth", "val_loss", "lr", "grad_norm", "seconds"]
    with (out / "loss.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{row[k]:.6g}" if k in row else "") for k in fields})
    (out / "loss.svg").write_text(loss_svg(history))


def loss_svg(history: list[dict[str, float]], width: int = 640, height: int = 360) -> str:
    """A self-contained SVG line chart of the loss history (log-scaled y)."""
    train_pts = [(r["step"], r["loss_smooth"]) for r in history if "loss_smooth" in r]
    val_pts = [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]
    pts = train_pts + val_pts
    if not pts:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>\n'
    left, right, top, bottom = 60, 20, 20, 40
    x_max = max(1.0, max(p[0] for p in pts))
    ys = [math.log10(max(p[1], 1e-8)) for p in pts]
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-6:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5

    def xy(step: float, value: float) -> str:
        x = left + (width - left - right) * step / x_max
        y = top + (height - top - bottom) * (y_hi - math.log10(max(value, 1e-8))) / (y_hi - y_lo)
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
    ]
    for k in range(5):
        v = y_lo + (y_hi - y_lo) * k / 4
        y = top + (height - top - bottom) * (y_hi - v) / (y_hi - y_lo)
        parts.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{10**v:.3g}</text>')
    for k in range(5):
        s = x_max * k / 4
        x = left + (width - left - right) * k / 4
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 15}" text-anchor="middle">{s:.0f}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 5}" text-anchor="middle">step</text>')
    if train_pts:
        path = " ".join(xy(*p) for p in train_pts[:: max(1, len(train_pts) // 800)])
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path}"/>')
    if val_pts:
        path = " ".join(xy(*p) for p in val_pts)
        parts.append(f'<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="{path}"/>')
        parts += [
            f'<circle cx="{xy(*p).split(",")[0]}" cy="{xy(*p).split(",")[1]}" r="2.5" fill="#d62728"/>' for p in val_pts
        ]
    parts.append(
        f'<text x="{width - right}" y="{top + 10}" text-anchor="end" fill="#1f77b4">train loss (EMA 0.98)</text>'
    )
    parts.append(
        f'<text x="{width - right}" y="{top + 25}" text-anchor="end" fill="#d62728">validation loss (EMA '
        "weights)</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

"""The toy model's training recipe: autoencoder, teacher, ODE-initialised student, DMD student, then export.

Stage 0 trains the autoencoder, stage 1 the teacher, stage 1b regresses the student on the teacher's ODE
trajectories, stage 2 distils it by self-rollout and DMD. ``deepforcing-eval toyworld train --out DIR`` runs
:func:`train_toy_model`. The directory holds

* ``autoencoder.pt`` / ``teacher.pt`` / ``ode.pt`` / ``distill.pt`` — resumable checkpoints of the four stages
  (``--resume`` continues whichever is unfinished; a finished stage is not re-run);
* the bundle the engine loads (``generator.safetensors``, ``text_encoder.safetensors``, ``vocab.json``,
  ``card.json``, ``autoencoder.safetensors``, see :mod:`deepforcing.toyworld.model`) — the student's EMA weights
  and the autoencoder;
* ``MODEL_CARD.md``; ``autoencoder.csv`` (stage 0, every step); ``loss.csv`` / ``loss.svg`` (stage 1, every
  step), ``ode.csv`` (stage 1b, every regression step) and ``distill.csv`` / ``distill.svg`` (stage 2, every
  generator update, with the oracle's numbers of the student every ``validate_every`` updates).

Every stage records wall and process CPU seconds, so the card states what the run cost.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepforcing import methods
from deepforcing.errors import UserError
from deepforcing.model.wan import CausalWanModel
from deepforcing.noise import NoiseStream
from deepforcing.samplers.chunkwise import ChunkwiseSampler
from deepforcing.toyworld.autoencoder import (
    FACTOR,
    AutoencoderConfig,
    AutoencoderState,
    ToyAutoencoder,
    train_autoencoder,
)
from deepforcing.toyworld.distill import DistillConfig, DistillState, distill
from deepforcing.toyworld.flow import sample_ode
from deepforcing.toyworld.model import PRESET_NAME, ToySampling, save_bundle, toy_preset
from deepforcing.toyworld.ode import OdeInitConfig, OdeInitState, ode_init
from deepforcing.toyworld.oracle import score_video
from deepforcing.toyworld.stage_checkpoint import config_json
from deepforcing.toyworld.text import ToyTextEncoder
from deepforcing.toyworld.train import VALIDATION_SEED_BASE, TrainConfig, TrainState, train_teacher
from deepforcing.toyworld.world import WorldConfig, sample_scene

log = logging.getLogger(__name__)

AUTOENCODER_CHECKPOINT = "autoencoder.pt"
TEACHER_CHECKPOINT = "teacher.pt"
ODE_CHECKPOINT = "ode.pt"
DISTILL_CHECKPOINT = "distill.pt"
#: Oracle numbers recorded while training (on validation scenes, first 21 frames).
TRACKED = ("presence", "colour_error", "motion")


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a toy training run.

    Attributes:
        autoencoder: Stage-0 settings (the latent space).
        teacher: Stage-1 settings.
        ode: Stage-1b settings (the ODE-regressed student and the regression pairs of stage 2); None skips the
            stage (as the shipped run does).
        distill: Stage-2 settings.
        distill_init: What the DMD generator starts from: ``"teacher"`` (its block-causal mode) or ``"ode"`` (the
            stage-1b student; needs ``ode``).
        merge: Weight ``a`` of the exported student ``(1 − a)·DMD EMA + a·ODE student``, a weight-space
            interpolation of the two fine-tunes of the teacher (WiSE-FT); 0 exports the DMD EMA (needs ``ode``
            when > 0).
        world: The world the clips come from.
        validation_scenes: Validation scenes the oracle checks while training (seeds from 10¹²).
        oracle_steps: Flow-ODE steps of the teacher's samples that the oracle checks.
    """

    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    teacher: TrainConfig = field(default_factory=TrainConfig)
    ode: OdeInitConfig | None = None
    distill: DistillConfig = field(default_factory=DistillConfig)
    distill_init: str = "teacher"
    merge: float = 0.0
    world: WorldConfig = field(default_factory=WorldConfig)
    validation_scenes: int = 4
    oracle_steps: int = 24

    def __post_init__(self) -> None:
        if self.distill_init not in ("teacher", "ode"):
            raise UserError(f"distill_init must be 'teacher' or 'ode', got {self.distill_init!r}")
        if not 0.0 <= self.merge <= 1.0:
            raise UserError(f"merge must be in [0, 1], got {self.merge}")
        needs = [
            name
            for name, on in (
                ("--dmd-init ode", self.distill_init == "ode"),
                ("--merge", self.merge > 0),
                ("--regression-weight", self.distill.regression_weight > 0),
            )
            if on
        ]
        if needs and self.ode is None:
            raise UserError(
                f"{', '.join(needs)} needs the ODE-initialised student of stage 1b",
                "pass --ode-steps N (e.g. 300) as well",
            )


def merge_students(dmd: CausalWanModel, ode: CausalWanModel, a: float) -> CausalWanModel:
    """``(1 − a)·dmd + a·ode`` for every floating-point weight and buffer (the two share the teacher's layout)."""
    out = copy.deepcopy(dmd)
    other = ode.state_dict()
    with torch.no_grad():
        out.load_state_dict(
            {
                k: torch.lerp(v, other[k].to(v.dtype), a) if v.is_floating_point() else v
                for k, v in dmd.state_dict().items()
            }
        )
    return out.eval()


@torch.no_grad()
def student_oracle(
    dit: CausalWanModel,
    text_encoder: ToyTextEncoder,
    autoencoder: ToyAutoencoder,
    method: str,
    scenes: list[int],
    world: WorldConfig,
) -> dict[str, float]:
    """Oracle means over the first 21 frames of scenes generated by the engine's sampler with ``method``.

    Args:
        dit: The causal student.
        text_encoder: Its caption embedding.
        autoencoder: The latent space.
        method: Method preset (sampler settings and cache policy).
        scenes: Scene seeds; scene ``i`` uses the noise of prompt id ``val-{i}``, seed 0.
        world: World of the scenes.
    """
    m = methods.get(method)
    sampler = ChunkwiseSampler(m.sampler_config)
    preset = toy_preset()
    rows = []
    was_training = dit.training
    dit.eval()
    for i, seed in enumerate(scenes):
        scene = sample_scene(seed, world)
        text = dit.encode_text(text_encoder.encode([scene.caption]))
        stream = NoiseStream(f"val-{i}", 0)
        noise = stream.initial((1, 21, dit.cfg.in_dim, preset.latent_height, preset.latent_width))
        x = sampler.sample(dit, text, methods.build_policy(m), noise, stream).latents
        rows.append(score_video(autoencoder.decode(x[0]), scene.caption, world=world)[0])
    dit.train(was_training)
    return _means(rows)


@torch.no_grad()
def teacher_oracle(
    dit: CausalWanModel,
    text_encoder: ToyTextEncoder,
    autoencoder: ToyAutoencoder,
    scenes: list[int],
    world: WorldConfig,
    *,
    guidance: float,
    steps: int = 24,
) -> dict[str, float]:
    """Oracle means over 21-frame clips the teacher samples (full attention, flow ODE, guidance)."""
    preset = toy_preset()
    rows = []
    uncond = dit.encode_text(text_encoder.encode([""]))
    for i, seed in enumerate(scenes):
        scene = sample_scene(seed, world)
        text = dit.encode_text(text_encoder.encode([scene.caption]))
        noise = NoiseStream(f"val-{i}", 0).initial((1, 21, dit.cfg.in_dim, preset.latent_height, preset.latent_width))
        x = sample_ode(dit, text, noise, steps=steps, uncond=uncond, guidance=guidance)
        rows.append(score_video(autoencoder.decode(x[0]), scene.caption, world=world)[0])
    return _means(rows)


@torch.no_grad()
def reconstruction_oracle(autoencoder: ToyAutoencoder, scenes: list[int], world: WorldConfig) -> dict[str, float]:
    """Oracle means over the first 21 frames of the scenes, rendered, encoded and decoded (the latent's floor)."""
    rows = []
    for seed in scenes:
        scene = sample_scene(seed, world)
        frames = autoencoder.decode(autoencoder.encode(scene.render(21)))
        rows.append(score_video(frames, scene.caption, world=world)[0])
    return _means(rows)


def _means(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in TRACKED:
        finite = [r[k] for r in rows if math.isfinite(r[k])]
        out[k] = statistics.fmean(finite) if finite else math.nan
    return out


def train_toy_model(
    recipe: Recipe,
    out: str | Path,
    *,
    resume: bool = False,
    on_progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run (or resume) the four stages and export the student as a toy bundle in ``out``.

    Args:
        recipe: The run's settings.
        out: Output directory (checkpoints, bundle, curves, model card).
        resume: Continue an interrupted run in ``out``.
        on_progress: Called after every step with (stage name, steps done, steps in all, numbers).
        command: The command line, recorded in the card.

    Returns:
        The model card written to ``out/card.json``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = recipe.world
    scenes = [VALIDATION_SEED_BASE + i for i in range(recipe.validation_scenes)]

    def progress(stage: str, total: int) -> Callable[[int, dict[str, float]], None]:
        return lambda step, row: on_progress(stage, step, total, row) if on_progress else None

    ae_ckpt = out / AUTOENCODER_CHECKPOINT
    a_state = train_autoencoder(
        recipe.autoencoder,
        ae_ckpt,
        world=world,
        resume=resume and ae_ckpt.exists(),
        on_step=progress("autoencoder", recipe.autoencoder.steps),
        command=command,
    )
    write_autoencoder_curve(a_state.history, out)
    ae = a_state.model

    teacher_ckpt = out / TEACHER_CHECKPOINT
    t_state = train_teacher(
        recipe.teacher,
        teacher_ckpt,
        ae,
        world=world,
        resume=resume and teacher_ckpt.exists(),
        on_step=progress("teacher", recipe.teacher.steps),
        validate=lambda dit, enc: teacher_oracle(
            dit, enc, ae, scenes, world, guidance=recipe.distill.guidance, steps=recipe.oracle_steps
        ),
        command=command,
    )
    write_teacher_curves(t_state.history, out)
    teacher, text = t_state.ema_dit.eval(), t_state.ema_text.eval()

    o_state = None
    if recipe.ode is not None:
        ode_ckpt = out / ODE_CHECKPOINT
        o_state = ode_init(
            recipe.ode,
            teacher,
            text,
            ode_ckpt,
            world=world,
            resume=resume and ode_ckpt.exists(),
            on_step=progress("ode", recipe.ode.batches + recipe.ode.steps),
            command=command,
        )
        write_ode_curve(o_state.history, out)

    distill_ckpt = out / DISTILL_CHECKPOINT
    d_state = distill(
        recipe.distill,
        teacher,
        text,
        distill_ckpt,
        init=o_state.student.eval() if o_state is not None and recipe.distill_init == "ode" else None,
        pairs=(
            o_state.pairs(recipe.ode)
            if o_state is not None and recipe.ode is not None and recipe.distill.regression_weight > 0
            else None
        ),
        world=world,
        resume=resume and distill_ckpt.exists(),
        on_step=progress("distill", recipe.distill.steps),
        validate=lambda dit: student_oracle(dit, text, ae, recipe.distill.method, scenes, world),
        command=command,
    )
    write_distill_curves(d_state.history, out)
    student = d_state.ema
    if recipe.merge > 0:
        assert o_state is not None
        student = merge_students(d_state.ema, o_state.student, recipe.merge)
    evaluation = {
        "scenes": scenes,
        "autoencoder": reconstruction_oracle(ae, scenes, world),
        "teacher": {
            f"guidance {g:g}": teacher_oracle(teacher, text, ae, scenes, world, guidance=g, steps=recipe.oracle_steps)
            for g in sorted({1.0, recipe.distill.guidance})
        },
        "student": student_oracle(student, text, ae, recipe.distill.method, scenes, world),
    }
    if o_state is not None:
        evaluation["ode_student"] = student_oracle(o_state.student, text, ae, recipe.distill.method, scenes, world)
    if recipe.merge > 0:
        evaluation["dmd_student"] = student_oracle(d_state.ema, text, ae, recipe.distill.method, scenes, world)
    card = model_card(recipe, a_state, t_state, o_state, d_state, evaluation, command)
    save_bundle(out, student, text, ae, card)
    (out / "MODEL_CARD.md").write_text(render_model_card(card))
    return card


def model_card(
    recipe: Recipe,
    autoencoder: AutoencoderState,
    teacher: TrainState,
    ode: OdeInitState | None,
    student: DistillState,
    evaluation: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """The machine-readable model card of a finished run."""
    rows = [r for r in teacher.history if "loss" in r]
    last = rows[-min(100, len(rows)) :]
    vals = [r for r in teacher.history if "val_loss" in r]
    sampler = recipe.distill.sampler_config()
    sampling = ToySampling(
        denoising_steps=tuple(sampler.denoising_steps), shift=sampler.shift, warp=sampler.warp, renoise=sampler.renoise
    )
    stages = [autoencoder, teacher, student] + ([] if ode is None else [ode])
    cpu = sum(s.cpu_seconds for s in stages)
    wall = sum(s.seconds for s in stages)
    ae_rows = [r for r in autoencoder.history if "loss" in r]
    return {
        "preset": PRESET_NAME,
        "wan": config_json(toy_preset().wan),
        "latent": {
            "kind": "autoencoder",
            "factor": FACTOR,
            "channels": recipe.autoencoder.channels,
            "width": recipe.autoencoder.width,
            "temporal": 1,
        },
        "world": config_json(recipe.world),
        "training": {
            "autoencoder": config_json(recipe.autoencoder),
            "teacher": config_json(recipe.teacher),
            **({} if recipe.ode is None else {"ode": config_json(recipe.ode)}),
            **({} if recipe.ode is None else {"distill_init": recipe.distill_init, "merge": recipe.merge}),
            "distill": config_json(recipe.distill),
        },
        "sampling": config_json(sampling),
        "run": {
            "command": command,
            "autoencoder": {
                "segments": autoencoder.segments,
                "steps": autoencoder.step,
                "wall_seconds": round(autoencoder.seconds, 1),
                "cpu_seconds": round(autoencoder.cpu_seconds, 1),
                "final_loss_mean_last_100": (
                    round(statistics.fmean(r["loss"] for r in ae_rows[-100:]), 5) if ae_rows else None
                ),
            },
            "teacher": {
                "segments": teacher.segments,
                "steps": teacher.step,
                "clips_seen": teacher.step * recipe.teacher.batch_size,
                "wall_seconds": round(teacher.seconds, 1),
                "cpu_seconds": round(teacher.cpu_seconds, 1),
                "final_loss_mean_last_100": round(statistics.fmean(r["loss"] for r in last), 5) if last else None,
                "initial_val_loss": round(vals[0]["val_loss"], 5) if vals else None,
                "final_val_loss": round(vals[-1]["val_loss"], 5) if vals else None,
                "final_val_loss_causal": round(vals[-1]["val_loss_causal"], 5) if vals else None,
            },
            **({} if ode is None else {"ode": _ode_run(ode)}),
            "distill": {
                "segments": student.segments,
                "steps": student.step,
                "rollouts": student.step * (recipe.distill.critic_updates + 1),
                "wall_seconds": round(student.seconds, 1),
                "cpu_seconds": round(student.cpu_seconds, 1),
            },
            "wall_seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "weights_dtype": "float16",
            "parameters": sum(p.numel() for p in student.ema.parameters()),
        },
        "evaluation": _round(evaluation),
    }


def _ode_run(ode: OdeInitState) -> dict[str, Any]:
    rows = [r for r in ode.history if "loss" in r]
    return {
        "segments": ode.segments,
        "trajectories": len(ode.captions),
        "steps": ode.step,
        "wall_seconds": round(ode.seconds, 1),
        "cpu_seconds": round(ode.cpu_seconds, 1),
        "final_loss_mean_last_50": round(statistics.fmean(r["loss"] for r in rows[-50:]), 5) if rows else None,
    }


def _round(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 4) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def render_model_card(card: dict[str, Any]) -> str:
    """Markdown model card from the machine-readable one."""
    run, ev = card["run"], card["evaluation"]

    def oracle(d: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items())

    lines = [
        "# toyworld — causal Wan DiT trained on the toy world (teacher, then Self-Forcing-style DMD student)",
        "",
        f"- preset `{card['preset']}`: `{json.dumps(card['wan'])}`",
        f"- parameters: {run['parameters']:,} (weights stored as {run['weights_dtype']})",
        f"- latent: toy autoencoder, {card['latent']['channels']} channels at 1/{card['latent']['factor']} resolution "
        "(8×8 for 32×32 RGB); one latent frame = one video frame",
        f"- stage 0 (autoencoder): `{json.dumps(card['training']['autoencoder'])}`",
        f"- sampling: `{json.dumps(card['sampling'])}` (chunk-wise engine, 3-frame chunks)",
        f"- stage 1 (teacher): `{json.dumps(card['training']['teacher'])}`",
        *(
            [f"- stage 1b (ODE initialisation): `{json.dumps(card['training']['ode'])}`"]
            if "ode" in card["training"]
            else []
        ),
        f"- stage 2 (DMD student): `{json.dumps(card['training']['distill'])}`",
        f"- world: `{json.dumps(card['world'])}`",
        "- commands (in order; a resumed run lists each part with the step it reached and its CPU threads):",
        *(
            f"  - {stage}: `{seg['command']}` → step {seg['to_step']}, {seg['threads']} thread(s)"
            for stage in ("autoencoder", "teacher", "ode", "distill")
            for seg in run.get(stage, {}).get("segments", [])
        ),
        f"- stage 0: {run['autoencoder']['steps']} steps, {run['autoencoder']['cpu_seconds']} CPU s "
        f"({run['autoencoder']['wall_seconds']} s wall), final loss {run['autoencoder']['final_loss_mean_last_100']}",
        f"- stage 1: {run['teacher']['steps']} steps ({run['teacher']['clips_seen']} clips), "
        f"{run['teacher']['cpu_seconds']} CPU s ({run['teacher']['wall_seconds']} s wall); validation loss "
        f"{run['teacher']['initial_val_loss']} → {run['teacher']['final_val_loss']} (full attention), "
        f"{run['teacher']['final_val_loss_causal']} (block-causal)",
        *(
            [
                f"- stage 1b: {run['ode']['trajectories']} teacher ODE trajectories, {run['ode']['steps']} regression "
                f"steps, {run['ode']['cpu_seconds']} CPU s ({run['ode']['wall_seconds']} s wall), final loss "
                f"{run['ode']['final_loss_mean_last_50']}"
            ]
            if "ode" in run
            else []
        ),
        *(
            [
                f"- exported student: (1 − {card['training']['merge']})·DMD EMA + {card['training']['merge']}·ODE "
                f"student (weight interpolation); DMD started from the {card['training']['distill_init']}"
            ]
            if card["training"].get("merge")
            else []
        ),
        f"- stage 2: {run['distill']['steps']} generator updates ({run['distill']['rollouts']} self-rollouts), "
        f"{run['distill']['cpu_seconds']} CPU s ({run['distill']['wall_seconds']} s wall)",
        f"- total: {run['cpu_seconds']} CPU s ({run['cpu_seconds'] / 3600:.2f} CPU-hours), {run['wall_seconds']} s "
        f"wall, torch {run['torch']}, {run['threads']} thread(s)",
        f"- oracle, first 21 frames of {len(ev['scenes'])} validation scenes: rendered frames through the "
        f"autoencoder {oracle(ev['autoencoder'])}; "
        + (f"ODE-initialised student {oracle(ev['ode_student'])}; " if "ode_student" in ev else "")
        + (f"DMD student before the merge {oracle(ev['dmd_student'])}; " if "dmd_student" in ev else "")
        + "student "
        f"({card['training']['distill']['method']} sampler) {oracle(ev['student'])}; "
        + "; ".join(f"teacher (flow ODE, {k}) {oracle(v)}" for k, v in ev["teacher"].items()),
        "",
    ]
    return "\n".join(lines)


def _write_csv(path: Path, history: list[dict[str, Any]], fields: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row.get(k, "")) for k in fields})


def write_autoencoder_curve(history: list[dict[str, Any]], out: Path) -> None:
    """``autoencoder.csv``: every stage-0 step."""
    _write_csv(
        out / "autoencoder.csv", history, ["step", "loss", "loss_smooth", "lr", "grad_norm", "seconds", "cpu_seconds"]
    )


def write_teacher_curves(history: list[dict[str, Any]], out: Path) -> None:
    """``loss.csv`` (every stage-1 step) and ``loss.svg`` (smoothed training loss, validation losses; log y)."""
    fields = ["step", "mode", "loss", "loss_smooth", "val_loss", "val_loss_causal", "lr", "grad_norm", "seconds"]
    fields += ["cpu_seconds", *(f"teacher_{k}" for k in TRACKED)]
    _write_csv(out / "loss.csv", history, fields)
    series = [
        ("train loss (EMA 0.98)", "#1f77b4", [(r["step"], r["loss_smooth"]) for r in history if "loss_smooth" in r]),
        ("validation, full attention", "#d62728", [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]),
        (
            "validation, block-causal",
            "#2ca02c",
            [(r["step"], r["val_loss_causal"]) for r in history if "val_loss_causal" in r],
        ),
    ]
    (out / "loss.svg").write_text(line_svg(series, log_y=True, x_label="stage-1 step"))


def write_ode_curve(history: list[dict[str, Any]], out: Path) -> None:
    """``ode.csv``: stage 1b's regression loss at every step."""
    _write_csv(out / "ode.csv", history, ["step", "loss", "grad_norm", "seconds", "cpu_seconds"])


def write_distill_curves(history: list[dict[str, Any]], out: Path) -> None:
    """``distill.csv`` (every generator update) and ``distill.svg`` (the student's oracle numbers, linear y).

    The SVG shows the presence and colour error of the student on the validation scenes.
    """
    fields = [
        "step",
        "dmd_loss",
        "regression_loss",
        "dmd_direction",
        "real_gap",
        "critic_loss",
        "grad_norm",
        *TRACKED,
    ]
    _write_csv(out / "distill.csv", history, [*fields, "seconds", "cpu_seconds"])
    series = [
        ("presence", "#2ca02c", [(r["step"], r["presence"]) for r in history if "presence" in r]),
        ("colour error", "#d62728", [(r["step"], r["colour_error"]) for r in history if "colour_error" in r]),
    ]
    (out / "distill.svg").write_text(line_svg(series, log_y=False, x_label="generator update"))


def line_svg(
    series: list[tuple[str, str, list[tuple[float, float]]]],
    *,
    log_y: bool,
    x_label: str,
    width: int = 640,
    height: int = 360,
) -> str:
    """A self-contained SVG line chart: one polyline (with dots when sparse) and legend entry per series."""
    pts = [p for _, _, s in series for p in s if math.isfinite(p[1])]
    if not pts:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>\n'
    left, right, top, bottom = 60, 20, 20, 40

    def fy(v: float) -> float:
        return math.log10(max(v, 1e-8)) if log_y else v

    x_max = max(1.0, max(p[0] for p in pts))
    ys = [fy(p[1]) for p in pts]
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-6:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * step / x_max
        y = top + (height - top - bottom) * (y_hi - fy(value)) / (y_hi - y_lo)
        return x, y

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
        label = f"{10**v:.3g}" if log_y else f"{v:.3g}"
        parts.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for k in range(5):
        x = left + (width - left - right) * k / 4
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 15}" text-anchor="middle">{x_max * k / 4:.0f}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 5}" text-anchor="middle">{x_label}</text>')
    for i, (label, colour, points) in enumerate(series):
        points = [p for p in points if math.isfinite(p[1])]
        if not points:
            continue
        shown = points[:: max(1, len(points) // 800)]
        path = " ".join("{:.1f},{:.1f}".format(*xy(*p)) for p in shown)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        if len(points) <= 60:
            parts += ['<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}"/>'.format(*xy(*p), colour) for p in points]
        parts.append(
            f'<text x="{width - right}" y="{top + 10 + 15 * i}" text-anchor="end" fill="{colour}">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

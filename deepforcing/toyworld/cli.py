"""``deepforcing-eval toyworld …``: train the toy model, render and generate toy videos, measure drift.

Registered by :func:`add_parser` from ``deepforcing.cli``; heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from deepforcing import console
from deepforcing.console import Column, Table, document

log = logging.getLogger("deepforcing.toyworld")

#: Step counts of the shipped run (the defaults of ``toyworld train``).
AUTOENCODER_STEPS = 5000
TEACHER_STEPS = 12000
DISTILL_STEPS = 400


def _threads(n: int | None) -> None:
    import torch

    torch.set_num_threads(n or 1)


# ------------------------------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from deepforcing.toyworld.ode import OdeInitConfig
    from deepforcing.toyworld.recipe import Recipe, train_toy_model

    _threads(args.threads)
    base = Recipe()
    recipe = Recipe(
        autoencoder=dataclasses.replace(base.autoencoder, steps=args.autoencoder_steps, seed=args.seed),
        teacher=dataclasses.replace(base.teacher, steps=args.teacher_steps, seed=args.seed),
        ode=OdeInitConfig(steps=args.ode_steps, seed=args.seed) if args.ode_steps else None,
        distill_init=args.dmd_init,
        merge=args.merge,
        distill=dataclasses.replace(
            base.distill, steps=args.distill_steps, seed=args.seed, regression_weight=args.regression_weight
        ),
    )
    command = "deepforcing-eval " + shlex.join(sys.argv[1:] if args.argv is None else args.argv)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console.err.rich,
        disable=args.quiet or not console.err.is_tty,
    ) as progress:
        tasks = {
            "autoencoder": progress.add_task("stage 0: autoencoder", total=recipe.autoencoder.steps, info=""),
            "teacher": progress.add_task("stage 1: teacher", total=recipe.teacher.steps, info=""),
            **(
                {}
                if recipe.ode is None
                else {
                    "ode": progress.add_task(
                        "stage 1b: ODE initialisation", total=recipe.ode.batches + recipe.ode.steps, info=""
                    )
                }
            ),
            "distill": progress.add_task("stage 2: DMD student", total=recipe.distill.steps, info=""),
        }

        def on_progress(stage: str, step: int, total: int, row: dict[str, float]) -> None:
            if stage == "autoencoder":
                info = f"loss {row['loss_smooth']:.4f}"
                if step % 500 == 0 or step == total:
                    log.info("autoencoder step %d: loss %.4f", step, row["loss_smooth"])
            elif stage == "teacher":
                info = f"loss {row['loss_smooth']:.4f}"
                if "val_loss" in row:
                    log.info("teacher step %d: loss %.4f, validation %.4f", step, row["loss_smooth"], row["val_loss"])
                if "teacher_presence" in row:
                    log.info(
                        "teacher step %d (flow ODE, guided): presence %.3f, colour error %.3f, motion %.2f",
                        step,
                        row["teacher_presence"],
                        row["teacher_colour_error"],
                        row["teacher_motion"],
                    )
            elif stage == "ode":
                if "loss" in row:
                    info = f"loss {row['loss']:.4f}"
                    if row["step"] % 100 == 0 or step == total:
                        log.info("ODE regression step %d: loss %.4f", row["step"], row["loss"])
                else:
                    info = f"{row['trajectories']} trajectories"
            else:
                info = f"critic {row.get('critic_loss', float('nan')):.4f}"
                if "presence" in row:
                    log.info(
                        "distill step %d: presence %.3f, colour error %.3f, motion %.2f",
                        step,
                        row["presence"],
                        row["colour_error"],
                        row["motion"],
                    )
            progress.update(tasks[stage], completed=step, info=info)

        card = train_toy_model(recipe, args.out, resume=args.resume, on_progress=on_progress, command=command)
    run, ev = card["run"], card["evaluation"]["student"]
    console.out.line(
        f"wrote {args.out}: {run['cpu_seconds'] / 3600:.2f} CPU-hours ({run['wall_seconds']:.0f} s wall); student "
        f"on {len(card['evaluation']['scenes'])} validation scenes: presence {ev['presence']}, colour error "
        f"{ev['colour_error']}, motion {ev['motion']}; curves in loss.svg / distill.svg"
    )
    return 0


# ----------------------------------------------------------------------------------------- captions/render
def _cmd_captions(args: argparse.Namespace) -> int:
    from deepforcing.toyworld.world import sample_scene

    for seed in range(args.seed, args.seed + args.n):
        console.out.line(f"{seed}\t{sample_scene(seed).caption}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from deepforcing.toyworld.generate import write_preview
    from deepforcing.toyworld.world import sample_scene

    scene = sample_scene(args.scene_seed)
    path = write_preview(scene.render(args.frames), args.out, scale=args.scale)
    console.out.line(f"wrote {path}: {scene.caption}")
    return 0


# ---------------------------------------------------------------------------------------------- generate
def _caption(args: argparse.Namespace) -> str:
    from deepforcing.toyworld.world import parse_caption, sample_scene

    if args.caption:
        parse_caption(args.caption)  # fail before any compute
        return args.caption
    return sample_scene(args.scene_seed).caption


def _cmd_generate(args: argparse.Namespace) -> int:
    from deepforcing.toyworld.generate import generate_toy_video, write_preview
    from deepforcing.toyworld.model import load_toy_model
    from deepforcing.toyworld.oracle import SEGMENT_METRICS, score_video

    _threads(args.threads)
    caption = _caption(args)
    model = load_toy_model(args.weights)
    video = generate_toy_video(caption, args.method, num_frames=args.frames, seed=args.seed, model=model)
    rows = score_video(video.frames, caption, segment_frames=args.segment)
    if args.out:
        write_preview(video.frames, args.out)
    if args.json:
        doc = document("toyworld-generate", caption=caption, method=args.method, seed=args.seed, segments=rows)
        console.out.json(doc)
        return 0
    table = Table(
        [Column("frames", "key"), *(Column(name, "number") for name in SEGMENT_METRICS)],
        title=f"{args.method}, seed {args.seed}: {caption}",
    )
    for r in rows:
        table.add_row(f"{r['start']}-{r['stop'] - 1}", *(f"{r[n]:.3f}" for n in SEGMENT_METRICS))
    console.out.table(table)
    console.out.line(f"{args.frames} frames in {video.seconds:.1f} s" + (f", wrote {args.out}" if args.out else ""))
    return 0


# ------------------------------------------------------------------------------------------------- drift
def _cmd_drift(args: argparse.Namespace) -> int:
    from deepforcing.toyworld.drift import DriftStudy, parse_methods, run_study

    _threads(args.threads)
    study = DriftStudy(
        methods=parse_methods(args.methods),
        prompts=args.prompts,
        seeds=args.seeds,
        num_frames=args.frames,
        prompt_seed_base=args.prompt_seed_base,
    )
    summary = run_study(
        study, args.out, weights=args.weights, progress=not args.quiet and console.err.is_tty, jobs=args.jobs
    )
    if args.json:
        console.out.json(
            document(
                "toyworld-drift",
                out=str(args.out),
                **{k: v for k, v in summary.items() if k not in ("markdown", "kind")},
            )
        )
        return 0
    console.out.block(summary["markdown"])
    return 0


# -------------------------------------------------------------------------------------------------- parser
def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``toyworld`` subcommand (with its own subcommands) to the main parser's subparsers."""
    toy = sub.add_parser("toyworld", help="toy world: train the embedded model, render, generate, measure drift")
    tsub = toy.add_subparsers(dest="toy_command", required=True)

    tr = tsub.add_parser(
        "train",
        help="train the toy model: autoencoder, teacher, ODE-initialised student, Self-Forcing-style DMD student "
        "(reproduces the shipped weights)",
    )
    tr.add_argument("--out", required=True, help="output directory (checkpoints, bundle, curves, model card)")
    tr.add_argument(
        "--autoencoder-steps",
        type=int,
        default=AUTOENCODER_STEPS,
        help="stage-0 steps (the latent space; default: the shipped run)",
    )
    tr.add_argument("--teacher-steps", type=int, default=TEACHER_STEPS, help="stage-1 steps (default: the shipped run)")
    tr.add_argument(
        "--ode-steps",
        type=int,
        default=0,
        help="stage 1b: initialise the student by this many regression steps on 128 teacher ODE trajectories "
        "(0 = start DMD from the teacher, the shipped run; 300 is the measured setting, docs/toyworld.md)",
    )
    tr.add_argument(
        "--regression-weight",
        type=float,
        default=0.0,
        help="weight of the ODE-pair regression loss added to DMD in stage 2 (needs --ode-steps; default 0)",
    )
    tr.add_argument(
        "--distill-steps", type=int, default=DISTILL_STEPS, help="stage-2 generator updates (default: the shipped run)"
    )
    tr.add_argument(
        "--dmd-init",
        choices=("teacher", "ode"),
        default="teacher",
        help="what the DMD generator starts from: the teacher's block-causal mode (default, the shipped run) or the "
        "stage-1b student (needs --ode-steps)",
    )
    tr.add_argument(
        "--merge",
        type=float,
        default=0.0,
        help="export (1 - A)·DMD student + A·ODE student, a weight interpolation (needs --ode-steps; default 0)",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for this size)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    tr.set_defaults(func=_cmd_train, argv=None)

    cap = tsub.add_parser("captions", help="print captions drawn from the grammar")
    cap.add_argument("-n", type=int, default=10)
    cap.add_argument("--seed", type=int, default=0, help="first scene seed")
    cap.set_defaults(func=_cmd_captions)

    ren = tsub.add_parser("render", help="render a ground-truth scene to mp4")
    ren.add_argument("--scene-seed", type=int, default=0)
    ren.add_argument("--frames", type=int, default=210)
    ren.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscale of the 32x32 frames")
    ren.add_argument("--out", required=True, help="mp4 path")
    ren.set_defaults(func=_cmd_render)

    gen = tsub.add_parser("generate", help="generate a toy video with a method and score it with the oracle")
    what = gen.add_mutually_exclusive_group()
    what.add_argument("--caption", help="a caption of the toy grammar (see `toyworld captions`)")
    what.add_argument("--scene-seed", type=int, default=0, help="use the caption of this scene seed")
    gen.add_argument("--method", default="self-forcing", help="any method (see `methods list`)")
    gen.add_argument("--frames", type=int, default=210, help="frames (= latent frames), a multiple of 3")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--segment", type=int, default=21, help="frames per oracle segment")
    gen.add_argument("--weights", help="toy bundle folder or its weights file (default: the shipped weights)")
    gen.add_argument("--out", help="mp4 preview path (4x upscaled)")
    gen.add_argument("--threads", type=int, default=1)
    gen.add_argument("--json", action="store_true", help="print the oracle rows as JSON")
    gen.set_defaults(func=_cmd_generate)

    dr = tsub.add_parser("drift", help="oracle drift of several methods over prompts x seeds, with 95%% CIs")
    dr.add_argument(
        "--methods",
        default="all",
        help="comma-separated methods, the first being the reference of the paired differences, or 'all' (every "
        "method preset, self-forcing first; default)",
    )
    dr.add_argument("--prompts", type=int, default=6, help="number of prompts (held-out scene seeds)")
    dr.add_argument("--seeds", type=int, default=2, help="noise seeds per prompt")
    dr.add_argument("--frames", type=int, default=210)
    dr.add_argument("--prompt-seed-base", type=int, default=2 * 10**12, help="first scene seed of the prompts")
    dr.add_argument("--weights", help="toy bundle folder or its weights file (default: the shipped weights)")
    dr.add_argument("--out", required=True, help="directory for rows.jsonl and summary.json/.md")
    dr.add_argument("--json", action="store_true", help="print the summary (summary.json's fields) as JSON")
    dr.add_argument("--threads", type=int, default=1, help="torch threads of this process (with --jobs 1)")
    dr.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes of one thread each (e.g. the number of CPU cores); the rows do not depend on it",
    )
    dr.set_defaults(func=_cmd_drift)

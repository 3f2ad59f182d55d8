"""``deepforcing-eval`` command line: generate | methods | weights, harness run | score | suites, report | regress.

``deepforcing-eval --suite NAME`` is ``deepforcing-eval run --suite NAME`` (see :mod:`deepforcing.harness.cli`).

Every subcommand validates its input before any compute; bad input prints one line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from deepforcing import __version__
from deepforcing.errors import UserError

log = logging.getLogger("deepforcing")
console = Console()
err_console = Console(stderr=True)


# --------------------------------------------------------------------------------------------- generate
def _check_output_path(path: Path) -> None:
    """Fail before any compute if ``path`` cannot be written (probes with a real temporary file)."""
    import tempfile

    if path.suffix.lower() != ".mp4":
        raise UserError(f"output must be an .mp4 file, got '{path}'")
    if path.is_dir():
        raise UserError(f"output '{path}' is a directory", "give a file name ending in .mp4")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise OSError(f"'{existing}' is a file")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to '{path}': '{existing}' is not a writable directory ({exc})") from exc


def _cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from deepforcing import methods
    from deepforcing.pipeline import create_generator, get_preset, latent_frames_for

    method = methods.get(args.method if args.weights is None else f"{args.method}@{args.weights}")
    preset = get_preset(args.model)
    chunk = method.sampler_config.chunk_frames
    schedule = None
    if args.prompt_schedule:
        schedule = _load_schedule(args, chunk)
    elif not args.prompt or not args.prompt.strip():
        raise UserError("the prompt is empty", "pass a non-empty --prompt")
    if args.switch is not None and schedule is None:
        raise UserError("--switch applies to a --prompt-schedule", "give the schedule file, or drop --switch")
    if args.num_latent_frames is not None:
        if args.num_latent_frames <= 0 or args.num_latent_frames % chunk:
            raise UserError(f"--num-latent-frames must be a positive multiple of {chunk}, got {args.num_latent_frames}")
        num_frames = args.num_latent_frames
    elif args.duration is not None:
        num_frames = latent_frames_for(args.duration, chunk)
    elif schedule is not None:
        num_frames = schedule.resolve(chunk, args.switch or method.switch)[-1].end_frame
    else:
        num_frames = latent_frames_for(5.0, chunk)
    if schedule is not None:
        resolved = schedule.resolve(chunk, args.switch or method.switch)  # every problem of the file, up front
        if resolved[-1].end_frame != num_frames:
            raise UserError(
                f"the prompt schedule lasts {resolved[-1].end_frame} latent frames, not the {num_frames} asked for",
                "omit --duration / --num-latent-frames to use the schedule's length",
            )
    output = Path(args.output) if args.output else None
    if output is not None:
        _check_output_path(output)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, None: None}[args.dtype]
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was given but no CUDA device is available", "use --device cpu")
    threads = args.threads or (1 if preset.name in ("tiny", "toyworld") else None)
    if threads:
        torch.set_num_threads(threads)

    generator = create_generator(
        preset.name,
        method.name,
        device=args.device,
        dtype=dtype,
        checkpoint=args.checkpoint,
        weights_dir=args.weights_dir,
    )
    log.info(
        "%s on %s (%s, %s): %d latent frames = %d chunks -> %d video frames",
        method.name,
        preset.name,
        generator.device,
        str(generator.dtype).removeprefix("torch."),
        num_frames,
        num_frames // chunk,
        preset.pixel_frames(num_frames),
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=args.quiet,
    ) as progress:
        task = progress.add_task("chunks", total=num_frames // chunk)
        result = generator.generate(
            args.prompt or "",
            num_latent_frames=num_frames,
            seed=args.seed,
            prompt_id=args.prompt_id,
            output=output,
            on_chunk=lambda i, n: progress.update(task, completed=i + 1),
            schedule=schedule,
            switch=args.switch,
        )
    steady = result.chunk_seconds[1:] or result.chunk_seconds
    summary = {
        "video": str(result.video_path) if result.video_path else None,
        "latent_frames": num_frames,
        "video_frames": result.num_pixel_frames,
        "seconds_of_video": round(result.num_pixel_frames / preset.fps, 3),
        "chunk_latency_ms_mean": round(1000 * statistics.fmean(steady), 2),
        "chunk_latency_ms_max": round(1000 * max(result.chunk_seconds), 2),
        "fps": round(result.fps, 2),
        "decode_seconds": round(result.decode_seconds, 3),
        "kv_cache_mib": round(result.kv_cache_bytes / 2**20, 3),
        **(result.prompts or {}),
    }
    if args.json:
        console.print_json(json.dumps(summary))
    else:
        where = f"wrote [bold]{output}[/bold]" if output else "generated latents (no --output)"
        console.print(
            f"{where}: {summary['video_frames']} frames ({summary['seconds_of_video']} s at {preset.fps} fps); "
            f"per-chunk latency {summary['chunk_latency_ms_mean']} ms mean (max {summary['chunk_latency_ms_max']}), "
            f"{summary['fps']} FPS, KV cache {summary['kv_cache_mib']} MiB"
        )
    return 0


def _load_schedule(args: argparse.Namespace, chunk: int):
    """The --prompt-schedule (one schedule of the file: --schedule-id, or the only one)."""
    from deepforcing.prompt_schedule import LONGLIVE_NUM_OUTPUT_FRAMES, LONGLIVE_SWITCH_FRAME_INDICES, load_schedules

    if args.prompt:
        raise UserError("give either --prompt or --prompt-schedule, not both")
    indices = LONGLIVE_SWITCH_FRAME_INDICES
    if args.switch_frames:
        try:
            indices = tuple(int(x) for x in args.switch_frames.split(","))
        except ValueError as exc:
            raise UserError(
                f"--switch-frames must be comma-separated latent frames, got {args.switch_frames!r}"
            ) from exc
    total = args.num_latent_frames or LONGLIVE_NUM_OUTPUT_FRAMES  # LongLive JSONL: num_output_frames
    schedules = load_schedules(args.prompt_schedule, indices, total)
    if args.schedule_id is not None:
        match = [s for s in schedules if s.schedule_id == args.schedule_id]
        if not match:
            raise UserError(
                f"no schedule '{args.schedule_id}' in {args.prompt_schedule}",
                f"ids: {', '.join(s.schedule_id for s in schedules)}",
            )
        return match[0]
    if len(schedules) > 1:
        raise UserError(
            f"{args.prompt_schedule} holds {len(schedules)} schedules",
            f"pick one with --schedule-id ({', '.join(s.schedule_id for s in schedules[:5])} …)",
        )
    return schedules[0]


# ---------------------------------------------------------------------------------------------- methods
def _cmd_methods(args: argparse.Namespace) -> int:
    from deepforcing import methods

    if args.action == "show":
        if not args.name:
            raise UserError("methods show needs a NAME", f"choose one of: {', '.join(methods.available())}")
        m = methods.get(args.name)
        console.print_json(json.dumps({"config_hash": m.config_hash, **m.to_dict()}))
        return 0
    table = Table(title="methods")
    for col in ("name", "hash", "policy", "checkpoint", "description"):
        table.add_column(col)
    for name in methods.available():
        m = methods.get(name)
        table.add_row(name, m.config_hash, m.policy, m.checkpoint, m.description)
    console.print(table)
    return 0


# ---------------------------------------------------------------------------------------------- weights
def _cmd_weights(args: argparse.Namespace) -> int:
    from deepforcing import weights

    keys = args.keys or None
    if args.action == "list":
        table = Table(title="weights registry")
        for col in ("key", "repo", "file", "purpose"):
            table.add_column(col)
        for entry in weights.entries():
            table.add_row(entry.key, entry.repo_id, entry.filename, entry.purpose)
        console.print(table)
        return 0
    if args.action == "verify":
        rows = weights.verify(keys, weights_dir=args.weights_dir)
        table = Table(title="weights verify")
        for col in ("key", "status", "path"):
            table.add_column(col)
        bad = 0
        for row in rows:
            ok = row.get("ok", False)
            bad += not ok
            table.add_row(
                row["key"], "ok" if ok else f"[red]{row.get('status', 'missing')}", str(row.get("path") or "")
            )
        console.print(table)
        return 1 if bad else 0
    paths = weights.download(keys or [], dest=args.weights_dir)
    for path in paths:
        console.print(f"downloaded {path}")
    return 0


# ------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deepforcing-eval``."""
    parser = argparse.ArgumentParser(
        prog="deepforcing-eval", description="Generate, score and compare long videos (Deep Forcing harness)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate one long video")
    gen.add_argument("--prompt", help="text prompt (or --prompt-schedule)")
    gen.add_argument(
        "--prompt-schedule",
        metavar="FILE",
        help="multi-prompt video: a YAML/JSONL list of {prompt, seconds | latent_frames}; Infinity-RoPE's "
        "'text[Ns] | text[Ns#]' lines (.txt) and LongLive's JSONL ({prompts: [...]}) are imported",
    )
    gen.add_argument("--schedule-id", help="which schedule of a file that holds several")
    gen.add_argument(
        "--switch",
        choices=["keep", "flush", "flush-paper", "cut", "recache"],
        help="what a prompt switch does to the cache (default: the method's; see docs/methods.md)",
    )
    gen.add_argument(
        "--switch-frames",
        help="LongLive JSONL import: comma-separated switch_frame_indices (default 40,80,120,160,200 of 240 frames)",
    )
    gen.add_argument(
        "--weights",
        metavar="KEY",
        help="generator checkpoint from the weights registry instead of the method's (e.g. causal-forcing)",
    )
    gen.add_argument("--prompt-id", help="stable id of the prompt (default: hash of the text); fixes the noise")
    gen.add_argument("--method", default="self-forcing", help="method name (see `methods list`)")
    gen.add_argument(
        "--model",
        default="tiny",
        help="model preset: tiny (CPU, random weights), toyworld (the shipped toy model; prompts in its grammar) "
        "or wan2.1-t2v-1.3b",
    )
    length = gen.add_mutually_exclusive_group()
    length.add_argument(
        "--duration", type=float, help="seconds of video at 16 fps (default 5, or a --prompt-schedule's length)"
    )
    length.add_argument("--num-latent-frames", type=int, help="latent frames (a multiple of the chunk size)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--output", help="mp4 path (omit to generate latents only)")
    gen.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    gen.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bf16 on cuda, fp32 on cpu")
    gen.add_argument("--checkpoint", help="generator checkpoint (default: from the weights registry)")
    gen.add_argument("--weights-dir", help="directory holding <repo_id>/<file> weights")
    gen.add_argument("--threads", type=int, help="CPU threads for torch")
    gen.add_argument("--json", action="store_true", help="print the summary as JSON")
    gen.set_defaults(func=_cmd_generate)

    meth = sub.add_parser("methods", help="list or show the named methods")
    meth.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    meth.add_argument("name", nargs="?")
    meth.set_defaults(func=_cmd_methods)

    wts = sub.add_parser("weights", help="list, verify or download weight files")
    wts.add_argument("action", choices=["list", "verify", "download"])
    wts.add_argument("keys", nargs="*", help="registry keys or groups (default: all)")
    wts.add_argument(
        "--weights-dir", "--dest", dest="weights_dir", help="directory holding (or receiving) <repo_id>/<file> weights"
    )
    wts.set_defaults(func=_cmd_weights)

    from deepforcing.harness.cli import add_commands

    add_commands(sub)
    from deepforcing.report.cli import add_commands as add_report_commands

    add_report_commands(sub)
    from deepforcing.toyworld.cli import add_parser as add_toyworld_parser

    add_toyworld_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from deepforcing.harness.cli import normalize_argv

    parser = build_parser()
    commands = list(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public API
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv, commands))
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own progress bars only
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    for noisy in ("httpx", "urllib3", "huggingface_hub", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        return args.func(args)
    except UserError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return UserError.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())

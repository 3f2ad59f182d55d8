"""``deepforcing-eval`` command line: generate | methods | weights, harness run | score | suites, report | regress.

``deepforcing-eval --suite NAME`` is ``deepforcing-eval run --suite NAME`` (see :mod:`deepforcing.harness.cli`).

Every subcommand validates its input before any compute; bad input prints one line to stderr and exits 2.
All output goes through :mod:`deepforcing.console` (plain text in pipes, tables on a terminal, ``--json``
documents with a ``schema_version``; ``docs/cli.md``). The global options (:data:`GLOBAL_OPTIONS`) work before
or after the subcommand. This module imports nothing heavy at load time: listing commands never import torch
(``tests/test_cli_startup.py``, ``benchmarks/bench_cli_startup.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepforcing import __version__, console
from deepforcing.console import Column, Styled, Table, document
from deepforcing.errors import UserError

log = logging.getLogger("deepforcing")


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

    from deepforcing import budget, methods, model_kinds
    from deepforcing.pipeline import VideoGenerator, latent_frames_for

    kind = model_kinds.get(args.model)
    name = args.method if args.weights is None else f"{args.method}@{args.weights}"
    method = kind.resolve_method(methods.resolve(name), args.checkpoint)
    preset = kind.preset
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
        num_frames = latent_frames_for(budget.check_positive_finite(args.duration, "--duration"), chunk)
    elif schedule is not None:
        num_frames = schedule.resolve(chunk, args.switch or method.switch)[-1].end_frame
    else:
        num_frames = latent_frames_for(5.0, chunk)
    max_memory = budget.parse_size(args.max_memory) if args.max_memory else None
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
    parts = ("dit", "text_encoder", "vae") if output is not None else ("dit", "text_encoder")
    kind.check_assets(method, args.weights_dir, checkpoint=args.checkpoint, parts=parts)  # all missing, at once
    threads = args.threads or (kind.cpu_threads if args.device != "cuda" else None)
    if threads:
        torch.set_num_threads(threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cost = budget.estimate(preset, method, num_frames, device, args.dtype, output=output is not None)
    log.debug("estimate: %s (%s)", cost.describe(), cost.seconds_basis)
    if not args.force_size:  # before any weight is loaded: refuse what cannot fit
        limits = budget.limits_for(device, output.parent if output is not None else None, max_memory=max_memory)
        budget.check([cost], limits, what="generate")

    generator = VideoGenerator(
        kind,
        method,
        device=args.device,
        dtype=dtype,
        checkpoint=args.checkpoint,
        weights_dir=args.weights_dir,
    )
    if args.compile:
        generator.compile()
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
        console=console.err.rich,
        transient=True,
        disable=args.quiet or not console.err.is_tty,
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
        "prompt_tokens": result.prompt_tokens.count if result.prompt_tokens else None,
        "prompt_token_limit": result.prompt_tokens.limit if result.prompt_tokens else None,
        "prompt_truncated": result.prompt_truncated,
    }
    if args.json:
        console.out.json(document("generate", method=method.name, model=preset.name, seed=args.seed, **summary))
    else:
        where = ["wrote ", Styled(str(output), "bold")] if output else ["generated latents (no --output)"]
        console.out.line(
            *where,
            f": {summary['video_frames']} frames ({summary['seconds_of_video']} s at {preset.fps} fps); "
            f"per-chunk latency {summary['chunk_latency_ms_mean']} ms mean (max {summary['chunk_latency_ms_max']}), "
            f"{summary['fps']} FPS, KV cache {summary['kv_cache_mib']} MiB",
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
def method_doc(m: Any) -> dict[str, Any]:
    """One method as JSON: name, config hash, then every field of its config (``methods show --json``)."""
    return {"name": m.name, "config_hash": m.config_hash, **m.to_dict()}


def _cmd_methods(args: argparse.Namespace) -> int:
    from deepforcing import methods

    if args.action == "show":
        if not args.name:
            raise UserError("methods show needs a NAME", f"choose one of: {', '.join(methods.available())}")
        console.out.json(document("method", **method_doc(methods.get(args.name))))
        return 0
    resolved = [methods.get(name) for name in methods.available()]
    if args.json:
        console.out.json(document("methods", methods=[method_doc(m) for m in resolved]))
        return 0
    table = Table(
        [Column("name", "key"), Column("hash", "key"), Column("policy"), Column("checkpoint"), Column("description")]
    )
    for m in resolved:
        table.add_row(m.name, m.config_hash, m.policy, m.checkpoint, m.description)
    console.out.table(table)
    return 0


# ---------------------------------------------------------------------------------------------- weights
def _verify_status(row: dict[str, Any]) -> str:
    """One word for a ``weights.verify`` row (the row's own ``status`` when it has one)."""
    if row.get("status"):
        return str(row["status"])
    if row.get("ok"):
        return "ok"
    if not row.get("present", False):
        return "missing"
    if row.get("size_ok") is False:
        return "wrong size"
    if row.get("sha256_ok") is False:
        return "sha256 mismatch"
    if row.get("missing_shards"):
        return f"{len(row['missing_shards'])} shard(s) missing"
    return "not ok"


def _cmd_weights(args: argparse.Namespace) -> int:
    import dataclasses

    from deepforcing import weights

    keys = args.keys or None
    if args.action == "list":
        entries = weights.entries()
        if args.json:
            files = [dataclasses.asdict(e) for e in entries]
            groups = {k: list(v) for k, v in weights.groups().items()}
            console.out.json(document("weights", files=files, groups=groups))
            return 0
        table = Table([Column("key", "key"), Column("repo"), Column("file"), Column("purpose")])
        for entry in entries:
            table.add_row(entry.key, entry.url or entry.repo_id, entry.filename, entry.purpose)
        console.out.table(table)
        return 0
    if args.action == "verify":
        rows = weights.verify(keys, weights_dir=args.weights_dir)
        for row in rows:
            row["status"] = _verify_status(row)
        bad = sum(not row.get("ok", False) for row in rows)
        if args.json:
            console.out.json(document("weights-verify", ok=not bad, weights_dir=args.weights_dir, files=rows))
            return 1 if bad else 0
        table = Table([Column("key", "key"), Column("status"), Column("detail"), Column("path")])
        for row in rows:
            status = row["status"]
            detail = "" if row.get("ok") or status == "missing" else row.get("detail", "")
            table.add_row(row["key"], status if row.get("ok") else Styled(status, "red"), detail, row.get("path") or "")
        console.out.table(table)
        if bad:
            console.err.line(
                f"{bad} of {len(rows)} file(s) not ok; get them with: deepforcing-eval weights download KEY"
            )
        return 1 if bad else 0
    paths = weights.download(keys or [], dest=args.weights_dir)
    if args.json:
        console.out.json(document("weights-download", files=[str(p) for p in paths]))
        return 0
    for path in paths:
        console.out.line(f"downloaded {path}")
    return 0


# ----------------------------------------------------------------------------------------- global options
#: Options every (sub)command takes, before or after the subcommand name: flags and their argparse settings.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-v", "--verbose"), {"action": "store_true", "help": "debug logging"}),
    (("-q", "--quiet"), {"action": "store_true", "help": "warnings only, no progress bars"}),
    (
        ("--weights-dir",),
        {
            "metavar": "DIR",
            "help": "directory holding <repo_id>/<file> weights (default: $DEEPFORCING_WEIGHTS_DIR, else the "
            "Hugging Face cache); metric files under DIR/metrics/",
        },
    ),
    (("--json",), {"action": "store_true", "help": "print a JSON document instead of text (schemas: docs/cli.md)"}),
)


def _share_global_options(parser: argparse.ArgumentParser) -> None:
    """Make every :data:`GLOBAL_OPTIONS` flag work after any subcommand too (recursively).

    A subcommand that defines a global flag itself (e.g. ``weights --dest``, an alias of ``--weights-dir``) keeps
    its own help text. Sub-parsers default to ``SUPPRESS``, so a flag given before the subcommand is not reset by
    the sub-parser's default. ``--json`` is only added where the command defines it (``json_output`` marks them),
    so ``--json`` before a command without a JSON form is refused instead of ignored.
    """
    for action in parser._actions:  # noqa: SLF001 - argparse has no public API for walking sub-parsers
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        for sub in {id(p): p for p in action.choices.values()}.values():
            own = {opt: a for a in sub._actions for opt in a.option_strings}  # noqa: SLF001
            for flags, kwargs in GLOBAL_OPTIONS:
                mine = {own[f] for f in flags if f in own}
                for a in {id(a): a for a in mine}.values():
                    a.default = argparse.SUPPRESS
                if not mine and flags != ("--json",):
                    sub.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})
            if "--json" in own:
                sub.set_defaults(json_output=True)
            _share_global_options(sub)


def _takes_value(flag: str) -> bool:
    return any(flag in flags and kw.get("action") != "store_true" for flags, kw in GLOBAL_OPTIONS)


def normalize_argv(argv: Sequence[str], commands: Sequence[str]) -> list[str]:
    """Insert ``run`` when ``--suite`` is given without a subcommand (``deepforcing-eval -q --suite smoke``).

    ``run`` goes after the leading global options (and their values), before the first other argument.
    """
    argv = list(argv)
    i = 0
    while i < len(argv):
        a = argv[i]
        if _takes_value(a):
            i += 2
        elif any(a in flags for flags, _ in GLOBAL_OPTIONS) or (a.startswith("--") and _takes_value(a.split("=")[0])):
            i += 1
        else:
            break
    if i >= len(argv) or argv[i] in commands or argv[i] in ("-h", "--help", "--version"):
        return argv
    if not any(a == "--suite" or a.startswith("--suite=") for a in argv):
        return argv
    return [*argv[:i], "run", *argv[i:]]  # `--suite smoke --help` shows run's help


# ------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deepforcing-eval``."""
    from deepforcing.harness.cli import MODELS_HELP

    parser = argparse.ArgumentParser(
        prog="deepforcing-eval",
        description="Generate, score and compare long videos (Deep Forcing harness). Global options work before "
        "or after the command; output is plain text when piped and JSON with --json (docs/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for flags, kwargs in GLOBAL_OPTIONS:
        parser.add_argument(*flags, **kwargs)
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
    gen.add_argument("--model", default="tiny", help="model preset (default tiny): " + MODELS_HELP)
    length = gen.add_mutually_exclusive_group()
    length.add_argument(
        "--duration",
        type=float,
        help="seconds of video (default 5, or a --prompt-schedule's length): latent frames = ceil(seconds x 16 fps "
        "/ 4), rounded up to whole chunks (5 s -> 21); the toyworld model plays its 1 frame per latent frame at 4 "
        "fps, so the same seconds",
    )
    length.add_argument("--num-latent-frames", type=int, help="latent frames (a multiple of the chunk size)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--output", help="mp4 path (omit to generate latents only)")
    gen.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    gen.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bf16 on cuda, fp32 on cpu")
    gen.add_argument(
        "--checkpoint",
        help="generator checkpoint file or folder (default: from the weights registry; toyworld: a bundle folder "
        "or its weights file)",
    )
    gen.add_argument("--weights-dir", help="directory holding <repo_id>/<file> weights")
    gen.add_argument("--threads", type=int, help="CPU threads for torch")
    gen.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the DiT blocks (CUDA graphs on GPU); eager with one log line where unavailable",
    )
    gen.add_argument("--json", action="store_true", help="print the summary as JSON")
    gen.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory the request may use (e.g. 40GiB; default: free GPU memory, or available RAM on CPU)",
    )
    gen.add_argument(
        "--force-size", action="store_true", help="skip the up-front memory / disk / time checks of the request"
    )
    gen.set_defaults(func=_cmd_generate)

    meth = sub.add_parser("methods", help="list or show the named methods")
    meth.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    meth.add_argument("name", nargs="?")
    meth.add_argument("--json", action="store_true", help="print a JSON document (show always prints JSON)")
    meth.set_defaults(func=_cmd_methods)

    wts = sub.add_parser("weights", help="list, verify or download weight files")
    wts.add_argument("action", choices=["list", "verify", "download"])
    wts.add_argument("keys", nargs="*", help="registry keys or groups (default: all)")
    wts.add_argument(
        "--weights-dir", "--dest", dest="weights_dir", help="directory holding (or receiving) <repo_id>/<file> weights"
    )
    wts.add_argument("--json", action="store_true", help="print a JSON document")
    wts.set_defaults(func=_cmd_weights)

    from deepforcing.harness.cli import add_commands

    add_commands(sub)
    from deepforcing.report.cli import add_commands as add_report_commands

    add_report_commands(sub)
    from deepforcing.toyworld.cli import add_parser as add_toyworld_parser

    add_toyworld_parser(sub)
    _share_global_options(parser)
    return parser


def _configure_logging(level: int) -> None:
    """Log records to stderr through the console layer; third-party libraries at WARNING at most."""
    logging.basicConfig(level=level, format="%(message)s", handlers=[console.err.log_handler()], force=True)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by huggingface_hub and transformers on import
    if "transformers" in sys.modules:  # already imported (a test, an embedding program): switch its bars off too
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    for noisy in ("httpx", "urllib3", "huggingface_hub", "diffusers", "transformers"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    commands = list(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public API
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv, commands))
    _configure_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    from deepforcing.interrupts import exit_code, stop_on_signals

    try:
        if args.json and not getattr(args, "json_output", False):
            command = " ".join(filter(None, (args.command, getattr(args, "toy_command", None))))
            raise UserError(f"`{command}` has no JSON output", "drop --json")
        with stop_on_signals():  # SIGTERM unwinds like Ctrl-C: partial files of the unit in flight are removed
            return args.func(args)
    except UserError as exc:
        console.err.error(str(exc))
        return UserError.exit_code
    except KeyboardInterrupt as exc:
        console.err.line(f"interrupted ({exc})" if str(exc) else "interrupted")
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())

"""Command-line front end of the harness: ``run``, ``score``, ``suites`` and the top-level ``--suite``.

``deepforcing-eval --suite NAME [options]`` is ``deepforcing-eval run --suite NAME [options]``. Under
``torchrun`` every rank runs the same command; units are sharded across ranks and rank 0 writes the results
and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
from collections.abc import Sequence
from typing import Any

from deepforcing.errors import UserError

log = logging.getLogger("deepforcing.harness")

#: Top-level flags that take no value (they stay in front when ``--suite`` implies ``run``).
_GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}


def normalize_argv(argv: Sequence[str], commands: Sequence[str]) -> list[str]:
    """Insert ``run`` when ``--suite`` is given without a subcommand (``deepforcing-eval --suite smoke``)."""
    argv = list(argv)
    if any(a in commands for a in argv if not a.startswith("-")) or "-h" in argv or "--help" in argv:
        return argv
    if not any(a == "--suite" or a.startswith("--suite=") for a in argv):
        return argv
    i = 0
    while i < len(argv) and argv[i] in _GLOBAL_FLAGS:
        i += 1
    return [*argv[:i], "run", *argv[i:]]


def _csv_list(text: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in _csv_list(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from exc


def _add_run_options(p: argparse.ArgumentParser, *, generation: bool) -> None:
    """Options shared by ``run`` and ``score`` (one definition, no copies)."""
    p.add_argument("--suite", required=True, help="suite name (see `suites list`) or a path to a suite YAML")
    p.add_argument("--methods", type=_csv_list, help="comma-separated methods instead of the suite's")
    p.add_argument("--metrics", type=_csv_list, help="comma-separated metrics instead of the suite's")
    p.add_argument("--limit", type=int, help="only the first N prompts of the suite")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--duration", type=float, help="seconds of video (x 16 fps / 4 = latent frames)")
    length.add_argument("--num-latent-frames", type=int, help="latent frames (a multiple of the chunk size)")
    p.add_argument("--seeds", type=_int_list, help="comma-separated seeds instead of the suite's")
    p.add_argument("--model", help="model preset instead of the suite's (tiny, wan2.1-t2v-1.3b)")
    p.add_argument("--out", default="runs", help="output root; the run goes to OUT/<suite>/<run-id> (default runs)")
    p.add_argument("--run-id", help="run id (default: the model preset); re-running the same id resumes")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bf16 on cuda, fp32 on cpu")
    p.add_argument("--weights-dir", help="weights directory (<repo_id>/<file>; metric files under metrics/)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default 1 for the tiny and toyworld models)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the work plan and a GPU-time estimate; compute nothing"
    )
    p.add_argument("--json", action="store_true", help="print the aggregate as JSON instead of a table")
    if generation:
        p.add_argument("--force", action="store_true", help="regenerate and rescore units that are already done")
        p.add_argument("--rescore", action="store_true", help="recompute scores, keep the videos")
        p.add_argument(
            "--max-memory", metavar="SIZE", help="memory one video may use (e.g. 40GiB; default: what the device has)"
        )
        p.add_argument(
            "--force-size", action="store_true", help="skip the up-front memory / disk / time checks of the videos"
        )
    else:
        p.add_argument("--force", action="store_true", help="recompute scores that are cached")


def add_commands(sub: argparse._SubParsersAction) -> list[str]:
    """Register ``run``, ``score`` and ``suites`` on the main parser; returns their names."""
    run = sub.add_parser("run", help="run a suite: generate -> score -> summary (= --suite NAME)")
    _add_run_options(run, generation=True)
    run.add_argument("--no-score", action="store_true", help="generate videos only")
    run.set_defaults(func=cmd_run, stage="run")

    score = sub.add_parser("score", help="score the videos of a suite's run (never generates)")
    _add_run_options(score, generation=False)
    score.set_defaults(func=cmd_run, stage="score")

    suites = sub.add_parser("suites", help="list suites or show one resolved suite")
    suites.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    suites.add_argument("name", nargs="?")
    suites.set_defaults(func=cmd_suites)
    return ["run", "score", "suites"]


# --------------------------------------------------------------------------------------------- helpers
def _overrides(args: argparse.Namespace):
    from deepforcing.harness.suites import Overrides

    return Overrides(
        methods=args.methods,
        metrics=args.metrics,
        seeds=args.seeds,
        limit=args.limit,
        seconds=args.duration,
        latent_frames=args.num_latent_frames,
        model=args.model,
    )


def _options(args: argparse.Namespace):
    from deepforcing.harness.api import RunOptions

    scoring_only = args.stage == "score"
    return RunOptions(
        suite=args.suite,
        overrides=_overrides(args),
        out=args.out,
        run_id=args.run_id,
        device=args.device,
        dtype=args.dtype,
        weights_dir=args.weights_dir,
        generate=not scoring_only,
        score=scoring_only or not getattr(args, "no_score", False),
        force=args.force and not scoring_only,
        rescore=getattr(args, "rescore", False) or (scoring_only and args.force),
        max_memory=getattr(args, "max_memory", None),
        force_size=getattr(args, "force_size", False),
    )


def _fmt_hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _sigterm_to_interrupt():
    """Make SIGTERM (what torchrun sends on Ctrl-C) stop like Ctrl-C; returns the previous handler."""
    from deepforcing.interrupts import Terminated

    def handler(signum, frame):  # noqa: ARG001
        raise Terminated(signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test thread)
        return None


class _QuietPerUnit(logging.Filter):
    """Drop per-unit INFO lines of the engine from the console (they stay in the run's log file)."""

    NAMES = ("deepforcing.video_io", "deepforcing.model.checkpoint")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not record.name.startswith(self.NAMES)


def _file_logging(store, rank: int) -> logging.Handler | None:
    try:
        store.logs_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(store.logs_dir / f"rank{rank}.log", encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logging.getLogger("deepforcing").addHandler(handler)
    return handler


# ------------------------------------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    """``run`` / ``score`` / ``--suite``."""
    from deepforcing.cli import console, err_console
    from deepforcing.harness.api import default_device, dry_run, execute
    from deepforcing.harness.progress import Progress, RichProgress

    opts = _options(args)
    if args.dry_run:
        from deepforcing.harness.distributed import env_world

        if env_world()[0] == 0:
            _print_dry_run(console, dry_run(opts, default_device(args.device)))
        return 0

    import torch

    from deepforcing.harness import distributed

    previous_sigterm = _sigterm_to_interrupt()
    dist = None
    try:
        dist, device = distributed.init(args.device)
        from deepforcing.harness.suites import load_suite

        suite = load_suite(opts.suite, opts.overrides)
        threads = args.threads or (1 if suite.model in ("tiny", "toyworld") and device == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        from deepforcing.harness.api import open_store

        handler = None
        quiet = _QuietPerUnit()
        console_handlers = [] if args.verbose else list(logging.getLogger().handlers)
        for h in console_handlers:
            h.addFilter(quiet)
        store = open_store(opts, suite)
        show = dist.is_main and not args.quiet
        progress = RichProgress(err_console) if show else Progress()
        try:
            with progress:
                if dist.is_main:
                    store.check_writable()
                handler = _file_logging(store, dist.rank)
                outcome = execute(opts, dist, device, progress)
        finally:
            for h in console_handlers:
                h.removeFilter(quiet)
            if handler is not None:
                logging.getLogger("deepforcing").removeHandler(handler)
                handler.close()
        if dist.is_main:
            _print_outcome(console, outcome, as_json=args.json)
            if outcome.results is not None and outcome.results.missing:
                return 1
        return 0
    finally:
        if dist is not None:
            dist.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _print_dry_run(console, dr) -> None:
    from rich.table import Table

    from deepforcing.harness.plan import PAPER_FPS_SOURCE, paper_fps, pixel_frames, video_fps

    plan = dr.plan
    suite = plan.suite
    units = plan.units()
    first_of = {u.unit.key: u.method for u in units}
    table = Table(title=f"work plan: suite {suite.name} v{suite.version} ({suite.config_hash}) -> {dr.store.root}")
    for col in ("method", "config", "videos", "new units", "done", "to generate", "paper FPS", "est. H100 time"):
        table.add_column(col, justify="right" if col not in ("method", "config") else "left")
    total_s = total_units = total_todo = 0
    for m in suite.methods:
        items = [it for it in plan.items if it.method == m]
        own = [it for it in items if first_of[it.unit.key] == m]
        todo = [it for it in own if it.unit.key not in dr.done]
        fps, exact = paper_fps(m)
        secs = sum(pixel_frames(it.unit.num_latent_frames) / fps for it in todo)
        total_s += secs
        total_units += len(own)
        total_todo += len(todo)
        table.add_row(
            m,
            items[0].unit.method_config_hash if items else "",
            str(len(items)),
            str(len(own)),
            str(len(own) - len(todo)),
            str(len(todo)),
            f"{fps:.2f}" + ("" if exact else "*"),
            _fmt_hours(secs),
        )
    table.add_row(
        "total",
        "",
        str(len(plan.items)),
        str(total_units),
        str(total_units - total_todo),
        str(total_todo),
        "",
        _fmt_hours(total_s),
        style="bold",
    )
    console.print(table)
    prompts = plan.prompts
    span = f"{prompts[0].prompt_id} … {prompts[-1].prompt_id}" if len(prompts) > 1 else prompts[0].prompt_id
    src = suite.prompts.set or suite.prompts.file
    console.print(
        f"model [bold]{suite.model}[/bold], dtype {plan.dtype}, device {dr.device}; "
        f"{len(prompts)} prompts ({src}: {span}) x {len(suite.seeds)} seed(s) {list(suite.seeds)}; "
        f"{suite.num_latent_frames} latent frames = {pixel_frames(suite.num_latent_frames, suite.model)} frames "
        f"= {pixel_frames(suite.num_latent_frames, suite.model) / video_fps(suite.model):.2f} s at "
        f"{video_fps(suite.model)} fps"
    )
    console.print(f"metrics: {', '.join(suite.metrics)}; drift of: {', '.join(suite.drift) or '-'}")
    if suite.overrides:
        console.print("overrides: " + ", ".join(f"{k} {v}" for k, v in suite.overrides))
    console.print(
        f"estimate: sampling time at the paper's FPS on 1x H100 ({PAPER_FPS_SOURCE}; * = the method family's "
        "number, assumed); decode, scoring and model loading are not included; with N GPUs under torchrun "
        f"about 1/N: {_fmt_hours(total_s / 8)} on 8."
    )
    if dr.weights_problem:
        console.print(f"[yellow]generator weights not ready[/yellow] (done units unknown): {dr.weights_problem}")
    if dr.metrics_problem:
        console.print(f"[yellow]metrics not ready[/yellow]: {dr.metrics_problem}")
    if dr.budget_problem:
        console.print(f"[yellow]would not fit[/yellow]: {dr.budget_problem}")


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"


def _short(metric: str) -> str:
    """A result column without its protocol: ``drift.first_last[image_stats.mean_luma]`` (rich-escaped)."""
    from rich.markup import escape

    if "[" in metric:
        drift, _, of = metric.partition("[")
        return escape(f"{drift.split('@')[0]}[{of.rstrip(']').split('@')[0]}]")
    return escape(metric.split("@")[0])


def _print_outcome(console, outcome, as_json: bool = False) -> None:
    from rich.table import Table

    res = outcome.results
    if res is None:
        console.print(
            f"generated {outcome.pending} unit(s) ({outcome.generated} by this process), reused {outcome.reused}; "
            f"videos in {outcome.store.units_dir}"
        )
        return
    agg = res.aggregate
    if as_json:
        console.print_json(json.dumps({"results": agg["results"], "n_samples": agg["n_samples"]}))
        return
    methods = list(agg["results"])
    metrics: list[str] = []
    for m in methods:
        for k in agg["results"][m]:
            if k not in metrics and ("[" not in k or k.startswith("drift.first_last")):
                metrics.append(k)
    table = Table(title=f"{outcome.suite.name}: {outcome.store.root}")
    table.add_column("metric (protocol in the files)", overflow="fold")
    for m in methods:
        table.add_column(m, justify="right")
    for k in metrics:
        first = next(agg["results"][m][k] for m in methods if k in agg["results"][m])
        arrow = {True: " ↑", False: " ↓"}.get(first["higher_is_better"], "")
        table.add_row(_short(k) + arrow, *(_fmt_value(agg["results"][m].get(k, {}).get("value")) for m in methods))
    timings = agg.get("timings", {})
    table.add_row("FPS (this machine)", *(_fmt_value(timings.get(m, {}).get("fps_mean")) for m in methods))
    table.add_row("chunk latency ms", *(_fmt_value(timings.get(m, {}).get("chunk_latency_ms_mean")) for m in methods))
    console.print(table)
    n = agg["n_samples"]
    console.print(
        f"videos: {outcome.pending} generated ({outcome.generated} by this process), {outcome.reused} reused; "
        + ", ".join(f"{m} {n[m]['scored']}/{n[m]['expected']} scored" for m in methods)
    )
    console.print(
        "results (every drift summary, protocol ids, per-clip and per-video rows): " + ", ".join(res.files.values())
    )
    if res.missing:
        console.print(f"[yellow]{len(res.missing)} missing:[/yellow] " + "; ".join(res.missing[:5]))


# --------------------------------------------------------------------------------------------- suites
def cmd_suites(args: argparse.Namespace) -> int:
    """``suites list`` / ``suites show NAME``."""
    from rich.table import Table

    from deepforcing.cli import console
    from deepforcing.harness.suites import available_suites, load_suite, suite_path
    from deepforcing.harness.yaml_lines import load_with_lines

    if args.action == "show":
        if not args.name:
            raise UserError("suites show needs a NAME", f"choose one of: {', '.join(available_suites())}")
        suite = load_suite(args.name)
        from deepforcing.harness.suites import select_prompts

        prompts = select_prompts(suite)
        console.print_json(
            json.dumps(
                {
                    **suite.to_dict(),
                    "file": str(suite_path(args.name)),
                    "seconds": suite.seconds,
                    "prompt_ids": [p.prompt_id for p in prompts],
                }
            )
        )
        return 0
    table = Table(title="suites (eval/suites)")
    for col in ("name", "v", "model", "prompts", "methods", "length", "status"):
        table.add_column(col)
    for name in available_suites():
        data, _ = load_with_lines(suite_path(name))
        if "alias" in data:
            table.add_row(name, "", "", "", "", "", f"alias of {data['alias']}")
            continue
        try:
            load_suite(name)
            status = "ok"
        except UserError as exc:
            n = str(exc).count("\n") or 1
            status = f"[yellow]invalid ({n} problem{'s' if n > 1 else ''}; see `suites show {name}`)"
        p = data.get("prompts", {})
        chosen = f"first {p['first']}" if p.get("first") else f"{len(p.get('ids') or [])} ids"
        length = data.get("length", {})
        table.add_row(
            name,
            str(data.get("version", "")),
            str(data.get("model", "")),
            f"{p.get('set') or p.get('file')} {chosen}",
            str(len(data.get("methods", []))),
            f"{length.get('seconds')} s" if "seconds" in length else f"{length.get('latent_frames')} latent",
            status,
        )
    console.print(table)
    return 0

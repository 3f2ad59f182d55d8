"""Command-line front end of the harness: ``run``, ``score``, ``suites`` and the top-level ``--suite``.

``deepforcing-eval --suite NAME [options]`` is ``deepforcing-eval run --suite NAME [options]``. Under
``torchrun`` every rank runs the same command; units are sharded across ranks and rank 0 writes the results
and prints the summary.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
from typing import Any

from deepforcing import console
from deepforcing.console import Column, Styled, Table, document
from deepforcing.errors import UserError

log = logging.getLogger("deepforcing.harness")


def _models_help() -> str:
    from deepforcing.model.config import PRESETS

    return "; ".join(
        f"{name} ({p.fps} fps: {p.description})" if p.description else name for name, p in sorted(PRESETS.items())
    )


#: ``--model`` help of every command: each model preset with its frame rate and what it is.
MODELS_HELP = _models_help()


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


#: Exit status of a run that finished with failed or missing units (without ``--allow-failures``).
EXIT_INCOMPLETE = 3


def _add_suite_overrides(p: argparse.ArgumentParser) -> None:
    """The suite overrides of ``run``, ``score`` and ``score-videos`` (a run is found by the same overrides)."""
    p.add_argument("--methods", type=_csv_list, help="comma-separated methods instead of the suite's")
    p.add_argument("--metrics", type=_csv_list, help="comma-separated metrics instead of the suite's")
    p.add_argument("--limit", type=int, help="only the first N prompts of the suite")
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--duration",
        type=float,
        help="seconds of video: latent frames = seconds x 16 fps / 4 (must be whole chunks); the toyworld model "
        "plays its 1 frame per latent frame at 4 fps, so the same seconds",
    )
    length.add_argument("--num-latent-frames", type=int, help="latent frames (a multiple of the chunk size)")
    p.add_argument("--seeds", type=_int_list, help="comma-separated seeds instead of the suite's")
    p.add_argument("--model", help="model preset instead of the suite's: " + MODELS_HELP)


def _add_outcome_options(p: argparse.ArgumentParser) -> None:
    """What every scoring command does at its end: exit status, report, FVD reference."""
    p.add_argument(
        "--allow-failures",
        action="store_true",
        help=f"exit 0 even when units failed or are missing (default: exit {EXIT_INCOMPLETE}; they are always listed)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write report.html into the run folder")
    p.add_argument(
        "--fvd-reference",
        metavar="DIR",
        help="a folder of reference (real) videos: every method's set-level FVD against it (needs the fvd metric)",
    )


def _add_run_options(p: argparse.ArgumentParser, *, generation: bool) -> None:
    """Options shared by ``run`` and ``score`` (one definition, no copies)."""
    p.add_argument("--suite", required=True, help="suite name (see `suites list`) or a path to a suite YAML")
    _add_suite_overrides(p)
    p.add_argument("--out", default="runs", help="output root; the run goes to OUT/<suite>/<run-id> (default runs)")
    p.add_argument("--run-id", help="run id (default: the model preset); re-running the same id resumes")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bf16 on cuda, fp32 on cpu")
    p.add_argument("--weights-dir", help="weights directory (<repo_id>/<file>; metric files under metrics/)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default 1 for the tiny and toyworld models)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the work plan and an estimate of the sampling time on 1x H100 at the paper's FPS "
        "(Deep Forcing Tables 1 and 6); compute nothing",
    )
    p.add_argument("--json", action="store_true", help="print the summary (or the --dry-run plan) as JSON")
    _add_outcome_options(p)
    if generation:
        p.add_argument("--force", action="store_true", help="regenerate and rescore units that are already done")
        p.add_argument("--rescore", action="store_true", help="recompute scores, keep the videos")
        p.add_argument(
            "--max-memory", metavar="SIZE", help="memory one video may use (e.g. 40GiB; default: what the device has)"
        )
        p.add_argument(
            "--force-size", action="store_true", help="skip the up-front memory / disk / time checks of the videos"
        )
        p.add_argument(
            "--compile",
            action="store_true",
            help="torch.compile the DiT blocks (CUDA graphs on GPU; see `generate --compile`); results within 1e-4 "
            "of eager, eager with one log line where unavailable",
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

    sv = sub.add_parser(
        "score-videos",
        help="score a folder of videos made elsewhere (VBench naming, a mapping file, or one folder per method)",
        description="Import a folder of videos into a run and score them like generated ones. Layouts: VBench's "
        "naming <prompt>-<index>.mp4; --prompts MAPPING.csv|jsonl (path, prompt[, seed][, prompt_id][, method]"
        "[, segments]); or one sub-folder per method. With --suite the videos join that suite's run (beside the "
        "methods it generated, sharing prompt ids); with --metrics alone they go to the scoring-only suite "
        "'videos'. See docs/import.md.",
    )
    sv.add_argument("folder", help="the folder of videos")
    sv.add_argument("--name", help="method name of the videos (a flat folder; a folder of method folders names them)")
    sv.add_argument("--suite", help="suite whose protocol and run the videos join (default: 'videos', scoring only)")
    _add_suite_overrides(sv)
    sv.add_argument(
        "--prompts",
        help="a mapping CSV/JSONL (path, prompt, ...) or the full prompt texts of VBench names (.txt lines, VBench "
        "{path: prompt} .json, or a prompt .jsonl)",
    )
    sv.add_argument("--out", default="runs", help="output root (default runs)")
    sv.add_argument("--run-id", help="run id (default: the suite's model with --suite, else --name)")
    sv.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    sv.add_argument("--weights-dir", help="metric weights directory")
    sv.add_argument("--threads", type=int, help="CPU threads for torch")
    sv.add_argument("--force", action="store_true", help="rescore videos that are already scored")
    sv.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_outcome_options(sv)
    sv.set_defaults(func=cmd_run, stage="score-videos")

    ex = sub.add_parser(
        "export",
        help="write a run's videos (and VBench results JSON) in VBench's layout",
        description="Copy a run's videos to DIR/<method>/<prompt>-<index>.mp4 (VBench / VBench-Long submission "
        "naming) with DIR/<method>/mapping.csv (full prompts, seeds, prompt ids) and DIR/<method>_eval_results.json "
        "(VBench's results layout {dimension: [score, [{video_path, video_results}]]}).",
    )
    ex.add_argument("run", help="the run folder <out>/<suite>/<run-id>")
    ex.add_argument("dest", help="output folder")
    ex.add_argument("--layout", choices=["vbench"], default="vbench", help="the layout (default vbench)")
    ex.add_argument("--methods", type=_csv_list, help="only these methods")
    ex.add_argument("--json", action="store_true", help="print what was written as JSON")
    ex.set_defaults(func=cmd_export)

    suites = sub.add_parser("suites", help="list suites or show one resolved suite")
    suites.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    suites.add_argument("name", nargs="?")
    suites.add_argument("--json", action="store_true", help="print a JSON document (show always prints JSON)")
    suites.set_defaults(func=cmd_suites)
    return ["run", "score", "score-videos", "export", "suites"]


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
    from deepforcing.harness.api import ImportRequest, RunOptions

    if args.stage == "score-videos":
        if not args.suite and not args.metrics:
            raise UserError("score-videos needs --suite SUITE or --metrics LIST", "e.g. --metrics image_stats")
        return RunOptions(
            suite=args.suite or "videos",
            overrides=_overrides(args),
            out=args.out,
            run_id=args.run_id or (None if args.suite else args.name or "imported"),
            device=args.device,
            weights_dir=args.weights_dir,
            generate=False,
            score=True,
            rescore=args.force,
            existing_only=True,
            import_from=ImportRequest(args.folder, args.name, args.prompts),
            fvd_reference=args.fvd_reference,
        )
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
        compile=getattr(args, "compile", False),
        fvd_reference=args.fvd_reference,
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
def _write_report(run_dir):
    """``report.html`` in the run folder (the same page as ``deepforcing-eval report RUN``); returns its path."""
    from deepforcing.report.html import ReportOptions, build_report
    from deepforcing.report.published import load_published
    from deepforcing.report.runs import load_runs

    out = run_dir / "report.html"
    page = build_report(load_runs([run_dir]), out, ReportOptions(published=load_published()))
    from deepforcing.files import atomic_write_text

    atomic_write_text(out, page)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """``run`` / ``score`` / ``--suite``: exit 0 when every unit is scored, 3 with failed or missing units."""
    from deepforcing.harness.api import default_device, dry_run, execute
    from deepforcing.harness.progress import LineProgress, Progress, RichProgress

    opts = _options(args)
    if getattr(args, "dry_run", False):
        from deepforcing.harness.distributed import env_world

        if env_world()[0] == 0:
            doc = plan_doc(dry_run(opts, default_device(args.device)))
            if args.json:
                console.out.json(document("plan", **doc))
            else:
                print_plan(doc)
        return 0

    import torch

    from deepforcing.harness import distributed

    previous_sigterm = _sigterm_to_interrupt()
    dist = None
    try:
        dist, device = distributed.init(args.device)
        from deepforcing.harness.suites import load_suite

        suite = load_suite(opts.suite, opts.overrides)
        from deepforcing import model_kinds

        threads = args.threads or (model_kinds.get(suite.model).cpu_threads if device == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        from deepforcing.harness.api import open_store

        handler = None
        quiet = _QuietPerUnit()
        console_handlers = [] if args.verbose else list(logging.getLogger().handlers)
        for h in console_handlers:
            h.addFilter(quiet)
        store = open_store(opts, suite)
        if not opts.generate and opts.import_from is None:
            store.require_existing()  # before the log folder: `score` creates nothing
        if not dist.is_main or args.quiet:
            progress = Progress()
        elif console.err.is_tty:
            progress = RichProgress(console.err.rich)
        else:  # a log file or a pipe: one line per finished unit instead of bars
            progress = LineProgress(console.err)
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
            doc = outcome_doc(outcome)
            if outcome.results is not None and not args.no_report:
                doc["report"] = str(_write_report(outcome.store.root))
            if args.json:
                console.out.json(document("run-summary", **doc))
            else:
                print_outcome(doc)
            if outcome.problems and not args.allow_failures:
                return EXIT_INCOMPLETE
        return 0
    finally:
        if dist is not None:
            dist.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


#: What the ``--dry-run`` time estimate assumes (printed with it and written into its JSON).
ESTIMATE_ASSUMPTIONS = {
    "model": "wan2.1-t2v-1.3b",
    "gpu": "1x NVIDIA H100",
    "covers": "sampling at the paper's FPS",
    "excludes": "decode, scoring and model loading",
}


def plan_doc(dr) -> dict[str, Any]:
    """The ``--dry-run`` work plan as a JSON-ready dict (schema ``plan`` in docs/cli.md)."""
    from deepforcing.harness.plan import PAPER_FPS_SOURCE, paper_fps, pixel_frames, video_fps

    plan = dr.plan
    suite = plan.suite
    first_of = {u.unit.key: u.method for u in plan.units()}
    methods = []
    for m in suite.methods:
        items = [it for it in plan.items if it.method == m]
        own = [it for it in items if first_of[it.unit.key] == m]
        todo = [it for it in own if it.unit.key not in dr.done]
        fps, exact = paper_fps(m)
        methods.append(
            {
                "name": m,
                "config_hash": items[0].unit.method_config_hash if items else None,
                "videos": len(items),
                "new_units": len(own),
                "done": len(own) - len(todo),
                "to_generate": len(todo),
                "paper_fps": fps,
                "paper_fps_exact": exact,
                "estimate_seconds": sum(pixel_frames(it.unit.num_latent_frames) / fps for it in todo),
            }
        )
    total = {k: sum(m[k] for m in methods) for k in ("new_units", "done", "to_generate", "estimate_seconds")}
    frames = pixel_frames(suite.num_latent_frames, suite.model)
    fps = video_fps(suite.model)
    return {
        "suite": suite.name,
        "suite_version": suite.version,
        "suite_config_hash": suite.config_hash,
        "run_dir": str(dr.store.root),
        "model": suite.model,
        "dtype": plan.dtype,
        "device": dr.device,
        "prompts": {"source": suite.prompts.set or suite.prompts.file, "ids": [p.prompt_id for p in plan.prompts]},
        "seeds": list(suite.seeds),
        "latent_frames": suite.num_latent_frames,
        "video_frames": frames,
        "video_fps": fps,
        "seconds": frames / fps,
        "metrics": list(suite.metrics),
        "drift": list(suite.drift),
        "overrides": {k: v for k, v in suite.overrides},
        "methods": methods,
        "total": {"videos": len(plan.items), **total},
        "estimate": {
            **ESTIMATE_ASSUMPTIONS,
            "source": PAPER_FPS_SOURCE,
            "seconds_on_8_gpus": total["estimate_seconds"] / 8,
        },
        "weights_problem": dr.weights_problem or None,
        "metrics_problem": dr.metrics_problem or None,
        "budget_problem": dr.budget_problem or None,
    }


def print_plan(doc: dict[str, Any]) -> None:
    """The ``--dry-run`` plan for people: a table per method, then what it assumes."""
    table = Table(
        [
            Column("method", "key"),
            Column("config", "key"),
            *(Column(h, "number") for h in ("videos", "new units", "done", "to generate", "paper FPS")),
            Column("est. H100 time", "number"),
        ],
        title=f"work plan: suite {doc['suite']} v{doc['suite_version']} ({doc['suite_config_hash']}) -> "
        f"{doc['run_dir']}",
    )
    for m in doc["methods"]:
        fps = f"{m['paper_fps']:.2f}" + ("" if m["paper_fps_exact"] else "*")
        counts = (m["videos"], m["new_units"], m["done"], m["to_generate"])
        table.add_row(m["name"], m["config_hash"], *map(str, counts), fps, _fmt_hours(m["estimate_seconds"]))
    t = doc["total"]
    counts = (t["videos"], t["new_units"], t["done"], t["to_generate"])
    table.add_row("total", "", *map(str, counts), "", _fmt_hours(t["estimate_seconds"]), style="bold")
    console.out.table(table)
    ids = doc["prompts"]["ids"]
    span = f"{ids[0]} … {ids[-1]}" if len(ids) > 1 else ids[0]
    console.out.line(
        "model ",
        Styled(doc["model"], "bold"),
        f", dtype {doc['dtype']}, device {doc['device']}; {len(ids)} prompts ({doc['prompts']['source']}: {span}) "
        f"x {len(doc['seeds'])} seed(s) {doc['seeds']}; {doc['latent_frames']} latent frames = "
        f"{doc['video_frames']} frames = {doc['seconds']:.2f} s at {doc['video_fps']} fps",
    )
    console.out.line(f"metrics: {', '.join(doc['metrics'])}; drift of: {', '.join(doc['drift']) or '-'}")
    if doc["overrides"]:
        console.out.line("overrides: " + ", ".join(f"{k} {v}" for k, v in doc["overrides"].items()))
    est = doc["estimate"]
    other_model = (
        f"; this suite's model is {doc['model']}: the figure is for the same latent frames on {est['model']}"
        if doc["model"] != est["model"]
        else ""
    )
    console.out.line(
        f"est. H100 time: {est['covers']} of {est['model']} on {est['gpu']} (source: {est['source']}; * = the "
        f"method family's number, assumed); {est['excludes']} not included{other_model}; with N GPUs under "
        f"torchrun about 1/N: {_fmt_hours(est['seconds_on_8_gpus'])} on 8."
    )
    if doc["weights_problem"]:
        console.out.line(
            Styled("generator weights not ready", "yellow"), f" (done units unknown): {doc['weights_problem']}"
        )
    if doc["metrics_problem"]:
        console.out.line(Styled("metrics not ready", "yellow"), f": {doc['metrics_problem']}")
    if doc["budget_problem"]:
        console.out.line(Styled("would not fit", "yellow"), f": {doc['budget_problem']}")


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"


def _short(metric: str) -> str:
    """A result column without its protocol: ``drift.first_last[image_stats.mean_luma]``."""
    if "[" in metric:
        drift, _, of = metric.partition("[")
        return f"{drift.split('@')[0]}[{of.rstrip(']').split('@')[0]}]"
    return metric.split("@")[0]


def outcome_doc(outcome) -> dict[str, Any]:
    """What a run did, as a JSON-ready dict (schema ``run-summary`` in docs/cli.md); the text summary reads it too.

    The ``failed`` and ``missing`` lists come from the outcome's one problem list (the same one the results files
    and the report are written from), so the summary and ``--json`` always show the same problems.
    """
    res = outcome.results
    doc: dict[str, Any] = {
        "suite": outcome.suite.name,
        "run_dir": str(outcome.store.root),
        "videos_dir": str(outcome.store.units_dir),
        "units": {
            "pending": outcome.pending,
            "generated_here": outcome.generated,
            "reused": outcome.reused,
            "scored_here": outcome.scored,
        },
        "scored": res is not None,
    }
    if res is None:
        return {**doc, **{name: list(getattr(outcome, name)) for name in PROBLEM_LISTS}}
    agg = res.aggregate
    doc.update(
        methods=list(agg["results"]),
        results=agg["results"],
        n_samples=agg["n_samples"],
        timings=agg.get("timings", {}),
        files=dict(res.files),
    )
    for name in PROBLEM_LISTS:
        doc[name] = list(getattr(outcome, name))
    counts = agg["n_samples"]
    doc["failed_units"] = {m: counts[m].get("failed", 0) for m in counts}
    return doc


#: Lists of problems a run summary prints when not empty (attribute of the results -> heading).
PROBLEM_LISTS = {"failed": "failed", "missing": "missing"}

#: Most problem items printed in the text summary (all of them are in --json and the results files).
MAX_PROBLEM_LINES = 20


def _problem_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return "; ".join(f"{k} {v}" for k, v in item.items())
    return str(item)


def print_outcome(doc: dict[str, Any]) -> None:
    """The run summary for people: results table, unit counts, result files, then any problems in full."""
    units = doc["units"]
    if not doc["scored"]:
        console.out.line(
            f"generated {units['pending']} unit(s) ({units['generated_here']} by this process), reused "
            f"{units['reused']}; videos in {doc['videos_dir']}"
        )
        _print_problems(doc)
        return
    results, methods = doc["results"], doc["methods"]
    metrics: list[str] = []
    for m in methods:
        for k in results[m]:
            if k not in metrics and ("[" not in k or k.startswith("drift.first_last")):
                metrics.append(k)
    table = Table(
        [Column("metric (protocol in the files)", "key"), *(Column(m, "number") for m in methods)],
        title=f"{doc['suite']}: {doc['run_dir']}",
    )
    for k in metrics:
        first = next(results[m][k] for m in methods if k in results[m])
        arrow = {True: " ↑", False: " ↓"}.get(first["higher_is_better"], "")
        table.add_row(_short(k) + arrow, *(_fmt_value(results[m].get(k, {}).get("value")) for m in methods))
    timings = doc["timings"]
    table.add_row("FPS (this machine)", *(_fmt_value(timings.get(m, {}).get("fps_mean")) for m in methods))
    table.add_row("chunk latency ms", *(_fmt_value(timings.get(m, {}).get("chunk_latency_ms_mean")) for m in methods))
    console.out.table(table)
    n = doc["n_samples"]

    def counts(m: str) -> str:
        c = n[m]
        extra = [f"{c[k]} {k}" for k in ("failed", "missing") if c.get(k)]
        return f"{m} {c['scored']}/{c['expected']} scored" + (f" ({', '.join(extra)})" if extra else "")

    console.out.line(
        f"videos: {units['pending']} generated ({units['generated_here']} by this process), {units['reused']} "
        "reused; " + ", ".join(counts(m) for m in methods)
    )
    console.out.line("results (every drift summary, protocol ids, per-clip and per-video rows):")
    for path in doc["files"].values():
        console.out.line(f"  {path}")
    if doc.get("report"):
        console.out.line(f"report: {doc['report']}")
    _print_problems(doc)


def _print_problems(doc: dict[str, Any]) -> None:
    """Every failed and missing piece, counted (the same lists as ``--json`` and results/problems.csv)."""
    for name, heading in PROBLEM_LISTS.items():
        items = doc.get(name) or []
        if not items:
            continue
        console.out.line(Styled(f"{heading} ({len(items)}):", "yellow"))
        for item in items[:MAX_PROBLEM_LINES]:
            console.out.line(f"  {_problem_text(item)}")
        if len(items) > MAX_PROBLEM_LINES:
            console.out.line(f"  … and {len(items) - MAX_PROBLEM_LINES} more (all of them: --json)")


# --------------------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    """``export RUN DEST --layout vbench``."""
    from deepforcing.harness.export import export_vbench
    from deepforcing.report.runs import resolve_run_dir

    written = export_vbench(resolve_run_dir(args.run), args.dest, list(args.methods) if args.methods else None)
    if args.json:
        console.out.json(document("export", layout=args.layout, dest=str(args.dest), methods=written))
        return 0
    for method, w in written.items():
        console.out.line(f"{method}: {w['videos']} video(s) in {w['folder']}; VBench results {w['results']}")
    return 0


# --------------------------------------------------------------------------------------------- suites
def suite_rows() -> list[dict[str, Any]]:
    """Every suite file in eval/suites as a JSON-ready dict (schema ``suites`` in docs/cli.md)."""
    from deepforcing.harness.suites import available_suites, load_suite, suite_path
    from deepforcing.harness.yaml_lines import load_with_lines

    rows = []
    for name in available_suites():
        path = suite_path(name)
        data, _ = load_with_lines(path)
        if "alias" in data:
            rows.append({"name": name, "file": str(path), "status": "alias", "alias_of": data["alias"]})
            continue
        problems: list[str] = []
        try:
            load_suite(name, check_prompts=False)  # structure only: a listing loads no model code
        except UserError as exc:
            problems = str(exc).splitlines() or [str(exc)]
        p = data.get("prompts", {})
        length = data.get("length", {})
        rows.append(
            {
                "name": name,
                "file": str(path),
                "status": "invalid" if problems else "ok",
                "version": data.get("version"),
                "model": data.get("model"),
                "prompts": {"source": p.get("set") or p.get("file"), "first": p.get("first"), "ids": p.get("ids")},
                "methods": list(data.get("methods", [])),
                "length": {"seconds": length.get("seconds"), "latent_frames": length.get("latent_frames")},
                "problems": problems,
            }
        )
    return rows


def cmd_suites(args: argparse.Namespace) -> int:
    """``suites list`` / ``suites show NAME``."""
    from deepforcing.harness.suites import available_suites, load_suite, select_prompts, suite_path

    if args.action == "show":
        if not args.name:
            raise UserError("suites show needs a NAME", f"choose one of: {', '.join(available_suites())}")
        suite = load_suite(args.name, check_prompts=False)  # prompt texts are checked by run / --dry-run
        prompts = select_prompts(suite)
        console.out.json(
            document(
                "suite",
                **suite.to_dict(),
                file=str(suite_path(args.name)),
                seconds=suite.seconds,
                prompt_ids=[p.prompt_id for p in prompts],
            )
        )
        return 0
    rows = suite_rows()
    if args.json:
        console.out.json(document("suites", suites=rows))
        return 0
    table = Table(
        [
            Column("name", "key"),
            Column("v", "number"),
            Column("model", "key"),
            Column("prompts"),
            Column("methods", "number"),
            Column("length"),
            Column("status"),
        ]
    )
    for r in rows:
        if r["status"] == "alias":
            table.add_row(r["name"], "", "", "", "", "", f"alias of {r['alias_of']}")
            continue
        p, length = r["prompts"], r["length"]
        chosen = f"first {p['first']}" if p["first"] else f"{len(p['ids'] or [])} ids"
        n = len(r["problems"])
        status = (
            Styled(f"invalid ({n} problem{'s' if n > 1 else ''}; see `suites show {r['name']}`)", "yellow")
            if n
            else "ok"
        )
        table.add_row(
            r["name"],
            str(r["version"] if r["version"] is not None else ""),
            str(r["model"] or ""),
            f"{p['source']} {chosen}",
            str(len(r["methods"])),
            f"{length['seconds']} s" if length["seconds"] is not None else f"{length['latent_frames']} latent",
            status,
        )
    console.out.table(table)
    return 0

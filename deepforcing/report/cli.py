"""``deepforcing-eval report`` and ``deepforcing-eval regress``.

``report RUN [RUN ...] --out report.html`` writes the self-contained HTML report (and, on request, the summary
table as Markdown, LaTeX or CSV). ``regress RUN --baseline reports/baselines/NAME.json`` compares the run with
committed numbers: exit 0 when everything is within tolerance, 1 on any regression, 2 on bad input;
``--update`` re-blesses the baseline from the run and shows the diff.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from deepforcing import console
from deepforcing.console import Styled, document
from deepforcing.errors import UserError

log = logging.getLogger("deepforcing.report")

#: Exit code of ``regress`` when a number moved (bad input exits 2 like every command).
REGRESSION_EXIT_CODE = 1


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from exc
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from exc
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got '{text}'")
    return v


def _csv_list(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def add_commands(sub: argparse._SubParsersAction) -> list[str]:
    """Register ``report`` and ``regress`` on the main parser; returns their names."""
    rep = sub.add_parser("report", help="write a self-contained HTML report of one or more runs")
    rep.add_argument("runs", nargs="+", metavar="RUN", help="run directory <out>/<suite>/<run-id> (or its results/)")
    rep.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    rep.add_argument("--title", help="page title (default from the runs)")
    rep.add_argument(
        "--markdown", metavar="PATH", help="also write the summary table and the paired comparisons as Markdown"
    )
    rep.add_argument(
        "--latex", metavar="PATH", help="also write the summary table and the paired comparisons as LaTeX (booktabs)"
    )
    rep.add_argument(
        "--csv", metavar="PATH", help="also write the summary table as CSV (raw values, ci_low:/ci_high: columns)"
    )
    rep.add_argument("--no-filmstrips", action="store_true", help="skip the filmstrips (no video decoding)")
    rep.add_argument(
        "--filmstrip-every",
        type=_positive_float,
        metavar="SECONDS",
        help="seconds between filmstrip frames (default 2 / 5 / 10 s by video length)",
    )
    rep.add_argument(
        "--max-prompts",
        type=_non_negative_int,
        default=8,
        help="most (prompt, seed) sections with filmstrips (default 8)",
    )
    rep.add_argument(
        "--copy-videos",
        action="store_true",
        help="copy the mp4s to <out stem>_videos/ beside the report and link the copies",
    )
    rep.add_argument("--no-published", action="store_true", help="leave out the papers' numbers")
    rep.add_argument(
        "--findings",
        metavar="JSON",
        help="add a toy-world drift study (summary.json of `deepforcing-eval toyworld drift`) as its own section",
    )
    rep.add_argument("--json", action="store_true", help="print the summary table and the written files as JSON")
    rep.set_defaults(func=cmd_report)

    reg = sub.add_parser("regress", help="compare a run with committed reference numbers (exit 1 on regression)")
    reg.add_argument("run", metavar="RUN", help="run directory <out>/<suite>/<run-id>")
    reg.add_argument("--baseline", required=True, help="baseline file, e.g. reports/baselines/smoke.json")
    reg.add_argument("--update", action="store_true", help="re-bless: write the run's numbers into the baseline")
    reg.add_argument("--methods", type=_csv_list, help="compare only these methods (comma-separated)")
    reg.add_argument("--all", action="store_true", help="list every compared value, not only what moved")
    reg.add_argument(
        "--gate",
        choices=("tolerance", "ci-overlap"),
        help="how numbers are judged: 'tolerance' (|current - baseline| within the declared tolerance) or "
        "'ci-overlap' (also pass when the 95%% intervals over prompts overlap; no interval: the tolerance "
        "decides); default: the baseline's tolerances.gate, else tolerance",
    )
    reg.add_argument("--json", action="store_true", help="print the comparison as JSON")
    reg.set_defaults(func=cmd_regress)
    return ["report", "regress"]


def _check_out(path: Path, suffixes: tuple[str, ...], flag: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} must end in {' or '.join(suffixes)}, got '{path}'")
    if path.is_dir():
        raise UserError(f"{flag} '{path}' is a directory", "give a file name")


def _write(path: Path, text: str) -> None:
    from deepforcing.files import atomic_write_text

    atomic_write_text(path, text)


def cmd_report(args: argparse.Namespace) -> int:
    """``report``."""
    from deepforcing.report import render
    from deepforcing.report import table as T
    from deepforcing.report.html import ReportOptions, build_report
    from deepforcing.report.published import load_published
    from deepforcing.report.runs import load_runs

    out = Path(args.out)
    _check_out(out, (".html", ".htm"), "--out")
    extra = [
        (args.markdown, (".md", ".markdown"), "--markdown"),
        (args.latex, (".tex",), "--latex"),
        (args.csv, (".csv",), "--csv"),
    ]
    for value, suffixes, flag in extra:
        if value:
            _check_out(Path(value), suffixes, flag)
    findings = None
    if args.findings:
        from deepforcing.report.findings import load_findings

        findings = load_findings(args.findings)
    runs = load_runs(args.runs)
    published = None if args.no_published else load_published()
    t0 = time.monotonic()
    opts = ReportOptions(
        title=args.title,
        filmstrips=not args.no_filmstrips,
        filmstrip_every=args.filmstrip_every,
        max_prompts=args.max_prompts,
        copy_videos=args.copy_videos,
        published=published,
        findings=findings,
    )
    page = build_report(runs, out, opts)
    _write(out, page)
    tables = T.export_tables(runs, published)
    summary = tables[0]
    written = [str(out)]
    if args.markdown:
        _write(Path(args.markdown), render.to_markdown_tables(tables))
        written.append(args.markdown)
    if args.latex:
        _write(Path(args.latex), render.to_latex_tables(tables))
        written.append(args.latex)
    if args.csv:
        _write(Path(args.csv), render.to_csv(summary))
        written.append(args.csv)
    log.info("report of %d run(s) in %.1f s (%.0f KiB)", len(runs), time.monotonic() - t0, len(page.encode()) / 1024)
    if args.json:
        runs_json = [{"name": r.name, "path": str(r.root)} for r in runs]
        paired = render.to_json(T.paired_table(runs))
        console.out.json(
            document("report", written=written, runs=runs_json, summary=render.to_json(summary), paired=paired)
        )
        return 0
    if not args.quiet:
        console.out.table(render.to_console(summary))
    console.out.line("wrote " + ", ".join(written))
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    """``regress``."""
    from deepforcing.report import regress, render
    from deepforcing.report.runs import load_run

    run = load_run(args.run)
    path = Path(args.baseline)
    if args.update:
        return _update(run, path, args)
    baseline = regress.read_baseline(path)
    comparison = regress.compare(run, baseline, args.methods, str(path), args.gate)
    env_notes = regress.environment_notes(run, baseline)
    if args.json:
        console.out.json(document("regress", **comparison.to_json(), notes=env_notes))
    elif args.all or any(f.status != "ok" for f in comparison.findings):
        console.out.table(render.to_console(regress.findings_table(comparison, show_all=args.all)))
    else:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(comparison.counts().items()))
        how = "tolerances declared in the baseline"
        if comparison.gate == "ci-overlap":
            how += ", or overlapping 95% intervals"
        console.out.line(f"regress {run.name} vs {path}: ok ({counts}; {how})")
    for note in env_notes:
        console.err.note(note)
    if comparison.failed:
        console.err.line(
            Styled("regression:", "red"),
            f" {len(comparison.failed)} change(s) outside the declared tolerances"
            f"{' and intervals' if comparison.gate == 'ci-overlap' else ''}; "
            f"if intended, re-bless: deepforcing-eval regress {args.run} --baseline {path} --update",
        )
        return REGRESSION_EXIT_CODE
    return 0


def _update(run, path: Path, args: argparse.Namespace) -> int:
    from deepforcing.report import regress, render

    if path.suffix.lower() != ".json":
        raise UserError(f"--baseline must be a .json file, got '{path}'")
    previous = regress.read_baseline(path) if path.is_file() else None
    if args.methods:
        raise UserError("--update re-blesses the whole run", "drop --methods")
    doc = regress.make_baseline(run, previous)
    new_text = regress.dump_baseline(doc)
    old_text = path.read_text(encoding="utf-8") if path.is_file() else ""
    comparison = regress.compare(run, previous, None, str(path), args.gate) if previous is not None else None
    action = "up to date" if new_text == old_text else "re-blessed" if previous is not None else "created"
    diff = "" if new_text == old_text else regress.unified_diff(old_text, new_text, str(path))
    if new_text != old_text:
        _write(path, new_text)
    if args.json:
        changes = comparison.to_json() if comparison is not None else None
        console.out.json(
            document("regress-update", baseline=str(path), run=run.name, action=action, diff=diff, changes=changes)
        )
        return 0
    if comparison is not None:
        console.out.table(render.to_console(regress.findings_table(comparison)))
    if action == "up to date":
        console.out.line(f"{path} is up to date (nothing to re-bless)")
        return 0
    console.out.block(diff)
    console.out.line(f"{action} {path} from run {run.name}")
    return 0

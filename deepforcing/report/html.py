"""The self-contained HTML report: one file, inline CSS, JS, SVG charts and JPEG filmstrips; no network.

Sections (``id`` in brackets): summary table with the paper's numbers beside ours [summary], paired comparisons of
the methods [paired], every published number of the methods [paper], drift over time and drift summaries [drift],
long-horizon coherence against the gap Δt when the runs have it [coherence], ablation plots [ablation], speed
[speed], per-prompt filmstrips with per-video values and links to the mp4s [prompts], provenance [provenance].
The tables come from :mod:`deepforcing.report.table` through :func:`deepforcing.report.render.to_html`; the summary
(with the paired comparisons) is also embedded as Markdown, LaTeX and CSV for copying. Our numbers carry their 95 %
interval over prompts in every table and as bars in the charts (drift curves: the run-level interval of each
method beside its curve; there are no per-clip intervals).

The output depends only on the run files (no clock), so re-rendering the same runs gives the same bytes.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepforcing import __version__
from deepforcing.paths import baselines_dir
from deepforcing.report import charts, render
from deepforcing.report import table as T
from deepforcing.report.catalog import describe, split_drift, split_id
from deepforcing.report.filmstrip import filmstrip
from deepforcing.report.findings import Findings
from deepforcing.report.published import Published
from deepforcing.report.runs import Run

log = logging.getLogger(__name__)

#: Metrics plotted against an ablation knob, in order of preference (Deep Forcing Fig. 5 first).
ABLATION_METRICS = (
    "vbench.overall_consistency",
    "drift.first_last[vbench.aesthetic_quality]",
    "vbench.aesthetic_quality",
    "vbench.imaging_quality",
    "vbench.dynamic_degree",
    "vbench.subject_consistency",
)
#: Fallback when none of the above was measured (e.g. the weight-free smoke suite).
ABLATION_FALLBACK = (
    "drift.first_last[image_stats.mean_luma]",
    "drift.first_last[image_stats.saturation]",
    "vbench.temporal_flickering",
)


@dataclass(frozen=True)
class ReportOptions:
    """What to put in the report.

    Attributes:
        title: Page title (default from the runs).
        filmstrips: Include filmstrips (decodes the mp4s).
        filmstrip_every: Seconds between filmstrip frames (default by video length).
        max_prompts: Most (prompt, seed) sections shown.
        copy_videos: Copy the mp4s next to the report (``<stem>_videos/``) and link the copies.
        published: Published numbers (None: ours only).
        findings: A study from :func:`deepforcing.report.findings.load_findings` (e.g. the toy-world drift
            study) shown as its own section (None: no such section).
    """

    title: str | None = None
    filmstrips: bool = True
    filmstrip_every: float | None = None
    max_prompts: int = 8
    copy_videos: bool = False
    published: Published | None = field(default=None, compare=False)
    findings: Findings | None = field(default=None, compare=False)


# ---------------------------------------------------------------------------------------------- data
def _generic(key: str) -> str:
    """``vbench.x@p`` -> ``vbench.x``; ``drift.a@p[m@q]`` -> ``drift.a[m]``."""
    d = split_drift(key)
    if d is None:
        return split_id(key)[0]
    return f"{split_id(d[0])[0]}[{split_id(d[1])[0]}]"


def _ci_bounds(run: Run, method: str, key: str) -> tuple[float, float]:
    """The interval of a result (NaN, NaN when it has none)."""
    ci = (run.results(method).get(key) or {}).get("ci") or {}
    lo, hi = ci.get("ci_low"), ci.get("ci_high")
    if isinstance(lo, int | float) and isinstance(hi, int | float) and math.isfinite(lo) and math.isfinite(hi):
        return float(lo), float(hi)
    return math.nan, math.nan


def _run_level_markers(series: Sequence[T.Series], mid: str, indices: Sequence[int], x_end: float, span: float):
    """Each series' run-level value of ``mid`` with its interval, as points dodged to the right of the curves."""
    out = []
    step = 0.04 * (span or 1.0)
    for k, i in enumerate(indices):
        s = series[i]
        value = s.run.value(s.method, mid)
        if value is None:
            continue
        lo, hi = _ci_bounds(s.run, s.method, mid)
        x = x_end + step * (k + 1)
        out.append(charts.Curve(s.label, (x,), (value,), color_index=i, ci_lo=(lo,), ci_hi=(hi,), points=True))
    return out


def drift_panels(series: Sequence[T.Series]) -> list[charts.Panel]:
    """One panel per per-clip metric id: mean over videos per clip (band = min..max), x = clip centre in s.

    Right of the curves, each series' run-level value of the metric (the mean over videos of the per-video
    means) is drawn as a point with its confidence interval over prompts: the per-clip means have no interval of
    their own, the run-level value does.
    """
    data: dict[str, dict[int, dict[float, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for i, s in enumerate(series):
        for row in s.run.clips:
            if row.get("record") != "clip" or row.get("method") != s.method or row.get("value") is None:
                continue
            t = (row["start_frame"] + row["stop_frame"]) / 2 / row["fps"]
            data[row["metric"]][i][round(t, 6)].append(float(row["value"]))
    panels = []
    for mid in sorted(data, key=lambda m: (not m.startswith("vbench."), m)):
        info = describe(mid)
        curves = []
        for i in sorted(data[mid]):
            x, y, lo, hi = charts.band(data[mid][i])
            curves.append(charts.Curve(series[i].label, x, y, lo, hi, i))
        xs = [x for c in curves for x in c.x]
        divider = None
        if xs:
            span = max(xs) - min(xs)
            curves += _run_level_markers(series, mid, sorted(data[mid]), max(xs), span)
            divider = max(xs) + 0.02 * (span or 1.0)
        panels.append(charts.Panel(info.label, tuple(curves), xlabel="time (s)", note=info.protocol, divider=divider))
    return panels


def _grids() -> list[dict[str, Any]]:
    path = baselines_dir() / "methods" / "ablations.yaml"
    try:
        return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("grids") or [])
    except OSError:
        return []


@dataclass(frozen=True)
class Ablation:
    """Series of one ablation grid present in the runs.

    Attributes:
        knob: The varied setting (``policy_config.sink_frames``).
        base: The grid's base method.
        points: ``(knob value, series index)`` sorted by value.
    """

    knob: str
    base: str
    points: tuple[tuple[Any, int], ...]


def find_ablations(series: Sequence[T.Series]) -> list[Ablation]:
    """Ablation grids (``baselines/methods/ablations.yaml``) with at least two members among the series."""
    out = []
    for grid in _grids():
        names = {str(grid["name"]).format(value=v): v for v in grid.get("values") or []}
        points = [(names[s.method], i) for i, s in enumerate(series) if s.method in names]
        numeric = all(isinstance(v, int | float) for v, _ in points)
        if len({v for v, _ in points}) >= 2:
            points.sort(key=lambda p: (p[0] if numeric else str(p[0]), p[1]))
            out.append(Ablation(str(grid["knob"]), str(grid["base"]), tuple(points)))
    return out


def ablation_panels(series: Sequence[T.Series], ab: Ablation) -> list[charts.Panel]:
    """Knob value (x) against the preferred metrics (one panel each), one line per run."""
    keys_by_generic: dict[str, str] = {}
    for _, i in ab.points:
        s = series[i]
        for k in s.run.results(s.method):
            keys_by_generic.setdefault(_generic(k), k)
    chosen = [keys_by_generic[g] for g in ABLATION_METRICS if g in keys_by_generic]
    if not chosen:
        chosen = [keys_by_generic[g] for g in ABLATION_FALLBACK if g in keys_by_generic]
    numeric = all(isinstance(v, int | float) for v, _ in ab.points)
    categories = list(dict.fromkeys(v for v, _ in ab.points))
    knob = ab.knob.split(".")[-1]
    panels = []
    for key in chosen:
        info = describe(key)
        by_run: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
        names: dict[int, str] = {}
        for v, i in ab.points:
            s = series[i]
            x = float(v) if numeric else float(categories.index(v))
            val = s.run.value(s.method, key)
            lo, hi = _ci_bounds(s.run, s.method, key)
            by_run[id(s.run)].append((x, math.nan if val is None else val, lo, hi))
            names.setdefault(id(s.run), s.run.name)
        curves = []
        for k, (rid, pts) in enumerate(by_run.items()):
            label = names[rid] if len(by_run) > 1 else f"{ab.base}: {knob}"
            curves.append(
                charts.Curve(
                    label,
                    tuple(p[0] for p in pts),
                    tuple(p[1] for p in pts),
                    color_index=k,
                    ci_lo=tuple(p[2] for p in pts),
                    ci_hi=tuple(p[3] for p in pts),
                )
            )
        xl = knob.replace("_", " ") + ("" if numeric else f" ({', '.join(map(str, categories))})")
        panels.append(charts.Panel(info.label, tuple(curves), xlabel=xl, note=info.protocol, markers=True))
    return panels


def speed_panels(series: Sequence[T.Series]) -> list[charts.Panel]:
    """Per-chunk latency (ms) and attended latent frames over the chunk index, mean over videos per method."""
    lat, att = [], []
    for i, s in enumerate(series):
        per_lat: dict[float, list[float]] = defaultdict(list)
        per_att: dict[float, list[float]] = defaultdict(list)
        for u in s.run.units:
            if s.method not in (u.get("used_by") or [u.get("method")]):
                continue
            for k, sec in enumerate((u.get("timings") or {}).get("chunk_seconds") or []):
                per_lat[k].append(1000.0 * sec)
            for k, n in enumerate(u.get("attended_frames") or []):
                per_att[k].append(float(n))
        if per_lat:
            x, y, lo, hi = charts.band(per_lat)
            lat.append(charts.Curve(s.label, x, y, lo, hi, i))
        if per_att:
            x, y, lo, hi = charts.band(per_att)
            att.append(charts.Curve(s.label, x, y, lo, hi, i))
    panels = []
    if lat:
        panels.append(charts.Panel("Per-chunk latency", tuple(lat), "ms", "chunk", "sampling only, this machine"))
    if att:
        panels.append(
            charts.Panel("Attention length", tuple(att), "latent frames attended", "chunk", "cache + current chunk")
        )
    return panels


def coherence_panels(series: Sequence[T.Series], groups: Sequence[T.CoherenceGroup]) -> list[charts.Panel]:
    """Coherence against Δt (log axis), one line per series with its interval per gap; a panel per configuration."""
    panels = []
    for g in groups:
        curves = []
        for i, s in enumerate(series):
            ys = [s.run.value(s.method, key) for _, key in g.gaps]
            if all(y is None for y in ys):
                continue
            bounds = [_ci_bounds(s.run, s.method, key) for _, key in g.gaps]
            curves.append(
                charts.Curve(
                    s.label,
                    tuple(dt for dt, _ in g.gaps),
                    tuple(math.nan if y is None else y for y in ys),
                    color_index=i,
                    ci_lo=tuple(b[0] for b in bounds),
                    ci_hi=tuple(b[1] for b in bounds),
                )
            )
        if curves:
            panels.append(
                charts.Panel(
                    "Long-horizon coherence",
                    tuple(curves),
                    ylabel="mean cosine",
                    xlabel="gap Δt (s)",
                    note=g.protocol,
                    markers=True,
                    xscale="log",
                    xticks=tuple(dt for dt, _ in g.gaps),
                )
            )
    return panels


# ---------------------------------------------------------------------------------------------- page
_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#fff; --accent:#2a5bd7; --best:#0b6b2f; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
header { padding: 18px 28px 8px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 22px; margin: 0 0 4px; }
header p { margin: 2px 0; color: var(--muted); }
nav { position: sticky; top: 0; background: #f6f7f9; border-bottom: 1px solid var(--line); padding: 6px 28px;
      z-index: 2; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { margin: 26px 0; }
h2 { font-size: 18px; border-bottom: 2px solid var(--fg); padding-bottom: 3px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.banner { background: #fff6dd; border: 1px solid #e8c869; padding: 8px 12px; border-radius: 4px; margin: 10px 0; }
.scroll { overflow-x: auto; }
table.df-table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
table.df-table caption { text-align: left; font-weight: 600; padding: 4px 0; }
table.df-table th, table.df-table td { border-bottom: 1px solid var(--line); padding: 3px 8px; white-space: nowrap; }
table.df-table thead th { background: #f0f2f5; font-weight: 600; vertical-align: bottom; cursor: pointer; }
table.df-table thead th.group { text-align: center; cursor: default; }
table.df-table td.num { text-align: right; }
table.df-table td.txt { white-space: normal; min-width: 90px; max-width: 460px; }
table.df-table td.paper { color: #4a4f5c; background: #f7f8fb; }
table.df-table td.delta { color: var(--muted); font-size: 12px; }
table.df-table .best { color: var(--best); }
table.df-table .ci { color: var(--muted); font-size: 11px; font-weight: 400; }
ul.paired-significant { margin: 4px 0 8px; padding-left: 18px; }
ul.paired-significant li { font-variant-numeric: tabular-nums; }
table.df-table tbody th { text-align: left; font-weight: 600; }
ul.notes { color: var(--muted); font-size: 12px; margin: 4px 0 0; padding-left: 18px; }
figure { margin: 10px 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
.strip { display: flex; gap: 4px; align-items: flex-end; flex-wrap: wrap; }
.strip figure { margin: 0; text-align: center; }
.strip img { height: 72px; image-rendering: pixelated; border: 1px solid var(--line); display: block; }
.strip figcaption { font-size: 11px; }
.film { display: grid; grid-template-columns: 200px 1fr; gap: 6px 14px; align-items: center; margin: 6px 0; }
.film .who { font-weight: 600; }
.film .who a { font-weight: 400; font-size: 12px; display: block; }
.prompt-text { color: var(--muted); font-style: italic; max-width: 1100px; }
details { margin: 6px 0; }
details summary { cursor: pointer; color: var(--accent); }
pre { background: #f6f7f9; border: 1px solid var(--line); padding: 8px; overflow-x: auto; font-size: 12px; }
.muted { color: var(--muted); }
dl.prov { display: grid; grid-template-columns: 170px 1fr; gap: 2px 12px; margin: 6px 0; }
dl.prov dt { font-weight: 600; }
dl.prov dd { margin: 0; word-break: break-all; }
"""

_JS = """
(function () {
  'use strict';
  // Click a column header to sort the rows by that column (numbers by their raw value in data-value).
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-sort') !== 'asc';
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      if (!x || !y) { return 0; }
      var vx = x.getAttribute('data-value'), vy = y.getAttribute('data-value');
      var r;
      if (vx !== null && vy !== null) { r = parseFloat(vx) - parseFloat(vy); }
      else if (vx !== null) { r = -1; } else if (vy !== null) { r = 1; }
      else { r = x.textContent.localeCompare(y.textContent); }
      return asc ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    th.setAttribute('data-sort', asc ? 'asc' : 'desc');
  }
  function bind(table, col, th) {
    if (th) { th.addEventListener('click', function () { sortBy(table, col, th); }); }
  }
  document.querySelectorAll('table.df-table').forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    var first = table.tHead.rows[0], second = table.tHead.rows[1];
    var subs = second ? Array.prototype.slice.call(second.cells) : [];
    var col = 0;
    Array.prototype.forEach.call(first.cells, function (th) {
      var span = parseInt(th.getAttribute('colspan') || '1', 10);
      if (th.classList.contains('group')) {
        for (var k = 0; k < span; k++) { bind(table, col + k, subs.shift()); }
      } else { bind(table, col, th); }
      col += span;
    });
  });
  document.documentElement.setAttribute('data-report-ready', '1');
})();
"""


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _pre_json(obj: Any) -> str:
    return f"<pre>{_esc(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def _table(t: T.Table) -> str:
    return f'<div class="scroll">{render.to_html(t)}</div>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{body}\n</section>'


def _figure(svg: str, name: str, caption: str) -> str:
    return f'<figure data-chart="{_esc(name)}">{svg}<figcaption>{_esc(caption)}</figcaption></figure>'


def _summary_section(runs: Sequence[Run], published: Published | None) -> str:
    tables = T.export_tables(runs, published)
    t = tables[0]
    body = [_table(t)]
    for fmt, text in (
        ("Markdown", render.to_markdown_tables(tables)),
        ("LaTeX (booktabs)", render.to_latex_tables(tables)),
        ("CSV", render.to_csv(t)),
    ):
        body.append(f"<details><summary>{_esc(fmt)}</summary><pre>{_esc(text)}</pre></details>")
    return _section("summary", "Summary", "\n".join(body))


def _paired_section(runs: Sequence[Run]) -> str:
    t = T.paired_table(runs)
    if not t.rows:
        return _section("paired", "Paired comparisons", f'<p class="muted">{_esc(t.notes[-1])}</p>')
    lines = T.paired_lines(t)
    n_sig = len(lines)
    head = f"<p>{n_sig} of {len(t.rows)} comparison(s) in the summary's metrics are significant"
    head += ":</p>" if lines else ".</p>"
    if lines:
        head += '<ul class="paired-significant">' + "".join(f"<li>{_esc(x)}</li>" for x in lines) + "</ul>"
    body = [head, _table(t)]
    full = T.paired_table(runs, keys=T.result_keys(runs))
    if len(full.rows) > len(t.rows):
        extra = len(full.rows) - len(t.rows)
        body.append(
            f"<details><summary>every result key ({len(full.rows)} comparisons, {extra} more: every drift "
            f"summary)</summary>{_table(full)}</details>"
        )
    return _section("paired", "Paired comparisons", "\n".join(body))


def _coherence_section(series: Sequence[T.Series], runs: Sequence[Run]) -> str:
    groups = T.coherence_groups(runs)
    if not groups:
        return ""
    body = []
    panels = coherence_panels(series, groups)
    if panels:
        cap = "Mean feature cosine of frames Δt apart (log axis), mean over videos; bars: 95 % interval over prompts."
        body.append(_figure(charts.coherence_chart(panels), "coherence", cap))
    body += [_table(T.coherence_table(runs, g)) for g in groups]
    return _section("coherence", "Long-horizon coherence", "\n".join(body))


def _problems_section(runs: Sequence[Run]) -> str:
    t = T.problems_table(runs)
    counts = _table(T.counts_table(runs))
    if not t.rows:
        return _section(
            "problems", "Failed / missing units", counts + '<p class="muted">None: every video was scored.</p>'
        )
    return _section("problems", "Failed / missing units", counts + _table(t))


def _paper_section(runs: Sequence[Run], published: Published | None) -> str:
    if published is None:
        return _section("paper", "Published numbers", '<p class="muted">No published numbers loaded.</p>')
    return _section("paper", "Ours beside the paper", _table(T.paper_table(runs, published)))


def _drift_section(series: Sequence[T.Series], runs: Sequence[Run]) -> str:
    body = []
    panels = drift_panels(series)
    if panels:
        svg = charts.drift_curves(panels)
        body.append(
            _figure(
                svg,
                "drift-curves",
                "Per-clip values over time (clip centre), mean over videos; band: min..max. Points with bars at "
                "the right: each method's run-level value (mean over videos) with its 95 % interval over prompts.",
            )
        )
    else:
        body.append('<p class="muted">No per-clip rows (results/clips.jsonl) in these runs.</p>')
    body.append(_table(T.drift_table(runs)))
    return _section("drift", "Drift over time", "\n".join(body))


def _ablation_section(series: Sequence[T.Series]) -> str:
    found = find_ablations(series)
    if not found:
        msg = (
            "No ablation grid in these runs (a grid of baselines/methods/ablations.yaml needs two or more of its "
            "methods, e.g. the ablation-sink suite: deep-forcing-ds-sink0 … sink18)."
        )
        return _section("ablation", "Ablations", f'<p class="muted">{_esc(msg)}</p>')
    body = []
    for ab in found:
        panels = ablation_panels(series, ab)
        if not panels:
            continue
        name = f"ablation-{ab.base}-{ab.knob.split('.')[-1]}"
        cap = f"{ab.base}: {ab.knob} against the metrics (Deep Forcing Fig. 5 plots sink size against overall "
        cap += "consistency and aesthetic drift); bars: 95 % interval over prompts."
        svg = charts.panels_svg(panels, name, ncols=min(3, len(panels)), panel_size=(3.8, 2.8))
        body.append(f"<h3>{_esc(ab.base)} — {_esc(ab.knob)}</h3>" + _figure(svg, name, cap))
    return _section("ablation", "Ablations", "\n".join(body))


def _speed_section(series: Sequence[T.Series], runs: Sequence[Run], published: Published | None) -> str:
    body = [_table(T.speed_table(runs, published))]
    panels = speed_panels(series)
    if panels:
        body.append(_figure(charts.speed_chart(panels), "speed", "Mean over videos per chunk; band: min..max."))
    return _section("speed", "Speed", "\n".join(body))


def _video_link(path: Path, out: Path, copy_dir: Path | None, name: str) -> str | None:
    if not path.is_file():
        return None
    if copy_dir is not None:
        copy_dir.mkdir(parents=True, exist_ok=True)
        target = copy_dir / name
        shutil.copyfile(path, target)
        path = target
    return Path(os.path.relpath(path.resolve(), out.parent.resolve())).as_posix()


def _prompts_section(series: Sequence[T.Series], out: Path, opts: ReportOptions) -> str:
    units: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    texts: dict[str, str] = {}
    for i, s in enumerate(series):
        for u in s.run.units:
            if s.method not in (u.get("used_by") or [u.get("method")]):
                continue
            unit = u.get("unit") or {}
            key = (str(unit.get("prompt_id")), int(unit.get("seed", 0)))
            units[key][i] = u
            texts.setdefault(key[0], (u.get("prompt") or {}).get("text", ""))
    if not units:
        return _section("prompts", "Prompts", '<p class="muted">No generated units (manifest.jsonl) found.</p>')
    keys = sorted(units)
    shown = keys[: opts.max_prompts]
    copy_dir = out.parent / f"{out.stem}_videos" if opts.copy_videos else None
    body = []
    if len(keys) > len(shown):
        body.append(f'<p class="muted">{len(keys) - len(shown)} more (prompt, seed) not shown (--max-prompts).</p>')
    for prompt_id, seed in shown:
        parts = [f'<article class="prompt" id="prompt-{_esc(prompt_id)}-{seed}">']
        parts.append(f"<h3>{_esc(prompt_id)} · seed {seed}</h3>")
        parts.append(f'<p class="prompt-text">{_esc(texts.get(prompt_id, ""))}</p>')
        cut = [(s, units[(prompt_id, seed)][i]) for i, s in enumerate(series) if i in units[(prompt_id, seed)]]
        cut = [(s, u) for s, u in cut if u.get("prompt_truncated")]
        if cut:
            t = cut[0][1].get("prompt_tokens") or {}
            parts.append(
                f'<p class="banner truncated">prompt truncated: {_esc(t.get("count", "?"))} tokens, the text '
                f"encoder reads {_esc(t.get('limit', '?'))}; the rest had no effect on the videos of "
                f"{_esc(', '.join(s.label for s, _ in cut))}.</p>"
            )
        for i, s in enumerate(series):
            u = units[(prompt_id, seed)].get(i)
            if u is None:
                continue
            video = s.run.video_path(u["unit_key"])
            link = _video_link(video, out, copy_dir, f"{s.run.run_id}-{s.method}-{prompt_id}-s{seed}.mp4")
            link_html = f'<a href="{_esc(link)}">mp4</a>' if link else '<span class="muted">mp4 missing</span>'
            strip = ""
            if opts.filmstrips:
                stills = filmstrip(video, opts.filmstrip_every)
                strip = "".join(
                    f'<figure><img src="{st.data_uri}" width="{st.width}" height="{st.height}" '
                    f'alt="{_esc(s.label)} at {st.t:.1f} s"><figcaption>{st.t:.1f} s</figcaption></figure>'
                    for st in stills
                )
            parts.append(
                f'<div class="film"><div class="who">{_esc(s.label)}{link_html}</div>'
                f'<div class="strip" data-method="{_esc(s.method)}">{strip}</div></div>'
            )
        parts.append(_table(T.video_table(series, prompt_id, seed)))
        parts.append("</article>")
        body.append("\n".join(parts))
    return _section("prompts", "Prompts", "\n".join(body))


def _findings_section(findings: Findings) -> str:
    """A study from elsewhere (:mod:`deepforcing.report.findings`): its introduction, tables and notes."""
    body = [f"<p>{_esc(findings.intro)}</p>"]
    for title, t in findings.tables:
        body.append(f"<h3>{_esc(title)}</h3>")
        body.append(_table(t))
    body += [f'<p class="muted">{_esc(n)}</p>' for n in findings.notes]
    return _section("findings", findings.title, "\n".join(body))


def _provenance_section(runs: Sequence[Run]) -> str:
    body = [_table(T.methods_table(runs))]
    for r in runs:
        agg = r.aggregate
        prov = agg.get("provenance") or {}
        git = prov.get("git") or {}
        device = prov.get("device") or {}
        items = [
            ("run directory", str(r.root)),
            ("suite", f"{r.suite} v{agg.get('suite_version')} (hash {agg.get('suite_hash')})"),
            ("created", prov.get("created_at", "?")),
            ("git", f"{git.get('commit', '?')}{' (dirty)' if git.get('dirty') else ''}"),
            ("device", f"{device.get('name', '?')} ({device.get('device', '?')}, {device.get('platform', '?')})"),
            ("dtype / world size", f"{prov.get('dtype', '?')} / {prov.get('world_size', '?')}"),
            ("versions", ", ".join(f"{k} {v}" for k, v in sorted((prov.get("versions") or {}).items()))),
            (
                "prompts",
                f"{(agg.get('prompts') or {}).get('count')} (sha256 {(agg.get('prompts') or {}).get('sha256')})",
            ),
            ("command", " ".join(prov.get("argv") or [])),
        ]
        dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items)
        weights = {
            m: {"weights_id": c.get("weights_id"), "files": c.get("weights")}
            for m, c in (agg.get("methods") or {}).items()
        }
        body.append(
            f'<h3>{_esc(r.name)}</h3><dl class="prov">{dl}</dl>'
            f"<details><summary>suite config</summary>{_pre_json(agg.get('suite_config'))}</details>"
            f"<details><summary>method configs</summary>"
            f"{_pre_json({m: c.get('config') for m, c in (agg.get('methods') or {}).items()})}</details>"
            f"<details><summary>weights (sha256)</summary>{_pre_json(weights)}</details>"
            f"<details><summary>metrics (fingerprints, weights)</summary>{_pre_json(agg.get('metrics'))}</details>"
            f"<details><summary>samples</summary>{_pre_json(agg.get('n_samples'))}</details>"
        )
    return _section("provenance", "Provenance", "\n".join(body))


def build_report(runs: Sequence[Run], out: str | Path, opts: ReportOptions | None = None) -> str:
    """Render the HTML report of ``runs`` (the page text; the caller writes it to ``out``).

    Args:
        runs: One or more loaded runs.
        out: Where the page will be written (links to the mp4s are relative to its folder).
        opts: Options.

    Returns:
        The HTML page.
    """
    opts = opts or ReportOptions()
    out = Path(out)
    series = T.series_of(runs)
    coherence = _coherence_section(series, runs)
    title = opts.title or "deepforcing-eval report: " + ", ".join(r.name for r in runs)
    notes = T.comparability_notes(runs, opts.published) + T.truncation_notes(runs) + T.problem_notes(runs)
    banner = "".join(f'<div class="banner">{_esc(n)}</div>' for n in notes)
    nav = "".join(
        f'<a href="#{sid}">{_esc(label)}</a>'
        for sid, label in (
            ("summary", "Summary"),
            ("paired", "Paired"),
            ("problems", "Failed / missing"),
            ("paper", "Paper"),
            ("drift", "Drift"),
            *((("coherence", "Coherence"),) if coherence else ()),
            ("ablation", "Ablations"),
            ("speed", "Speed"),
            ("prompts", "Prompts"),
            *((("findings", "Findings"),) if opts.findings else ()),
            ("provenance", "Provenance"),
        )
    )
    runs_line = "; ".join(T.run_protocol(r) for r in runs)
    sections = [
        _summary_section(runs, opts.published),
        _paired_section(runs),
        _problems_section(runs),
        _paper_section(runs, opts.published),
        _drift_section(series, runs),
        *((coherence,) if coherence else ()),
        _ablation_section(series),
        _speed_section(series, runs, opts.published),
        _prompts_section(series, out, opts),
        *((_findings_section(opts.findings),) if opts.findings else ()),
        _provenance_section(runs),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="deepforcing-eval {_esc(__version__)}">'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n"
        f"<header><h1>{_esc(title)}</h1><p>{_esc(runs_line)}</p>"
        f"<p>deepforcing-eval {_esc(__version__)}; hover a number for its raw value, n and source.</p>"
        f"{banner}</header>\n"
        f"<nav>{nav}</nav>\n<main>\n" + "\n".join(sections) + f"\n</main>\n<script>{_JS}</script>\n</body></html>\n"
    )

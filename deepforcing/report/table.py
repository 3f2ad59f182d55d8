"""One table model for every report format, and the builders that fill it from runs and published numbers.

A :class:`Table` is a list of :class:`Column` headers and rows of :class:`Cell` values. A cell keeps its raw value,
the string shown, the direction (higher or lower is better), n (videos) and where the number comes from
(:class:`Source`: method, config hash, run, or the publication), so every renderer can show the same number the
same way and link or annotate it. Renderers live in :mod:`deepforcing.report.render` and read only this model.

Builders (all pure functions of loaded runs):

* :func:`summary_table` — method x metric, ours beside the paper's (converted to our unit) and the delta.
* :func:`paper_table` — every published number of the methods in the runs, in the paper's unit, with ours and
  the delta, the table and its protocol.
* :func:`drift_table` — every drift summary (rows) per method (columns), best per row.
* :func:`speed_table` — FPS, per-chunk latency, KV cache and memory per method, the paper's FPS beside.
* :func:`methods_table` — what each method is (config hash, policy, knobs, weights).
* :func:`paired_table` — paired comparisons of two methods of a run (mean difference, its interval, the Wilcoxon
  p-value, n), direction-aware, significant ones marked.
* :func:`coherence_table` — long-horizon coherence per gap Δt and its slope, per method.

A number of ours carries its 95 % confidence interval (:class:`Interval`, from the aggregate's ``ci``: a bootstrap
over prompts, :mod:`deepforcing.stats`) on the cell itself, so every renderer shows the same interval the same way;
published numbers have none and say so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from deepforcing.report.catalog import describe, format_value, protocol_dict, split_drift, split_id
from deepforcing.report.published import Published
from deepforcing.report.runs import Run

Direction = Literal["higher", "lower"] | None
Kind = Literal["label", "ours", "paper", "delta", "text"]

#: Timing columns of the summary table and their direction.
TIMING_DIRECTIONS: dict[str, Direction] = {
    "timing.fps_mean": "higher",
    "timing.chunk_latency_ms_mean": "lower",
    "timing.chunk_latency_ms_min": "lower",
    "timing.chunk_latency_ms_max": "lower",
    "timing.kv_cache_mib_max": "lower",
    "timing.peak_memory_mib_max": "lower",
}


@dataclass(frozen=True)
class Source:
    """Where a number comes from.

    Attributes:
        method: Our method name (or the published method name for a paper number).
        config_hash: Our method's config hash.
        run: ``<suite>/<run-id>`` of our run.
        reference: Publication, table and setting of a published number.
    """

    method: str | None = None
    config_hash: str | None = None
    run: str | None = None
    reference: str | None = None

    def describe(self) -> str:
        """One line for tooltips: ``deep-forcing @3d2b… · run smoke/tiny`` or the reference."""
        if self.reference:
            return f"{self.method}: {self.reference}" if self.method else self.reference
        parts = [p for p in (self.method, f"@{self.config_hash}" if self.config_hash else None) if p]
        out = " ".join(parts)
        return f"{out} · run {self.run}" if self.run else out


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a cell's number (what ``aggregate.json`` ``ci`` holds, in the cell's unit).

    Attributes:
        low: Lower end (None when there is no interval: one prompt, no finite value).
        high: Upper end.
        fmt: Format spec of the ends (the cell's, without a sign flag).
        level: Two-sided coverage (0.95).
        n: Prompts behind the interval (the bootstrap's resampling unit).
        status: ``ok``, ``constant`` (every prompt the same: zero width), ``single_prompt`` or ``empty``.
        note: Why there is no interval, in words (from the statistics).
    """

    low: float | None
    high: float | None
    fmt: str = ".4f"
    level: float | None = 0.95
    n: int | None = None
    status: str = "ok"
    note: str = ""

    @property
    def known(self) -> bool:
        """True when both ends are finite numbers."""
        return all(isinstance(v, int | float) and math.isfinite(v) for v in (self.low, self.high))

    @property
    def display(self) -> str:
        """``[0.9650, 0.9771]`` in the cell's format; empty without an interval."""
        if not self.known:
            return ""
        return f"[{format_value(self.low, self.fmt)}, {format_value(self.high, self.fmt)}]"

    def describe(self) -> str:
        """One line for tooltips: ``95% CI [0.9650, 0.9771] over 128 prompts`` or why there is none."""
        if not self.known:
            return self.note or "no interval"
        level = f"{self.level:.0%} " if self.level else ""
        over = f" over {self.n} prompt{'s' if self.n != 1 else ''}" if self.n is not None else ""
        return f"{level}CI {self.display}{over}" + (f" ({self.note})" if self.note else "")

    def scaled(self, factor: float, fmt: str) -> Interval:
        """The interval in another unit (``factor`` > 0, e.g. x100 for the paper's VBench percent)."""
        lo = None if self.low is None else self.low * factor
        hi = None if self.high is None else self.high * factor
        return replace(self, low=lo, high=hi, fmt=fmt)


def interval_of(ci: dict[str, Any] | None, fmt: str) -> Interval | None:
    """The :class:`Interval` of an aggregate entry's ``ci`` dict (None when the entry has none).

    Args:
        ci: ``results[method][key]["ci"]`` or a paired result (``ci_low``, ``ci_high``, ``n``, ``status``, ...).
        fmt: The cell's format spec; a leading ``+`` is dropped for the ends.
    """
    if not isinstance(ci, dict):
        return None

    def num(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None

    n = ci.get("n")
    return Interval(
        low=num(ci.get("ci_low")),
        high=num(ci.get("ci_high")),
        fmt=fmt.lstrip("+"),
        level=num(ci.get("confidence_level")),
        n=int(n) if isinstance(n, int) else None,
        status=str(ci.get("status") or "ok"),
        note=str(ci.get("note") or ""),
    )


@dataclass(frozen=True)
class Cell:
    """One table cell.

    Attributes:
        value: Raw value (a float, None when missing, or text for label and text cells).
        display: What is shown.
        direction: ``higher`` / ``lower`` is better, None when neither.
        n: Number of videos behind the value.
        source: Where the number comes from.
        best: Best of its column (or row, see :attr:`Table.best`); renderers show it in bold.
        note: Extra detail for tooltips (protocol, printed value, ...).
        ci: The number's confidence interval (None: the number has none, e.g. a published or a timing value).
    """

    value: float | str | None
    display: str
    direction: Direction = None
    n: int | None = None
    source: Source | None = None
    best: bool = False
    note: str = ""
    ci: Interval | None = None

    @property
    def ci_display(self) -> str:
        """The interval as shown beside the number (``[0.9650, 0.9771]``), empty when there is none."""
        return self.ci.display if self.ci is not None and self.number is not None else ""

    @property
    def full_display(self) -> str:
        """The number and its interval on one line: ``0.9712 [0.9650, 0.9771]`` (flat formats)."""
        return f"{self.display} {self.ci_display}" if self.ci_display else self.display

    @property
    def number(self) -> float | None:
        """The value if it is a finite number, else None."""
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        return float(v)

    def tooltip(self) -> str:
        """Raw value, n, source and note on one line (empty for text cells)."""
        parts = []
        if self.number is not None:
            parts.append(f"raw {self.number!r}")
        if self.n is not None:
            parts.append(f"n={self.n} video{'s' if self.n != 1 else ''}")
        if self.ci is not None and self.number is not None:
            parts.append(self.ci.describe())
        if self.source is not None:
            parts.append(self.source.describe())
        if self.note:
            parts.append(self.note)
        return " · ".join(p for p in parts if p)


def text(value: str, note: str = "", source: Source | None = None) -> Cell:
    """A text cell."""
    return Cell(value=value, display=value, note=note, source=source)


def number(
    value: float | None,
    fmt: str = ".4f",
    direction: Direction = None,
    n: int | None = None,
    source: Source | None = None,
    note: str = "",
    ci: Interval | None = None,
) -> Cell:
    """A numeric cell (missing and non-finite values are shown as an em dash), with its interval if it has one."""
    v = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return Cell(value=v, display=format_value(v, fmt), direction=direction, n=n, source=source, note=note, ci=ci)


@dataclass(frozen=True)
class Column:
    """A column header.

    Attributes:
        key: Stable key (metric id, ``paper:<id>``, ...); CSV and tests use it.
        label: Label in flat formats (Markdown, CSV, console).
        kind: ``label`` (row names), ``ours``, ``paper``, ``delta`` or ``text``.
        group: Header group in grouped formats (HTML, LaTeX): the metric of an ours/paper/delta triple.
        sub: Label under the group.
        direction: Direction of the column's numbers (for the arrow and the best cell).
        description: What the column is (tooltips, LaTeX table notes).
    """

    key: str
    label: str
    kind: Kind = "ours"
    group: str = ""
    sub: str = ""
    direction: Direction = None
    description: str = ""


@dataclass(frozen=True)
class Table:
    """A titled table with notes.

    Attributes:
        name: Machine name (``summary``, ``paper``, ...): HTML ids, file names.
        title: Title / caption.
        columns: Headers.
        rows: Cells, one per column.
        notes: Footnotes (protocol, comparability).
        best: Mark the best numeric ``ours``/``paper`` cell per ``column`` or per ``row``; None: no marking.
    """

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()
    best: Literal["column", "row"] | None = "column"

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.name!r} row {i} has {len(row)} cells for {len(self.columns)} columns")

    @property
    def grouped(self) -> bool:
        """True when some column has a header group."""
        return any(c.group for c in self.columns)

    def column_index(self, key: str) -> int:
        """Index of the column with ``key``."""
        for i, c in enumerate(self.columns):
            if c.key == key:
                return i
        raise KeyError(key)

    def cell(self, row_label: str, key: str) -> Cell:
        """The cell in the row whose first cell is ``row_label`` and the column ``key``."""
        j = self.column_index(key)
        for row in self.rows:
            if row[0].value == row_label:
                return row[j]
        raise KeyError(row_label)


# ------------------------------------------------------------------------------------------------ best
def _best_indices(cells: Sequence[Cell], direction: Direction) -> set[int]:
    values = [(i, c.number) for i, c in enumerate(cells) if c.number is not None]
    if direction is None or len(values) < 2:
        return set()
    pick = max if direction == "higher" else min
    best = pick(v for _, v in values)
    return {i for i, v in values if v == best}


def mark_best(table: Table) -> Table:
    """Copy of ``table`` with :attr:`Cell.best` set on the best ``ours``/``paper`` cells (ties all marked)."""
    rows = [list(r) for r in table.rows]
    if table.best == "column":
        for j, col in enumerate(table.columns):
            if col.kind not in ("ours", "paper"):
                continue
            for i in _best_indices([r[j] for r in rows], col.direction):
                rows[i][j] = replace(rows[i][j], best=True)
    elif table.best == "row":
        for row in rows:
            idx = [j for j, c in enumerate(table.columns) if c.kind in ("ours", "paper")]
            directions = {row[j].direction for j in idx if row[j].number is not None}
            if len(directions) != 1:
                continue
            picked = _best_indices([row[j] for j in idx], directions.pop())
            for k in picked:
                row[idx[k]] = replace(row[idx[k]], best=True)
    return replace(table, rows=tuple(tuple(r) for r in rows))


# -------------------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Series:
    """One (run, method) pair: a row of the summary table, a line of a chart.

    Attributes:
        run: The run.
        method: Method name.
        label: Display label (the method, plus the run when several runs share a method).
    """

    run: Run
    method: str
    label: str

    @property
    def source(self) -> Source:
        """This series' source."""
        return Source(method=self.method, config_hash=self.run.config_hash(self.method), run=self.run.name)


def series_of(runs: Sequence[Run]) -> list[Series]:
    """Every (run, method) in order; labels carry the run only where needed to tell rows apart."""
    pairs = [(r, m) for r in runs for m in r.methods]
    counts: dict[str, int] = {}
    for _, m in pairs:
        counts[m] = counts.get(m, 0) + 1
    names = [r.name for r in runs]
    out = []
    for r, m in pairs:
        if counts[m] == 1:
            label = m
        else:
            tag = r.name if names.count(r.name) == 1 else str(r.root)
            label = f"{m} · {tag}"
        out.append(Series(r, m, label))
    return out


def direction_of(flag: Any) -> Direction:
    """``higher_is_better`` (True / False / None) as a :data:`Direction`."""
    return "higher" if flag is True else "lower" if flag is False else None


def column_direction(runs: Sequence[Run], key: str) -> Direction:
    """Direction of a result column (from the aggregate's ``higher_is_better``; timing columns are fixed)."""
    if key.startswith("timing."):
        return TIMING_DIRECTIONS.get(key)
    for r in runs:
        for m in r.methods:
            entry = r.results(m).get(key)
            if entry is not None:
                return direction_of(entry.get("higher_is_better"))
    return None


def result_keys(runs: Sequence[Run]) -> list[str]:
    """Every result column of the runs, in first-seen order."""
    keys: list[str] = []
    for r in runs:
        for m in r.methods:
            for k in r.results(m):
                if k not in keys:
                    keys.append(k)
    return keys


def natural_key(key: str) -> tuple[tuple[int, float | str], ...]:
    """Sort key that orders numbers inside ids by value (``dt=2s`` < ``dt=5s`` < ``dt=10s``)."""
    parts = re.split(r"(\d+(?:\.\d+)?)", key)
    return tuple((1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts))


def default_summary_keys(runs: Sequence[Run]) -> list[str]:
    """Summary columns: every metric id, then its first/last drift, then FPS and per-chunk latency."""
    keys = result_keys(runs)
    primary = sorted((k for k in keys if split_drift(k) is None), key=natural_key)
    drift = sorted(
        (k for k in keys if (d := split_drift(k)) is not None and split_id(d[0])[0] == "drift.first_last"),
        key=natural_key,
    )
    timing = ["timing.fps_mean", "timing.chunk_latency_ms_mean"]
    return primary + drift + timing


def _cell(s: Series, key: str, direction: Direction) -> Cell:
    info = describe(key)
    if key.startswith("timing."):
        t = s.run.timings(s.method)
        return number(s.run.value(s.method, key), info.fmt, direction, t.get("n_videos"), s.source, "this machine")
    entry = s.run.results(s.method).get(key, {})
    note = info.protocol
    if entry.get("n_undefined"):
        note += f"; undefined for {entry['n_undefined']} video(s)"
    ci = interval_of(entry.get("ci"), info.fmt)
    return number(s.run.value(s.method, key), info.fmt, direction, entry.get("n_videos"), s.source, note, ci)


def _name_of(key: str) -> str:
    return key if key.startswith("timing.") else split_id(key)[0]


def _link_for(published: Published | None, key: str):
    if published is None:
        return None
    name = key if key.startswith("timing.") else split_id(key)[0]
    if split_drift(key) is not None:
        return None
    for link in published.metrics.values():
        if link.ours == name:
            return link
    return None


def _published_for(published: Published, s: Series, metric: str):
    for v in published.for_method(s.method, s.run.seconds):
        if v.metric == metric:
            return v
    return None


def run_protocol(run: Run) -> str:
    """One line describing a run's protocol (model, prompts, seeds, length, device)."""
    sc = run.suite_config
    prompts = (run.aggregate.get("prompts") or {}).get("count", "?")
    seeds = len(sc.get("seeds") or []) or "?"
    seconds = run.seconds
    device = ((run.aggregate.get("provenance") or {}).get("device") or {}).get("name", "?")
    length = f"{seconds:.1f} s" if seconds else "?"
    return (
        f"{run.name}: suite {sc.get('name', run.suite)} v{sc.get('version', '?')}, model {sc.get('model', '?')}, "
        f"{prompts} prompt(s) x {seeds} seed(s), {length} per video, {sc.get('clip_seconds', '?')}-s clips, "
        f"device {device}"
    )


def run_device(run: Run) -> str:
    """The device name a run's provenance records (``?`` when absent)."""
    return str(((run.aggregate.get("provenance") or {}).get("device") or {}).get("name", "?"))


@dataclass(frozen=True)
class Comparability:
    """Whether a run's numbers may stand beside the published ones.

    Attributes:
        values: Same model as the publications (quality numbers are compared).
        speed: Also the same GPU class (speed numbers are compared).
        why: Why not, for people (empty when both hold).
    """

    values: bool
    speed: bool
    why: str


def comparability(run: Run, published: Published | None) -> Comparability:
    """What of a run can be compared with the published numbers (model, then GPU class)."""
    if published is None:
        return Comparability(False, False, "no published numbers loaded")
    model, device = run.suite_config.get("model"), run_device(run)
    if published.model is not None and model != published.model:
        why = f"model {model}, not {published.model}"
        return Comparability(False, False, why)
    if published.speed_device is not None and published.speed_device.lower() not in device.lower():
        return Comparability(True, False, f"speed on {device}, not {published.speed_device}")
    return Comparability(True, True, "")


def comparability_notes(runs: Sequence[Run], published: Published | None = None) -> list[str]:
    """One note per run whose numbers are not compared with the published ones, saying why."""
    notes = []
    for r in runs:
        c = comparability(r, published) if published is not None else None
        if c is not None and c.values and c.speed:
            continue
        if c is not None and c.values:
            notes.append(
                f"{r.name}: {c.why}: its speed is not compared with the published speed numbers (quality numbers are)."
            )
            continue
        model = r.aggregate.get("model") or {}
        name = model.get("name") or r.suite_config.get("model")
        what = f"model {name}" + (f" ({model['description']})" if model.get("description") else "")
        target = published.model if published is not None and published.model else "another model"
        notes.append(
            f"{r.name} uses {what}; the published numbers are for {target}, so they are not compared with this run "
            "(no paper column, no Δ)."
        )
    return notes


def statistics_line(run: Run) -> str:
    """How a run's intervals were computed (``aggregate.json`` ``statistics``), or '' when it has none."""
    st = run.aggregate.get("statistics") or {}
    if not st:
        return ""
    level = st.get("confidence_level")
    what = st.get("interval") or (f"{level:.0%} bootstrap over prompts" if isinstance(level, float) else "bootstrap")
    extra = ", ".join(
        f"{label} {st[k]}" for k, label in (("n_resamples", "resamples"), ("seed", "seed")) if st.get(k) is not None
    )
    return f"{what}" + (f" ({extra})" if extra else "")


def interval_notes(runs: Sequence[Run], rows: Iterable[Sequence[Cell]] = (), paper: bool = False) -> list[str]:
    """What the ``[low, high]`` beside our numbers is, per run, and why some numbers have none.

    Args:
        runs: The runs of the table.
        rows: The table's rows (to say which interval statuses occur).
        paper: The table has published numbers (said to be point values without an interval).
    """
    lines = {statistics_line(r) for r in runs} - {""}
    notes = []
    if len(lines) == 1:
        notes.append(f"[low, high] beside our numbers: {lines.pop()}.")
    else:
        notes += [f"{r.name}: [low, high] beside its numbers: {line}." for r in runs if (line := statistics_line(r))]
    without = [r.name for r in runs if not statistics_line(r)]
    if without:
        notes.append(
            f"{', '.join(without)}: no intervals (scored before the harness wrote them; re-run "
            "`deepforcing-eval score` to add them)."
        )
    statuses: dict[str, int] = {}
    for row in rows:
        for c in row:
            if c.ci is not None and c.number is not None and not c.ci.known:
                statuses[c.ci.note or c.ci.status] = statuses.get(c.ci.note or c.ci.status, 0) + 1
    for why, count in sorted(statuses.items()):
        notes.append(f"{count} number(s) without an interval: {why}.")
    if paper:
        notes.append("paper: published point values, no interval (none was published).")
    return notes


def truncated_prompts(run: Run) -> dict[str, dict[str, Any]]:
    """Prompt id -> ``prompt_tokens`` of every prompt the text encoder cut (from the run's unit rows)."""
    out: dict[str, dict[str, Any]] = {}
    for u in run.units:
        if u.get("prompt_truncated"):
            pid = str((u.get("unit") or {}).get("prompt_id") or (u.get("prompt") or {}).get("prompt_id"))
            out.setdefault(pid, dict(u.get("prompt_tokens") or {}))
    return out


def truncation_notes(runs: Sequence[Run]) -> list[str]:
    """One note per run whose prompts were longer than the text encoder reads (the rest had no effect)."""
    notes = []
    for r in runs:
        cut = truncated_prompts(r)
        if cut:
            listed = ", ".join(
                f"{pid} ({t.get('count', '?')} tokens, limit {t.get('limit', '?')})" for pid, t in sorted(cut.items())
            )
            notes.append(
                f"{r.name}: {len(cut)} prompt(s) were longer than the text encoder reads and were truncated; the "
                f"cut-off text had no effect on their videos: {listed}."
            )
    return notes


def counts_table(runs: Sequence[Run]) -> Table:
    """Videos per method: expected, generated, scored, failed, missing (``aggregate.json`` ``n_samples``)."""
    fields = ("expected", "generated", "scored", "failed", "missing")
    columns = (Column("method", "Method", kind="label"), *(Column(f, f.capitalize(), kind="text") for f in fields))
    rows = []
    for s in series_of(runs):
        n = (s.run.aggregate.get("n_samples") or {}).get(s.method) or {}
        rows.append((text(s.label, source=s.source), *(text(str(n.get(f, "—"))) for f in fields)))
    return Table("counts", "Videos per method", columns, tuple(rows), (), best=None)


def problem_notes(runs: Sequence[Run]) -> list[str]:
    """One note per run with failed or missing units (the report's banner)."""
    notes = []
    for r in runs:
        n = r.aggregate.get("n_samples") or {}
        failed = sum(v.get("failed", 0) for v in n.values())
        missing = sum(v.get("missing", 0) for v in n.values())
        expected = sum(v.get("expected", 0) for v in n.values())
        if failed or missing:
            parts = [f"{c} {w}" for c, w in ((failed, "failed"), (missing, "missing")) if c]
            notes.append(
                f"{r.name}: {' and '.join(parts)} of {expected} video(s); its numbers are over the scored ones only "
                "(see Failed / missing units)."
            )
    return notes


def problems_table(runs: Sequence[Run]) -> Table:
    """Every failed or missing piece of a work item (``aggregate.json`` ``problems``), one row each."""
    columns = (
        Column("method", "Method", kind="label"),
        Column("prompt", "Prompt", kind="text"),
        Column("seed", "Seed", kind="text"),
        Column("state", "State", kind="text"),
        Column("stage", "Stage", kind="text"),
        Column("metric", "Metric", kind="text"),
        Column("reason", "Reason", kind="text"),
        Column("unit", "Unit", kind="text"),
    )
    rows = []
    for r in runs:
        for p in r.aggregate.get("problems") or []:
            label = p["method"] if len(runs) == 1 else f"{p['method']} ({r.name})"
            rows.append(
                (
                    text(label),
                    text(str(p["prompt_id"])),
                    text(str(p["seed"])),
                    text(p["state"]),
                    text(p["stage"]),
                    text(p.get("metric") or "—"),
                    text(p["reason"]),
                    text(p["unit_key"]),
                )
            )
    total = sum(sum(n.get("expected", 0) for n in (r.aggregate.get("n_samples") or {}).values()) for r in runs)
    notes = (f"{len(rows)} problem(s) among {total} expected video(s); every one of them is in results/problems.csv.",)
    return Table("problems", "Failed / missing units", columns, tuple(rows), notes, best=None)


# ------------------------------------------------------------------------------------------- summary
def summary_table(runs: Sequence[Run], published: Published | None = None, keys: Iterable[str] | None = None) -> Table:
    """Method x metric: our value, and where the paper printed one, the paper's (in our unit) and the delta.

    Args:
        runs: One or more runs.
        published: Published numbers (None: ours only).
        keys: Result columns (default :func:`default_summary_keys`).

    Returns:
        The table with the best cell per column marked.
    """
    series = series_of(runs)
    keys = list(keys) if keys is not None else default_summary_keys(runs)
    columns = [Column("method", "Method", kind="label")]
    builders = []
    used_refs: dict[str, str] = {}
    for key in keys:
        info = describe(key)
        direction = column_direction(runs, key)
        link = _link_for(published, key)
        pub = {}
        if link is not None and published is not None:
            for s in series:
                c = comparability(s.run, published)
                if not (c.speed if key.startswith("timing.") else c.values):
                    continue  # another model or GPU: no paper cell, no delta (the notes say why, once)
                v = _published_for(published, s, link.published)
                if v is not None:
                    pub[s.label] = v
        columns.append(
            Column(
                key,
                info.label,
                "ours",
                group=info.label if pub else "",
                sub="ours" if pub else "",
                direction=direction,
                description=info.description + (f" [{info.protocol}]" if info.protocol else ""),
            )
        )
        builders.append(("ours", key, direction, None))
        if pub:
            columns.append(
                Column(
                    f"paper:{key}",
                    f"{info.label} (paper, no CI)",
                    "paper",
                    info.label,
                    "paper (no CI)",
                    direction,
                    "published value (a point value: no interval was published)",
                )
            )
            columns.append(Column(f"delta:{key}", f"{info.label} Δ", "delta", info.label, "Δ", None))
            builders.append(("paper", key, direction, (link, pub)))
            builders.append(("delta", key, None, (link, pub)))
            for v in pub.values():
                used_refs[v.table] = v.protocol
    rows = []
    for s in series:
        row = [text(s.label, source=s.source)]
        for kind, key, direction, extra in builders:
            info = describe(key)
            if kind == "ours":
                row.append(_cell(s, key, direction))
                continue
            link, pub = extra
            v = pub.get(s.label)
            if v is None:
                row.append(number(None))
                continue
            converted = v.value / link.scale
            if kind == "paper":
                src = Source(method=v.method, reference=v.reference)
                note = f"printed {v.value:g} ({v.metric}); {v.protocol}; published point value, no interval"
                row.append(number(converted, info.fmt, direction, None, src, note))
            else:
                ours = s.run.value(s.method, key)
                delta = None if ours is None else ours - converted
                row.append(number(delta, "+" + info.fmt, None, None, None, "ours - paper, in our unit"))
        rows.append(tuple(row))
    notes = [run_protocol(r) for r in runs]
    if used_refs and published is not None:
        notes.append(
            f"paper: {published.source}; its numbers are converted to our unit (VBench x100 -> /100, s -> ms); "
            "for each method the paper's table and length nearest to ours: "
            + "; ".join(f"{t}: {p}" for t, p in sorted(used_refs.items()))
        )
    notes += interval_notes(runs, rows, paper=bool(used_refs))
    notes += comparability_notes(runs, published) + truncation_notes(runs)
    return mark_best(Table("summary", "Summary: method x metric", tuple(columns), tuple(rows), tuple(notes)))


def export_tables(runs: Sequence[Run], published: Published | None = None) -> list[Table]:
    """The tables of a summary export: the summary and, when the runs have any, the paired comparisons.

    ``report --markdown`` / ``--latex`` and the report's copy boxes write these (the paired comparisons cover the
    summary's metrics).
    """
    tables = [summary_table(runs, published)]
    paired = paired_table(runs)
    if paired.rows:
        tables.append(paired)
    return tables


# --------------------------------------------------------------------------------------------- paper
def paper_table(runs: Sequence[Run], published: Published) -> Table:
    """Every published number of the runs' methods (paper's unit), ours beside it and the delta.

    Args:
        runs: One or more runs.
        published: The published numbers.

    Returns:
        One row per (series, published number); our methods without a published counterpart go to the notes.
    """
    series = series_of(runs)
    columns = (
        Column("method", "Method", kind="label"),
        Column("published_as", "Published as", kind="text"),
        Column("metric", "Metric", kind="text"),
        Column("table", "Table", kind="text"),
        Column("paper", "Paper", kind="paper"),
        Column("ours", "Ours", kind="ours"),
        Column("delta", "Δ", kind="delta"),
        Column("ours_key", "Our column", kind="text"),
    )
    rows = []
    unmatched = []
    for s in series:
        c = comparability(s.run, published)
        if not c.values:
            continue  # another model: said once in the notes, no rows
        values = published.for_method(s.method, s.run.seconds)
        if not values:
            unmatched.append(s.method)
            continue
        keys = result_keys([s.run]) + list(TIMING_DIRECTIONS)
        for v in values:
            link = published.metrics.get(v.metric)
            ours_key = None
            if link is not None and link.ours:
                ours_key = next((k for k in keys if _name_of(k) == link.ours), None)
                if ours_key is not None and split_drift(ours_key) is not None:
                    ours_key = None
            if ours_key is not None and ours_key.startswith("timing.") and not c.speed:
                ours_key, why_not = None, f"speed not compared ({c.why})"
            else:
                why_not = ""
            ours = s.run.value(s.method, ours_key) if ours_key else None
            ours_conv = None if ours is None or link is None else ours * link.scale
            ours_fmt = ".2f" if ours_conv is None or abs(ours_conv) >= 1 else ".3f"
            ours_ci = None
            if ours_conv is not None and link is not None and link.scale > 0 and not ours_key.startswith("timing."):
                entry = s.run.results(s.method).get(ours_key) or {}
                ci = interval_of(entry.get("ci"), ours_fmt)
                ours_ci = ci.scaled(link.scale, ours_fmt) if ci is not None else None
            delta = None if ours_conv is None else ours_conv - v.value
            why = "" if ours_key else why_not or (link.why if link and link.why else "not measured in this run")
            rows.append(
                (
                    text(s.label, source=s.source),
                    text(v.method),
                    text(v.metric),
                    text(f"{v.table}, {v.duration_s:g} s", note=v.protocol),
                    number(v.value, "g", None, None, Source(method=v.method, reference=v.reference), v.note),
                    number(ours_conv, ours_fmt, None, None, s.source, why, ours_ci),
                    number(delta, "+.2f" if delta is None or abs(delta) >= 0.01 else "+.4f"),
                    text(ours_key or "—", note=why),
                )
            )
    notes = [run_protocol(r) for r in runs]
    notes.append(f"paper: {published.source}; ours converted to the paper's unit (x100 for VBench, ms -> s)")
    notes += interval_notes(runs, rows, paper=bool(rows))
    if unmatched:
        notes.append("no published counterpart: " + ", ".join(dict.fromkeys(unmatched)))
        why = [f"{pub}: {reason}" for pub, reason in published.unmatched.items() if reason]
        if why:
            notes.append("published methods without a counterpart here — " + "; ".join(why))
    notes += comparability_notes(runs, published)
    if not rows:
        notes.append("no run here is comparable with the published numbers; they are listed in baselines/published/")
    return Table("paper", "Ours beside the paper's numbers", columns, tuple(rows), tuple(notes), best=None)


# --------------------------------------------------------------------------------------------- drift
def drift_table(runs: Sequence[Run]) -> Table:
    """Every drift summary: rows (measured metric, summary), one column per series; best per row."""
    series = series_of(runs)
    keys = sorted(
        (k for k in result_keys(runs) if split_drift(k) is not None),
        key=lambda k: (split_drift(k)[1], split_drift(k)[0]),
    )
    columns = [Column("metric", "Metric", kind="label"), Column("summary", "Drift summary", kind="text")]
    columns += [Column(s.label, s.label, "ours") for s in series]
    rows = []
    for key in keys:
        info = describe(key)
        did, of = split_drift(key)
        direction = column_direction(runs, key)
        of_info = describe(of)
        row = [text(of_info.label, note=of), text(info.label.split(": ", 1)[-1], note=did)]
        row += [_cell(s, key, direction) for s in series]
        rows.append(tuple(row))
    notes = ("↓: lower is better; slopes have no direction.", *interval_notes(runs, rows))
    return mark_best(
        Table("drift", "Drift summaries (per video, mean over videos)", tuple(columns), tuple(rows), notes, best="row")
    )


# --------------------------------------------------------------------------------------------- speed
def speed_table(runs: Sequence[Run], published: Published | None = None) -> Table:
    """FPS, per-chunk latency, KV cache and memory per series (this machine), the paper's FPS beside."""
    series = series_of(runs)
    keys = list(TIMING_DIRECTIONS)
    columns = [Column("method", "Method", kind="label")]
    for k in keys:
        info = describe(k)
        columns.append(Column(k, info.label, "ours", direction=TIMING_DIRECTIONS[k], description=info.description))
        if k == "timing.fps_mean":
            columns.append(Column("paper:fps", "FPS (paper, 1x H100)", "paper", direction="higher"))
    columns += [Column("device", "Device", kind="text"), Column("n_videos", "Videos", kind="text")]
    rows = []
    for s in series:
        t = s.run.timings(s.method)
        row = [text(s.label, source=s.source)]
        for k in keys:
            row.append(_cell(s, k, TIMING_DIRECTIONS[k]))
            if k == "timing.fps_mean":
                comparable = published is not None and comparability(s.run, published).speed
                v = _published_for(published, s, "fps") if comparable else None
                row.append(
                    number(
                        v.value if v else None,
                        ".2f",
                        "higher",
                        None,
                        Source(method=v.method, reference=v.reference) if v else None,
                        v.note if v else "",
                    )
                )
        row.append(text(", ".join(t.get("devices") or []) or "—"))
        row.append(text(str(t.get("n_videos", "—"))))
        rows.append(tuple(row))
    notes = (
        "Sampling only (VAE decode excluded); per-chunk latency is the mean after the first chunk of each video.",
        "Timings describe the machine of each run; regress never compares them.",
        "The paper's FPS is shown only for runs of the same model on the same GPU class.",
    )
    return mark_best(Table("speed", "Speed", tuple(columns), tuple(rows), notes))


# -------------------------------------------------------------------------------------------- videos
def video_table(series: Sequence[Series], prompt_id: str, seed: int, keys: Sequence[str] | None = None) -> Table:
    """Per-video values of one (prompt, seed): one row per series, one column per metric id (and drift).

    Args:
        series: The series to show (those without this video get empty cells).
        prompt_id: Prompt id.
        seed: Seed.
        keys: Columns: metric ids, or drift keys ``drift...[metric id]`` (default: every metric id, then the
            first/last drift of each).
    """
    per: dict[str, dict[str, float]] = {}
    found: list[str] = []
    for s in series:
        vals: dict[str, float] = {}
        for row in s.run.videos:
            if row.get("method") != s.method or row.get("prompt_id") != prompt_id or row.get("seed") != seed:
                continue
            key = row["metric"] if row.get("record") == "video" else f"{row['metric']}[{row.get('of')}]"
            if row.get("value") is not None:
                vals[key] = float(row["value"])
            if key not in found:
                found.append(key)
        per[s.label] = vals
    if keys is None:
        primary = sorted(k for k in found if split_drift(k) is None)
        drift = sorted(k for k in found if (d := split_drift(k)) and split_id(d[0])[0] == "drift.first_last")
        keys = primary + drift
    runs = list(dict.fromkeys(s.run for s in series))
    columns = [Column("method", "Method", kind="label")]
    directions = {}
    for k in keys:
        info = describe(k)
        directions[k] = column_direction(runs, k)
        columns.append(Column(k, info.label, "ours", direction=directions[k], description=info.description))
    rows = []
    for s in series:
        row = [text(s.label, source=s.source)]
        for k in keys:
            info = describe(k)
            row.append(number(per[s.label].get(k), info.fmt, directions[k], 1, s.source, info.protocol))
        rows.append(tuple(row))
    title = f"{prompt_id}, seed {seed}: per-video values"
    return mark_best(Table(f"video-{prompt_id}-{seed}", title, tuple(columns), tuple(rows)))


# ------------------------------------------------------------------------------------------- paired
#: Significance level of a paired comparison when its result does not record a confidence level.
ALPHA = 0.05


def paired_results(run: Run) -> dict[str, dict[str, dict[str, Any]]]:
    """``aggregate.json`` ``paired``: ``"<a> vs <b>"`` -> result key -> paired result (empty when absent)."""
    return dict(run.aggregate.get("paired") or {})


def _split_pair(name: str) -> tuple[str, str]:
    a, sep, b = name.partition(" vs ")
    return (a, b) if sep else (name, "")


def paired_verdict(a: str, entry: dict[str, Any]) -> tuple[str, bool]:
    """Words for a paired result of ``a`` against another method, and whether it is significant.

    Significant: the two-sided Wilcoxon p-value is below ``1 - confidence_level`` (0.05) **and** the paired
    bootstrap interval excludes 0 (both tests agree). Better / worse follow the metric's ``higher_is_better``;
    a metric without a direction says higher / lower.

    Returns:
        ``("deep-forcing better (significant)", True)``, ``("deep-forcing lower (n.s.)", False)``, ...
    """
    mean, lo, hi, p = (entry.get(k) for k in ("mean", "ci_low", "ci_high", "p_value"))
    if not isinstance(mean, int | float) or not math.isfinite(mean):
        return (entry.get("note") or "no matched pair"), False
    level = entry.get("confidence_level")
    alpha = 1.0 - level if isinstance(level, float) and 0 < level < 1 else ALPHA
    excludes_zero = isinstance(lo, int | float) and isinstance(hi, int | float) and (lo > 0 or hi < 0)
    significant = isinstance(p, int | float) and p < alpha and excludes_zero
    if mean == 0:
        return "no difference", False
    hib = entry.get("higher_is_better")
    if hib is None:
        word = "higher" if mean > 0 else "lower"
    else:
        word = "better" if (mean > 0) == bool(hib) else "worse"
    return f"{a} {word} ({'significant' if significant else 'n.s.'})", significant


def difference_format(fmt: str, values: Iterable[Any]) -> str:
    """The metric's format for a difference, or ``.2e`` when it would show a non-zero value as zero.

    Differences are often orders of magnitude below the values (``+0.0000 [-0.0000, 0.0000]`` says nothing).
    """
    fmt = fmt.lstrip("+")
    nums = [abs(v) for v in values if isinstance(v, int | float) and math.isfinite(v) and v != 0]
    if not nums or not fmt.endswith("f"):
        return fmt
    try:
        decimals = int(fmt[fmt.index(".") + 1 : -1]) if "." in fmt else 6
    except ValueError:
        return fmt
    return ".2e" if min(nums) < 0.5 * 10.0**-decimals else fmt


def paired_table(runs: Sequence[Run], keys: Iterable[str] | None = None) -> Table:
    """Paired comparisons of the runs' methods: ``a − b`` with its interval, the p-value and n, per result key.

    One row per (comparison, result key) of ``aggregate.json`` ``paired`` (each later method of the suite against
    each earlier one, on the same prompts and seeds). The difference cell of a significant comparison is marked
    best (bold everywhere); the verdict says better / worse by the metric's direction.

    Args:
        runs: One or more runs (a comparison stays within its run).
        keys: Result keys to show, in this order (default: those of :func:`default_summary_keys`, i.e. every
            metric id and its first/last drift). Keys a comparison lacks are skipped.
    """
    columns = (
        Column("comparison", "Comparison", kind="label"),
        Column("metric", "Metric", kind="text"),
        Column("difference", "a − b [95% CI]", kind="delta", description="mean over (prompt, seed) pairs of a − b"),
        Column("p_value", "p", kind="delta", description="two-sided Wilcoxon signed-rank p-value, per-prompt means"),
        Column("n", "n (prompts)", kind="delta", description="prompts with a matched pair (the resampling unit)"),
        Column("verdict", "Verdict", kind="text"),
    )
    keys = list(keys) if keys is not None else [k for k in default_summary_keys(runs) if not k.startswith("timing.")]
    rows = []
    small_n = False
    several = len(runs) > 1
    for r in runs:
        for name, per_key in paired_results(r).items():
            a, _ = _split_pair(name)
            label = f"{name} · {r.name}" if several else name
            for key in keys:
                entry = per_key.get(key)
                if entry is None:
                    continue
                info = describe(key)
                verdict, significant = paired_verdict(a, entry)
                n = entry.get("n")
                if isinstance(n, int) and n < 6:
                    small_n = True
                method_note = entry.get("wilcoxon_method")
                p_note = f"{method_note} null distribution" if method_note and method_note != "none" else ""
                pairs = entry.get("n_pairs")
                fmt = difference_format(info.fmt, (entry.get(k) for k in ("mean", "ci_low", "ci_high")))
                diff = number(
                    entry.get("mean"),
                    "+" + fmt,
                    None,
                    pairs if isinstance(pairs, int) else None,
                    Source(method=name, run=r.name),
                    "; ".join(x for x in (info.protocol, entry.get("note") or "") if x),
                    interval_of(entry, fmt),
                )
                rows.append(
                    (
                        text(label, source=Source(method=name, run=r.name)),
                        Cell(value=key, display=info.label, note=key),
                        replace(diff, best=significant),
                        number(entry.get("p_value"), ".3g", note=p_note),
                        Cell(n, str(n), note=f"{pairs} pair(s)") if isinstance(n, int) else number(None),
                        text(verdict),
                    )
                )
    notes = [
        "a − b: mean over matched (prompt, seed) pairs; [low, high]: paired bootstrap interval over prompts; "
        "p: two-sided Wilcoxon signed-rank test on the per-prompt mean differences; n: prompts.",
        "significant (bold): p < 0.05 and the interval excludes 0; better / worse follow the metric's direction.",
    ]
    if small_n:
        notes.append(
            "with fewer than 6 prompts no two-sided Wilcoxon p-value can be below 0.05 (the smallest is 2/2^n)."
        )
    if not rows:
        notes.append(
            "no paired comparisons: a run needs two methods scored on the same prompts and seeds (and a harness "
            "that writes aggregate.json `paired`)."
        )
    return Table("paired", "Paired comparisons", columns, tuple(rows), tuple(notes), best=None)


def paired_lines(table: Table, significant_only: bool = True) -> list[str]:
    """Rows of a :func:`paired_table` as sentences: ``a vs b, Metric: +0.031 [0.012, 0.050], p = 0.004, n = 128``."""
    out = []
    for row in table.rows:
        if significant_only and not row[2].best:
            continue
        out.append(
            f"{row[0].display}, {row[1].display}: {row[2].full_display}, p = {row[3].display}, n = {row[4].display}"
            f" — {row[5].display}"
        )
    return out


# ----------------------------------------------------------------------------------------- coherence
#: Metric names of long-horizon coherence (:mod:`deepforcing.metrics.long_horizon_coherence`).
COHERENCE = "long_horizon_coherence"
COHERENCE_SLOPE = "long_horizon_coherence.slope"


@dataclass(frozen=True)
class CoherenceGroup:
    """The coherence curve of one configuration (backbone, resolution, grid) as result keys.

    Attributes:
        protocol: The configuration shared by the keys (the protocol without ``dt`` / ``dts`` / ``fit``).
        gaps: ``(Δt in seconds, result key)`` by increasing Δt.
        slope: The slope's result key (None when the runs do not have it).
    """

    protocol: str
    gaps: tuple[tuple[float, str], ...]
    slope: str | None


def _seconds(text_value: str) -> float | None:
    try:
        return float(text_value.removesuffix("s"))
    except ValueError:
        return None


def coherence_groups(runs: Sequence[Run]) -> list[CoherenceGroup]:
    """Every long-horizon coherence configuration in the runs (usually one), with its gaps and slope."""
    curves: dict[str, dict[float, str]] = {}
    slopes: dict[str, str] = {}
    for key in result_keys(runs):
        if split_drift(key) is not None:
            continue
        name, protocol = split_id(key)
        proto = protocol_dict(protocol)
        if name == COHERENCE and "dt" in proto:
            dt = _seconds(proto.pop("dt"))
            if dt is not None:
                curves.setdefault(",".join(f"{k}={v}" for k, v in proto.items()), {})[dt] = key
        elif name == COHERENCE_SLOPE:
            proto.pop("dts", None)
            proto.pop("fit", None)
            slopes[",".join(f"{k}={v}" for k, v in proto.items())] = key
    return [
        CoherenceGroup(base, tuple(sorted(gaps.items())), slopes.get(base)) for base, gaps in curves.items() if gaps
    ]


def coherence_table(runs: Sequence[Run], group: CoherenceGroup) -> Table:
    """Long-horizon coherence per gap Δt (columns) and its slope per tenfold gap, one row per series."""
    columns = [Column("method", "Method", kind="label")]
    keys = [k for _, k in group.gaps] + ([group.slope] if group.slope else [])
    for dt, key in group.gaps:
        columns.append(
            Column(
                key,
                f"Δt = {dt:g} s",
                "ours",
                direction=column_direction(runs, key),
                description=describe(key).description,
            )
        )
    if group.slope:
        columns.append(
            Column(
                group.slope,
                "Slope per decade",
                "ours",
                direction=column_direction(runs, group.slope),
                description="least-squares slope of a video's curve against log10(Δt): change per tenfold gap",
            )
        )
    rows = []
    for s in series_of(runs):
        rows.append((text(s.label, source=s.source), *(_cell(s, k, column_direction(runs, k)) for k in keys)))
    notes = (
        f"{group.protocol}: per video, the mean cosine of the backbone's features of every pair of time-grid frames Δt "
        "apart; then the mean over videos. A gap longer than the video is undefined (left out). The slope is per "
        "tenfold gap (0: no decay).",
        *interval_notes(runs, rows),
    )
    return mark_best(Table("coherence", "Long-horizon coherence", tuple(columns), tuple(rows), notes))


# ------------------------------------------------------------------------------------------- methods
def _knobs(config: dict[str, Any]) -> str:
    pc = config.get("policy_config") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(pc.items()))


def methods_table(runs: Sequence[Run]) -> Table:
    """What each method of the runs is: config hash, sampler, policy and its knobs, weights."""
    columns = (
        Column("method", "Method", kind="label"),
        Column("config_hash", "Config hash", kind="text"),
        Column("sampler", "Sampler", kind="text"),
        Column("policy", "Policy", kind="text"),
        Column("knobs", "Policy config", kind="text"),
        Column("weights", "Weights id", kind="text"),
    )
    rows = []
    for s in series_of(runs):
        m = (s.run.aggregate.get("methods") or {}).get(s.method) or {}
        cfg = m.get("config") or {}
        rows.append(
            (
                text(s.label, note=cfg.get("description", ""), source=s.source),
                text(m.get("config_hash") or "—"),
                text(str(cfg.get("sampler", "—"))),
                text(str(cfg.get("policy", "—")), note=cfg.get("source", "")),
                text(_knobs(cfg) or "—"),
                text(str(m.get("weights_id") or "—")),
            )
        )
    return Table("methods", "Methods", columns, tuple(rows), best=None)


__all__ = [
    "Cell",
    "CoherenceGroup",
    "Column",
    "Interval",
    "coherence_groups",
    "coherence_table",
    "difference_format",
    "interval_notes",
    "interval_of",
    "paired_lines",
    "paired_table",
    "paired_verdict",
    "Comparability",
    "Series",
    "Source",
    "Table",
    "default_summary_keys",
    "drift_table",
    "mark_best",
    "methods_table",
    "comparability",
    "comparability_notes",
    "counts_table",
    "number",
    "paper_table",
    "problem_notes",
    "problems_table",
    "series_of",
    "speed_table",
    "summary_table",
    "text",
    "truncation_notes",
    "video_table",
]

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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from deepforcing.report.catalog import describe, format_value, split_drift, split_id
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
    """

    value: float | str | None
    display: str
    direction: Direction = None
    n: int | None = None
    source: Source | None = None
    best: bool = False
    note: str = ""

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
) -> Cell:
    """A numeric cell (missing and non-finite values are shown as an em dash)."""
    v = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return Cell(value=v, display=format_value(v, fmt), direction=direction, n=n, source=source, note=note)


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


def default_summary_keys(runs: Sequence[Run]) -> list[str]:
    """Summary columns: every metric id, then its first/last drift, then FPS and per-chunk latency."""
    keys = result_keys(runs)
    primary = sorted(k for k in keys if split_drift(k) is None)
    drift = sorted(k for k in keys if (d := split_drift(k)) is not None and split_id(d[0])[0] == "drift.first_last")
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
    return number(s.run.value(s.method, key), info.fmt, direction, entry.get("n_videos"), s.source, note)


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
            columns.append(Column(f"paper:{key}", f"{info.label} (paper)", "paper", info.label, "paper", direction))
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
                note = f"printed {v.value:g} ({v.metric}); {v.protocol}"
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
    notes += comparability_notes(runs, published) + truncation_notes(runs)
    return mark_best(Table("summary", "Summary: method x metric", tuple(columns), tuple(rows), tuple(notes)))


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
            delta = None if ours_conv is None else ours_conv - v.value
            why = "" if ours_key else why_not or (link.why if link and link.why else "not measured in this run")
            rows.append(
                (
                    text(s.label, source=s.source),
                    text(v.method),
                    text(v.metric),
                    text(f"{v.table}, {v.duration_s:g} s", note=v.protocol),
                    number(v.value, "g", None, None, Source(method=v.method, reference=v.reference), v.note),
                    number(
                        ours_conv,
                        ".2f" if ours_conv is None or abs(ours_conv) >= 1 else ".3f",
                        None,
                        None,
                        s.source,
                        why,
                    ),
                    number(delta, "+.2f" if delta is None or abs(delta) >= 0.01 else "+.4f"),
                    text(ours_key or "—", note=why),
                )
            )
    notes = [run_protocol(r) for r in runs]
    notes.append(f"paper: {published.source}; ours converted to the paper's unit (x100 for VBench, ms -> s)")
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
    notes = ("↓: lower is better; slopes have no direction.",)
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
    "Column",
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

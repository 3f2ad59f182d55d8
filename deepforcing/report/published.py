"""The papers' published numbers (``baselines/published/``) and how they map onto our methods and metrics.

Each paper has a CSV, a byte-for-byte copy of its tables, and a mapping file (``mapping.yaml`` for Deep Forcing,
``mapping-<paper>.yaml`` for the others) that says which of our method names run the same algorithm as a
published method (per table), which of our metric names a published column is, the factor between the units
(published VBench numbers are x100) and each table's protocol. Published method names are keyed by
``(source, name)``: two papers may both print "Self Forcing" or "Table 1". Nothing here edits a number.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepforcing.errors import UserError
from deepforcing.paths import baselines_dir

#: Preferred table when the same (method, metric) is printed in several (Table 1 is the main comparison).
TABLE_PREFERENCE = ("Table 1", "Table 6", "Table 4", "Table 5", "Table 3")


@dataclass(frozen=True)
class PublishedValue:
    """One printed number.

    Attributes:
        source: Publication, e.g. ``Deep Forcing arXiv 2512.05081v1``.
        table: Table name as printed (``Table 1``, ``Table 4 (component ablation)``, ...).
        duration_s: Video length of the table's setting.
        method: Method name as printed.
        metric: Published metric name (``subject_consistency``, ``fps``, ...).
        value: The number, in the paper's unit.
        note: The CSV's note (protocol, hardware).
        protocol: The table's protocol line from ``mapping.yaml``.
    """

    source: str
    table: str
    duration_s: float
    method: str
    metric: str
    value: float
    note: str
    protocol: str

    @property
    def reference(self) -> str:
        """``<source>, <table>, <duration> s``."""
        return f"{self.source}, {self.table}, {self.duration_s:g} s"


@dataclass(frozen=True)
class MetricLink:
    """A published metric and its counterpart among our result columns.

    Attributes:
        published: Published metric name.
        ours: Our metric name (id without protocol) or ``timing.<field>``; None if we have none.
        scale: paper ≈ ours x scale.
        why: Why there is no counterpart (when ``ours`` is None).
    """

    published: str
    ours: str | None
    scale: float = 1.0
    why: str = ""


@dataclass(frozen=True)
class Published:
    """All published numbers with the mapping onto our names.

    Attributes:
        values: Every printed number.
        methods: Published method name -> (our names, tables it applies to; empty = all).
        unmatched: Published method name -> why it has no counterpart.
        metrics: Published metric name -> link.
        source: Publication line.
    """

    values: tuple[PublishedValue, ...]
    methods: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]]
    unmatched: dict[tuple[str, str], str]
    metrics: dict[str, MetricLink]
    source: str

    def published_names(self, ours: str) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
        """(source, published method name) keys, with their tables, that one of our methods reproduces."""
        return [(key, tables) for key, (names, tables) in self.methods.items() if ours in names]

    def for_method(self, ours: str, duration_s: float | None) -> list[PublishedValue]:
        """Published numbers of our method ``ours``: per metric the preferred table, at the nearest duration.

        Args:
            ours: Our method name.
            duration_s: Our video length (None: prefer 30 s).

        Returns:
            One value per published metric, sorted by metric name.
        """
        candidates: dict[str, list[PublishedValue]] = {}
        order = {source: i for i, source in enumerate(dict.fromkeys(v.source for v in self.values))}
        for (source, pub), tables in self.published_names(ours):
            for v in self.values:
                if v.source == source and v.method == pub and (not tables or v.table in tables):
                    candidates.setdefault(v.metric, []).append(v)
        target = 30.0 if duration_s is None else duration_s
        out = []
        for metric in sorted(candidates):
            out.append(
                min(
                    candidates[metric],
                    key=lambda v: (abs(v.duration_s - target), order[v.source], _table_rank(v.table)),
                )
            )
        return out


def _table_rank(table: str) -> int:
    for i, prefix in enumerate(TABLE_PREFERENCE):
        if table == prefix or table.startswith(prefix + " "):
            return i
    return len(TABLE_PREFERENCE)


def published_dir() -> Path:
    """``baselines/published``."""
    return baselines_dir() / "published"


def mapping_files(root: Path) -> list[Path]:
    """``mapping.yaml`` (Deep Forcing, first) then every ``mapping-*.yaml`` of a folder, sorted."""
    return [p for p in [root / "mapping.yaml"] if p.is_file()] + sorted(root.glob("mapping-*.yaml"))


@functools.cache
def load_published(folder: str | None = None) -> Published:
    """Read every mapping file of the folder and the CSV each names.

    Args:
        folder: Directory holding the mapping files (default ``baselines/published``).

    Raises:
        UserError: Missing or malformed files, or two papers mapping one metric name differently.
    """
    root = Path(folder) if folder else published_dir()
    files = mapping_files(root)
    if not files:
        raise UserError(
            f"published numbers not found: {root / 'mapping.yaml'}", "run from a checkout or set DEEPFORCING_HOME"
        )
    values: list[PublishedValue] = []
    methods: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    unmatched: dict[tuple[str, str], str] = {}
    metrics: dict[str, MetricLink] = {}
    sources = []
    for mapping_path in files:
        source = _load_paper(mapping_path, values, methods, unmatched, metrics)
        sources.append(source)
    return Published(tuple(values), methods, unmatched, metrics, "; ".join(s for s in sources if s))


def _load_paper(
    mapping_path: Path,
    values: list[PublishedValue],
    methods: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]],
    unmatched: dict[tuple[str, str], str],
    metrics: dict[str, MetricLink],
) -> str:
    root = mapping_path.parent
    mapping: dict[str, Any] = yaml.safe_load(mapping_path.read_text(encoding="utf-8")) or {}
    csv_path = root / str(mapping.get("file", ""))
    if not csv_path.is_file():
        raise UserError(f"{mapping_path}: file '{mapping.get('file')}' not found in {root}")
    protocols = {str(k): str(v) for k, v in (mapping.get("protocols") or {}).items()}
    reader = csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8")))
    sources = set()
    for i, row in enumerate(reader, 2):
        try:
            values.append(
                PublishedValue(
                    source=row["source"],
                    table=row["table"],
                    duration_s=float(row["duration_s"]) if row["duration_s"] else float("inf"),
                    method=row["method"],
                    metric=row["metric"],
                    value=float(row["value"]),
                    note=row.get("note") or "",
                    protocol=protocols.get(row["table"], row.get("note") or ""),
                )
            )
        except (KeyError, ValueError) as exc:
            raise UserError(f"{csv_path}:{i}: malformed row ({exc})") from exc
        sources.add(row["source"])
    if len(sources) != 1:
        raise UserError(f"{csv_path}: one paper per file, found sources {sorted(sources)}")
    (source,) = sources
    for entry in mapping.get("methods") or []:
        names = tuple(entry.get("ours") or ())
        key = (source, str(entry["published"]))
        if names:
            methods[key] = (names, tuple(entry.get("tables") or ()))
        else:
            unmatched[key] = str(entry.get("why", "")).strip()
    for name, spec in (mapping.get("metrics") or {}).items():
        spec = spec or {}
        link = MetricLink(str(name), spec.get("ours"), float(spec.get("scale", 1.0)), spec.get("why", ""))
        if name in metrics and (metrics[name].ours, metrics[name].scale) != (link.ours, link.scale):
            raise UserError(f"{mapping_path}: metric '{name}' is mapped differently by another paper's mapping")
        metrics.setdefault(str(name), link)
    return str(mapping.get("source", ""))

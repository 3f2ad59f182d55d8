"""The papers' published numbers (``baselines/published/``) and how they map onto our methods and metrics.

The CSV is a byte-for-byte copy of the project's shared table of printed numbers (several papers, one row per
number); ``mapping.yaml`` says, per publication (``source``), which of our method names run the same algorithm as a
published method (per table) and each table's protocol, and, for all sources, which of our metric names a published
column is and the factor between the units (published VBench numbers are x100). Sources are listed in order of
preference. Nothing here edits a number.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
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
        duration_s: Video length of the table's setting; None where the source does not state it (such numbers
            are listed but never placed beside ours).
        method: Method name as printed.
        metric: Published metric name (``subject_consistency``, ``fps``, ...).
        value: The number, in the paper's unit.
        note: The CSV's note (protocol, hardware).
        protocol: The table's protocol line from ``mapping.yaml``.
    """

    source: str
    table: str
    duration_s: float | None
    method: str
    metric: str
    value: float
    note: str
    protocol: str

    @property
    def reference(self) -> str:
        """``<source>, <table>, <duration> s`` (``length not stated`` without a duration)."""
        length = "length not stated" if self.duration_s is None else f"{self.duration_s:g} s"
        return f"{self.source}, {self.table}, {length}"


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
        methods: ``(source, published method name)`` -> (our names, tables it applies to; empty = all).
        unmatched: Published method name -> why it has no counterpart (names that no source maps to ours).
        metrics: Published metric name -> link.
        source: The publications, in order of preference, joined by ``"; "``.
        sources: The publications, in order of preference.
        unmatched_by_source: ``(source, published method name)`` -> why it has no counterpart.
        model: The model every published number was measured on (``comparable.model``); runs of another model
            are not compared.
        speed_device: GPU class of the published speed numbers (``comparable.speed_device``).
    """

    values: tuple[PublishedValue, ...]
    methods: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]]
    unmatched: dict[str, str]
    metrics: dict[str, MetricLink]
    source: str
    sources: tuple[str, ...] = ()
    unmatched_by_source: dict[tuple[str, str], str] = field(default_factory=dict)
    model: str | None = None
    speed_device: str | None = None

    def published_names(self, ours: str) -> list[tuple[str, str, tuple[str, ...]]]:
        """``(source, published name, tables)`` of the published methods that one of our methods reproduces."""
        return [(src, pub, tables) for (src, pub), (names, tables) in self.methods.items() if ours in names]

    def for_method(self, ours: str, duration_s: float | None) -> list[PublishedValue]:
        """Published numbers of our method ``ours``: per metric the nearest length, then source, then table.

        Args:
            ours: Our method name.
            duration_s: Our video length (None: prefer 30 s).

        Returns:
            One value per published metric, sorted by metric name. Numbers without a stated length are left out.
        """
        candidates: dict[str, list[PublishedValue]] = {}
        for src, pub, tables in self.published_names(ours):
            for v in self.values:
                if v.source == src and v.method == pub and (not tables or v.table in tables):
                    if v.duration_s is not None:
                        candidates.setdefault(v.metric, []).append(v)
        target = 30.0 if duration_s is None else duration_s
        rank = {s: i for i, s in enumerate(self.sources)}

        def order(v: PublishedValue) -> tuple[float, int, int]:
            return abs(v.duration_s - target), rank.get(v.source, len(rank)), _table_rank(v.table)

        return [min(candidates[metric], key=order) for metric in sorted(candidates)]


def _table_rank(table: str) -> int:
    for i, prefix in enumerate(TABLE_PREFERENCE):
        if table == prefix or table.startswith(prefix + " "):
            return i
    return len(TABLE_PREFERENCE)


def published_dir() -> Path:
    """``baselines/published``."""
    return baselines_dir() / "published"


@functools.cache
def load_published(folder: str | None = None) -> Published:
    """Read ``mapping.yaml`` and the CSV it names.

    Args:
        folder: Directory holding ``mapping.yaml`` (default ``baselines/published``).

    Raises:
        UserError: Missing or malformed files, or a CSV row whose source the mapping does not list.
    """
    root = Path(folder) if folder else published_dir()
    mapping_path = root / "mapping.yaml"
    if not mapping_path.is_file():
        raise UserError(f"published numbers not found: {mapping_path}", "run from a checkout or set DEEPFORCING_HOME")
    mapping: dict[str, Any] = yaml.safe_load(mapping_path.read_text(encoding="utf-8")) or {}
    csv_path = root / str(mapping.get("file", ""))
    if not csv_path.is_file():
        raise UserError(f"{mapping_path}: file '{mapping.get('file')}' not found in {root}")
    entries = mapping.get("sources")
    if mapping.get("version") != 2 or not isinstance(entries, list):
        raise UserError(f"{mapping_path}: expected 'version: 2' with a 'sources' list")
    sources = tuple(str(e.get("source", "")) for e in entries)
    protocols = {
        (str(e.get("source", "")), str(k)): str(v) for e in entries for k, v in (e.get("protocols") or {}).items()
    }
    values = []
    reader = csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8")))
    for i, row in enumerate(reader, 2):
        try:
            source = row["source"]
            if source not in sources:
                raise UserError(f"{csv_path}:{i}: source {row['source']!r} is not listed in {mapping_path}")
            duration = row["duration_s"].strip()
            values.append(
                PublishedValue(
                    source=row["source"],
                    table=row["table"],
                    duration_s=float(duration) if duration else None,
                    method=row["method"],
                    metric=row["metric"],
                    value=float(row["value"]),
                    note=row.get("note") or "",
                    protocol=protocols.get((source, row["table"]), row.get("note") or ""),
                )
            )
        except (KeyError, ValueError) as exc:
            raise UserError(f"{csv_path}:{i}: malformed row ({exc})") from exc
    methods: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    by_source: dict[tuple[str, str], str] = {}
    for e, src in zip(entries, sources, strict=True):
        for entry in e.get("methods") or []:
            names = tuple(entry.get("ours") or ())
            key = (src, str(entry["published"]))
            if names:
                methods[key] = (names, tuple(entry.get("tables") or ()))
            else:
                by_source[key] = str(entry.get("why", "")).strip()
    mapped = {pub for _, pub in methods}
    unmatched: dict[str, str] = {}
    for (_, pub), why in by_source.items():
        if pub not in mapped and pub not in unmatched:
            unmatched[pub] = why
    metrics = {}
    for name, spec in (mapping.get("metrics") or {}).items():
        spec = spec or {}
        metrics[str(name)] = MetricLink(str(name), spec.get("ours"), float(spec.get("scale", 1.0)), spec.get("why", ""))
    comparable = mapping.get("comparable") or {}
    return Published(
        tuple(values),
        methods,
        unmatched,
        metrics,
        "; ".join(sources),
        sources,
        by_source,
        model=comparable.get("model"),
        speed_device=comparable.get("speed_device"),
    )

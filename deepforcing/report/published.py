"""The papers' published numbers (``baselines/published/``) and how they map onto our methods and metrics.

The CSV is a byte-for-byte copy of the paper's tables; ``mapping.yaml`` says which of our method names run the
same algorithm as a published method (per table), which of our metric names a published column is, the factor
between the units (published VBench numbers are x100) and each table's protocol. Nothing here edits a number.
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
    methods: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    unmatched: dict[str, str]
    metrics: dict[str, MetricLink]
    source: str

    def published_names(self, ours: str) -> list[tuple[str, tuple[str, ...]]]:
        """Published method names (with their tables) that one of our methods reproduces."""
        return [(pub, tables) for pub, (names, tables) in self.methods.items() if ours in names]

    def for_method(self, ours: str, duration_s: float | None) -> list[PublishedValue]:
        """Published numbers of our method ``ours``: per metric the preferred table, at the nearest duration.

        Args:
            ours: Our method name.
            duration_s: Our video length (None: prefer 30 s).

        Returns:
            One value per published metric, sorted by metric name.
        """
        candidates: dict[str, list[PublishedValue]] = {}
        for pub, tables in self.published_names(ours):
            for v in self.values:
                if v.method == pub and (not tables or v.table in tables):
                    candidates.setdefault(v.metric, []).append(v)
        target = 30.0 if duration_s is None else duration_s
        out = []
        for metric in sorted(candidates):
            out.append(min(candidates[metric], key=lambda v: (abs(v.duration_s - target), _table_rank(v.table))))
        return out


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
        UserError: Missing or malformed files.
    """
    root = Path(folder) if folder else published_dir()
    mapping_path = root / "mapping.yaml"
    if not mapping_path.is_file():
        raise UserError(f"published numbers not found: {mapping_path}", "run from a checkout or set DEEPFORCING_HOME")
    mapping: dict[str, Any] = yaml.safe_load(mapping_path.read_text(encoding="utf-8")) or {}
    csv_path = root / str(mapping.get("file", ""))
    if not csv_path.is_file():
        raise UserError(f"{mapping_path}: file '{mapping.get('file')}' not found in {root}")
    protocols = {str(k): str(v) for k, v in (mapping.get("protocols") or {}).items()}
    values = []
    reader = csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8")))
    for i, row in enumerate(reader, 2):
        try:
            values.append(
                PublishedValue(
                    source=row["source"],
                    table=row["table"],
                    duration_s=float(row["duration_s"]),
                    method=row["method"],
                    metric=row["metric"],
                    value=float(row["value"]),
                    note=row.get("note") or "",
                    protocol=protocols.get(row["table"], row.get("note") or ""),
                )
            )
        except (KeyError, ValueError) as exc:
            raise UserError(f"{csv_path}:{i}: malformed row ({exc})") from exc
    methods: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    unmatched: dict[str, str] = {}
    for entry in mapping.get("methods") or []:
        names = tuple(entry.get("ours") or ())
        if names:
            methods[str(entry["published"])] = (names, tuple(entry.get("tables") or ()))
        else:
            unmatched[str(entry["published"])] = str(entry.get("why", "")).strip()
    metrics = {}
    for name, spec in (mapping.get("metrics") or {}).items():
        spec = spec or {}
        metrics[str(name)] = MetricLink(str(name), spec.get("ours"), float(spec.get("scale", 1.0)), spec.get("why", ""))
    return Published(tuple(values), methods, unmatched, metrics, str(mapping.get("source", "")))

"""Findings: a study written elsewhere (e.g. the toy-world drift study) shown as its own section of the report.

The report reads no producer's code directly: a findings file names its kind, and :data:`READERS` maps the kind to
the function (``"module:function"``, imported on first use) that turns the file into report tables. A producer
adds a kind here; the report stays the same.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError

#: Findings kind -> (section title, ``"module:function"``: summary dict -> (intro, [(title, Table)], notes)).
READERS: dict[str, tuple[str, str]] = {
    "toyworld-drift-study": ("Toy-world findings", "deepforcing.toyworld.drift:findings_tables"),
}


@dataclass(frozen=True)
class Findings:
    """A study ready for the report.

    Attributes:
        title: Section title.
        intro: One paragraph.
        tables: ``(title, Table)`` pairs.
        notes: Lines under the tables.
    """

    title: str
    intro: str
    tables: list[tuple[str, Any]]
    notes: list[str]


def _kind(data: dict[str, Any]) -> str | None:
    kind = data.get("kind")
    if kind is None and {"study", "table"} <= set(data):  # drift-study summaries written before the kind field
        kind = "toyworld-drift-study"
    return kind


def load_findings(path: str | Path) -> Findings:
    """Read a findings file and turn it into report tables with the reader of its kind.

    Raises:
        UserError: Unreadable, or of no known kind (naming the kinds there are).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the findings {path}: {exc}") from exc
    kind = _kind(data) if isinstance(data, dict) else None
    if kind not in READERS:
        raise UserError(
            f"{path} is not a findings file this report knows",
            f"known kinds: {', '.join(READERS)} (e.g. the summary.json of `deepforcing-eval toyworld drift`)",
        )
    title, target = READERS[kind]
    module, func = target.split(":")
    intro, tables, notes = getattr(importlib.import_module(module), func)(data)
    return Findings(title, intro, list(tables), list(notes))

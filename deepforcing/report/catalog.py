"""Display metadata of metrics: labels and formats from ``labels.yaml``, the protocol from the metric id.

A result column is a full metric id (``image_stats.mean_luma@luma=bt601``) or a drift summary of one
(``drift.first_last@window=5,abs=true[image_stats.mean_luma@luma=bt601]``) or a timing field
(``timing.fps_mean``). :func:`describe` splits any of these into what a report shows.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_LABELS = Path(__file__).with_name("labels.yaml")


@dataclass(frozen=True)
class MetricInfo:
    """What a report shows for a result column.

    Attributes:
        key: The result column (full id, drift key or ``timing.<field>``).
        name: The metric name without protocol (for drift: the measured metric's name).
        label: Display label, e.g. ``Mean luma`` or ``Mean luma: |first - last 5 s|``.
        short: Short label for narrow tables.
        description: One line on what the number is.
        protocol: The protocol part of the id(s), e.g. ``luma=bt601`` (empty when none).
        fmt: Python format spec of the display value.
        drift: The drift summary name (``drift.first_last``) for a drift column, else None.
    """

    key: str
    name: str
    label: str
    short: str
    description: str
    protocol: str
    fmt: str
    drift: str | None = None

    def format(self, value: float | None) -> str:
        """Display string of ``value`` (an em dash for a missing or non-finite value)."""
        return format_value(value, self.fmt)


def format_value(value: float | None, fmt: str = ".4f") -> str:
    """Format a number for display; None and NaN become an em dash."""
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return format(value, fmt)


@functools.cache
def _labels() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(_LABELS.read_text(encoding="utf-8")) or {}
    return dict(data.get("metrics") or {})


def split_id(mid: str) -> tuple[str, str]:
    """``name@protocol`` -> ``(name, protocol)``."""
    name, _, protocol = mid.partition("@")
    return name, protocol


def split_drift(key: str) -> tuple[str, str] | None:
    """``drift.x@p[metric id]`` -> ``(drift id, metric id)``; None if ``key`` is not a drift column."""
    if not key.startswith("drift.") or not key.endswith("]") or "[" not in key:
        return None
    drift, _, of = key[:-1].partition("[")
    return drift, of


def protocol_dict(protocol: str) -> dict[str, str]:
    """``k=v,k=v`` (the part of an id after ``@``) as an ordered dict."""
    return dict(part.partition("=")[::2] for part in protocol.split(",") if part)


_protocol = protocol_dict


def _entry(name: str) -> dict[str, Any]:
    entry = _labels().get(name)
    if entry is None:
        short = name.split(".")[-1].replace("_", " ")
        return {"label": short[:1].upper() + short[1:], "short": short, "format": ".4g", "description": ""}
    return entry


@functools.cache
def describe(key: str) -> MetricInfo:
    """Display metadata of a result column (unknown names get a label derived from the name).

    Args:
        key: A metric id, a drift column ``drift...[metric id]`` or ``timing.<field>``.

    Returns:
        The column's :class:`MetricInfo`.
    """
    drift = split_drift(key)
    if drift is not None:
        did, of = drift
        dname, dprot = split_id(did)
        oname, oprot = split_id(of)
        d, o = _entry(dname), _entry(oname)
        dlabel = d["label"]
        shown = [f"{k}={v}" for k, v in _protocol(dprot).items() if k in (d.get("protocol_in_label") or ())]
        if shown:
            dlabel += f" ({', '.join(shown)})"
        return MetricInfo(
            key=key,
            name=oname,
            label=f"{describe(of).label}: {dlabel}",
            short=f"{o.get('short', o['label'])} {d.get('short', d['label'])}",
            description=f"{d.get('description', '')} of {o['label'].lower()}",
            protocol=";".join(p for p in (dprot, oprot) if p),
            fmt=d.get("format", ".4f") if dname != "drift.first_last" else o.get("format", ".4f"),
            drift=dname,
        )
    name, protocol = split_id(key)
    e = _entry(name)
    label = e["label"]
    shown = [f"{k}={v}" for k, v in _protocol(protocol).items() if k in (e.get("protocol_in_label") or ())]
    if shown:
        label += f" ({', '.join(shown)})"
    return MetricInfo(
        key=key,
        name=name,
        label=label,
        short=e.get("short", e["label"]),
        description=e.get("description", ""),
        protocol=protocol,
        fmt=e.get("format", ".4f"),
    )

"""Metric identity: a name plus every protocol choice that changes the number.

Two numbers share a column only when their ids are equal, so ``fvd@i3d=styleganv,frames=16,res=224,cov=n``
and ``fvd@...,cov=n-1`` never get averaged together. The id is written into every per-clip row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_FORBIDDEN = set("@,=")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    if value is None:
        return "none"
    return str(value)


def metric_id(name: str, protocol: Mapping[str, Any] | None = None) -> str:
    """Format ``name@k=v,k=v`` with the protocol keys in the given order.

    Args:
        name: Metric name, e.g. ``"fvd"`` or ``"vbench.subject_consistency"``.
        protocol: Ordered protocol choices; values are formatted with ``str`` (floats without a trailing
            ``.0``, booleans as ``true``/``false``).

    Returns:
        The id string; just ``name`` when the protocol is empty.

    Raises:
        ValueError: If a key is not a lower-case identifier or a value contains ``@``, ``,`` or ``=``.
    """
    if not name or _FORBIDDEN & set(name):
        raise ValueError(f"metric name {name!r} must be non-empty and contain none of '@,='")
    if not protocol:
        return name
    parts = []
    for key, value in protocol.items():
        text = _fmt(value)
        if not _KEY.match(key):
            raise ValueError(f"protocol key {key!r} must match {_KEY.pattern}")
        if _FORBIDDEN & set(text) or not text:
            raise ValueError(f"protocol value {text!r} for {key!r} must be non-empty and contain none of '@,='")
        parts.append(f"{key}={text}")
    return f"{name}@{','.join(parts)}"


def parse_metric_id(mid: str) -> tuple[str, dict[str, str]]:
    """Split an id from :func:`metric_id` back into its name and (string-valued) protocol."""
    name, sep, rest = mid.partition("@")
    if not sep:
        return name, {}
    protocol: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"malformed metric id {mid!r}: {part!r} has no '='")
        protocol[key] = value
    return name, protocol

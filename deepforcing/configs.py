"""Frozen config dataclasses: JSON serialisation and a short content hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a (nested) dataclass; tuples become lists."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_hash(cfg: Any, length: int = 12) -> str:
    """Short sha256 of the config's canonical JSON (sorted keys); stable across runs and machines."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]

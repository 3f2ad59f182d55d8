"""Shared checks for weight files."""

from __future__ import annotations

from pathlib import Path

from deepforcing.errors import UserError


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a :class:`Path` or raise a :class:`UserError` naming the missing file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(
            f"{what} weights not found: {p}",
            "run `deepforcing-eval weights list` to see where each metric file goes",
        )
    return p

"""Files every stage writes: atomic writes (temporary name, fsync, rename), canonical JSON, JSONL with a header.

A reader (or a re-run after SIGKILL) sees either the old file or the complete new one. Used by the harness's run
store and by the reports; imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import math
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError

log = logging.getLogger(__name__)

#: Version of every file the harness writes; bumped on any incompatible change.
SCHEMA_VERSION = 1


def _os_error(path: Path, exc: OSError) -> UserError:
    if exc.errno == errno.ENOSPC:
        return UserError(f"no space left on the device while writing {path}", "free space or choose another --out")
    if exc.errno == errno.EDQUOT:
        return UserError(f"disk quota exceeded while writing {path}", "free space or choose another --out")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {path}: {exc.strerror}", "choose a writable --out directory")
    return UserError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable --out directory")


def tmp_name(path: Path) -> Path:
    """A unique hidden temporary name beside ``path`` (``.<name>.<pid>-<hex>.tmp``)."""
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    On any error the temporary file is removed and ``path`` is left as it was (absent or the old content).

    Raises:
        UserError: The directory cannot be created or written, or the disk is full.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    tmp = tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise _os_error(path, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - nothing more can be done
        log.warning("could not remove temporary file %s: %s", path, exc)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def clean_json(obj: Any) -> Any:
    """Copy of ``obj`` with non-finite floats replaced by None (JSON has no NaN) and dataclasses as dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """Canonical JSON (sorted keys, NaN -> null)."""
    return json.dumps(clean_json(obj), sort_keys=True, indent=indent, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, dumps(obj, indent=2) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, header: dict[str, Any], rows: Iterable[dict[str, Any]]) -> int:
    """Write a JSONL file atomically: first a ``record: header`` line (schema + provenance), then the rows.

    Returns:
        The number of rows written (header excluded).
    """
    lines = [dumps({"record": "header", "schema_version": SCHEMA_VERSION, **header})]
    lines.extend(dumps(r) for r in rows)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return len(lines) - 1


def read_jsonl(path: str | os.PathLike) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Read a file written by :func:`atomic_write_jsonl`: ``(header, rows)``."""
    header, rows = None, []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj.get("record") == "header":
            header = obj
        else:
            rows.append(obj)
    return header, rows


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()

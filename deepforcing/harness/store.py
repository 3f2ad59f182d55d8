"""The run store: ``<out>/<suite>/<run-id>/``, content-addressed units, atomic writes, completeness checks.

Layout::

    <out>/<suite>/<run-id>/
      run.json                    suite, plan and provenance of the latest invocation
      units/<unit-key>/
        video.mp4                 written by the streaming mp4 writer to a temp file, renamed when complete
        unit.json                 the unit's manifest row (written last, atomically)
        scores/<metric>-<fp>.json clip rows of one metric (fp = fingerprint of metric code, weights, protocol)
      manifest.jsonl              index of every done unit of the plan (rebuilt from unit.json files)
      results/                    clips.jsonl, videos.jsonl, aggregate.json, aggregate.csv (+ .parquet)
      logs/                       one log file per rank

A unit is *done* only when ``unit.json`` exists, parses, names the same unit key and fields, and the sha256 of
``video.mp4`` equals its ``video_sha256``. Every file is written to a temporary name in the same directory and
renamed, so a reader (or a re-run after SIGKILL) sees either the old file or the complete new one. The per-unit
manifest rows (instead of one shared append-only file) let any number of ranks write without coordination.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import math
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError
from deepforcing.harness.plan import UnitKey, WorkItem

log = logging.getLogger(__name__)

#: Version of every file the harness writes; bumped on any incompatible change.
SCHEMA_VERSION = 1

_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp(\.mp4)?$")


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


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Files of one run: ``<out>/<suite>/<run-id>/``.

    Args:
        out: Output root (``--out``, default ``runs``).
        suite: Suite name.
        run_id: Run id (``--run-id``, default the model preset).
    """

    def __init__(self, out: str | os.PathLike, suite: str, run_id: str):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", run_id):
            raise UserError(f"run id '{run_id}' must be letters, digits, '.', '_' or '-'")
        self.out = Path(out)
        self.suite = suite
        self.run_id = run_id
        self.root = self.out / suite / run_id

    # ----------------------------------------------------------------------------------------- paths
    @property
    def units_dir(self) -> Path:
        """``units/``."""
        return self.root / "units"

    @property
    def results_dir(self) -> Path:
        """``results/``."""
        return self.root / "results"

    @property
    def logs_dir(self) -> Path:
        """``logs/``."""
        return self.root / "logs"

    def unit_dir(self, key: str) -> Path:
        """``units/<key>/``."""
        return self.units_dir / key

    def video_path(self, key: str) -> Path:
        """The unit's mp4."""
        return self.unit_dir(key) / "video.mp4"

    def record_path(self, key: str) -> Path:
        """The unit's manifest row."""
        return self.unit_dir(key) / "unit.json"

    def scores_dir(self, key: str) -> Path:
        """The unit's cached metric rows."""
        return self.unit_dir(key) / "scores"

    # ------------------------------------------------------------------------------------------ checks
    def check_writable(self) -> None:
        """Create the run directory and prove that a file can be written and renamed there (before compute).

        Raises:
            UserError: Naming the directory and the reason.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            existing = self.root
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            raise UserError(
                f"cannot create the run directory {self.root}: {exc.strerror or exc} (at {existing})",
                "choose a writable --out directory",
            ) from exc
        probe = self.root / ".write-probe"
        atomic_write_bytes(probe, b"ok\n" * 1024)
        _remove_quietly(probe)

    def load_record(self, key: str) -> dict[str, Any] | None:
        """The unit's manifest row, or None if absent or unreadable."""
        path = self.record_path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable manifest row %s: %s", path, exc)
            return None

    def done_record(self, unit: UnitKey) -> dict[str, Any] | None:
        """The manifest row if the unit is complete (row and video exist and agree), else None."""
        key = unit.key
        row = self.load_record(key)
        if row is None:
            return None
        if row.get("unit_key") != key or row.get("unit") != dataclasses.asdict(unit):
            log.warning("unit %s: manifest row does not match its key; regenerating", key)
            return None
        video = self.video_path(key)
        if not video.is_file():
            log.warning("unit %s: manifest row without video; regenerating", key)
            return None
        if video.stat().st_size != row.get("video_bytes") or sha256_file(video) != row.get("video_sha256"):
            log.warning("unit %s: video does not match the sha256 in its manifest row; regenerating", key)
            return None
        return row

    def clean_stale_tmp(self, key: str) -> int:
        """Remove temporary files of dead processes in the unit's directories; returns how many."""
        removed = 0
        for folder in (self.unit_dir(key), self.scores_dir(key)):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                m = _TMP_RE.match(p.name)
                if m and not _pid_alive(int(m.group("pid"))):
                    _remove_quietly(p)
                    removed += 1
        if removed:
            log.info("unit %s: removed %d temporary file(s) left by an interrupted run", key, removed)
        return removed

    def write_record(self, key: str, row: dict[str, Any]) -> None:
        """Write the unit's manifest row (the last write of a unit; it marks the unit done)."""
        atomic_write_json(self.record_path(key), {"schema_version": SCHEMA_VERSION, "record": "unit", **row})

    def done_items(self, items: Iterable[WorkItem]) -> dict[str, dict[str, Any]]:
        """Unit key -> manifest row of every complete unit among ``items``."""
        out: dict[str, dict[str, Any]] = {}
        for item in items:
            key = item.unit.key
            if key in out:
                continue
            row = self.done_record(item.unit)
            if row is not None:
                out[key] = row
        return out

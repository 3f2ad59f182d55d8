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
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError
from deepforcing.files import (  # noqa: F401 - the store's file helpers, re-exported for its users
    SCHEMA_VERSION,
    _remove_quietly,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    clean_json,
    dumps,
    read_jsonl,
    sha256_file,
    tmp_name,
)
from deepforcing.harness.plan import UnitKey, WorkItem

log = logging.getLogger(__name__)


_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp(\.mp4)?$")


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


@dataclasses.dataclass(frozen=True)
class UnitCheck:
    """What the store holds for a unit.

    Attributes:
        row: The manifest row when the unit is done, else None.
        state: ``done``; ``absent`` (never generated); ``failed`` (its generation failed, see ``failed.json``);
            ``invalid`` (files that do not agree: a changed video, a row of another unit).
        reason: Why it is not done (empty when done).
    """

    row: dict[str, Any] | None
    state: str
    reason: str


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``field: old -> new`` for every differing field of two unit configs (one line)."""
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs) or "no field differs"


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
        """The unit's video: ``video.mp4`` (an imported video keeps its own container: ``video.<ext>``)."""
        default = self.unit_dir(key) / "video.mp4"
        if default.is_file() or not self.unit_dir(key).is_dir():
            return default
        return next((p for p in sorted(self.unit_dir(key).glob("video.*")) if p.suffix != ".tmp"), default)

    @property
    def imports_dir(self) -> Path:
        """``imports/``: one manifest per imported method (:mod:`deepforcing.harness.imports`)."""
        return self.root / "imports"

    def record_path(self, key: str) -> Path:
        """The unit's manifest row."""
        return self.unit_dir(key) / "unit.json"

    def scores_dir(self, key: str) -> Path:
        """The unit's cached metric rows."""
        return self.unit_dir(key) / "scores"

    # ------------------------------------------------------------------------------------------ checks
    def require_existing(self) -> None:
        """Fail (creating nothing) when the run does not exist: ``score`` works on a run that ``run`` made.

        Raises:
            UserError: Listing the runs that do exist under the output root.
        """
        if (self.root / "run.json").is_file() or self.units_dir.is_dir():
            return
        found = sorted(str(p.parent) for p in self.out.glob("*/*/run.json")) if self.out.is_dir() else []
        hint = (
            f"runs under {self.out}: {', '.join(found)}"
            if found
            else f"nothing has run under {self.out} yet; generate first: deepforcing-eval run --suite {self.suite}"
        )
        raise UserError(f"run not found: {self.root} (suite {self.suite}, run id {self.run_id})", hint)

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

    def failure_path(self, key: str) -> Path:
        """Where a unit whose generation failed records why (removed when the unit is generated)."""
        return self.unit_dir(key) / "failed.json"

    def write_failure(self, key: str, stage: str, reason: str, **context: Any) -> None:
        """Record that a unit failed at ``stage`` (it stays pending: the next run tries it again)."""
        atomic_write_json(
            self.failure_path(key),
            {"schema_version": SCHEMA_VERSION, "record": "failure", "stage": stage, "reason": reason, **context},
        )

    def load_failure(self, key: str) -> dict[str, Any] | None:
        """The unit's failure record, or None."""
        try:
            return json.loads(self.failure_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def inspect(self, unit: UnitKey) -> UnitCheck:
        """Whether a unit is done, and if not, exactly why (the one place that decides it)."""
        key = unit.key
        row = self.load_record(key)
        if row is None:
            failure = self.load_failure(key)
            if failure is not None:
                return UnitCheck(None, "failed", f"{failure.get('stage', 'generate')} failed: {failure.get('reason')}")
            return UnitCheck(None, "absent", "not generated")
        fields = json.loads(json.dumps(dataclasses.asdict(unit)))  # as unit.json holds them (tuples are lists)
        if row.get("unit_key") != key or row.get("unit") != fields:
            changed = changed_fields(row.get("unit") or {}, fields)
            return UnitCheck(None, "invalid", f"its unit.json describes another unit ({changed})")
        video = self.video_path(key)
        if not video.is_file():
            return UnitCheck(None, "invalid", "unit.json is there but video.mp4 is not")
        if video.stat().st_size != row.get("video_bytes") or sha256_file(video) != row.get("video_sha256"):
            return UnitCheck(
                None, "invalid", "video.mp4 does not match the sha256 recorded when it was generated (changed since)"
            )
        return UnitCheck(row, "done", "")

    def done_record(self, unit: UnitKey) -> dict[str, Any] | None:
        """The manifest row if the unit is complete (row and video exist and agree), else None."""
        return self.inspect(unit).row

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
        _remove_quietly(self.failure_path(key))

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

"""Read a run directory written by the harness (``<out>/<suite>/<run-id>/``) for reports and regression checks.

Only files are read, never the code that wrote them: ``results/aggregate.json`` (required), ``results/clips.jsonl``
and ``results/videos.jsonl`` (drift curves, per-prompt values) and ``manifest.jsonl`` (per-unit timings,
attention length, prompts, videos). See :mod:`deepforcing.harness.store` for the layout and
:mod:`deepforcing.harness.results` for the files.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError

log = logging.getLogger(__name__)

#: Schema versions of the result files this module reads.
SUPPORTED_SCHEMA_VERSIONS = (1,)

_NO_RESULTS_HINT = "give a run directory <out>/<suite>/<run-id> of `deepforcing-eval run --suite NAME` (or `score`)"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = "re-run `deepforcing-eval score` to rewrite it"
            raise UserError(f"{path}:{i}: not JSON ({exc.msg})", hint) from exc
        if obj.get("record") != "header":
            rows.append(obj)
    return rows


def resolve_run_dir(path: str | Path) -> Path:
    """The run root for a user-given path: the run root itself, its ``results/`` or ``aggregate.json``.

    A suite directory holding exactly one run with results (``runs/smoke``) is accepted too.

    Raises:
        UserError: No results there (with the runs found below it, if any).
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"run directory not found: {p}", _NO_RESULTS_HINT)
    if p.is_file():
        if p.name == "aggregate.json" and p.parent.name == "results":
            return p.parent.parent
        raise UserError(f"{p} is a file, not a run directory", _NO_RESULTS_HINT)
    if p.name == "results" and (p / "aggregate.json").is_file():
        return p.parent
    if (p / "results" / "aggregate.json").is_file():
        return p
    found = sorted(a.parent.parent for a in p.glob("*/results/aggregate.json"))
    found += sorted(a.parent.parent for a in p.glob("*/*/results/aggregate.json"))
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(str(f) for f in found[:6]) + (" …" if len(found) > 6 else "")
        raise UserError(f"{p} holds {len(found)} runs", f"name one of them: {listed}")
    hint = _NO_RESULTS_HINT
    if (p / "units").is_dir() or (p / "run.json").is_file():
        hint = f"the run has no results yet; score it: deepforcing-eval score --suite <suite> --out {p.parent.parent}"
    raise UserError(f"no results in {p} (results/aggregate.json is missing)", hint)


@dataclass(frozen=True, eq=False)
class Run:
    """One run's result files (compared and hashed by identity).

    Attributes:
        root: The run directory ``<out>/<suite>/<run-id>``.
        aggregate: ``results/aggregate.json``.
    """

    root: Path
    aggregate: dict[str, Any]

    @property
    def suite(self) -> str:
        """Suite name."""
        return str(self.aggregate.get("suite", "?"))

    @property
    def run_id(self) -> str:
        """Run id."""
        return str(self.aggregate.get("run_id", self.root.name))

    @property
    def name(self) -> str:
        """``<suite>/<run-id>``."""
        return f"{self.suite}/{self.run_id}"

    @property
    def methods(self) -> list[str]:
        """Methods in suite order (those with results)."""
        order = list((self.aggregate.get("suite_config") or {}).get("methods") or [])
        res = list(self.aggregate.get("results") or {})
        return [m for m in order if m in res] + [m for m in res if m not in order]

    @property
    def suite_config(self) -> dict[str, Any]:
        """The resolved suite (``suite_config``)."""
        return dict(self.aggregate.get("suite_config") or {})

    @property
    def seconds(self) -> float | None:
        """Video length in seconds: ``1 + 4 (F - 1)`` decoded frames at 16 fps for F latent frames."""
        frames = self.suite_config.get("num_latent_frames")
        return (1 + 4 * (frames - 1)) / 16 if frames else None

    def results(self, method: str) -> dict[str, dict[str, Any]]:
        """``results[method]``: metric key -> entry (value, n_videos, higher_is_better, ...)."""
        return dict((self.aggregate.get("results") or {}).get(method) or {})

    def timings(self, method: str) -> dict[str, Any]:
        """``timings[method]`` (machine-dependent)."""
        return dict((self.aggregate.get("timings") or {}).get(method) or {})

    def config_hash(self, method: str) -> str | None:
        """The method's config hash."""
        return ((self.aggregate.get("methods") or {}).get(method) or {}).get("config_hash")

    def value(self, method: str, key: str) -> float | None:
        """A result value or a ``timing.<field>`` value (None when absent or not finite)."""
        if key.startswith("timing."):
            return timing_value(self.timings(method), key)
        v = self.results(method).get(key, {}).get("value")
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    @functools.cached_property
    def clips(self) -> list[dict[str, Any]]:
        """Rows of ``results/clips.jsonl`` (empty if the file is missing)."""
        path = self.root / "results" / "clips.jsonl"
        return _read_jsonl(path) if path.is_file() else []

    @functools.cached_property
    def videos(self) -> list[dict[str, Any]]:
        """Rows of ``results/videos.jsonl`` (per-video values and drift summaries)."""
        path = self.root / "results" / "videos.jsonl"
        return _read_jsonl(path) if path.is_file() else []

    @functools.cached_property
    def units(self) -> list[dict[str, Any]]:
        """Rows of ``manifest.jsonl``: every done unit (timings, attended frames, prompt, video)."""
        path = self.root / "manifest.jsonl"
        return _read_jsonl(path) if path.is_file() else []

    def video_path(self, unit_key: str) -> Path:
        """The mp4 of a unit."""
        return self.root / "units" / unit_key / "video.mp4"


def timing_value(timings: dict[str, Any], key: str) -> float | None:
    """``timing.<field>`` of a method's timings; ``*_mib_*`` fields are derived from the ``*_bytes_*`` ones."""
    field = key.removeprefix("timing.")
    if "_mib_" in field:
        raw = timings.get(field.replace("_mib_", "_bytes_"))
        return raw / 2**20 if isinstance(raw, int | float) else None
    v = timings.get(field)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def load_run(path: str | Path) -> Run:
    """Load a run's aggregate (other files are read on first use).

    Args:
        path: Run directory, its ``results/`` folder or its ``aggregate.json``.

    Raises:
        UserError: Not a run, unreadable or from an unsupported schema version.
    """
    root = resolve_run_dir(path)
    agg_path = root / "results" / "aggregate.json"
    try:
        aggregate = json.loads(agg_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {agg_path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{agg_path} is not valid JSON ({exc.msg})", "re-run `deepforcing-eval score`") from exc
    if not isinstance(aggregate, dict) or aggregate.get("record") != "aggregate":
        raise UserError(f"{agg_path} is not an aggregate written by the harness")
    version = aggregate.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise UserError(
            f"{agg_path} has schema_version {version!r}; this version reads {list(SUPPORTED_SCHEMA_VERSIONS)}",
            "re-score the run with this version (`deepforcing-eval score --suite ...`)",
        )
    if not aggregate.get("results"):
        raise UserError(f"{agg_path} has no results (nothing was scored)", _NO_RESULTS_HINT)
    log.debug("loaded run %s from %s", aggregate.get("run_id"), root)
    return Run(root=root, aggregate=aggregate)


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Load several runs; the same run given twice is an error."""
    runs = [load_run(p) for p in paths]
    seen: dict[Path, int] = {}
    for i, r in enumerate(runs):
        key = r.root.resolve()
        if key in seen:
            raise UserError(f"run {r.root} is given twice (arguments {seen[key] + 1} and {i + 1})")
        seen[key] = i
    return runs

"""Results: per-clip rows, per-video rows and one aggregate, computed on rank 0 from files only.

Aggregation is declared once per metric (its class attribute ``aggregation``, see
:mod:`deepforcing.metrics.aggregate`) and applied here to rows read back from the unit files, sorted by
content keys; never inside a shard. Drift summaries (:mod:`deepforcing.metrics.drift`) are per video, from a
metric's clip series, and are averaged over videos (:data:`DRIFT_AGGREGATION`).

Files (each starts with the schema version and the provenance; see :mod:`deepforcing.harness.store`):

* ``results/clips.jsonl`` — one row per (method, video, metric id, clip).
* ``results/videos.jsonl`` — one row per (method, video, metric id) and per (method, video, drift summary).
* ``results/aggregate.json`` — ``results[method][metric]`` with ``n_videos``, ``n_clips`` and direction;
  ``n_samples``; ``timings`` (FPS, per-chunk latency, peak memory); configs and weights hashes; provenance.
* ``results/aggregate.csv`` — the same numbers as a tidy table (``#`` comment lines hold schema + provenance).
* ``results/aggregate.parquet`` — the tidy table with the header in the schema metadata, when ``pyarrow`` is
  installed (optional: not a dependency).

Only the ``results`` and ``n_samples`` parts and the rows are a function of the videos; ``timings`` and
``provenance`` describe the machine and differ from run to run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepforcing import model_kinds
from deepforcing.harness.plan import WorkPlan
from deepforcing.harness.scoring import (
    FVD,
    MetricPlan,
    fvd_metric_id,
    fvd_set_metric_id,
    load_cached_rows,
    load_failure,
    load_fvd_stats,
    metrics_for,
)
from deepforcing.harness.store import (
    SCHEMA_VERSION,
    RunStore,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    changed_fields,
    clean_json,
    dumps,
    read_jsonl,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftAggregation:
    """Declared aggregation of drift summaries: per video from clip rows, then the mean over videos.

    Attributes:
        video_to_suite: Only ``mean`` (of the videos where the summary is defined).
        higher_is_better: Drift is better when smaller.
    """

    video_to_suite: str = "mean"
    higher_is_better: bool = False


DRIFT_AGGREGATION = DriftAggregation()


def drift_key(drift_id: str, of: str) -> str:
    """Result column of a drift summary of a metric id: ``<drift id>[<metric id>]``."""
    return f"{drift_id}[{of}]"


def _rows_from_json(rows: list[dict[str, Any]]):
    from deepforcing.metrics.rows import ClipRow, VideoErrorRow

    out = []
    for r in rows:
        if r.get("error"):
            out.append(VideoErrorRow(r["metric"], r["video_id"], r["reason"], r.get("prompt_id")))
        else:
            out.append(ClipRow.from_json(r))
    return out


@dataclass(frozen=True)
class UnitProblem:
    """A work item that is not fully scored: what failed or is missing, where, and why.

    Attributes:
        method: Method name.
        prompt_id: Prompt id.
        seed: Seed.
        unit_key: The unit's content key (``units/<unit_key>/``).
        state: ``failed`` (it was tried and did not work) or ``missing`` (not done yet).
        stage: ``generate``, ``video`` (the files do not agree) or ``score``.
        metric: The metric (stage ``score``), else None.
        reason: One line: why.
    """

    method: str
    prompt_id: str
    seed: int
    unit_key: str
    state: str
    stage: str
    metric: str | None
    reason: str

    def line(self) -> str:
        """One line for people: ``deep-forcing toy-001 seed 0: score failed (fvd): reason``."""
        what = f"{self.stage} {self.state}" + (f" ({self.metric})" if self.metric else "")
        return f"{self.method} {self.prompt_id} seed {self.seed}: {what}: {self.reason}"


class ProblemLines:
    """``failed`` and ``missing`` lines of an object with a ``problems`` list of :class:`UnitProblem`."""

    problems: list[UnitProblem]

    @property
    def failed(self) -> list[str]:
        """One line per failure."""
        return [p.line() for p in self.problems if p.state == "failed"]

    @property
    def missing(self) -> list[str]:
        """One line per missing piece."""
        return [p.line() for p in self.problems if p.state == "missing"]


@dataclass
class ResultsSummary(ProblemLines):
    """What :func:`write_results` computed (for the CLI's summary table).

    Attributes:
        aggregate: The aggregate document.
        files: Result file name -> path.
        problems: Every work item that failed or is missing, one entry per (unit, stage, metric); the counts in
            ``aggregate["n_samples"]``, the lists below, the CSV and the report all come from it.
    """

    aggregate: dict[str, Any]
    files: dict[str, str]
    problems: list[UnitProblem] = field(default_factory=list)


def write_results(
    plan: WorkPlan,
    store: RunStore,
    metrics: dict[str, MetricPlan],
    records: dict[str, dict[str, Any]],
    provenance: dict[str, Any],
) -> ResultsSummary:
    """Read every unit's rows, aggregate, and write the result files (rank 0 only).

    Args:
        plan: The work plan.
        store: The run store.
        metrics: Metric plans by name (which cached rows to read).
        records: Unit key -> manifest row of every done unit.
        provenance: Provenance of this invocation.

    Returns:
        The aggregate and the paths written.
    """
    from deepforcing.metrics import get_metric
    from deepforcing.metrics.aggregate import aggregate, aggregation_for_metric_id
    from deepforcing.metrics.drift import drift_summaries, series_from_rows
    from deepforcing.metrics.rows import ClipRow

    suite = plan.suite
    header = {
        "suite": suite.name,
        "suite_version": suite.version,
        "suite_hash": suite.config_hash,
        "run_id": store.run_id,
        "provenance": provenance,
    }
    base = {"suite": suite.name, "suite_hash": suite.config_hash, "run_id": store.run_id}
    aggregations = {n: get_metric(n).aggregation for n in metrics if n != FVD}

    clip_out: list[dict[str, Any]] = []
    video_out: list[dict[str, Any]] = []
    per_video: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)  # method -> result key -> unit -> value
    set_stats: dict[str, Any] = {}  # method -> merged I3D statistics of all its clips (set-level FVD)
    item_of = {it.unit.key: it for it in plan.items}
    stats_options = STATS_OPTIONS
    results: dict[str, dict[str, Any]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    problems: list[UnitProblem] = []
    previous = _previous_units(store)
    for method in plan.methods:
        items = [it for it in plan.items if it.method == method]
        rows_by_metric: dict[str, list] = defaultdict(list)
        fvd_stats: list[tuple[str, Any]] = []
        ids_by_metric: dict[str, set[str]] = defaultdict(set)
        for item in items:
            key = item.unit.key
            rec = records.get(key)

            problem = _reporter(problems, method, item)

            if rec is None:
                _generation_problem(problem, item, store, previous)
                continue
            meta = {
                **base,
                "method": method,
                "method_config_hash": item.unit.method_config_hash,
                "unit_key": key,
                "prompt_id": item.prompt.prompt_id,
                "seed": item.seed,
                "video_sha256": rec["video_sha256"],
            }
            for name, mp in metrics_for(item, metrics).items():
                if name == FVD:
                    stats = load_fvd_stats(store, key, mp, rec["video_sha256"])
                    if stats is None:
                        _not_scored(problem, store, key, mp, rec["video_sha256"])
                    else:
                        fvd_stats.append((key, stats))
                        if isinstance(stats, str):
                            problem("failed", "score", stats, name)
                    continue
                raw = load_cached_rows(store, key, mp, rec["video_sha256"])
                if raw is None:
                    _not_scored(problem, store, key, mp, rec["video_sha256"])
                    continue
                rows = _rows_from_json(raw)
                rows_by_metric[name].extend(rows)
                errors = sorted({r.reason for r in rows if not isinstance(r, ClipRow)})
                if errors:
                    problem("failed", "score", "; ".join(errors), name)
                for r in sorted(rows, key=lambda r: (r.metric, getattr(r, "clip_index", -1))):
                    ids_by_metric[name].add(r.metric)
                    kind = "clip" if isinstance(r, ClipRow) else "clip_error"
                    clip_out.append({"record": kind, "schema_version": SCHEMA_VERSION, **meta, **r.to_json()})
        n_samples[method] = _counts(items, records, problems, method)

        res: dict[str, Any] = {}
        if FVD in metrics:
            res[fvd_metric_id(suite.fvd_window_s)] = _temporal_fvd(fvd_stats)
            set_stats[method] = _merged_all(fvd_stats)
        for name in metrics:
            if name == FVD or name not in metrics_for(items[0], metrics):
                continue
            spec = aggregations[name]
            for mid in sorted(ids_by_metric[name]):
                agg = aggregate(rows_by_metric[name], mid, aggregation_for_metric_id(spec, mid))
                per_video[method][mid] = agg.per_video
                res[mid] = {
                    "value": agg.value,
                    "n_videos": agg.n_videos,
                    "n_clips": agg.n_clips,
                    "higher_is_better": spec.higher_is_better,
                    "metric": name,
                    "errors": agg.errors,
                    "ci": _ci(agg.per_video, item_of, stats_options),
                }
                for item in items:
                    key = item.unit.key
                    if key in agg.per_video:
                        video_out.append(
                            {
                                "record": "video",
                                "schema_version": SCHEMA_VERSION,
                                **base,
                                "method": method,
                                "unit_key": key,
                                "prompt_id": item.prompt.prompt_id,
                                "seed": item.seed,
                                "metric": mid,
                                "value": agg.per_video[key],
                            }
                        )
        for name in suite.drift:
            if name not in metrics:
                continue
            for mid in sorted(ids_by_metric[name]):
                per_drift: dict[str, list[float]] = defaultdict(list)
                undefined: dict[str, int] = defaultdict(int)
                drift_values: dict[str, dict[str, float]] = defaultdict(dict)
                for item in items:
                    key = item.unit.key
                    try:
                        series = series_from_rows(rows_by_metric[name], mid, key)
                    except ValueError:
                        continue
                    for did, value in drift_summaries(series).items():
                        if math.isfinite(value):
                            drift_values[did][key] = value
                        video_out.append(
                            {
                                "record": "drift",
                                "schema_version": SCHEMA_VERSION,
                                **base,
                                "method": method,
                                "unit_key": key,
                                "prompt_id": item.prompt.prompt_id,
                                "seed": item.seed,
                                "metric": did,
                                "of": mid,
                                "value": value,
                            }
                        )
                        if math.isfinite(value):
                            per_drift[did].append(value)
                        else:
                            undefined[did] += 1
                for did in sorted(set(per_drift) | set(undefined)):
                    values = per_drift.get(did, [])
                    per_video[method][drift_key(did, mid)] = drift_values[did]
                    res[drift_key(did, mid)] = {
                        "value": math.fsum(values) / len(values) if values else math.nan,
                        "n_videos": len(values),
                        "n_undefined": undefined.get(did, 0),
                        "higher_is_better": None if did.startswith("drift.slope") else False,
                        "metric": f"drift:{name}",
                        "of": mid,
                        "ci": _ci(drift_values[did], item_of, stats_options),
                    }
        results[method] = res

    set_fvd = _set_fvd(plan, set_stats, results)
    timings = _timings(plan, records)
    configs = {}
    for method, m in plan.method_configs().items():
        configs[method] = {
            "config_hash": m.config_hash,
            "config": m.to_dict(),
            "weights_id": plan.weights[method].weights_id if plan.weights and method in plan.weights else None,
            "weights": plan.weights[method].files if plan.weights and method in plan.weights else None,
        }
    prompts_hash = _prompts_hash(plan)
    aggregate_doc = {
        "record": "aggregate",
        "schema_version": SCHEMA_VERSION,
        **header,
        "suite_config": suite.to_dict(),
        "model": {"name": suite.model, "description": model_kinds.get(suite.model).description},
        "prompts": {"count": len(plan.prompts), "sha256": prompts_hash, "ids": [p.prompt_id for p in plan.prompts]},
        "metrics": {n: {"fingerprint": mp.fingerprint, "weights": mp.weights} for n, mp in metrics.items()},
        "methods": configs,
        "results": results,
        "n_samples": n_samples,
        "problems": [asdict(p) for p in problems],
        "statistics": {
            "interval": f"{stats_options['confidence_level']:.0%} bootstrap over prompts (videos of a prompt kept "
            "together), percentile method",
            **stats_options,
        },
        "paired": _paired(plan.methods, per_video, item_of, results, stats_options),
        "set_fvd": set_fvd,
        "timings": timings,
    }

    out = store.results_dir
    files = {
        "clips.jsonl": out / "clips.jsonl",
        "videos.jsonl": out / "videos.jsonl",
        "aggregate.json": out / "aggregate.json",
        "aggregate.csv": out / "aggregate.csv",
        "problems.csv": out / "problems.csv",
        "provenance.json": out / "provenance.json",
    }
    atomic_write_jsonl(files["clips.jsonl"], {**header, "kind": "clips"}, clip_out)
    atomic_write_jsonl(files["videos.jsonl"], {**header, "kind": "videos"}, video_out)
    atomic_write_json(files["aggregate.json"], aggregate_doc)
    tidy = _tidy(results, n_samples, problems)
    atomic_write_text(files["aggregate.csv"], _csv(tidy, TIDY_COLUMNS))
    atomic_write_text(files["problems.csv"], _csv([asdict(p) for p in problems], PROBLEM_COLUMNS))
    atomic_write_json(files["provenance.json"], {"record": "provenance", "schema_version": SCHEMA_VERSION, **header})
    parquet = _parquet(header, tidy)
    if parquet is not None:
        files["aggregate.parquet"] = out / "aggregate.parquet"
        atomic_write_bytes(files["aggregate.parquet"], parquet)
    _write_manifest(plan, store, records, header)
    return ResultsSummary(clean_json(aggregate_doc), {k: str(v) for k, v in files.items()}, problems)


# --------------------------------------------------------------------------------------------- accounting
def _reporter(problems: list[UnitProblem], method: str, item):
    """``add(state, stage, reason, metric=None)`` appending a :class:`UnitProblem` of one work item."""

    def add(state: str, stage: str, reason: str, metric: str | None = None) -> None:
        problems.append(
            UnitProblem(method, item.prompt.prompt_id, item.seed, item.unit.key, state, stage, metric, reason)
        )

    return add


def _generation_problem(problem, item, store: RunStore, previous) -> None:
    """Why a work item has no done unit: its generation failed, its files disagree, or it was never generated."""
    check = store.inspect(item.unit)
    if check.state == "absent":
        problem("missing", "generate", "not generated" + _changed_since(previous, item, store))
    elif check.state == "failed":
        problem("failed", "generate", check.reason + "; `run` tries it again")
    else:
        problem(
            "failed", "video", check.reason + f"; its scores are not used; `run` generates units/{item.unit.key} again"
        )


#: Columns of ``index.csv`` at the run root: one row per work item (see docs/results.md).
INDEX_COLUMNS = ("method", "prompt_id", "seed", "num_latent_frames", "status", "unit_key", "video", "prompt")


def write_index(plan: WorkPlan, store: RunStore, problems: list[UnitProblem]) -> Path:
    """``index.csv`` (every work item: method, prompt, seed, frames, status, unit folder, video) and ``videos/``.

    ``videos/<method>/<prompt id>__s<seed>.mp4`` are relative links to the content-addressed units, so that
    "the deep-forcing video of prompt 3" is found with ``ls`` (where the file system has no links, the index alone
    is written). Only links are ever removed from ``videos/``.
    """
    states: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for p in problems:
        states[(p.method, p.prompt_id, p.seed)].add(p.state)
    rows = []
    links = store.root / "videos"
    for old in links.rglob("*") if links.is_dir() else ():
        if old.is_symlink():
            old.unlink()
    for item in plan.items:
        st = states[(item.method, item.prompt.prompt_id, item.seed)]
        status = "failed" if "failed" in st else "missing" if st else "ok"
        video = store.video_path(item.unit.key)
        link = links / _safe(item.method) / f"{_safe(item.prompt.prompt_id)}__s{item.seed}.mp4"
        if video.is_file():
            try:
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(os.path.relpath(video, link.parent))
            except OSError as exc:  # no links on this file system: the index is enough
                log.debug("no link %s: %s", link, exc)
        rows.append(
            {
                "method": item.method,
                "prompt_id": item.prompt.prompt_id,
                "seed": item.seed,
                "num_latent_frames": item.unit.num_latent_frames,
                "status": status,
                "unit_key": item.unit.key,
                "video": str(video.relative_to(store.root)) if video.is_file() else None,
                "prompt": item.prompt.text,
            }
        )
    path = store.root / "index.csv"
    atomic_write_text(path, _csv(rows, INDEX_COLUMNS))
    return path


def _safe(name: str) -> str:
    """A path component for a method or prompt id (separators replaced)."""
    return name.replace(os.sep, "_").replace("/", "_") or "_"


def generation_problems(plan: WorkPlan, store: RunStore, records: dict[str, dict[str, Any]]) -> list[UnitProblem]:
    """The problems of the generation stage alone (a run without scoring), as :func:`write_results` finds them."""
    previous = _previous_units(store)
    problems: list[UnitProblem] = []
    for item in plan.items:
        if item.unit.key not in records:
            _generation_problem(_reporter(problems, item.method, item), item, store, previous)
    return problems


def _not_scored(problem, store: RunStore, key: str, mp: MetricPlan, video_sha256: str) -> None:
    """A unit without this metric's scores: failed (the metric raised on it) or missing (not scored yet)."""
    reason = load_failure(store, key, mp, video_sha256)
    if reason is not None:
        problem("failed", "score", reason, mp.name)
    else:
        problem("missing", "score", "not scored yet", mp.name)


def _counts(items, records: dict[str, dict[str, Any]], problems: list[UnitProblem], method: str) -> dict[str, int]:
    """Per-method unit counts, from the same problem list that the summary, CSV and report show."""
    states: dict[tuple[str, int], set[str]] = defaultdict(set)
    for p in problems:
        if p.method == method:
            states[(p.prompt_id, p.seed)].add(p.state)
    failed = sum(1 for it in items if "failed" in states[(it.prompt.prompt_id, it.seed)])
    missing = sum(1 for it in items if states[(it.prompt.prompt_id, it.seed)] == {"missing"})
    return {
        "expected": len(items),
        "generated": sum(1 for it in items if it.unit.key in records),
        "scored": sum(1 for it in items if not states[(it.prompt.prompt_id, it.seed)]),
        "failed": failed,
        "missing": missing,
    }


def _previous_units(store: RunStore) -> dict[tuple[str, str, int], tuple[str, dict[str, Any]]]:
    """(method, prompt id, seed) -> (unit key, unit config) of the run's last manifest (before this one)."""
    path = store.root / "manifest.jsonl"
    out: dict[tuple[str, str, int], tuple[str, dict[str, Any]]] = {}
    if not path.is_file():
        return out
    try:
        _, rows = read_jsonl(path)
    except (OSError, ValueError):
        return out
    for row in rows:
        unit = row.get("unit") or {}
        for method in row.get("used_by") or [row.get("method")]:
            out[(method, unit.get("prompt_id"), unit.get("seed"))] = (row.get("unit_key"), unit)
    return out


def _changed_since(previous, item, store: RunStore) -> str:
    """Why an item has no video although the run had one for it: the unit config changed (which fields)."""
    old = previous.get((item.method, item.prompt.prompt_id, item.seed))
    if old is None or old[0] == item.unit.key or not store.unit_dir(old[0]).is_dir():
        return ""
    return (
        f" (its unit config changed since units/{old[0]} was made: {changed_fields(old[1], asdict(item.unit))}; "
        "that unit is kept as it is)"
    )


# --------------------------------------------------------------------------------------------- statistics
#: Settings of every interval and paired test in the results (recorded in aggregate.json ``statistics``).
STATS_OPTIONS: dict[str, Any] = {"confidence_level": 0.95, "n_resamples": 10_000, "seed": 0, "method": "percentile"}


def _ci(per_video: dict[str, float], item_of: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
    """Bootstrap interval of a result over prompts (see :mod:`deepforcing.stats`), or None without videos."""
    from deepforcing import stats

    values = {k: v for k, v in per_video.items() if v is not None and math.isfinite(v)}
    if not values:
        return None
    obs = stats.observations(
        values, {k: item_of[k].prompt.prompt_id for k in values}, {k: str(item_of[k].seed) for k in values}
    )
    return stats.bootstrap_ci(obs, **options).to_dict()


def _paired(
    methods: tuple[str, ...],
    per_video: dict[str, dict[str, dict[str, float]]],
    item_of: dict[str, Any],
    results: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Paired comparisons of every later method against every earlier one, per shared result key.

    Each holds the mean paired difference, its bootstrap interval over prompts and the Wilcoxon signed-rank p
    (``"<a> vs <b>"`` -> result key -> numbers).
    """
    from deepforcing import stats

    def obs(method: str, key: str):
        values = {k: v for k, v in per_video[method].get(key, {}).items() if v is not None and math.isfinite(v)}
        # a unit shared by two methods (same config) is one video: pair on prompt and seed, not on unit key
        return stats.observations(
            values, {k: item_of[k].prompt.prompt_id for k in values}, {k: str(item_of[k].seed) for k in values}
        )

    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(methods):
        for b in methods[:i]:
            pair: dict[str, Any] = {}
            for key in sorted(set(per_video.get(a, {})) & set(per_video.get(b, {}))):
                result = stats.paired_comparison(obs(a, key), obs(b, key), **options)
                if result.n_pairs:
                    pair[key] = {**result.to_dict(), "higher_is_better": results[a][key]["higher_is_better"]}
            if pair:
                out[f"{a} vs {b}"] = pair
    return out


def _merged_all(per_video: list[tuple[str, Any]]):
    """The method's I3D statistics over every clip of every video (None without any), merged in plan order."""
    stats = [s[2] for _, s in per_video if not isinstance(s, str)]
    if not stats:
        return None
    merged = stats[0]
    for s in stats[1:]:
        merged = merged.merge(s)
    return merged


def _set_fvd(plan: WorkPlan, set_stats: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Set-level FVD between every two methods (``"<a> vs <b>"``), and of every method against a reference set.

    Against a reference (real videos imported with ``--fvd-reference``) the value is also a result column of the
    method (:func:`fvd_set_metric_id`), so it is reported, exported and guarded like any other.
    """
    from deepforcing.metrics.frechet import fid_from_stats

    def fvd(a, b) -> dict[str, Any]:
        ok = a is not None and b is not None and a.n >= 2 and b.n >= 2
        return {
            "value": fid_from_stats(a, b, "n-1") if ok else math.nan,
            "n_clips": [a.n if a is not None else 0, b.n if b is not None else 0],
            "higher_is_better": False,
            "metric": FVD,
        }

    names = [m for m in plan.methods if m in set_stats]
    refs = [m for m in names if getattr(plan.method_configs().get(m), "role", None) == "reference"]
    pairs = {}
    for i, a in enumerate(names):
        for b in names[:i]:
            pairs[f"{a} vs {b}"] = {**fvd(set_stats[a], set_stats[b]), "id": fvd_set_metric_id(b)}
    for ref in refs:
        for m in names:
            if m != ref:
                entry = fvd(set_stats[m], set_stats[ref])
                results[m][fvd_set_metric_id(ref)] = {**entry, "n_videos": None}
    return pairs


def _temporal_fvd(per_video: list[tuple[str, Any]]) -> dict[str, Any]:
    """Fréchet distance between the merged first-window and last-window statistics (plan order)."""
    from deepforcing.metrics.frechet import fid_from_stats

    errors = {key: s for key, s in per_video if isinstance(s, str)}
    stats = [s[:2] for _, s in per_video if not isinstance(s, str)]
    out: dict[str, Any] = {
        "value": math.nan,
        "n_videos": len(stats),
        "higher_is_better": False,
        "metric": FVD,
        "errors": errors,
    }
    if not stats:
        return out
    ref, last = stats[0]
    for r, e in stats[1:]:
        ref, last = ref.merge(r), last.merge(e)
    out.update(n_clips_ref=ref.n, n_clips_eval=last.n)
    if ref.n >= 2 and last.n >= 2:
        out["value"] = fid_from_stats(ref, last, "n-1")
    else:
        out["errors"] = {**errors, "*": f"FVD needs at least 2 clips per side, got {ref.n} and {last.n}"}
    return out


def _prompts_hash(plan: WorkPlan) -> str:
    import hashlib

    blob = json.dumps([[p.prompt_id, p.sha256] for p in plan.prompts])
    return hashlib.sha256(blob.encode()).hexdigest()


def _timings(plan: WorkPlan, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for method in plan.suite.methods:
        recs = [
            records[it.unit.key]
            for it in plan.items
            if it.method == method and it.unit.key in records and "timings" in records[it.unit.key]
        ]
        if not recs:
            continue
        t = [r["timings"] for r in recs]
        peaks = [x["peak_memory_bytes"] for x in t if x.get("peak_memory_bytes") is not None]
        out[method] = {
            "n_videos": len(recs),
            "fps_mean": statistics.fmean(x["fps"] for x in t),
            "chunk_latency_ms_mean": statistics.fmean(x["chunk_latency_ms_mean"] for x in t),
            "chunk_latency_ms_min": min(x["chunk_latency_ms_min"] for x in t),
            "chunk_latency_ms_max": max(x["chunk_latency_ms_max"] for x in t),
            "sampling_seconds_total": math.fsum(x["sampling_seconds"] for x in t),
            "decode_seconds_total": math.fsum(x["decode_seconds"] for x in t),
            "peak_memory_bytes_max": max(peaks) if peaks else None,
            "kv_cache_bytes_max": max(x["kv_cache_bytes"] for x in t),
            "devices": sorted({r["device"].get("name", "?") for r in recs}),
        }
    return out


#: Columns of ``results/aggregate.csv`` (one row per method and result key; see docs/results.md).
TIDY_COLUMNS = (
    "method", "metric", "value", "ci_low", "ci_high", "n_prompts", "n_videos", "n_clips", "failed_videos",
    "expected_videos", "higher_is_better",
)  # fmt: skip
#: Columns of ``results/problems.csv`` (one row per failed or missing piece of a work item).
PROBLEM_COLUMNS = ("method", "prompt_id", "seed", "unit_key", "state", "stage", "metric", "reason")


def _tidy(
    results: dict[str, dict[str, Any]], n_samples: dict[str, dict[str, int]], problems: list[UnitProblem]
) -> list[dict[str, Any]]:
    failed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for p in problems:
        if p.state == "failed" and p.metric is not None:
            failed[(p.method, p.metric)].add(p.unit_key)
    rows = []
    for method, res in results.items():
        for metric, r in res.items():
            ci = r.get("ci") or {}
            rows.append(
                {
                    "method": method,
                    "metric": metric,
                    "value": r["value"] if r["value"] is None or math.isfinite(r["value"]) else None,
                    "ci_low": ci.get("ci_low"),
                    "ci_high": ci.get("ci_high"),
                    "n_prompts": ci.get("n"),
                    "n_videos": r["n_videos"],
                    "n_clips": r.get("n_clips"),
                    "failed_videos": len(failed[(method, r.get("metric", ""))]),
                    "expected_videos": n_samples[method]["expected"],
                    "higher_is_better": r["higher_is_better"],
                }
            )
    return rows


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """A plain CSV (a header line, then rows; empty cell = none) that ``pandas.read_csv`` loads as is."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else repr(r[k]) if isinstance(r[k], float) else r[k]) for k in columns})
    return buf.getvalue()


def _parquet(header: dict[str, Any], rows: list[dict[str, Any]]) -> bytes | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.debug("pyarrow not installed: no aggregate.parquet (JSON and CSV are written)")
        return None
    table = pa.Table.from_pylist(rows)
    meta = {b"deepforcing": dumps({"schema_version": SCHEMA_VERSION, **header}).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _write_manifest(plan: WorkPlan, store: RunStore, records: dict[str, dict[str, Any]], header: dict[str, Any]):
    methods_of: dict[str, list[str]] = defaultdict(list)
    for it in plan.items:
        if it.method not in methods_of[it.unit.key]:
            methods_of[it.unit.key].append(it.method)
    rows = []
    for item in plan.units():
        rec = records.get(item.unit.key)
        if rec is not None:
            rows.append({**rec, "record": "unit", "used_by": methods_of[item.unit.key]})
    atomic_write_jsonl(store.root / "manifest.jsonl", {**header, "kind": "manifest"}, rows)

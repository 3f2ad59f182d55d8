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
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from deepforcing.harness.plan import WorkPlan
from deepforcing.harness.scoring import FVD, MetricPlan, fvd_metric_id, load_cached_rows, load_fvd_stats
from deepforcing.harness.store import (
    SCHEMA_VERSION,
    RunStore,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    clean_json,
    dumps,
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


@dataclass
class ResultsSummary:
    """What :func:`write_results` computed (for the CLI's summary table).

    Attributes:
        aggregate: The aggregate document.
        files: Result file name -> path.
        missing: Work items without a done unit or without scores.
    """

    aggregate: dict[str, Any]
    files: dict[str, str]
    missing: list[str]


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
    from deepforcing.metrics.aggregate import aggregate
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
    results: dict[str, dict[str, Any]] = {}
    n_samples: dict[str, dict[str, int]] = {}
    missing: list[str] = []
    for method in suite.methods:
        items = [it for it in plan.items if it.method == method]
        rows_by_metric: dict[str, list] = defaultdict(list)
        fvd_stats: list[tuple[str, Any]] = []
        ids_by_metric: dict[str, set[str]] = defaultdict(set)
        scored = set()
        for item in items:
            key = item.unit.key
            rec = records.get(key)
            if rec is None:
                missing.append(f"{method} {item.prompt.prompt_id} seed {item.seed}: no video")
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
            complete = True
            for name, mp in metrics.items():
                if name == FVD:
                    stats = load_fvd_stats(store, key, mp, rec["video_sha256"])
                    if stats is None:
                        missing.append(f"{method} {item.prompt.prompt_id} seed {item.seed}: no fvd statistics")
                        complete = False
                    else:
                        fvd_stats.append((key, stats))
                    continue
                raw = load_cached_rows(store, key, mp, rec["video_sha256"])
                if raw is None:
                    missing.append(f"{method} {item.prompt.prompt_id} seed {item.seed}: no {name} scores")
                    complete = False
                    continue
                rows = _rows_from_json(raw)
                rows_by_metric[name].extend(rows)
                for r in sorted(rows, key=lambda r: (r.metric, getattr(r, "clip_index", -1))):
                    ids_by_metric[name].add(r.metric)
                    kind = "clip" if isinstance(r, ClipRow) else "clip_error"
                    clip_out.append({"record": kind, "schema_version": SCHEMA_VERSION, **meta, **r.to_json()})
            if complete:
                scored.add(key)
        n_samples[method] = {
            "expected": len(items),
            "generated": sum(1 for it in items if it.unit.key in records),
            "scored": sum(1 for it in items if it.unit.key in scored),
        }

        res: dict[str, Any] = {}
        if FVD in metrics:
            res[fvd_metric_id(suite.fvd_window_s)] = _temporal_fvd(fvd_stats)
        for name in metrics:
            if name == FVD:
                continue
            spec = aggregations[name]
            for mid in sorted(ids_by_metric[name]):
                agg = aggregate(rows_by_metric[name], mid, spec)
                res[mid] = {
                    "value": agg.value,
                    "n_videos": agg.n_videos,
                    "n_clips": agg.n_clips,
                    "higher_is_better": spec.higher_is_better,
                    "metric": name,
                    "errors": agg.errors,
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
                for item in items:
                    key = item.unit.key
                    try:
                        series = series_from_rows(rows_by_metric[name], mid, key)
                    except ValueError:
                        continue
                    for did, value in drift_summaries(series).items():
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
                    res[drift_key(did, mid)] = {
                        "value": math.fsum(values) / len(values) if values else math.nan,
                        "n_videos": len(values),
                        "n_undefined": undefined.get(did, 0),
                        "higher_is_better": None if did.startswith("drift.slope") else False,
                        "metric": f"drift:{name}",
                        "of": mid,
                    }
        results[method] = res

    timings = _timings(plan, records)
    configs = {}
    for method, m in plan.method_configs().items():
        configs[method] = {
            "config_hash": m.config_hash,
            "config": m.to_dict(),
            "weights_id": plan.weights[method].weights_id if plan.weights else None,
            "weights": plan.weights[method].files if plan.weights else None,
        }
    prompts_hash = _prompts_hash(plan)
    aggregate_doc = {
        "record": "aggregate",
        "schema_version": SCHEMA_VERSION,
        **header,
        "suite_config": suite.to_dict(),
        "prompts": {"count": len(plan.prompts), "sha256": prompts_hash, "ids": [p.prompt_id for p in plan.prompts]},
        "metrics": {n: {"fingerprint": mp.fingerprint, "weights": mp.weights} for n, mp in metrics.items()},
        "methods": configs,
        "results": results,
        "n_samples": n_samples,
        "timings": timings,
    }

    out = store.results_dir
    files = {
        "clips.jsonl": out / "clips.jsonl",
        "videos.jsonl": out / "videos.jsonl",
        "aggregate.json": out / "aggregate.json",
        "aggregate.csv": out / "aggregate.csv",
    }
    atomic_write_jsonl(files["clips.jsonl"], {**header, "kind": "clips"}, clip_out)
    atomic_write_jsonl(files["videos.jsonl"], {**header, "kind": "videos"}, video_out)
    atomic_write_json(files["aggregate.json"], aggregate_doc)
    tidy = _tidy(results, n_samples)
    atomic_write_text(files["aggregate.csv"], _csv(header, tidy))
    parquet = _parquet(header, tidy)
    if parquet is not None:
        files["aggregate.parquet"] = out / "aggregate.parquet"
        atomic_write_bytes(files["aggregate.parquet"], parquet)
    _write_manifest(plan, store, records, header)
    return ResultsSummary(clean_json(aggregate_doc), {k: str(v) for k, v in files.items()}, missing)


def _temporal_fvd(per_video: list[tuple[str, Any]]) -> dict[str, Any]:
    """Fréchet distance between the merged first-window and last-window statistics (plan order)."""
    from deepforcing.metrics.frechet import fid_from_stats

    errors = {key: s for key, s in per_video if isinstance(s, str)}
    stats = [s for _, s in per_video if not isinstance(s, str)]
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
        recs = [records[it.unit.key] for it in plan.items if it.method == method and it.unit.key in records]
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


def _tidy(results: dict[str, dict[str, Any]], n_samples: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    rows = []
    for method, res in results.items():
        for metric, r in res.items():
            rows.append(
                {
                    "method": method,
                    "metric": metric,
                    "value": r["value"] if r["value"] is None or math.isfinite(r["value"]) else None,
                    "n_videos": r["n_videos"],
                    "n_clips": r.get("n_clips"),
                    "higher_is_better": r["higher_is_better"],
                    "expected_videos": n_samples[method]["expected"],
                }
            )
    return rows


def _csv(header: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    buf.write(f"# schema_version: {SCHEMA_VERSION}\n")
    for k, v in header.items():
        buf.write(f"# {k}: {dumps(v)}\n")
    cols = ["method", "metric", "value", "n_videos", "n_clips", "higher_is_better", "expected_videos"]
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else repr(r[k]) if isinstance(r[k], float) else r[k]) for k in cols})
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

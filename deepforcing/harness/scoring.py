"""Scoring stage: build the suite's metrics, score each done unit's video once, cache rows per metric.

Scores are cached per unit and metric in ``units/<key>/scores/<metric>-<fingerprint>.json``. The fingerprint
covers what can change a metric's rows: the metric's source code (its module, its package's modules and the
shared clip/row/decode code), the sha256 of its weight files, the clip protocol and the row schema. Changing a
metric therefore rescores (only that metric) and never regenerates a video; an unchanged metric is never
recomputed.

Metric construction lives here (:func:`build_metric`) because each metric class takes its own config with
weight paths; ``deepforcing.metrics`` exposes the classes and the weight table, not a factory. A metric that
the harness cannot build yet is reported before any compute.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError
from deepforcing.harness.distributed import DistContext
from deepforcing.harness.plan import WorkItem, WorkPlan, _load_sha_cache, _save_sha_cache, sha256_cached
from deepforcing.harness.progress import Progress
from deepforcing.harness.store import SCHEMA_VERSION, RunStore, atomic_write_json, clean_json

log = logging.getLogger(__name__)

#: Metrics built without weights (their class takes an optional config).
_NO_WEIGHTS = ("image_stats", "temporal_flickering")
#: Shared metric code whose change can alter every metric's rows.
_SHARED_SOURCES = ("base.py", "clips.py", "rows.py", "video_io.py", "identity.py", "aggregate.py")


def metric_weights_root(weights_dir: str | os.PathLike | None = None) -> Path:
    """Root of the metric weight files: ``--weights-dir``, ``$DEEPFORCING_WEIGHTS_DIR`` or ``<cache>/weights``."""
    from deepforcing.model.tiny import cache_root
    from deepforcing.weights import WEIGHTS_DIR_ENV

    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else cache_root() / "weights"


def _metric_module_file(name: str) -> Path:
    from deepforcing.metrics import METRICS

    module = METRICS[name].partition(":")[0]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise UserError(f"metric '{name}': module {module} not found")
    return Path(spec.origin)


def _source_files(name: str) -> list[Path]:
    """Source files whose change invalidates ``name``'s cached rows."""
    own = _metric_module_file(name)
    metrics_root = _metric_module_file("image_stats").parent
    files = {own}
    if own.parent != metrics_root:  # a metric package (e.g. vbench/): all of its modules
        files.update(own.parent.glob("*.py"))
    files.update(metrics_root / f for f in _SHARED_SOURCES if (metrics_root / f).is_file())
    if name not in _NO_WEIGHTS:
        files.update((metrics_root / "backbones").glob("*.py"))
    return sorted(files)


@dataclass(frozen=True)
class MetricPlan:
    """How one metric is scored in this run.

    Attributes:
        name: Registered metric name.
        fingerprint: 12 hex digits over code, weights and protocol.
        weights: Weight key -> sha256.
        weight_paths: Weight key -> path on this machine (not part of the fingerprint).
    """

    name: str
    fingerprint: str
    weights: dict[str, str] = field(default_factory=dict, hash=False)
    weight_paths: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def cache_name(self) -> str:
        """File name of the cached rows."""
        return f"{self.name}-{self.fingerprint}.json"


def check_buildable(names: tuple[str, ...]) -> None:
    """Fail (before compute) for metrics the harness cannot construct.

    Raises:
        UserError: Naming each such metric.
    """
    bad = [n for n in names if n not in _BUILDERS and n not in _NO_WEIGHTS]
    if bad:
        raise UserError(
            f"the harness cannot build metric(s) {', '.join(bad)} yet",
            "add a builder to deepforcing/harness/scoring.py::_BUILDERS (it maps weight files to the metric's "
            f"config); buildable now: {', '.join(sorted((*_BUILDERS, *_NO_WEIGHTS)))}",
        )


def plan_metrics(
    names: tuple[str, ...], clip_seconds: float, allow_short: bool, weights_dir: str | os.PathLike | None = None
) -> dict[str, MetricPlan]:
    """Fingerprint every metric of a suite; checks that each can be built and that its weights exist.

    Raises:
        UserError: A metric without a builder, or missing weight files (one error listing all of them).
    """
    from deepforcing.metrics.weights import check_metric_weights, weights_for

    check_buildable(names)
    root = metric_weights_root(weights_dir)
    paths = check_metric_weights(names, root)
    cache = _load_sha_cache()
    out = {}
    for name in names:
        keys = [w.key for w in weights_for([name])]
        shas = {k: sha256_cached(paths[k], cache) for k in keys}
        code = hashlib.sha256()
        for f in _source_files(name):
            code.update(f.name.encode() + b"\0" + f.read_bytes())
        blob = json.dumps(
            {
                "name": name,
                "code": code.hexdigest(),
                "weights": shas,
                "clip_seconds": clip_seconds,
                "allow_short": allow_short,
                "schema": SCHEMA_VERSION,
            },
            sort_keys=True,
        )
        out[name] = MetricPlan(
            name, hashlib.sha256(blob.encode()).hexdigest()[:12], shas, {k: str(paths[k]) for k in keys}
        )
    _save_sha_cache(cache)
    return out


def _build_subject(paths: dict[str, str]):
    from deepforcing.metrics.vbench.subject_consistency import SubjectConsistencyConfig

    return SubjectConsistencyConfig(weights=paths["dino_vitb16"])


def _build_background(paths: dict[str, str]):
    from deepforcing.metrics.vbench.background_consistency import BackgroundConsistencyConfig

    return BackgroundConsistencyConfig(weights=paths["openai_clip_vit_b32"])


def _build_aesthetic(paths: dict[str, str]):
    from deepforcing.metrics.vbench.aesthetic_quality import AestheticQualityConfig

    return AestheticQualityConfig(
        clip_weights=paths["openai_clip_vit_l14"], head_weights=paths["laion_aesthetic_v1_l14"]
    )


#: Metric name -> function (weight key -> path) -> the metric's config.
_BUILDERS = {
    "subject_consistency": _build_subject,
    "background_consistency": _build_background,
    "aesthetic_quality": _build_aesthetic,
}


def build_metric(plan: MetricPlan, device: str):
    """Instantiate a metric from its plan (loads its backbone)."""
    from deepforcing.metrics import get_metric

    cls = get_metric(plan.name)
    if plan.name in _NO_WEIGHTS:
        return cls()
    return cls(_BUILDERS[plan.name](plan.weight_paths), device=device)


def load_cached_rows(store: RunStore, key: str, mp: MetricPlan, video_sha256: str) -> list[dict[str, Any]] | None:
    """The cached rows of one metric for a unit, or None if absent or made from another video."""
    path = store.scores_dir(key) / mp.cache_name()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable score cache %s: %s", path, exc)
        return None
    if data.get("video_sha256") != video_sha256 or data.get("fingerprint") != mp.fingerprint:
        return None
    return data["rows"]


def score_units(
    plan: WorkPlan,
    store: RunStore,
    dist: DistContext,
    metrics: dict[str, MetricPlan],
    *,
    device: str,
    records: dict[str, dict[str, Any]],
    force: bool = False,
    progress: Progress | None = None,
) -> int:
    """Score this rank's share of the done units whose cached rows are missing.

    Args:
        plan: The work plan.
        store: The run store.
        dist: Process group context (rank 0 decides, all ranks score their shard).
        metrics: Metric plans by name.
        device: Device for metric backbones.
        records: Unit key -> manifest row of every done unit.
        force: Rescore even when cached rows exist.
        progress: Progress sink.

    Returns:
        Number of units this rank scored.
    """
    from deepforcing.metrics.base import score_video
    from deepforcing.metrics.rows import VideoErrorRow
    from deepforcing.metrics.video_io import decode_video

    progress = progress or Progress()
    todo: list[tuple[WorkItem, list[str]]] = []
    if dist.is_main:
        for item in plan.units():
            rec = records.get(item.unit.key)
            if rec is None:
                continue
            missing = [
                n
                for n, mp in metrics.items()
                if force or load_cached_rows(store, item.unit.key, mp, rec["video_sha256"]) is None
            ]
            if missing:
                todo.append((item, missing))
    todo = dist.broadcast(todo)
    mine = dist.shard(todo)
    progress.stage("scoring", len(mine))
    built: dict[str, Any] = {}
    for item, names in mine:
        key = item.unit.key
        rec = records[key]
        progress.unit(f"{item.method} {item.prompt.prompt_id} s{item.seed}")
        store.clean_stale_tmp(key)
        for n in names:
            if n not in built:
                log.info("loading metric %s", n)
                built[n] = build_metric(metrics[n], device)
        instances = [built[n] for n in names]
        try:
            video = decode_video(store.video_path(key))
            rows = score_video(
                key,
                video.frames,
                video.fps,
                instances,
                prompt_id=item.prompt.prompt_id,
                duration_s=plan.suite.clip_seconds,
                allow_short=plan.suite.allow_short,
            )
        except UserError as exc:
            log.warning("unit %s: cannot decode its video: %s", key, exc)
            rows = [VideoErrorRow(mid, key, str(exc), item.prompt.prompt_id) for m in instances for mid in m.metric_ids]
        for n, metric in zip(names, instances, strict=True):
            ids = set(metric.metric_ids)
            mine_rows = [r.to_json() for r in rows if r.metric in ids]
            atomic_write_json(
                store.scores_dir(key) / metrics[n].cache_name(),
                {
                    "schema_version": SCHEMA_VERSION,
                    "record": "scores",
                    "metric": n,
                    "fingerprint": metrics[n].fingerprint,
                    "metric_ids": sorted(ids),
                    "weights": metrics[n].weights,
                    "unit_key": key,
                    "video_sha256": rec["video_sha256"],
                    "rows": clean_json(mine_rows),
                },
            )
        progress.advance()
    return len(mine)

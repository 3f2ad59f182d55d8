"""Scoring stage: build the suite's metrics, score each done unit's video once, cache rows per metric.

Scores are cached per unit and metric in ``units/<key>/scores/<metric>-<fingerprint>.json``. The fingerprint
covers what can change a metric's rows: the metric's source code (its module, its package's modules and the
shared clip/row/decode code), the sha256 of its weight files, the clip protocol and the row schema. Changing a
metric therefore rescores (only that metric) and never regenerates a video; an unchanged metric is never
recomputed.

Metric construction lives here (:func:`build_metric`) because each metric class takes its own config with
weight paths; ``deepforcing.metrics`` exposes the classes and the weight table, not a factory. A metric that
the harness cannot build yet is reported before any compute.

``fvd`` in a suite is **temporal FVD** (no real videos exist for MovieGen prompts): per video, StyleGAN-V I3D
features of the 16-frame clips in the first ``fvd_window_s`` seconds (reference) and in the last
``fvd_window_s`` seconds; per method, the mergeable feature statistics of all videos are summed (in plan
order) and the Fréchet distance is taken between the two sets (:mod:`deepforcing.metrics.frechet`, covariance
÷(n−1)). Per unit the statistics are cached as safetensors (``scores/fvd-<fp>.safetensors``).
"""

from __future__ import annotations

import dataclasses
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
from deepforcing.harness.store import (
    SCHEMA_VERSION,
    RunStore,
    _remove_quietly,
    atomic_write_bytes,
    atomic_write_json,
    clean_json,
)

log = logging.getLogger(__name__)

#: Metrics built without weights (their class takes an optional config).
_NO_WEIGHTS = ("image_stats", "temporal_flickering", "toy_oracle")
#: The set-level temporal FVD (not a ClipMetric).
FVD = "fvd"
#: Frames per FVD clip and I3D input side (StyleGAN-V protocol).
FVD_FRAMES, FVD_RES = 16, 224
#: Shared metric code whose change can alter every metric's rows.
_SHARED_SOURCES = ("base.py", "clips.py", "rows.py", "video_io.py", "identity.py", "aggregate.py", "segments.py")
#: Other modules of the metrics root that a metric depends on (their change rescores it).
_METRIC_DEPENDS = {
    "segment_text_alignment": ("text_alignment.py",),
    "switch_accuracy": ("text_alignment.py", "segment_text_alignment.py"),
    "transition_smoothness": ("text_alignment.py",),
    "switch_latency": ("text_alignment.py",),
}


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
    if own.parent.name == "toyworld":  # the oracle: its own module and the world it checks against
        files.add(own.parent / "world.py")
    elif own.parent != metrics_root:  # a metric package (e.g. vbench/): all of its modules
        files.update(own.parent.glob("*.py"))
    files.update(metrics_root / f for f in _SHARED_SOURCES if (metrics_root / f).is_file())
    files.update(metrics_root / f for f in _METRIC_DEPENDS.get(name, ()))
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
        options: The suite's ``metric_options`` for this metric (fields of its config; in the fingerprint).
    """

    name: str
    fingerprint: str
    weights: dict[str, str] = field(default_factory=dict, hash=False)
    weight_paths: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def cache_name(self) -> str:
        """File name of the cached rows (feature statistics for temporal FVD)."""
        ext = "safetensors" if self.name == FVD else "json"
        return f"{self.name}-{self.fingerprint}.{ext}"


def check_buildable(names: tuple[str, ...]) -> None:
    """Fail (before compute) for metrics the harness cannot construct.

    Raises:
        UserError: Naming each such metric.
    """
    bad = [n for n in names if n not in _BUILDERS and n not in _NO_WEIGHTS and n != FVD]
    if bad:
        raise UserError(
            f"the harness cannot build metric(s) {', '.join(bad)} yet",
            "add a builder to deepforcing/harness/scoring.py::_BUILDERS (it maps weight files to the metric's "
            f"config); buildable now: {', '.join(sorted((*_BUILDERS, *_NO_WEIGHTS, FVD)))}",
        )


def plan_metrics(
    names: tuple[str, ...],
    clip_seconds: float,
    allow_short: bool,
    weights_dir: str | os.PathLike | None = None,
    fvd_window_s: float = 5.0,
    metric_options: dict[str, dict[str, Any]] | None = None,
    scene_split: bool = False,
    clip_protocol: str = "decode-once",
) -> dict[str, MetricPlan]:
    """Fingerprint every metric of a suite; checks that each can be built and that its weights exist.

    Args:
        names: Registered metric names of the suite.
        clip_seconds: Clip length of the splitter.
        allow_short: Score videos shorter than one clip whole.
        weights_dir: Metric weights root (see :func:`metric_weights_root`).
        fvd_window_s: Temporal FVD window.
        metric_options: The suite's validated ``metric_options`` (metric -> option -> value).
        scene_split: Split videos at scene cuts first (needs PySceneDetect; checked here, before any compute).
        clip_protocol: ``decode-once`` or ``vbench-long-exact`` (in the fingerprint when not the default).

    Raises:
        UserError: A metric without a builder, or missing weight files (one error listing all of them).
    """
    from deepforcing.metrics.clips import ClipProtocol
    from deepforcing.metrics.weights import check_metric_weights, weights_for

    check_buildable(names)
    if scene_split and importlib.util.find_spec("scenedetect") is None:
        raise UserError(
            "the suite sets scene_split, but PySceneDetect is not installed", "pip install 'deepforcing-eval[scenes]'"
        )
    metric_options = metric_options or {}
    root = metric_weights_root(weights_dir)
    needs = {n: _option_weight_metrics(n, metric_options.get(n, {})) for n in names}
    paths = check_metric_weights([*names, *(m for extra in needs.values() for m in extra)], root)
    cache = _load_sha_cache()
    out = {}
    for name in names:
        keys = [w.key for w in weights_for([name, *needs[name]])]
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
                **({"fvd_window_s": fvd_window_s} if name == FVD else {}),
                **({"options": metric_options[name]} if metric_options.get(name) else {}),
                **({"scene_split": "content35"} if scene_split else {}),
                **(ClipProtocol(clip_protocol).fingerprint() if clip_protocol != "decode-once" else {}),
            },
            sort_keys=True,
        )
        out[name] = MetricPlan(
            name,
            hashlib.sha256(blob.encode()).hexdigest()[:12],
            shas,
            {k: str(paths[k]) for k in keys},
            dict(metric_options.get(name, {})),
        )
    _save_sha_cache(cache)
    return out


def plan_suite_metrics(suite: Any, weights_dir: str | os.PathLike | None = None) -> dict[str, MetricPlan]:
    """:func:`plan_metrics` with every protocol setting taken from a loaded suite (``SuiteConfig``)."""
    return plan_metrics(
        suite.metrics,
        suite.clip_seconds,
        suite.allow_short,
        weights_dir,
        suite.fvd_window_s,
        {m: suite.options_for(m) for m, _ in suite.metric_options},
        suite.scene_split,
        suite.clip_protocol,
    )


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


def _build_dynamic(paths: dict[str, str]):
    from deepforcing.metrics.vbench.dynamic_degree import DynamicDegreeConfig

    return DynamicDegreeConfig(weights=paths["raft_things"])


def _build_imaging(paths: dict[str, str]):
    from deepforcing.metrics.vbench.imaging_quality import ImagingQualityConfig

    return ImagingQualityConfig(weights=paths["musiq_spaq"])


def _build_motion(paths: dict[str, str]):
    from deepforcing.metrics.vbench.motion_smoothness import MotionSmoothnessConfig

    # The released amt-s.pth may hold pickled objects besides tensors; unpickling is opt-in (never silent).
    trust = os.environ.get("DEEPFORCING_TRUST_PICKLE", "") == "1"
    return MotionSmoothnessConfig(weights=paths["amt_s"], trust_pickle=trust)


def _build_overall(paths: dict[str, str]):
    from deepforcing.metrics.vbench.overall_consistency import OverallConsistencyConfig

    return OverallConsistencyConfig(weights=paths["viclip"])


def _build_clip_text(paths: dict[str, str]):
    from deepforcing.metrics.clip_text_similarity import ClipTextSimilarityConfig

    return ClipTextSimilarityConfig(weights=paths["openai_clip_vit_b32"])


def _build_laion_improved(paths: dict[str, str]):
    from deepforcing.metrics.laion_improved_aesthetic import LaionImprovedAestheticConfig

    return LaionImprovedAestheticConfig(
        clip_weights=paths["openai_clip_vit_l14"], head_weights=paths["laion_improved_l14"]
    )


def _build_coherence(paths: dict[str, str]):
    from deepforcing.metrics.long_horizon_coherence import LongHorizonCoherenceConfig

    return LongHorizonCoherenceConfig(weights=paths["dino_vitb16"])


def _build_segment_alignment(paths: dict[str, str]):
    from deepforcing.metrics.segment_text_alignment import SegmentTextAlignmentConfig

    return SegmentTextAlignmentConfig(viclip_weights=paths["viclip"], clip_weights=paths["openai_clip_vit_b32"])


def _build_transition(paths: dict[str, str]):
    from deepforcing.metrics.transition_smoothness import TransitionSmoothnessConfig

    return TransitionSmoothnessConfig(dino_weights=paths["dino_vitb16"], clip_weights=paths["openai_clip_vit_b32"])


def _build_latency(paths: dict[str, str]):
    from deepforcing.metrics.switch_latency import SwitchLatencyConfig

    return SwitchLatencyConfig(clip_weights=paths["openai_clip_vit_b32"])


def _option_weight_metrics(name: str, options: dict[str, Any]) -> tuple[str, ...]:
    """Metrics whose weight files an option also needs (the static filter runs dynamic_degree's RAFT)."""
    return ("dynamic_degree",) if name == "temporal_flickering" and options.get("static_filter") else ()


def _build_flickering(paths: dict[str, str]):
    from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickeringConfig

    return TemporalFlickeringConfig(raft_weights=paths.get("raft_things"))


#: Metric name -> function (weight key -> path) -> the metric's config.
_BUILDERS = {
    "subject_consistency": _build_subject,
    "background_consistency": _build_background,
    "aesthetic_quality": _build_aesthetic,
    "dynamic_degree": _build_dynamic,
    "imaging_quality": _build_imaging,
    "motion_smoothness": _build_motion,
    "overall_consistency": _build_overall,
    "clip_text_similarity": _build_clip_text,
    "laion_improved_aesthetic": _build_laion_improved,
    "long_horizon_coherence": _build_coherence,
    "segment_text_alignment": _build_segment_alignment,
    "switch_accuracy": _build_segment_alignment,
    "transition_smoothness": _build_transition,
    "switch_latency": _build_latency,
}


def build_metric(plan: MetricPlan, device: str):
    """Instantiate a metric from its plan (loads its backbone)."""
    from deepforcing.metrics import get_metric

    cls = get_metric(plan.name)
    if plan.name == "temporal_flickering" and plan.options:
        return cls(dataclasses.replace(_build_flickering(plan.weight_paths), **plan.options), device=device)
    if plan.name in _NO_WEIGHTS:
        return cls()
    return cls(dataclasses.replace(_BUILDERS[plan.name](plan.weight_paths), **plan.options), device=device)


def fvd_metric_id(window_s: float) -> str:
    """Id of temporal FVD: the FVD protocol plus the two windows."""
    from deepforcing.metrics.identity import metric_id

    return metric_id(
        "fvd.temporal",
        {
            "i3d": "styleganv",
            "frames": FVD_FRAMES,
            "res": FVD_RES,
            "resize": "stretch",
            "cov": "n-1",
            "ref": f"first{window_s:g}s",
            "eval": f"last{window_s:g}s",
        },
    )


def fvd_set_metric_id(reference: str) -> str:
    """Id of set-level FVD: every non-overlapping 16-frame clip of every video of a method against ``reference``'s."""
    from deepforcing.metrics.identity import metric_id

    return metric_id(
        "fvd.set",
        {"i3d": "styleganv", "frames": FVD_FRAMES, "res": FVD_RES, "resize": "stretch", "cov": "n-1",
         "clips": "all", "ref": reference},
    )  # fmt: skip


def metrics_for(item: WorkItem, metrics: dict[str, MetricPlan]) -> dict[str, MetricPlan]:
    """The metrics a work item is scored with: all of them, or FVD alone for an FVD reference set."""
    if getattr(item.method_config, "role", None) == "reference":
        return {n: mp for n, mp in metrics.items() if n == FVD}
    return metrics


def fvd_extractor(mp: MetricPlan, device: str):
    """``(B, 16, H, W, 3)`` uint8 clips -> ``(B, 400)`` StyleGAN-V I3D features (loads the TorchScript model)."""
    from deepforcing.metrics.i3d import i3d_features, load_i3d_torchscript

    model = load_i3d_torchscript(mp.weight_paths["i3d_styleganv"], device)
    return lambda clips: i3d_features(model, clips, FVD_RES)


#: Clips per I3D batch when a whole video is featurised (bounds the memory of long videos).
FVD_BATCH = 8


def _fvd_stats_bytes(extract, frames, fps: float, window_s: float, meta: dict[str, str]) -> bytes:
    """Safetensors bytes of one video's I3D feature statistics.

    ``all``: every non-overlapping 16-frame clip (set-level FVD); ``ref``: the clips of the first ``window_s`` seconds
    (the first clips of the same grid); ``eval``: those of the last ``window_s`` seconds (temporal FVD).
    """
    import torch
    from safetensors.torch import save

    from deepforcing.metrics.frechet import FeatureStats
    from deepforcing.metrics.fvd import window_clips

    duration = frames.shape[0] / fps
    try:
        every = window_clips(frames, fps, 0.0, duration, FVD_FRAMES)  # (N, 16, H, W, 3), a view
        n_ref = window_clips(frames, fps, 0.0, window_s, FVD_FRAMES).shape[0]
        last = window_clips(frames, fps, duration - window_s, duration, FVD_FRAMES)
    except UserError as exc:
        return save({"error": torch.zeros(1)}, metadata={**meta, "error": str(exc)})
    feats = torch.cat([extract(every[i : i + FVD_BATCH]) for i in range(0, every.shape[0], FVD_BATCH)])
    tensors = {}
    for side, f in (("all", feats), ("ref", feats[:n_ref]), ("eval", extract(last))):
        st = FeatureStats.of(f)
        tensors.update({f"{side}_n": torch.tensor([st.n]), f"{side}_sum": st.sum, f"{side}_outer": st.outer})
    return save(tensors, metadata={**meta, "error": ""})


def load_fvd_stats(store: RunStore, key: str, mp: MetricPlan, video_sha256: str):
    """Cached FVD statistics of a unit: ``(ref, eval, all)`` FeatureStats, an error string, or None."""
    from safetensors import safe_open

    from deepforcing.metrics.frechet import FeatureStats

    path = store.scores_dir(key) / mp.cache_name()
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("video_sha256") != video_sha256 or meta.get("fingerprint") != mp.fingerprint:
                return None
            if meta.get("error"):
                return meta["error"]
            t = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (OSError, ValueError, RuntimeError) as exc:  # safetensors raises these for a bad file
        log.warning("ignoring unreadable FVD statistics %s: %s", path, exc)
        return None
    if "all_n" not in t:  # written before set-level FVD: score again
        return None
    return tuple(
        FeatureStats(int(t[f"{s}_n"][0]), t[f"{s}_sum"].double(), t[f"{s}_outer"].double())
        for s in ("ref", "eval", "all")
    )


def is_cached(store: RunStore, key: str, mp: MetricPlan, video_sha256: str) -> bool:
    """True if the unit has valid cached output for this metric plan."""
    if mp.name == FVD:
        return load_fvd_stats(store, key, mp, video_sha256) is not None
    return load_cached_rows(store, key, mp, video_sha256) is not None


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
    progress = progress or Progress()
    todo: list[tuple[WorkItem, list[str]]] = []
    if dist.is_main:
        for item in plan.units():
            rec = records.get(item.unit.key)
            if rec is None:
                continue
            missing = [
                n
                for n, mp in metrics_for(item, metrics).items()
                if force or not is_cached(store, item.unit.key, mp, rec["video_sha256"])
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
                built[n] = fvd_extractor(metrics[n], device) if n == FVD else build_metric(metrics[n], device)
        try:
            _score_one(plan, store, item, rec, names, metrics, built)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one unit's failure is counted and shown; the other units go on
            reason = f"{type(exc).__name__}: {exc}"
            log.error("unit %s (%s %s s%d): scoring failed: %s", key, item.method, item.prompt.prompt_id, item.seed,
                      reason)  # fmt: skip
            log.debug("traceback of unit %s", key, exc_info=True)
            for n in names:
                atomic_write_json(
                    failure_path(store, key, metrics[n]),
                    {"schema_version": SCHEMA_VERSION, "record": "failure", "stage": "score", "metric": n,
                     "fingerprint": metrics[n].fingerprint, "video_sha256": rec["video_sha256"], "reason": reason},
                )  # fmt: skip
        progress.advance()
    return len(mine)


def failure_path(store: RunStore, key: str, mp: MetricPlan) -> Path:
    """Where a metric that raised on a unit records why (not a cache: the next run scores it again)."""
    return store.scores_dir(key) / f"{mp.cache_name()}.failed.json"


def load_failure(store: RunStore, key: str, mp: MetricPlan, video_sha256: str) -> str | None:
    """Why scoring ``mp`` failed on the unit's current video and metric plan, or None."""
    try:
        data = json.loads(failure_path(store, key, mp).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("video_sha256") != video_sha256 or data.get("fingerprint") != mp.fingerprint:
        return None
    return str(data.get("reason"))


def _score_one(plan, store: RunStore, item: WorkItem, rec: dict[str, Any], names, metrics, built) -> None:
    """Score one unit with the metrics ``names`` and write their caches.

    A metric that cannot score the video (too short, undecodable) writes error rows; an exception propagates.
    """
    from deepforcing.metrics.base import metric_ids_under, score_video
    from deepforcing.metrics.clips import SCENE_THRESHOLD, ClipProtocol
    from deepforcing.metrics.rows import VideoErrorRow
    from deepforcing.metrics.video_io import decode_video

    key = item.unit.key
    protocol = ClipProtocol(plan.suite.clip_protocol)
    clip_names = [n for n in names if n != FVD]
    instances = [built[n] for n in clip_names]
    try:
        video = decode_video(store.video_path(key))
    except UserError as exc:
        log.warning("unit %s: cannot decode its video: %s", key, exc)
        video, decode_error = None, str(exc)
    rows = []
    if instances and video is not None:
        rows = score_video(
            key,
            video.frames,
            video.fps,
            instances,
            prompt_id=item.prompt.prompt_id,
            prompt=item.prompt.text,
            duration_s=plan.suite.clip_seconds,
            allow_short=plan.suite.allow_short,
            scene_threshold=SCENE_THRESHOLD if plan.suite.scene_split else None,  # PySceneDetect, VBench-Long
            segments=rec.get("segments") or None,  # a multi-prompt video: its prompts and their times
            protocol=protocol,
        )
    elif instances:
        rows = [
            VideoErrorRow(mid, key, decode_error, item.prompt.prompt_id)
            for m in instances
            for mid in metric_ids_under(m, protocol)
        ]
    for n, metric in zip(clip_names, instances, strict=True):
        ids = set(metric_ids_under(metric, protocol))
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
    if FVD in names:
        meta = {"video_sha256": rec["video_sha256"], "fingerprint": metrics[FVD].fingerprint, "unit_key": key}
        if video is None:
            import torch
            from safetensors.torch import save

            blob = save({"error": torch.zeros(1)}, metadata={**meta, "error": decode_error})
        else:
            blob = _fvd_stats_bytes(built[FVD], video.frames, video.fps, plan.suite.fvd_window_s, meta)
        atomic_write_bytes(store.scores_dir(key) / metrics[FVD].cache_name(), blob)
    for n in names:
        _remove_quietly(failure_path(store, key, metrics[n]))

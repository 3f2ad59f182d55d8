"""Metrics for long generated videos: VBench-Long dimensions, FVD, aesthetic and temporal drift.

Importing this package is cheap: it imports neither torch nor any backbone. Metric classes are listed here
as lazy ``"module:attribute"`` targets and imported only when asked for by name.

Layout (one file per metric, math in pure functions, classes only wrap it):

* ``identity`` — metric ids that carry the protocol (``fvd@i3d=styleganv,frames=16,res=224,cov=n``).
* ``rows`` — the per-clip row schema every metric writes; the raw material of aggregation and drift.
* ``clips`` — the VBench-Long clip splitter (2-s clips at native fps, last clip padded from earlier frames).
* ``aggregate`` — declared aggregation (clips → video → suite), computed only from per-clip rows.
* ``image_stats``, ``drift`` — weight-free exposure / colour statistics and drift summaries.
* ``frechet``, ``fvd``, ``i3d`` — Fréchet distance, mergeable feature statistics, StyleGAN-V I3D.
* ``clip_text_similarity`` — CLIP text–frame cosine per 10-s segment (LongLive's prompt adherence over time).
* ``long_horizon_coherence`` — DINO cosine between frames 2–50 s apart, and its decay.
* ``segments`` — the prompt segments of multi-prompt videos; ``text_alignment`` — the encoders the prompt-switch
  metrics share. Prompt-switch metrics: ``segment_text_alignment``, ``switch_accuracy``,
  ``transition_smoothness``, ``switch_latency``.
* ``vbench/`` — VBench dimensions, one file each, numerically equal to ``vbench``'s own functions.
  ``vbench/static_filter`` (RAFT static filter) and ``vbench/slow_fast`` (VBench-Long fusion) are options.
* ``laion_improved_aesthetic`` — the LAION improved aesthetic predictor (MLP on CLIP ViT-L/14), 1–10 scale.

Adding a metric:
    1. Write ``deepforcing/metrics/<name>.py`` with a frozen config dataclass whose ``metric_id`` property
       spells out every protocol choice, a pure function for the math and a class exposing
       ``score_clip(frames) -> ClipScore`` plus a class attribute ``aggregation``.
    2. Register it below as ``"<name>": "deepforcing.metrics.<name>:<Class>"``.
    3. Add a known-answer test under ``tests/metrics/``.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from deepforcing.errors import UserError

#: name -> "module:attribute"; nothing here is imported until :func:`get_metric` asks for it.
METRICS: dict[str, str] = {
    "image_stats": "deepforcing.metrics.image_stats:ImageStatistics",
    "temporal_flickering": "deepforcing.metrics.vbench.temporal_flickering:TemporalFlickering",
    "subject_consistency": "deepforcing.metrics.vbench.subject_consistency:SubjectConsistency",
    "background_consistency": "deepforcing.metrics.vbench.background_consistency:BackgroundConsistency",
    "aesthetic_quality": "deepforcing.metrics.vbench.aesthetic_quality:AestheticQuality",
    "dynamic_degree": "deepforcing.metrics.vbench.dynamic_degree:DynamicDegree",
    "imaging_quality": "deepforcing.metrics.vbench.imaging_quality:ImagingQuality",
    "motion_smoothness": "deepforcing.metrics.vbench.motion_smoothness:MotionSmoothness",
    "overall_consistency": "deepforcing.metrics.vbench.overall_consistency:OverallConsistency",
    "laion_improved_aesthetic": "deepforcing.metrics.laion_improved_aesthetic:LaionImprovedAesthetic",
    "fvd": "deepforcing.metrics.fvd:FrechetVideoDistance",
    "clip_text_similarity": "deepforcing.metrics.clip_text_similarity:ClipTextSimilarity",
    # Long-horizon and multi-prompt metrics (docs/metrics.md); they read the video's timeline, not clips.
    "long_horizon_coherence": "deepforcing.metrics.long_horizon_coherence:LongHorizonCoherence",
    "segment_text_alignment": "deepforcing.metrics.segment_text_alignment:SegmentTextAlignment",
    "switch_accuracy": "deepforcing.metrics.switch_accuracy:SwitchAccuracy",
    "transition_smoothness": "deepforcing.metrics.transition_smoothness:TransitionSmoothness",
    "switch_latency": "deepforcing.metrics.switch_latency:SwitchLatency",
    # Oracle checks of a toy-world video against its caption (only meaningful for the toyworld model).
    "toy_oracle": "deepforcing.toyworld.oracle:ToyOracle",
}


#: Metrics that are listed (weights, metadata) but not implemented yet: name -> why. Empty: every VBench-Long
#: dimension of the Deep Forcing table is implemented.
PLANNED_METRICS: dict[str, str] = {}


def available_metrics() -> list[str]:
    """Return the registered metric names, sorted."""
    return sorted(METRICS)


def get_metric(name: str) -> Any:
    """Import and return the class registered under ``name``.

    Args:
        name: A registered metric name (see :func:`available_metrics`).

    Returns:
        The metric class.

    Raises:
        UserError: If ``name`` is not registered; the message suggests close matches and lists all names.
    """
    target = METRICS.get(name)
    if target is None and name in PLANNED_METRICS:
        raise UserError(f"metric {name!r} is not implemented yet: {PLANNED_METRICS[name]}", "see issue 4")
    if target is None:
        close = difflib.get_close_matches(name, METRICS, n=3)
        hint = (f"did you mean {', '.join(close)}? " if close else "") + "available: " + ", ".join(available_metrics())
        raise UserError(f"unknown metric {name!r}", hint)
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)

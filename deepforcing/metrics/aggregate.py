"""Declared aggregation: per-clip rows → per-video values → one suite value.

Each metric declares its :class:`Aggregation` once (a class attribute); :func:`aggregate` is the only place
where clips are averaged, and it reads nothing but rows. Sums use ``math.fsum`` over rows sorted by
``(video_id, clip_index)``, so splitting the rows across shards (in any order) cannot change a result.

VBench-Long (``reorganize_clips_results``): a long video's score is the plain mean of its clip scores, the
dimension is the plain mean over videos (imaging quality additionally ÷100). Short-video VBench weights the
consistency dimensions by frame pairs, which ``weighted_mean`` reproduces from the rows' ``weight`` field.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from deepforcing.metrics.rows import ClipRow, VideoErrorRow

Reduction = Literal["mean", "weighted_mean"]


@dataclass(frozen=True)
class Aggregation:
    """How a metric's clip rows are combined.

    Attributes:
        clip_to_video: ``mean`` of the clips, or ``weighted_mean`` by the rows' ``weight``.
        video_to_suite: ``mean`` of the per-video values, or ``weighted_mean``: total of ``weight * value``
            over all clips of all videos divided by the total weight (VBench's frame-pair weighting).
        suite_scale: Factor applied to the suite value only (VBench-Long imaging quality: 0.01).
        higher_is_better: Direction, for reports and regression checks (None: no direction).
        skip_undefined: NaN clip values mean "undefined for this clip" (e.g. the colour error of a shape that
            is not there) and are left out of the means; a video with no defined clip has no value. When False
            (every VBench dimension), a NaN is a bug and raises.
    """

    clip_to_video: Reduction = "mean"
    video_to_suite: Reduction = "mean"
    suite_scale: float = 1.0
    higher_is_better: bool | None = True
    skip_undefined: bool = False


#: The VBench-Long protocol: plain clip mean per video, plain mean over videos.
VBENCH_LONG = Aggregation()


@dataclass(frozen=True)
class AggregateResult:
    """Aggregated values of one metric id.

    Attributes:
        metric: The metric id.
        value: Suite value (NaN if no video could be scored).
        per_video: Video id → per-video value.
        n_videos: Videos that contributed.
        n_clips: Clips that contributed.
        errors: Video id → reason, for videos that were not scored.
    """

    metric: str
    value: float
    per_video: dict[str, float]
    n_videos: int
    n_clips: int
    errors: dict[str, str] = field(default_factory=dict)


def _reduce(values: list[float], weights: list[float], how: Reduction) -> float:
    if how == "mean":
        return math.fsum(values) / len(values)
    if how == "weighted_mean":
        total = math.fsum(weights)
        if total <= 0:
            raise ValueError("weighted_mean needs a positive total weight")
        return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total
    raise ValueError(f"unknown reduction {how!r}; choose 'mean' or 'weighted_mean'")


def aggregate(rows: Iterable[ClipRow | VideoErrorRow], metric: str, spec: Aggregation = VBENCH_LONG) -> AggregateResult:
    """Aggregate the rows of one metric id.

    Args:
        rows: Rows of any metrics (others are ignored), from one or many shards, in any order.
        metric: The metric id to aggregate.
        spec: The metric's declared aggregation.

    Returns:
        The per-video values and the suite value.

    Raises:
        ValueError: On a duplicate ``(video_id, clip_index)``, a gap in a video's clip indices, or a NaN
            value (unless the metric declares ``skip_undefined``).
    """
    by_video: dict[str, dict[int, ClipRow]] = defaultdict(dict)
    errors: dict[str, str] = {}
    for row in rows:
        if row.metric != metric and not (isinstance(row, VideoErrorRow) and row.metric == "*"):
            continue
        if isinstance(row, VideoErrorRow):
            errors[row.video_id] = row.reason
            continue
        if row.clip_index in by_video[row.video_id]:
            raise ValueError(f"duplicate row for {metric} video {row.video_id!r} clip {row.clip_index}")
        if math.isnan(row.value) and not spec.skip_undefined:
            raise ValueError(f"NaN value for {metric} video {row.video_id!r} clip {row.clip_index}")
        by_video[row.video_id][row.clip_index] = row

    per_video: dict[str, float] = {}
    all_values: list[float] = []
    all_weights: list[float] = []
    n_clips = 0
    for vid in sorted(by_video):
        if vid in errors:
            continue
        clips = by_video[vid]
        if sorted(clips) != list(range(len(clips))):
            raise ValueError(f"{metric} video {vid!r}: clip indices {sorted(clips)} are not 0..{len(clips) - 1}")
        ordered = [clips[i] for i in range(len(clips)) if not math.isnan(clips[i].value)]
        if not ordered:  # skip_undefined and nothing defined
            continue
        values = [r.value for r in ordered]
        weights = [r.weight for r in ordered]
        per_video[vid] = _reduce(values, weights, spec.clip_to_video)
        all_values.extend(values)
        all_weights.extend(weights)
        n_clips += len(ordered)

    if not per_video:
        value = math.nan
    elif spec.video_to_suite == "mean":
        value = math.fsum(per_video.values()) / len(per_video)
    else:
        value = _reduce(all_values, all_weights, "weighted_mean")
    return AggregateResult(
        metric=metric,
        value=value * spec.suite_scale,
        per_video=per_video,
        n_videos=len(per_video),
        n_clips=n_clips,
        errors=errors,
    )

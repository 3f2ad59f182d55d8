"""Declared aggregation: per-clip rows → per-video values → one suite value.

Each metric declares its :class:`Aggregation` once (a class attribute); :func:`aggregate` is the only place
where clips are averaged, and it reads nothing but rows. Sums use ``math.fsum`` over rows sorted by
``(video_id, clip_index)``, so splitting the rows across shards (in any order) cannot change a result.

Two protocols (:data:`PROTOCOLS`) differ only in the suite value; per-video values are the same in both:

* ``decode-once`` (the default, ours): a video's value is the mean of its clips, the suite value the mean of the
  videos — every video counts once, however long it is.
* ``vbench-long-exact``: the suite value is the **plain mean over all clips of all videos**
  (``video_to_suite="clip_mean"``), which is what VBench-Long's code computes. Its
  ``reorganize_clips_results`` (``vbench2_beta_long/utils.py`` at Vchitect/VBench 45e79ec) means to average
  clips per long video and then videos, but it builds each group key from the clip's own path
  (``video_path.split("filtered_clips")[0]``; clip paths live under ``split_clip/`` — and the static filter's
  folder is spelled ``temporal_filtered_cilps`` — so the split never cuts), so every clip is its own group and
  the dimension is the mean over clips. subject/background consistency reach the same number through
  ``fuse_inclip_clip2clip``, which averages those per-clip entries too (the fused value per clip with
  ``--dev_flag``, the plain in-clip value without it). Clips that VBench-Long never scores — those the RAFT static
  filter removes, weight 0 here — are left out; every other clip counts once whatever its weight.
  With equally many clips per video the two protocols agree; otherwise long videos weigh more in
  ``vbench-long-exact``.

:func:`for_protocol` turns a metric's declared aggregation into the one of a protocol; rows scored under
``vbench-long-exact`` carry it in their metric id (``clips=vbench_long_exact``, see
:mod:`deepforcing.metrics.clips`), so :func:`aggregation_for_metric_id` picks the right one from the id alone.
Short-video VBench weights the consistency dimensions by frame pairs, which ``weighted_mean`` reproduces from
the rows' ``weight`` field.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from deepforcing.metrics.identity import parse_metric_id
from deepforcing.metrics.rows import ClipRow, VideoErrorRow

Reduction = Literal["mean", "weighted_mean"]
SuiteReduction = Literal["mean", "weighted_mean", "clip_mean"]
ProtocolName = Literal["decode-once", "vbench-long-exact"]

#: The clip protocols: ``decode-once`` (default) and ``vbench-long-exact`` (see the module docstring).
PROTOCOLS: tuple[str, ...] = ("decode-once", "vbench-long-exact")
#: Metric-id key and value that mark rows scored under ``vbench-long-exact`` (decode-once rows carry no key).
PROTOCOL_KEY, EXACT_VALUE = "clips", "vbench_long_exact"


@dataclass(frozen=True)
class Aggregation:
    """How a metric's clip rows are combined.

    Attributes:
        clip_to_video: ``mean`` of the clips, or ``weighted_mean`` by the rows' ``weight``.
        video_to_suite: ``mean`` of the per-video values; ``weighted_mean``: total of ``weight * value``
            over all clips of all videos divided by the total weight (VBench's frame-pair weighting);
            ``clip_mean``: plain mean over every clip of every video whose weight is > 0 (VBench-Long's code,
            the ``vbench-long-exact`` protocol).
        suite_scale: Factor applied to the suite value only (VBench-Long imaging quality: 0.01).
        higher_is_better: Direction, for reports and regression checks (None: no direction).
        skip_undefined: NaN clip values mean "undefined for this clip" (e.g. the colour error of a shape that
            is not there) and are left out of the means; a video with no defined clip has no value. When False
            (every VBench dimension), a NaN is a bug and raises.
    """

    clip_to_video: Reduction = "mean"
    video_to_suite: SuiteReduction = "mean"
    suite_scale: float = 1.0
    higher_is_better: bool | None = True
    skip_undefined: bool = False


#: Our default protocol: plain clip mean per video, plain mean over videos.
VBENCH_LONG = Aggregation()


def for_protocol(spec: Aggregation, protocol: ProtocolName | str = "decode-once") -> Aggregation:
    """The aggregation of a metric under a clip protocol.

    Args:
        spec: The metric's declared aggregation.
        protocol: ``decode-once`` (returns ``spec``) or ``vbench-long-exact`` (suite value = plain mean over all
            clips with weight > 0; per-video values unchanged).

    Raises:
        ValueError: On an unknown protocol.
    """
    if protocol == "decode-once":
        return spec
    if protocol == "vbench-long-exact":
        return replace(spec, video_to_suite="clip_mean")
    raise ValueError(f"unknown clip protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def protocol_of_metric_id(metric: str) -> ProtocolName:
    """``vbench-long-exact`` if the id carries ``clips=vbench_long_exact``, else ``decode-once``.

    Raises:
        ValueError: If the id carries another ``clips=`` value.
    """
    value = parse_metric_id(metric)[1].get(PROTOCOL_KEY)
    if value is None:
        return "decode-once"
    if value == EXACT_VALUE:
        return "vbench-long-exact"
    raise ValueError(f"metric id {metric!r}: unknown {PROTOCOL_KEY}={value!r}")


def aggregation_for_metric_id(spec: Aggregation, metric: str) -> Aggregation:
    """:func:`for_protocol` with the protocol read from the metric id (what the harness calls per id)."""
    return for_protocol(spec, protocol_of_metric_id(metric))


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
        clip_means: Video id → (plain mean, count) of its clips with weight > 0 — the per-video numbers behind
            ``clip_mean`` (a bootstrap of the pooled clip mean weights each video's mean by its count).
    """

    metric: str
    value: float
    per_video: dict[str, float]
    n_videos: int
    n_clips: int
    errors: dict[str, str] = field(default_factory=dict)
    clip_means: dict[str, tuple[float, int]] = field(default_factory=dict)


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
    counted: list[float] = []  # clip_mean: values of clips with weight > 0
    clip_means: dict[str, tuple[float, int]] = {}
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
        kept = [r.value for r in ordered if r.weight > 0]
        if kept:
            clip_means[vid] = (math.fsum(kept) / len(kept), len(kept))
        counted.extend(kept)
        n_clips += len(ordered)

    if not per_video:
        value = math.nan
    elif spec.video_to_suite == "mean":
        value = math.fsum(per_video.values()) / len(per_video)
    elif spec.video_to_suite == "clip_mean":
        value = math.fsum(counted) / len(counted) if counted else math.nan
    else:
        value = _reduce(all_values, all_weights, "weighted_mean")
    return AggregateResult(
        metric=metric,
        value=value * spec.suite_scale,
        per_video=per_video,
        n_videos=len(per_video),
        n_clips=n_clips,
        errors=errors,
        clip_means=clip_means,
    )

"""The rows of the harness's result files, one ``TypedDict`` per record type (``SCHEMA_VERSION`` 1).

Every JSONL file starts with a :class:`Header`; every row carries ``record`` and ``schema_version``. Values
that are not finite are written as ``null``. Field comments say where each value comes from.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Header(TypedDict):
    """First line of every JSONL file (``record: header``)."""

    record: str  # "header"
    schema_version: int  # store.SCHEMA_VERSION
    kind: str  # "clips" | "videos" | "manifest"
    suite: str  # suite name (an alias resolves to its target)
    suite_version: int  # the suite file's `version`
    suite_hash: str  # SuiteConfig.config_hash (overrides included)
    run_id: str  # <out>/<suite>/<run-id>
    provenance: dict[str, Any]  # git commit + dirty flag, library versions, device, dtype, world size, argv, time


class _RowBase(TypedDict):
    record: str
    schema_version: int
    suite: str
    suite_hash: str
    run_id: str
    method: str  # method name (a unit shared by two methods appears once per method)
    unit_key: str  # UnitKey.key: the video's content id (also `video_id`)
    prompt_id: str
    seed: int


class ClipResultRow(_RowBase):
    """``results/clips.jsonl``: one metric id on one clip (``record: clip``), fields of metrics.rows.ClipRow."""

    method_config_hash: str
    video_sha256: str
    metric: str  # full metric id with its protocol
    video_id: str  # = unit_key
    clip_index: int
    start_frame: int
    stop_frame: int
    new_frame: int  # first frame not shared with the previous clip (padded last clip)
    fps: float
    value: float | None
    weight: float  # frame pairs etc., for weighted_mean aggregation
    extra: dict[str, float | None]
    # (ClipRow.schema_version is the row schema of deepforcing.metrics; equal to 1 today)


class ClipErrorRow(_RowBase):
    """``results/clips.jsonl``: a video a metric could not score (``record: clip_error``), from VideoErrorRow."""

    method_config_hash: str
    video_sha256: str
    metric: str
    video_id: str
    reason: str  # one line: too short, undecodable, ...
    error: bool  # always true


class VideoResultRow(_RowBase):
    """``results/videos.jsonl``: a metric id's per-video value (``record: video``), from the declared aggregation."""

    metric: str
    value: float


class DriftResultRow(_RowBase):
    """``results/videos.jsonl``: a drift summary of one video's clip series (``record: drift``)."""

    metric: str  # drift summary id, e.g. drift.first_last@window=5,abs=true
    of: str  # the metric id whose series it summarises
    value: float | None  # null when undefined (video shorter than two windows, one clip, ...)


class MetricResult(TypedDict, total=False):
    """``aggregate.json``: ``results[method][metric]``."""

    value: float | None  # suite value
    n_videos: int  # videos that contributed
    n_clips: int  # clips that contributed (clip metrics)
    n_undefined: int  # videos where a drift summary is undefined
    n_clips_ref: int  # temporal FVD: clips in the first windows
    n_clips_eval: int  # temporal FVD: clips in the last windows
    higher_is_better: bool | None
    metric: str  # registered metric name ("drift:<name>" for drift columns)
    of: str  # drift columns: the summarised metric id
    errors: dict[str, str]  # unit key -> reason a video was not scored
    ci: dict[str, Any] | None  # deepforcing.stats.CIResult.to_dict(): n (prompts), mean, ci_low, ci_high, ...


class Problem(TypedDict):
    """``aggregate.json`` ``problems`` and ``results/problems.csv``: a failed or missing piece of a work item."""

    method: str
    prompt_id: str
    seed: int
    unit_key: str
    state: str  # "failed" (tried, did not work) | "missing" (not done yet)
    stage: str  # "generate" | "video" (files disagree) | "score"
    metric: str | None  # the metric, for stage "score"
    reason: str  # one line


class Aggregate(TypedDict):
    """``results/aggregate.json``."""

    record: str  # "aggregate"
    schema_version: int
    suite: str
    suite_version: int
    suite_hash: str
    run_id: str
    provenance: dict[str, Any]
    suite_config: dict[str, Any]  # the resolved SuiteConfig
    model: dict[str, str]  # name and one-line description of the model kind
    prompts: dict[str, Any]  # count, sha256 over (id, text sha256), ids
    metrics: dict[str, Any]  # name -> fingerprint (code + weights + protocol) and weights sha256
    methods: dict[str, Any]  # name -> config hash, resolved config, weights id, weights sha256
    results: dict[str, dict[str, MetricResult]]  # method -> metric column -> result
    n_samples: dict[str, dict[str, int]]  # method -> expected / generated / scored / failed / missing videos
    problems: list[Problem]  # every failed or missing piece (the one source of the counts)
    statistics: dict[str, Any]  # interval and test settings: confidence_level, n_resamples, seed, method
    paired: dict[str, dict[str, Any]]  # "<a> vs <b>" -> result key -> PairedResult.to_dict() + higher_is_better
    set_fvd: dict[str, Any]  # "<a> vs <b>" -> set-level FVD (value, n_clips, id) between two methods' videos
    timings: dict[str, dict[str, Any]]  # method -> FPS, per-chunk latency, peak memory, devices (machine-specific)


class UnitRecord(TypedDict):
    """``units/<key>/unit.json`` (and ``manifest.jsonl`` rows, plus ``used_by``): one generated video."""

    record: str  # "unit"
    schema_version: int
    unit_key: str
    unit: dict[str, Any]  # the UnitKey fields
    method: str  # the method that generated it
    method_config: dict[str, Any]  # resolved MethodConfig + config_hash
    weights: dict[str, str]  # weight file -> sha256
    prompt: dict[str, str]  # prompt_id, text, origin (<set>:<line>)
    segments: list[dict[str, Any]]  # [{prompt, start_s, end_s, start_latent_frame, end_latent_frame, switch}]
    switch_frames: list[int]  # latent frame of each prompt switch (empty for one prompt)
    prompt_truncated: bool | None  # the text encoder cut the prompt (the rest had no effect on the video)
    prompt_tokens: dict[str, Any] | None  # count (whole prompt), limit (what the encoder reads), truncated
    video: str  # "video.mp4", relative to the unit directory
    video_sha256: str
    video_bytes: int
    num_latent_frames: int
    num_pixel_frames: int
    timings: dict[str, Any]  # fps, sampling / decode / wall seconds, chunk_seconds, latency ms, peak memory, KV bytes
    attended_frames: list[float]
    device: dict[str, Any]
    dtype: str
    compiled: bool  # generated by the compiled DiT (``--compile``; equal to eager within the parity bar)
    rank: int  # informational only; never part of a key
    world_size: int
    started_at: str
    finished_at: str
    git: dict[str, Any]
    versions: dict[str, Any]


#: record type -> TypedDict of the rows in the result files.
ROW_TYPES = {
    "clip": ClipResultRow,
    "clip_error": ClipErrorRow,
    "video": VideoResultRow,
    "drift": DriftResultRow,
    "unit": UnitRecord,
}

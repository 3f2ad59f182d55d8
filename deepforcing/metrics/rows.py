"""Per-clip rows: what every metric writes, and all that aggregation and drift ever read.

One :class:`ClipRow` per (metric id, video, clip). Per-video and per-suite numbers are computed from
these rows by :mod:`deepforcing.metrics.aggregate`, drift summaries by :mod:`deepforcing.metrics.drift`.
A video that cannot be scored gets one :class:`VideoErrorRow` instead, so the other videos are still scored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bumped on any incompatible change to the fields below.
ROW_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ClipScore:
    """One metric value for one clip, before the video context is attached.

    Attributes:
        metric: Full metric id (name + protocol), see :mod:`deepforcing.metrics.identity`.
        clip_index: Index of the clip in the video's :func:`~deepforcing.metrics.clips.split_clips` output.
        value: The clip's score.
        weight: Weight of the clip in a ``weighted_mean`` aggregation (e.g. number of frame pairs for the
            VBench consistency dimensions); ignored by ``mean``.
        extra: Additional named numbers (diagnostics); never aggregated.
    """

    metric: str
    clip_index: int
    value: float
    weight: float = 1.0
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipRow:
    """A clip's score with everything needed to aggregate it and place it in time.

    Attributes:
        metric: Full metric id, e.g. ``vbench.subject_consistency@backbone=dino_vitb16,res=224``.
        video_id: Our own video id (never parsed from a file name).
        clip_index: 0-based clip index within the video.
        start_frame: First frame of the clip (inclusive), in the decoded video.
        stop_frame: One past the clip's last frame.
        new_frame: First frame not shared with the previous clip (``> start_frame`` only for the padded
            last clip, which borrows frames from its predecessor as VBench-Long does).
        fps: Native frame rate of the video (as decoded, not rounded).
        value: The clip's score.
        weight: Weight for ``weighted_mean`` aggregation.
        prompt_id: Our prompt id, if the video has one.
        extra: Diagnostics; never aggregated.
        schema_version: :data:`ROW_SCHEMA_VERSION` at the time of writing.
    """

    metric: str
    video_id: str
    clip_index: int
    start_frame: int
    stop_frame: int
    new_frame: int
    fps: float
    value: float
    weight: float = 1.0
    prompt_id: str | None = None
    extra: Mapping[str, float] = field(default_factory=dict)
    schema_version: int = ROW_SCHEMA_VERSION

    @property
    def t_start(self) -> float:
        """Clip start in seconds."""
        return self.start_frame / self.fps

    @property
    def t_end(self) -> float:
        """Clip end (exclusive) in seconds."""
        return self.stop_frame / self.fps

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict; non-finite numbers become ``None`` (JSON has no NaN)."""
        out = dataclasses.asdict(self)
        out["value"] = _finite_or_none(self.value)
        out["extra"] = {k: _finite_or_none(v) for k, v in self.extra.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClipRow:
        """Inverse of :meth:`to_json` (``None`` values come back as NaN)."""
        if data.get("schema_version") != ROW_SCHEMA_VERSION:
            raise ValueError(f"clip row schema_version {data.get('schema_version')!r} != {ROW_SCHEMA_VERSION}")
        kwargs = dict(data)
        kwargs["value"] = math.nan if data["value"] is None else float(data["value"])
        kwargs["extra"] = {k: math.nan if v is None else float(v) for k, v in data.get("extra", {}).items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class VideoErrorRow:
    """A video that could not be scored for a metric, with the reason (bad file, too short, …).

    Attributes:
        metric: Full metric id (or ``"*"`` when the video failed before any metric ran, e.g. decoding).
        video_id: Our video id.
        reason: One-line, human-readable reason.
        prompt_id: Our prompt id, if any.
        schema_version: :data:`ROW_SCHEMA_VERSION`.
    """

    metric: str
    video_id: str
    reason: str
    prompt_id: str | None = None
    schema_version: int = ROW_SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self) | {"error": True}


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None

"""Prompt segments of a multi-prompt video, and where they fall in its frames.

A multi-prompt video comes with its **segments**: ``[{"prompt": str, "start_s": float, "end_s": float}, ...]``,
in order, back to back (the engine's prompt schedules record exactly this in a unit's metadata; imported videos
give it in a mapping file's ``segments`` column). The harness passes them to
:func:`deepforcing.metrics.base.score_video` (``segments=``), which validates them with :func:`parse_segments`
and hands them to the metrics as :attr:`VideoContext.segments <deepforcing.metrics.base.VideoContext>`. A
single-prompt video is the one-segment case (``segments`` omitted: the metrics that accept one segment use the
video's prompt over the whole video).

Times map to frames as decoded: frame ``i`` shows the interval ``[i / fps, (i + 1) / fps)``, so a segment
``[start_s, end_s)`` holds the frames ``ceil(start_s * fps) .. ceil(end_s * fps) - 1`` (times within 1e-6 of a
frame boundary snap to it, so ``5.0 s`` at 16 fps is frame 80 exactly). The last segment may end up to one frame
after the video (rounding of a schedule); a segment that starts after the video ends, has no frame, or a video
that runs more than one frame past the last segment is an error, because the schedule does not describe the video.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deepforcing.errors import UserError

if TYPE_CHECKING:
    from deepforcing.metrics.clips import ClipSpan

#: Two times closer than this (seconds) are the same time.
TIME_EPS = 1e-6


@dataclass(frozen=True)
class Segment:
    """One prompt of a multi-prompt video.

    Attributes:
        prompt: The prompt in force.
        start_s: Start time in seconds (inclusive).
        end_s: End time in seconds (exclusive).
    """

    prompt: str
    start_s: float
    end_s: float

    def to_json(self) -> dict[str, Any]:
        """``{"prompt", "start_s", "end_s"}``."""
        return {"prompt": self.prompt, "start_s": self.start_s, "end_s": self.end_s}


def parse_segments(data: Sequence[Segment | Mapping[str, Any]] | None) -> tuple[Segment, ...]:
    """Validate segments given as :class:`Segment` objects or ``{"prompt", "start_s", "end_s"}`` mappings.

    Args:
        data: The segments in order; ``None`` or empty gives ``()``.

    Returns:
        The segments.

    Raises:
        UserError: Listing every problem: a missing field or an empty prompt, a non-finite, negative or empty
            time range, or a segment that does not start where the previous one ended.
    """
    if not data:
        return ()
    problems: list[str] = []
    out: list[Segment] = []
    for i, item in enumerate(data):
        if isinstance(item, Segment):
            seg = item
        else:
            try:
                seg = Segment(str(item["prompt"]), float(item["start_s"]), float(item["end_s"]))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"segment {i}: needs prompt, start_s and end_s ({exc})")
                continue
        if not seg.prompt.strip():
            problems.append(f"segment {i}: empty prompt")
        if not (math.isfinite(seg.start_s) and math.isfinite(seg.end_s)) or seg.start_s < 0:
            problems.append(f"segment {i}: times {seg.start_s}..{seg.end_s} must be finite and >= 0")
        elif seg.end_s - seg.start_s <= TIME_EPS:
            problems.append(f"segment {i}: ends at {seg.end_s:g} s, not after its start {seg.start_s:g} s")
        if out and abs(seg.start_s - out[-1].end_s) > TIME_EPS:
            problems.append(
                f"segment {i}: starts at {seg.start_s:g} s, but segment {i - 1} ends at {out[-1].end_s:g} s"
            )
        out.append(seg)
    if problems:
        raise UserError(
            "bad prompt segments: " + "; ".join(problems),
            'give segments in order, back to back, as [{"prompt": ..., "start_s": ..., "end_s": ...}, ...]',
        )
    return tuple(out)


def time_to_frame(t: float, fps: float) -> int:
    """The first frame whose interval starts at or after ``t`` seconds: ``ceil(t * fps)`` (snapped within 1e-6)."""
    x = t * fps
    return round(x) if abs(x - round(x)) <= TIME_EPS * max(1.0, fps) else math.ceil(x)


def segment_frames(segments: Sequence[Segment], fps: float, num_frames: int) -> list[tuple[int, int]]:
    """Frame range ``[start, stop)`` of every segment.

    Args:
        segments: Validated segments (:func:`parse_segments`).
        fps: Native frame rate.
        num_frames: Frames in the decoded video.

    Returns:
        One ``(start, stop)`` per segment; the last ``stop`` is ``num_frames``.

    Raises:
        UserError: A segment with no frame, segments that start more than one frame after 0 s, or that end more
            than one frame before or after the video.
    """
    if not segments:
        raise UserError("no segments given")
    bounds = [time_to_frame(s.start_s, fps) for s in segments] + [time_to_frame(segments[-1].end_s, fps)]
    if abs(bounds[-1] - num_frames) > 1:
        raise UserError(
            f"the segments end at {segments[-1].end_s:g} s (frame {bounds[-1]}), but the video has {num_frames} "
            f"frames ({num_frames / fps:g} s at {fps:g} fps)",
            "give the segments of this video (the schedule it was generated or edited with)",
        )
    if bounds[0] > 1:
        raise UserError(
            f"the first segment starts at {segments[0].start_s:g} s; segments must cover the video from 0 s"
        )
    bounds[0], bounds[-1] = 0, num_frames
    out = list(zip(bounds[:-1], bounds[1:], strict=True))
    empty = [i for i, (a, b) in enumerate(out) if b <= a]
    if empty:
        raise UserError(f"segment(s) {', '.join(map(str, empty))} hold no frame at {fps:g} fps")
    return out


def video_segments(segments: Sequence[Segment], prompt: str | None, num_frames: int, fps: float) -> tuple[Segment, ...]:
    """The segments of a video: the given ones, or its single prompt over the whole video (the one-segment case).

    Raises:
        UserError: If there are neither segments nor a prompt.
    """
    if segments:
        return tuple(segments)
    if prompt:
        return (Segment(prompt, 0.0, num_frames / fps),)
    raise UserError(
        "this metric needs the video's prompt segments (or its prompt)",
        "pass segments=[{'prompt', 'start_s', 'end_s'}, ...] (or prompt=...) to deepforcing.metrics.base.score_video",
    )


def segment_spans(segments: Sequence[Segment], fps: float, num_frames: int) -> list[ClipSpan]:
    """One :class:`~deepforcing.metrics.clips.ClipSpan` per segment (index = segment index)."""
    from deepforcing.metrics.clips import ClipSpan

    return [ClipSpan(i, a, b, a) for i, (a, b) in enumerate(segment_frames(segments, fps, num_frames))]


def require_switches(segments: Sequence[Segment], metric: str) -> None:
    """Raise a clear error for a video with fewer than two segments (it has no prompt switch)."""
    if len(segments) < 2:
        raise UserError(
            f"{metric} scores prompt switches, but this video has {len(segments)} segment(s)",
            "score multi-prompt videos (segments from a prompt schedule or a mapping file) with this metric",
        )

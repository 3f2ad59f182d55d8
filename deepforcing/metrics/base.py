"""The contract every per-clip metric follows, and the loop that turns a decoded video into rows.

A metric is constructed from its frozen config, exposes the ids it writes (``metric_ids``) and its declared
:class:`~deepforcing.metrics.aggregate.Aggregation`, and scores the clips of one decoded video. Frames are
decoded once per video and shared by all metrics (:func:`score_video`).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.clips import (
    ClipProtocol,
    ClipSpan,
    detect_scene_cuts,
    reencode_clips,
    reencode_scenes,
    split_clips,
    split_scene_clips,
)
from deepforcing.metrics.rows import ClipRow, ClipScore, VideoErrorRow
from deepforcing.metrics.segments import Segment, parse_segments

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def require_rgb_uint8(frames: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``frames`` is ``(T, H, W, 3)`` uint8, the layout every metric is given."""
    import torch

    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {tuple(frames.shape)} {frames.dtype}")


@dataclass(frozen=True)
class VideoContext:
    """What a metric may know about a video besides its frames.

    Attributes:
        fps: Native frame rate as decoded (not rounded).
        prompt: The text prompt the video was generated from (prompt-dependent metrics need it).
        segments: The prompt segments of a multi-prompt video, validated
            (:func:`~deepforcing.metrics.segments.parse_segments`); empty for a single-prompt video.
    """

    fps: float
    prompt: str | None = None
    segments: tuple[Segment, ...] = ()


class ClipMetric(abc.ABC):
    """A metric scored per clip of a video.

    Subclasses set ``aggregation`` and implement ``metric_ids`` and ``score_clip`` (or override
    ``score_video`` when a clip's score depends on other clips, e.g. distance to the first clip).
    """

    aggregation: ClassVar[Aggregation]
    #: Clip duration (seconds) this metric is scored on; ``None`` uses the caller's (the suite's) duration.
    #: Set by metrics whose protocol fixes its own clip length (e.g. 10-s segments).
    clip_seconds: float | None = None
    #: False for metrics that read the whole video's timeline rather than clips (long-horizon coherence,
    #: prompt-switch metrics): the clip protocol's re-encode does not apply to them, they always get the decoded
    #: frames, and their ids are never tagged with the protocol.
    uses_clips: ClassVar[bool] = True

    def units(self, num_frames: int, context: VideoContext) -> list[ClipSpan]:
        """The spans a metric with ``uses_clips = False`` writes rows for (default: the whole video as one).

        Args:
            num_frames: Frames of the decoded video.
            context: The video's fps, prompt and segments.

        Raises:
            UserError: If the video does not suit the metric (e.g. no segments where they are needed).
        """
        return [ClipSpan(0, 0, num_frames, 0)]

    @property
    @abc.abstractmethod
    def metric_ids(self) -> list[str]:
        """Every metric id this metric writes rows for."""

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB frames of the clip.
            clip_index: The clip's index in the video.

        Returns:
            One :class:`ClipScore` per metric id.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score_clip or score_video")

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every clip of a decoded video.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB frames of the whole video.
            clips: The video's clip spans.
            context: Frame rate and prompt of the video (metrics that need neither ignore it).

        Returns:
            The clip scores of all clips and all ids.
        """
        out: list[ClipScore] = []
        for span in clips:
            out.extend(self.score_clip(frames[span.start : span.stop], span.index))
        return out


def score_video(
    video_id: str,
    frames: torch.Tensor,
    fps: float,
    metrics: Sequence[ClipMetric],
    *,
    prompt_id: str | None = None,
    prompt: str | None = None,
    duration_s: float = 2.0,
    allow_short: bool = False,
    scene_threshold: float | None = None,
    protocol: ClipProtocol | None = None,
    segments: Sequence[Segment | Mapping[str, Any]] | None = None,
) -> list[ClipRow | VideoErrorRow]:
    """Split a decoded video into VBench-Long clips and score them with every metric.

    A :class:`~deepforcing.errors.UserError` (too short, no frames, bad fps, …) becomes one
    :class:`VideoErrorRow` per metric id instead of an exception, so a batch of videos goes on.

    Args:
        video_id: Our id of the video.
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        fps: Native frame rate.
        metrics: Metrics to run on the shared frames.
        prompt_id: Our prompt id, recorded in the rows.
        prompt: The prompt text, handed to prompt-dependent metrics (never parsed from a file name).
        duration_s: Clip duration (VBench-Long: 2 s) of metrics that do not set their own ``clip_seconds``.
        allow_short: Score a video shorter than one clip as a single clip (VBench-Long behaviour).
        scene_threshold: Split at scene cuts first (VBench-Long ``--use_semantic_splitting``; PySceneDetect
            ``ContentDetector`` threshold, VBench-Long: 35.0), then split every scene into clips
            (:func:`~deepforcing.metrics.clips.split_scene_clips`). ``None`` (default): no scene detection.
        protocol: Clip protocol (:class:`~deepforcing.metrics.clips.ClipProtocol`); ``None`` is ``decode-once``.
            Under ``vbench-long-exact`` every clip (and first every scene) is re-encoded before the metrics see
            it, and every row's metric id is tagged with the protocol (``protocol.tag_ids(metric.metric_ids)``
            are the ids a metric writes then); rows keep the original spans, so they are placed in time as usual.
            Metrics with ``uses_clips = False`` are scored on the decoded frames under either protocol.
        segments: Prompt segments of a multi-prompt video (``[{"prompt", "start_s", "end_s"}, ...]`` or
            :class:`~deepforcing.metrics.segments.Segment`); bad segments make every metric's row an error row.

    Returns:
        Clip rows (and error rows) for all metrics.
    """
    protocol = protocol or ClipProtocol()
    ids = [mid for m in metrics for mid in _ids(m, protocol)]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        return [
            VideoErrorRow(mid, video_id, f"expected (T, H, W, 3) frames, got {tuple(frames.shape)}", prompt_id)
            for mid in ids
        ]
    try:
        cuts = detect_scene_cuts(frames, fps, scene_threshold) if scene_threshold is not None else []
        parsed = parse_segments(segments)
    except UserError as err:
        return [VideoErrorRow(mid, video_id, str(err), prompt_id) for mid in ids]
    splits: dict[tuple[float, bool], tuple[list[ClipSpan], torch.Tensor, list[ClipSpan]] | UserError] = {}
    context = VideoContext(fps=float(fps), prompt=prompt, segments=parsed)
    rows: list[ClipRow | VideoErrorRow] = []
    source: torch.Tensor | UserError = frames  # what exact-protocol clips are cut from
    if protocol.reencode and cuts and any(m.uses_clips for m in metrics):
        try:
            source = reencode_scenes(frames, cuts, fps, protocol)  # VBench-Long writes every scene to an mp4 first
        except UserError as err:
            source = err
    for metric in metrics:
        seconds = duration_s if metric.clip_seconds is None else metric.clip_seconds
        exact = protocol.reencode and metric.uses_clips
        metric_ids = _ids(metric, protocol)
        if not metric.uses_clips:  # the metric's own units (whole video, segments, boundaries), decoded frames
            try:
                own = metric.units(int(frames.shape[0]), context)
                split: tuple[list[ClipSpan], torch.Tensor, list[ClipSpan]] | UserError = (own, frames, own)
            except UserError as err:
                split = err
        else:
            key = (seconds, exact)
            if key not in splits:
                splits[key] = _split(frames, source, cuts, fps, seconds, allow_short, protocol if exact else None)
            split = splits[key]
        if isinstance(split, UserError):
            rows.extend(VideoErrorRow(mid, video_id, str(split), prompt_id) for mid in metric_ids)
            continue
        clips, scored_frames, scored_clips = split
        spans = {c.index: c for c in clips}
        try:
            scores = metric.score_video(scored_frames, scored_clips, context)
        except UserError as err:
            logger.warning("video %s: %s failed: %s", video_id, type(metric).__name__, err)
            rows.extend(VideoErrorRow(mid, video_id, str(err), prompt_id) for mid in metric_ids)
            continue
        for s in scores:
            span = spans[s.clip_index]
            rows.append(
                ClipRow(
                    metric=protocol.tag(s.metric) if exact else s.metric,
                    video_id=video_id,
                    clip_index=s.clip_index,
                    start_frame=span.start,
                    stop_frame=span.stop,
                    new_frame=span.new_frame,
                    fps=float(fps),
                    value=float(s.value),
                    weight=float(s.weight),
                    prompt_id=prompt_id,
                    extra=dict(s.extra),
                )
            )
    return rows


def _split(
    frames: torch.Tensor,
    source: torch.Tensor | UserError,
    cuts: list[int],
    fps: float,
    seconds: float,
    allow_short: bool,
    protocol: ClipProtocol | None,
) -> tuple[list[ClipSpan], torch.Tensor, list[ClipSpan]] | UserError:
    """``(clips, frames to score, their spans)``: the decoded frames, or the clips re-encoded (``protocol``)."""
    try:
        if cuts:
            clips = split_scene_clips(int(frames.shape[0]), cuts, fps, seconds)
        else:
            clips = split_clips(int(frames.shape[0]), fps, seconds, allow_short=allow_short)
        if protocol is None:
            return clips, frames, clips
        if isinstance(source, UserError):
            return source
        return (clips, *reencode_clips(source, clips, fps, protocol))
    except UserError as err:
        return err


def _ids(metric: ClipMetric, protocol: ClipProtocol) -> list[str]:
    """The ids ``metric`` writes under ``protocol`` (tagged when its clips are re-encoded)."""
    return protocol.tag_ids(metric.metric_ids) if metric.uses_clips else list(metric.metric_ids)


def metric_ids_under(metric: ClipMetric, protocol: ClipProtocol | None) -> list[str]:
    """The metric ids a metric's rows carry under a clip protocol (what a caller filters cached rows by)."""
    return _ids(metric, protocol or ClipProtocol())

"""VBench-Long clip splitter: fixed-length clips at native fps, the last one padded from earlier frames.

VBench-Long (``vbench2_beta_long/utils.py::split_video_into_clips``) reads the frame rate as ``int(avg_fps)``
and cuts ``int(fps) * duration`` frames per clip. Whole clips are taken back to back; a remainder of ``r``
frames becomes one more full-length clip that starts ``clip_len - r`` frames earlier, i.e. borrows the tail of
the previous clip. A video shorter than one clip is kept whole as its only clip.

Here the split is a list of frame spans over the decoded video (no clip files are written, so nothing is
re-encoded), and ids are ours: a clip is ``(video_id, clip_index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepforcing.errors import UserError


@dataclass(frozen=True)
class ClipSpan:
    """Frames ``[start, stop)`` of a video; ``new_frame`` is the first frame not in the previous clip.

    Attributes:
        index: 0-based clip index.
        start: First frame (inclusive).
        stop: One past the last frame.
        new_frame: ``start`` except for a padded last clip, whose frames ``[start, new_frame)`` repeat the end
            of the previous clip.
    """

    index: int
    start: int
    stop: int
    new_frame: int

    @property
    def num_frames(self) -> int:
        """Number of frames in the clip."""
        return self.stop - self.start

    @property
    def padded(self) -> bool:
        """True if the clip borrows frames from its predecessor."""
        return self.new_frame > self.start


def clip_length(fps: float, duration_s: float = 2.0) -> int:
    """Frames per clip as VBench-Long computes it: ``int(fps) * duration``.

    Args:
        fps: Native (average) frame rate, e.g. ``16.0`` or ``23.976`` (→ 23 frames per second, as VBench).
        duration_s: Clip duration in seconds; ``int(fps) * duration_s`` must be a whole number of frames.

    Returns:
        The clip length in frames.

    Raises:
        UserError: If the frame rate is below 1 fps or the product is not a positive whole number.
    """
    if not fps >= 1:
        raise UserError(f"frame rate {fps!r} is below 1 fps", "check the video's time base")
    n = int(fps) * duration_s
    if n != int(n) or n < 1:
        raise UserError(
            f"int(fps)={int(fps)} x duration {duration_s} s = {n} is not a positive whole number of frames",
            "choose a clip duration that gives whole clips at this frame rate",
        )
    return int(n)


def split_clips(num_frames: int, fps: float, duration_s: float = 2.0, *, allow_short: bool = False) -> list[ClipSpan]:
    """Split ``num_frames`` frames into VBench-Long clips.

    Args:
        num_frames: Frames in the decoded video.
        fps: Native frame rate (truncated to an integer as VBench-Long does).
        duration_s: Clip duration in seconds (VBench-Long uses 2 s for the quality dimensions).
        allow_short: VBench-Long scores a video shorter than one clip as a single, shorter clip. When False
            (the default) such a video is an error, because its clip is not comparable with the others.

    Returns:
        The clips in order; every clip has exactly ``clip_length(fps, duration_s)`` frames unless the video is
        shorter than one clip and ``allow_short`` is set.

    Raises:
        UserError: If the video has no frames, or is shorter than one clip and ``allow_short`` is False.
    """
    if num_frames <= 0:
        raise UserError("video has no frames", "the file is empty or could not be decoded")
    length = clip_length(fps, duration_s)
    if num_frames < length:
        if not allow_short:
            raise UserError(
                f"video has {num_frames} frames, shorter than one {duration_s:g}-s clip ({length} frames at "
                f"int(fps)={int(fps)})",
                "generate a longer video, or allow short videos to be scored whole as VBench-Long does",
            )
        return [ClipSpan(0, 0, num_frames, 0)]
    whole, rest = divmod(num_frames, length)
    spans = [ClipSpan(i, i * length, (i + 1) * length, i * length) for i in range(whole)]
    if rest:
        # The last clip ends at the last frame and borrows (length - rest) frames from the previous one.
        spans.append(ClipSpan(whole, num_frames - length, num_frames, whole * length))
    return spans

"""VBench-Long clip splitter: fixed-length clips at native fps, the last one padded from earlier frames.

VBench-Long (``vbench2_beta_long/utils.py::split_video_into_clips``) reads the frame rate as ``int(avg_fps)``
and cuts ``int(fps) * duration`` frames per clip. Whole clips are taken back to back; a remainder of ``r``
frames becomes one more full-length clip that starts ``clip_len - r`` frames earlier, i.e. borrows the tail of
the previous clip. A video shorter than one clip is kept whole as its only clip.

Here the split is a list of frame spans over the decoded video (no clip files are written, so nothing is
re-encoded), and ids are ours: a clip is ``(video_id, clip_index)``.

Option: scene-cut splitting (VBench-Long ``--use_semantic_splitting``, off by default there and here).
:func:`detect_scene_cuts` runs PySceneDetect's ``ContentDetector(threshold=35.0)`` through a ``SceneManager``
with its defaults (``min_scene_len`` 15 frames, automatic downscaling to ~256 px wide), as VBench-Long does, on
the already decoded frames; :func:`split_scene_clips` then splits every scene on its own into fixed-length
clips (a scene shorter than one clip is kept whole as one shorter clip, as VBench-Long does). PySceneDetect is
optional: ``pip install 'deepforcing-eval[scenes]'`` (``scenedetect-headless``, which brings OpenCV).
Differences from VBench-Long: it writes every scene to an mp4 (lossy) before splitting it, and averages clips
per scene and then scenes as if they were separate videos; here all clips of all scenes belong to the video
and are averaged together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deepforcing.errors import UserError

if TYPE_CHECKING:
    import torch

#: ``ContentDetector`` threshold VBench-Long uses (``VBenchLong.preprocess(threshold=35.0)``).
SCENE_THRESHOLD = 35.0


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


def split_scene_clips(num_frames: int, cuts: list[int], fps: float, duration_s: float = 2.0) -> list[ClipSpan]:
    """Split every scene into VBench-Long clips; clip indices run on across scenes.

    Args:
        num_frames: Frames in the decoded video.
        cuts: First frame of every scene after the first (strictly increasing, inside ``(0, num_frames)``).
        fps: Native frame rate.
        duration_s: Clip duration in seconds.

    Returns:
        The clips of all scenes in order. A scene shorter than one clip is one shorter clip.

    Raises:
        UserError: If the cuts are not increasing inside the video, or a scene has fewer than 2 frames.
    """
    bounds = [0, *cuts, num_frames]
    if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise UserError(f"scene cuts {cuts} are not strictly increasing inside 0..{num_frames}")
    spans: list[ClipSpan] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b - a < 2:
            raise UserError(f"the scene at frames {a}..{b - 1} has a single frame", "turn scene splitting off")
        n = len(spans)
        for c in split_clips(b - a, fps, duration_s, allow_short=True):
            spans.append(ClipSpan(n + c.index, a + c.start, a + c.stop, a + c.new_frame))
    return spans


def detect_scene_cuts(frames: torch.Tensor, fps: float, threshold: float = SCENE_THRESHOLD) -> list[int]:
    """Scene cuts of decoded frames with PySceneDetect, as VBench-Long detects them.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        fps: Native frame rate.
        threshold: ``ContentDetector`` threshold (VBench-Long: 35.0).

    Returns:
        The first frame of every scene after the first (empty: no cut, the video is one scene).

    Raises:
        UserError: If PySceneDetect is not installed (the message names the extra that brings it).
    """
    try:
        from scenedetect import SceneManager
        from scenedetect.detectors import ContentDetector
    except ImportError as err:
        raise UserError(
            "scene-cut splitting needs PySceneDetect, which is not installed",
            "pip install 'deepforcing-eval[scenes]' (scenedetect-headless)",
        ) from err
    manager = SceneManager()
    manager.add_detector(ContentDetector(threshold=threshold))
    manager.detect_scenes(_frame_stream(frames, fps))
    return [int(start.frame_num) for start, _ in manager.get_scene_list()[1:]]


def _frame_stream(frames: torch.Tensor, fps: float):
    """A PySceneDetect ``VideoStream`` over decoded frames (BGR, as its OpenCV backend reads them)."""
    from fractions import Fraction

    import numpy as np
    from scenedetect.frame_timecode import FrameTimecode
    from scenedetect.video_stream import VideoStream

    bgr = np.ascontiguousarray(frames.numpy()[..., ::-1])  # (T, H, W, 3) uint8 BGR
    rate = Fraction(fps).limit_denominator(1001)

    class _Frames(VideoStream):
        BACKEND_NAME = "deepforcing_frames"

        def __init__(self) -> None:
            self._n = 0

        path = property(lambda self: "<decoded frames>")
        name = property(lambda self: "decoded")
        is_seekable = property(lambda self: False)
        frame_rate = property(lambda self: rate)
        duration = property(lambda self: FrameTimecode(len(bgr), rate))
        frame_size = property(lambda self: (bgr.shape[2], bgr.shape[1]))
        aspect_ratio = property(lambda self: 1.0)
        position = property(lambda self: FrameTimecode(max(self._n - 1, 0), rate))
        position_ms = property(lambda self: 1000.0 * max(self._n - 1, 0) / float(rate))
        frame_number = property(lambda self: self._n)

        def read(self, decode: bool = True):
            if self._n >= len(bgr):
                return False
            self._n += 1
            return bgr[self._n - 1] if decode else True

        def reset(self) -> None:
            self._n = 0

        def seek(self, target) -> None:
            raise NotImplementedError("decoded frames are read once, in order")

    return _Frames()

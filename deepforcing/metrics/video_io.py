"""Decode a video once, to the ``(T, H, W, 3)`` uint8 RGB frames every metric shares.

Decoding uses PyAV (FFmpeg); any pixel format (grayscale, alpha, 10-bit, …) is converted to ``rgb24``.
Problems become a :class:`~deepforcing.errors.UserError` with the reason, which the scoring loop records as a
per-video error row (:class:`~deepforcing.metrics.rows.VideoErrorRow`) before going on with the next video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepforcing.errors import UserError

#: Frames above this many pixels are refused (decoded frames of a long 4K video would not fit in memory).
MAX_PIXELS = 4096 * 2304


@dataclass(frozen=True)
class DecodedVideo:
    """Frames and timing of a decoded video.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        fps: Average frame rate of the stream.
    """

    frames: torch.Tensor
    fps: float


def decode_video(path: str | Path, max_pixels: int = MAX_PIXELS) -> DecodedVideo:
    """Decode every frame of the first video stream.

    Args:
        path: Video file.
        max_pixels: Refuse frames larger than this (width × height).

    Returns:
        The frames and the average fps.

    Raises:
        UserError: Missing, unreadable or corrupt file, no video stream, zero frames, unknown or non-positive
            frame rate, or frames larger than ``max_pixels``.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise UserError(f"video not found: {p}")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as err:
        raise UserError(f"cannot open video {p.name}: {err}") from err
    with container:
        if not container.streams.video:
            raise UserError(f"{p.name} has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if rate is None or float(rate) <= 0:
            raise UserError(f"{p.name} has no usable frame rate ({rate})")
        if stream.width * stream.height > max_pixels:
            raise UserError(
                f"{p.name} is {stream.width}x{stream.height}, more than {max_pixels} pixels per frame",
                "downscale the video before scoring",
            )
        frames: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
        except (av.error.FFmpegError, ValueError) as err:
            raise UserError(f"{p.name} is corrupt after {len(frames)} frames: {err}") from err
    if not frames:
        raise UserError(f"{p.name} has no decodable frames")
    return DecodedVideo(torch.from_numpy(np.stack(frames)), float(rate))  # (T, H, W, 3)

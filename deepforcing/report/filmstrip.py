"""Filmstrips: one frame every few seconds of an mp4, as small inline JPEG images.

Frames are decoded in one streaming pass (only the picked ones are kept), so a 60-s 832x480 video costs one
decode and a few kilobytes per picked frame.
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Still:
    """One picked frame.

    Attributes:
        t: Time of the frame in seconds.
        index: Frame index.
        data_uri: ``data:image/jpeg;base64,...``.
        width: Width of the image in pixels.
        height: Height of the image in pixels.
    """

    t: float
    index: int
    data_uri: str
    width: int
    height: int


def default_every(duration_s: float) -> float:
    """Seconds between filmstrip frames: 2 s up to 15 s of video, 5 s up to 60 s, then 10 s."""
    if duration_s <= 15:
        return 2.0
    if duration_s <= 60:
        return 5.0
    return 10.0


def filmstrip(path: str | Path, every_s: float | None = None, height: int = 96, quality: int = 80) -> list[Still]:
    """Pick a frame at t = 0, every_s, 2 every_s, ... (and the last frame) and encode each as a JPEG.

    Args:
        path: The mp4.
        every_s: Seconds between frames (default :func:`default_every` of the video's length).
        height: Image height; smaller videos keep their size (browsers scale them up, pixelated).
        quality: JPEG quality.

    Returns:
        The stills in time order; empty if the file is missing or cannot be decoded (logged).
    """
    import av
    from PIL import Image

    p = Path(path)
    if not p.is_file():
        log.warning("filmstrip: video not found: %s", p)
        return []
    try:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 16)
            n = stream.frames or 0
            duration = n / fps if n else float(stream.duration * stream.time_base) if stream.duration else 0.0
            every = every_s or default_every(duration)
            wanted = sorted(
                {round(k * every * fps) for k in range(int(duration / every) + 1)} | ({n - 1} if n else set())
            )
            picked: dict[int, Image.Image] = {}
            last = None
            for i, frame in enumerate(container.decode(stream)):
                last = (i, frame)
                if i in wanted:
                    picked[i] = frame.to_image()
            if last is not None and last[0] not in picked and not n:
                picked[last[0]] = last[1].to_image()
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        log.warning("filmstrip: cannot decode %s: %s", p, exc)
        return []
    stills = []
    for i in sorted(picked):
        img = picked[i].convert("RGB")
        if img.height > height:
            img = img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, optimize=True)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        stills.append(Still(t=i / fps, index=i, data_uri=uri, width=img.width, height=img.height))
    return stills

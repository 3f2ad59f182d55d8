"""Prompt segments as the samplers see them: text conditioning per segment and how the cache treats a switch.

A video's text input is a list of :class:`TextSegment` (one prompt = one segment starting at frame 0). Each later
segment starts at a chunk boundary; before that chunk the sampler switches the text and announces the switch to
the cache policy (:meth:`deepforcing.policies.base.CachePolicy.on_switch`) with the segment's mode:

* ``keep`` — only the text changes; the cache keeps what it holds.
* ``flush`` — Infinity-RoPE's KV flush as its code does it (``pipeline/causal_inference.py:214-222`` @ 63d7b84):
  keep the policy's sink and the **last 2** cached frames, drop the rest. With Infinity-RoPE's own 6-frame cache
  this is exactly what its next eviction leaves anyway, so there it equals ``keep`` (research note §4.2b).
* ``flush-paper`` — the paper's description of the flush (arXiv 2511.20649 §4): the sink and the **last** frame.
* ``cut`` — Infinity-RoPE's RoPE cut (``causal_model.py:27-44``): a flush, and the new scene's first chunk sits at
  positions 45… instead of right after the cache. Defined only for block-relative positions (``infinity-rope``).
* ``recache`` — LongLive's KV re-cache (``interactive_causal_inference.py:34-96`` after its fix 1f88860): recompute
  the K/V of every cached non-sink frame from its clean latents under the **new** prompt in one pass at the context
  timestep, at the frames' own positions; the sink keeps its K/V.

Which modes a policy supports is its ``switch_modes``; anything else is refused before any compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deepforcing.errors import UserError
from deepforcing.model.wan import TextConditioning

#: Every switch mode, in documentation order.
SWITCH_MODES = ("keep", "flush", "flush-paper", "cut", "recache")
#: Frames kept after the sink by ``flush`` (Infinity-RoPE's code) and ``flush-paper`` (its paper).
FLUSH_KEEP_FRAMES = {"flush": 2, "flush-paper": 1}


@dataclass(frozen=True)
class TextSegment:
    """One prompt segment of a video.

    Attributes:
        start_frame: First latent frame of the segment (0 for the first; a chunk boundary for the others).
        text: The segment's text conditioning (``model.encode_text``).
        switch: How the cache is treated when this segment starts (ignored for the first segment).
    """

    start_frame: int
    text: TextConditioning
    switch: str = "keep"


def as_segments(
    text: TextConditioning | Sequence[TextSegment], num_frames: int, chunk_frames: int
) -> list[TextSegment]:
    """The segments of a sampler call (one conditioning = one segment), checked.

    Raises:
        UserError: Segments that do not start at 0, are not ascending, do not start on a chunk boundary inside
            the video, or name an unknown switch mode (every problem listed).
    """
    if isinstance(text, TextConditioning):
        return [TextSegment(0, text)]
    segments = list(text)
    problems = []
    if not segments:
        problems.append("no segment")
    elif segments[0].start_frame != 0:
        problems.append(f"the first segment starts at frame {segments[0].start_frame}, not 0")
    for i, seg in enumerate(segments):
        if seg.switch not in SWITCH_MODES:
            problems.append(
                f"segment {i}: unknown switch mode {seg.switch!r} (choose one of {', '.join(SWITCH_MODES)})"
            )
        if i and seg.start_frame <= segments[i - 1].start_frame:
            problems.append(f"segment {i} starts at frame {seg.start_frame}, not after segment {i - 1}")
        if i and (seg.start_frame % chunk_frames or seg.start_frame >= num_frames):
            problems.append(
                f"segment {i} starts at frame {seg.start_frame}: switches happen at chunk boundaries "
                f"(multiples of {chunk_frames}) inside the {num_frames}-frame video"
            )
    if problems:
        raise UserError("invalid prompt segments: " + "; ".join(problems))
    return segments

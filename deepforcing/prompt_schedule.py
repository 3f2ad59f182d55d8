"""Prompt schedules: the text input of a video as a list of segments (one prompt = the one-segment case).

A schedule file is YAML or JSONL, a list of segments, each ``{prompt: TEXT, seconds: S}`` or
``{prompt: TEXT, latent_frames: N}``; a suite's file may hold several named schedules
(``{schedules: [{id: ID, segments: [...]}, ...]}``). Two foreign formats are imported:

* **Infinity-RoPE's prompt syntax** (``inference.py`` prompt files, one video per line): segments separated by ``|``,
  each ``text[Ns]`` (N seconds → ``int(N·16/12)`` chunks, at least 1) or without a duration (14 chunks, 10.5 s); a
  ``#`` anywhere in a segment makes the boundary **after** it a RoPE cut (``pipeline/causal_inference.py:398-440`` @
  63d7b84 — whatever its README says); its other boundaries are KV flushes.
* **LongLive's JSONL** (``MultiTextDataset``): one video per line, ``{"prompts": [p1, p2, ...]}``; the switch frames
  are not in the file but one global list (``switch_frame_indices``, 40, 80, 120, 160, 200 in its interactive config
  for 240 frames), and a switch happens at the first chunk starting at or after each index (LongLive's ``>=``).

Resolving a schedule against a method's chunk size (:meth:`PromptSchedule.resolve`) checks it up front and lists
every problem at once: empty prompts, durations that are not positive, segments shorter than a chunk, and a total
that is not a whole number of chunks. A boundary that does not fall on a chunk boundary moves to the next one
(LongLive's rule); the metadata records where each switch actually happened.

This module imports neither torch nor the model (validation and dry runs stay light).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError

#: Switch modes (as ``deepforcing.samplers.switching.SWITCH_MODES``; repeated here to stay torch-free).
SWITCH_MODES = ("keep", "flush", "flush-paper", "cut", "recache")
#: Wan: 16 fps, 4 video frames per latent frame.
FPS = 16
FRAMES_PER_LATENT = 4
#: LongLive's interactive config (``configs/longlive_interactive_inference.yaml``): switch indices, total frames.
LONGLIVE_SWITCH_FRAME_INDICES = (40, 80, 120, 160, 200)
LONGLIVE_NUM_OUTPUT_FRAMES = 240
#: Infinity-RoPE: a segment without a duration lasts 14 chunks (10.5 s at 16 fps).
INFINITY_ROPE_DEFAULT_CHUNKS = 14


@dataclass(frozen=True)
class ScheduleSegment:
    """One segment as written: a prompt and exactly one of a duration in seconds or in latent frames.

    Attributes:
        prompt: The segment's text.
        seconds: Duration in seconds of video.
        latent_frames: Duration in latent frames.
        switch: How the cache is treated when this segment starts (None: the run's switch mode); set by imports
            whose syntax says it per boundary (Infinity-RoPE's ``#``).
    """

    prompt: str
    seconds: float | None = None
    latent_frames: int | None = None
    switch: str | None = None


@dataclass(frozen=True)
class ResolvedSegment:
    """A segment placed on the latent-frame grid.

    Attributes:
        prompt: The text.
        start_frame: First latent frame (a chunk boundary).
        end_frame: One past the last latent frame.
        switch: Switch mode at its start (None for the first segment).
    """

    prompt: str
    start_frame: int
    end_frame: int
    switch: str | None


@dataclass(frozen=True)
class PromptSchedule:
    """A video's prompt segments, as written.

    Attributes:
        segments: The segments, in order.
        schedule_id: Id (suites: the unit's prompt id).
        origin: Where it came from (``file:line`` or ``file:id``).
    """

    segments: tuple[ScheduleSegment, ...]
    schedule_id: str = "schedule"
    origin: str = ""

    @classmethod
    def single(cls, prompt: str, latent_frames: int) -> PromptSchedule:
        """The one-segment schedule of a plain prompt."""
        return cls((ScheduleSegment(prompt, latent_frames=latent_frames),))

    @property
    def prompts(self) -> list[str]:
        """Distinct prompts in order of first use (the text encoder runs once per distinct prompt)."""
        return list(dict.fromkeys(s.prompt for s in self.segments))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schedule_id": self.schedule_id,
            "segments": [{k: v for k, v in vars(s).items() if v is not None} for s in self.segments],
        }

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON of the segments (part of a unit's key; the id and origin are not)."""
        blob = json.dumps(self.to_dict()["segments"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def resolve(self, chunk_frames: int, switch: str = "keep") -> list[ResolvedSegment]:
        """Place the segments on the latent-frame grid of a method with ``chunk_frames``-frame chunks.

        Args:
            chunk_frames: The method's chunk.
            switch: Switch mode of every boundary that does not name its own.

        Returns:
            The segments with their frames.

        Raises:
            UserError: Every problem of the schedule, listed in one message.
        """
        problems = self.problems(chunk_frames, switch)
        if problems:
            where = f" ({self.origin})" if self.origin else ""
            raise UserError(
                f"prompt schedule '{self.schedule_id}'{where} is invalid ({len(problems)} problem(s)):\n  "
                + "\n  ".join(problems),
                "each segment is {prompt: TEXT, seconds: S} or {prompt: TEXT, latent_frames: N}",
            )
        return self._place(chunk_frames, switch)

    def problems(self, chunk_frames: int, switch: str = "keep") -> list[str]:
        """Every problem of the schedule for a chunk size (empty when it resolves)."""
        out = []
        if switch not in SWITCH_MODES:
            out.append(f"unknown switch mode '{switch}' (choose one of: {', '.join(SWITCH_MODES)})")
        if not self.segments:
            return [*out, "the schedule has no segment"]
        total = 0.0
        for i, seg in enumerate(self.segments, 1):
            if not isinstance(seg.prompt, str) or not seg.prompt.strip():
                out.append(f"segment {i}: the prompt is empty")
            if (seg.seconds is None) == (seg.latent_frames is None):
                out.append(f"segment {i}: give exactly one of 'seconds' or 'latent_frames'")
                continue
            frames = self._frames(seg)
            if not (isinstance(frames, int | float) and math.isfinite(frames) and frames > 0):
                what = f"seconds {seg.seconds!r}" if seg.seconds is not None else f"latent_frames {seg.latent_frames!r}"
                out.append(f"segment {i}: {what} is not a positive duration")
                continue
            if seg.latent_frames is not None and (isinstance(seg.latent_frames, bool) or seg.latent_frames % 1):
                out.append(f"segment {i}: latent_frames must be a whole number, got {seg.latent_frames!r}")
            if seg.switch is not None and seg.switch not in SWITCH_MODES:
                out.append(f"segment {i}: unknown switch mode '{seg.switch}'")
            total += frames
        if out:
            return out
        if total != int(total) or int(total) % chunk_frames:
            lo, hi = chunk_frames * math.floor(total / chunk_frames), chunk_frames * math.ceil(total / chunk_frames)
            out.append(
                f"the total, {total:g} latent frames ({total * FRAMES_PER_LATENT / FPS:g} s), is not a whole number of "
                f"{chunk_frames}-frame chunks (nearest: {lo} or {hi} latent frames)"
            )
            return out
        for i, seg in enumerate(self._place(chunk_frames, switch), 1):
            if seg.end_frame <= seg.start_frame:
                out.append(
                    f"segment {i} ('{seg.prompt[:40]}') is shorter than one {chunk_frames}-frame chunk once switches "
                    "move to chunk boundaries"
                )
        return out

    @staticmethod
    def _frames(seg: ScheduleSegment) -> float:
        if seg.latent_frames is not None:
            return seg.latent_frames
        return seg.seconds * FPS / FRAMES_PER_LATENT if isinstance(seg.seconds, int | float) else float("nan")

    def _place(self, chunk_frames: int, switch: str) -> list[ResolvedSegment]:
        total = int(sum(self._frames(s) for s in self.segments))
        out, cumulative = [], 0.0
        starts = []
        for seg in self.segments:
            starts.append(chunk_frames * math.ceil(round(cumulative, 9) / chunk_frames))  # LongLive's ">="
            cumulative += self._frames(seg)
        for i, seg in enumerate(self.segments):
            end = starts[i + 1] if i + 1 < len(starts) else total
            mode = None if i == 0 else (seg.switch or switch)
            out.append(ResolvedSegment(seg.prompt, starts[i], end, mode))
        return out


def segments_metadata(
    segments: list[ResolvedSegment], fps: float = FPS, frames_per_latent: int = FRAMES_PER_LATENT
) -> dict[str, Any]:
    """What a unit records about its prompts: ``segments`` [{prompt, start_s, end_s, …}] and ``switch_frames``.

    The Wan VAE decodes latent frame 0 to video frame 0 and latent frame f ≥ 1 to video frames ``4f − 3 … 4f``, so a
    segment starting at latent frame f starts at video frame ``1 + 4(f − 1)`` (``frames_per_latent`` generally),
    i.e. at that frame's time ``/ fps``; the last one ends with the video. Frame i shows ``[i / fps, (i + 1) / fps)``.
    """

    def first_video_frame(latent: int) -> int:
        return 0 if latent == 0 else 1 + frames_per_latent * (latent - 1)

    total_frames = first_video_frame(segments[-1].end_frame)
    out = []
    for i, seg in enumerate(segments):
        end = total_frames if i + 1 == len(segments) else first_video_frame(seg.end_frame)
        out.append(
            {
                "prompt": seg.prompt,
                "start_s": first_video_frame(seg.start_frame) / fps,
                "end_s": end / fps,
                "start_latent_frame": seg.start_frame,
                "end_latent_frame": seg.end_frame,
                "switch": seg.switch,
            }
        )
    return {"segments": out, "switch_frames": [s.start_frame for s in segments[1:]]}


# ------------------------------------------------------------------------------------------------ parsing
def _segment(item: Any, where: str) -> ScheduleSegment:
    if not isinstance(item, dict):
        raise UserError(f"{where}: a segment must be a mapping like {{prompt: TEXT, seconds: S}}, got {item!r}")
    unknown = set(item) - {"prompt", "seconds", "latent_frames", "switch"}
    if unknown:
        raise UserError(f"{where}: unknown segment field(s) {sorted(unknown)}", "valid: prompt, seconds, latent_frames")
    return ScheduleSegment(
        prompt=item.get("prompt", ""),
        seconds=item.get("seconds"),
        latent_frames=item.get("latent_frames"),
        switch=item.get("switch"),
    )


def parse_infinity_rope(line: str, origin: str = "", schedule_id: str = "schedule") -> PromptSchedule:
    """Import one line of Infinity-RoPE's prompt syntax (see module docs)."""
    parts = [p.strip() for p in line.split("|")]
    texts, chunks, cuts = [], [], []
    for part in parts:
        match = re.search(r"\[(\d+\.?\d*)\s*s#?\]", part)
        cuts.append("#" in part)
        if match:
            texts.append(re.sub(r"\[\d+\.?\d*\s*s#?\]", "", part).strip())
            chunks.append(max(1, int(float(match.group(1)) * FPS / (FRAMES_PER_LATENT * 3))))
        else:
            texts.append(part.replace("#", "").strip())
            chunks.append(INFINITY_ROPE_DEFAULT_CHUNKS)
    segments = [
        ScheduleSegment(t, latent_frames=3 * c, switch=None if i == 0 else ("cut" if cuts[i - 1] else "flush"))
        for i, (t, c) in enumerate(zip(texts, chunks, strict=True))
    ]
    return PromptSchedule(tuple(segments), schedule_id, origin)


def parse_longlive(
    prompts: list[str],
    switch_frame_indices: tuple[int, ...] = LONGLIVE_SWITCH_FRAME_INDICES,
    num_output_frames: int = LONGLIVE_NUM_OUTPUT_FRAMES,
    chunk_frames: int = 3,
    origin: str = "",
    schedule_id: str = "schedule",
) -> PromptSchedule:
    """Import one LongLive JSONL line (``prompts``) with its global switch indices (see module docs).

    Raises:
        UserError: ``len(switch_frame_indices) != len(prompts) − 1`` (LongLive asserts the same).
    """
    if len(switch_frame_indices) != len(prompts) - 1:
        raise UserError(
            f"{origin}: {len(prompts)} prompts need {len(prompts) - 1} switch frame indices, got "
            f"{len(switch_frame_indices)} ({list(switch_frame_indices)})",
            "pass --switch-frames with one index per switch (LongLive's switch_frame_indices)",
        )
    starts = [0] + [chunk_frames * math.ceil(i / chunk_frames) for i in switch_frame_indices] + [num_output_frames]
    segments = tuple(ScheduleSegment(p, latent_frames=starts[i + 1] - starts[i]) for i, p in enumerate(prompts))
    return PromptSchedule(segments, schedule_id, origin)


def load_schedules(
    path: str | Path,
    switch_frame_indices: tuple[int, ...] = LONGLIVE_SWITCH_FRAME_INDICES,
    num_output_frames: int = LONGLIVE_NUM_OUTPUT_FRAMES,
) -> list[PromptSchedule]:
    """Every schedule in a file: ours (YAML / JSONL), Infinity-RoPE's ``.txt`` syntax or LongLive's JSONL.

    Raises:
        UserError: A missing or malformed file (naming the line).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt schedule not found: {path}")
    text = path.read_text(encoding="utf-8")
    name = path.name
    if path.suffix == ".txt":
        lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
        return [parse_infinity_rope(line, f"{name}:{i}", f"{path.stem}-{i:03d}") for i, line in lines]
    if path.suffix == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{name}:{i}: not a JSON object ({exc.msg})") from exc
        if rows and all(isinstance(r, dict) and "prompts" in r for _, r in rows):  # LongLive's format
            return [
                parse_longlive(
                    list(r["prompts"]),
                    switch_frame_indices,
                    num_output_frames,
                    3,
                    f"{name}:{i}",
                    f"{path.stem}-{i:03d}",
                )
                for i, r in rows
            ]
        segments = tuple(_segment(r, f"{name}:{i}") for i, r in rows)
        return [PromptSchedule(segments, path.stem, name)]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{name}: not valid YAML ({exc})") from exc
    if isinstance(data, list):
        return [
            PromptSchedule(tuple(_segment(s, f"{name} segment {i}") for i, s in enumerate(data, 1)), path.stem, name)
        ]
    if isinstance(data, dict) and isinstance(data.get("schedules"), list):
        out = []
        for j, entry in enumerate(data["schedules"], 1):
            if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("segments"), list):
                raise UserError(f"{name}: schedule {j} must be {{id: ID, segments: [...]}}")
            segments = tuple(
                _segment(s, f"{name} {entry['id']} segment {i}") for i, s in enumerate(entry["segments"], 1)
            )
            out.append(PromptSchedule(segments, str(entry["id"]), f"{name}:{entry['id']}"))
        return out
    raise UserError(
        f"{name}: a prompt schedule is a list of segments (or {{schedules: [{{id, segments}}]}})",
        "each segment is {prompt: TEXT, seconds: S} or {prompt: TEXT, latent_frames: N}",
    )

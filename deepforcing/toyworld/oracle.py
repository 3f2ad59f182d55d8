"""Oracle metrics that only a synthetic world allows: checks of a video against what its caption says.

The oracle needs only the caption (parsed into a :class:`~deepforcing.toyworld.world.CaptionSpec`) and the world
settings: the expected background (colour, gradient, pan) and lighting at every absolute frame index are known,
and every shape has a known named colour. Initial positions and velocities are not in the caption, so they are
never compared; motion is judged by its size, not its path.

Per frame (frames are ``[T, H, W, 3]`` uint8 at the world size, or an integer multiple of it, which is
box-downsampled first):

* **segmentation** — each pixel takes the nearest of the named shape colours (all of the palette, scaled by the
  expected lighting) and the expected background colour at that pixel, if that colour is within
  ``assign_distance`` (Euclidean RGB, 0–255); otherwise it is unassigned (edges, blends, garbage);
* **presence** of caption shape ``k`` — its largest 4-connected component of pixels of its colour covers at least
  ``min_area_fraction`` of the area of the smallest shape of its kind the world draws;
* **colour error** of a present shape — mean Euclidean RGB distance of its component's pixels to the named
  colour, divided by 255·√3 (0 = exact, 1 = opposite corner of the RGB cube);
* **background error** — mean absolute difference (0–1) to the expected background over the pixels outside the
  1-pixel-dilated shape pixels (of any palette colour);
* **spurious** — connected components of palette colours the caption does not name (hallucinated objects, or
  colour-shifted ones) that keep ≥ ``spurious_min_area`` pixels after a 4-neighbour erosion;
* **centroid** of each present shape's component (pixels), for motion and repetition.

Per segment (default: back-to-back segments of the trained horizon, 21 frames), the means of the above plus:

* **motion** — mean centroid speed (pixels/frame) over consecutive frames where a shape is present in both,
  averaged over shapes with at least ``min_motion_pairs`` such pairs (NaN if none); ``frozen`` — fraction of
  those shapes whose speed in the segment is below ``frozen_speed``;
* **frame_change** — mean absolute difference of consecutive frames (0–1), object-agnostic motion;
* **repetition** — fraction of the segment's frames whose scene state (every shape's centroid and velocity) is
  within ``repeat_position_px`` / ``repeat_velocity_px`` of a state at least ``repeat_lag`` frames earlier
  (content looping back, or a frozen scene). The world's own bouncing motion can recur too (rarely for two or
  more shapes; a single shape on a commensurate path can), so compare against ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.toyworld.world import (
    SHAPE_COLOURS,
    CaptionSpec,
    WorldConfig,
    background_image,
    lighting_factor,
    parse_caption,
)

#: Names of the per-segment oracle numbers, in report order.
SEGMENT_METRICS = (
    "presence",
    "colour_error",
    "background_error",
    "spurious",
    "motion",
    "frozen",
    "frame_change",
    "repetition",
)
#: Direction of each number (True = higher is better, False = lower is better, None = neither).
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "presence": True,
    "colour_error": False,
    "background_error": False,
    "spurious": False,
    "motion": None,
    "frozen": False,
    "frame_change": None,
    "repetition": False,
}


@dataclass(frozen=True)
class OracleConfig:
    """Thresholds of the oracle (part of every metric id).

    Attributes:
        assign_distance: Largest RGB distance (0–255 Euclidean) at which a pixel takes a named colour.
        min_area_fraction: A shape is present if its component covers this fraction of the smallest area the
            world draws for its kind.
        spurious_min_area: Pixels a component of an un-captioned colour needs, after an erosion by the
            4-neighbour cross, to count as a spurious object (erosion removes thin blended edges; the smallest
            triangle keeps 3).
        frozen_speed: Shapes slower than this (pixels/frame) over a segment count as frozen.
        min_motion_pairs: Consecutive-frame pairs (shape present in both) a shape needs in a segment to get a
            speed; shapes with fewer are left out of ``motion`` and ``frozen`` (absence is ``presence``'s job).
        repeat_lag: Earliest lag (frames) at which a recurring state counts as repetition.
        repeat_position_px: Centroid tolerance of a recurring state.
        repeat_velocity_px: Velocity tolerance of a recurring state (pixels/frame).
    """

    assign_distance: float = 100.0
    min_area_fraction: float = 0.4
    spurious_min_area: int = 3
    frozen_speed: float = 0.2
    min_motion_pairs: int = 3
    repeat_lag: int = 21
    repeat_position_px: float = 1.0
    repeat_velocity_px: float = 0.5

    def protocol(self) -> dict[str, float | int]:
        """Protocol fields for metric ids."""
        return {
            "dist": self.assign_distance,
            "area": self.min_area_fraction,
            "spur": self.spurious_min_area,
            "frozen": self.frozen_speed,
            "lag": self.repeat_lag,
        }


@dataclass
class FrameAnalysis:
    """Per-frame oracle measurements of a video (K = shapes in the caption).

    Attributes:
        present: bool [T, K].
        area: Pixels of each shape's largest component, float [T, K].
        centroid: Component centroid (x, y) in pixels, float [T, K, 2] (NaN when absent).
        colour_error: float [T, K] in [0, 1] (NaN when absent).
        background_error: float [T] in [0, 1] (NaN if no background pixel is left).
        spurious: Spurious components per frame, float [T].
        frame_change: Mean |frame_t − frame_{t−1}| in [0, 1], float [T] (NaN at t = 0).
    """

    present: torch.Tensor
    area: torch.Tensor
    centroid: torch.Tensor
    colour_error: torch.Tensor
    background_error: torch.Tensor
    spurious: torch.Tensor
    frame_change: torch.Tensor


def min_shape_area(kind: str, world: WorldConfig) -> float:
    """Pixel area of the smallest shape of ``kind`` the world draws."""
    r = world.radius_range[0]
    if kind == "circle":
        return math.pi * r * r
    if kind == "square":
        return (1.7 * r) ** 2
    return 3 * math.sqrt(3) / 4 * r * r


def connected_components(mask: torch.Tensor) -> torch.Tensor:
    """4-connected component labels of boolean masks: [N, H, W] -> long [N, H, W] (−1 outside the mask).

    Each component is labelled with the smallest flat pixel index it contains (labels are unique per image).
    """
    n, h, w = mask.shape
    big = h * w + 1
    idx = torch.arange(h * w, dtype=torch.int32).view(1, h, w).expand(n, h, w)
    labels = torch.where(mask, idx, torch.full_like(idx, big))
    while True:
        padded = F.pad(labels, (1, 1, 1, 1), value=big)  # [N, H+2, W+2]
        new = torch.minimum(labels, padded[:, :-2, 1:-1])
        new = torch.minimum(new, padded[:, 2:, 1:-1])
        new = torch.minimum(new, padded[:, 1:-1, :-2])
        new = torch.minimum(new, padded[:, 1:-1, 2:])
        new = torch.where(mask, new, labels)
        if torch.equal(new, labels):
            break
        labels = new
    return torch.where(mask, labels, torch.full_like(labels, -1)).long()


def _largest_component(mask: torch.Tensor) -> torch.Tensor:
    """Largest 4-connected component of each mask: bool [N, H, W] -> bool [N, H, W]."""
    labels = connected_components(mask)  # [N, H, W]
    n, h, w = mask.shape
    flat = (labels + 1).view(n, -1)  # 0 = background
    counts = torch.zeros(n, h * w + 1, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    counts[:, 0] = 0
    best = counts.argmax(dim=1)  # [N] label + 1 of the largest component
    return (flat == best[:, None]).view(n, h, w) & mask


def _component_count(mask: torch.Tensor, min_area: int) -> torch.Tensor:
    """Number of 4-connected components with at least ``min_area`` pixels: bool [N, H, W] -> float [N]."""
    labels = connected_components(mask)
    n, h, w = mask.shape
    flat = (labels + 1).view(n, -1)
    counts = torch.zeros(n, h * w + 1, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    counts[:, 0] = 0
    return (counts >= min_area).sum(dim=1).to(torch.float64)


def _erode_cross(mask: torch.Tensor) -> torch.Tensor:
    """Keep pixels whose 4 neighbours are all in the mask: bool [N, H, W] -> bool [N, H, W].

    Blended edges where two colours meet are 1–2 pixels thin and vanish; shapes keep their interior.
    """
    p = F.pad(mask, (1, 1, 1, 1), value=False)
    return mask & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]


def _to_world_size(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [T, H, W, 3] with H = W = k·size -> float64 [T, size, size, 3] (box-downsampled)."""
    t, h, w, c = frames.shape
    if h != w or h % size or c != 3:
        raise ValueError(f"frames must be [T, k·{size}, k·{size}, 3], got {tuple(frames.shape)}")
    k = h // size
    x = frames.to(torch.float64)
    return x.view(t, size, k, size, k, 3).mean(dim=(2, 4)) if k > 1 else x


def analyse(
    frames: torch.Tensor,
    spec: CaptionSpec,
    world: WorldConfig | None = None,
    cfg: OracleConfig | None = None,
    start_frame: int = 0,
) -> FrameAnalysis:
    """Per-frame oracle measurements.

    Args:
        frames: uint8 [T, H, W, 3] (H = W = world size or a multiple of it).
        spec: What the caption says.
        world: World settings (background, pan and lighting constants).
        cfg: Oracle thresholds.
        start_frame: Absolute frame index of ``frames[0]`` (the background and lighting depend on it).
    """
    world = world or WorldConfig()
    cfg = cfg or OracleConfig()
    x = _to_world_size(frames, world.size)  # [T, S, S, 3] 0–255
    t_idx = torch.arange(start_frame, start_frame + x.shape[0])
    light = lighting_factor(spec, world, t_idx)[:, None, None, None]  # [T, 1, 1, 1]
    bg = (background_image(spec, world, t_idx) * light).clamp(0, 255)  # [T, S, S, 3]
    names = [s.colour for s in spec.shapes] + sorted(set(SHAPE_COLOURS) - {s.colour for s in spec.shapes})
    palette = torch.tensor([SHAPE_COLOURS[n] for n in names], dtype=torch.float64)  # [P, 3]
    colours = (palette[None, :, None, None, :] * light[:, None]).clamp(0, 255)  # [T, P, 1, 1, 3]
    d_shape = (x[:, None] - colours).square().sum(-1).sqrt()  # [T, P, S, S]
    d_bg = (x - bg).square().sum(-1).sqrt()  # [T, S, S]
    d_all = torch.cat([d_bg[:, None], d_shape], dim=1)  # [T, 1+P, S, S]
    best, cls = d_all.min(dim=1)  # [T, S, S]; class 0 = background, 1+p = palette colour p
    cls = torch.where(best <= cfg.assign_distance, cls, torch.full_like(cls, -1))

    k_count = len(spec.shapes)
    t_count, size = x.shape[0], world.size
    present = torch.zeros(t_count, k_count, dtype=torch.bool)
    area = torch.zeros(t_count, k_count, dtype=torch.float64)
    centroid = torch.full((t_count, k_count, 2), math.nan, dtype=torch.float64)
    colour_error = torch.full((t_count, k_count), math.nan, dtype=torch.float64)
    coords = torch.arange(size, dtype=torch.float64) + 0.5
    for k, shape in enumerate(spec.shapes):
        comp = _largest_component(cls == 1 + k)  # [T, S, S]
        a = comp.sum(dim=(1, 2)).to(torch.float64)
        area[:, k] = a
        present[:, k] = a >= cfg.min_area_fraction * min_shape_area(shape.kind, world)
        safe = a.clamp_min(1)
        cx = (comp * coords[None, None, :]).sum(dim=(1, 2)) / safe
        cy = (comp * coords[None, :, None]).sum(dim=(1, 2)) / safe
        err = (d_shape[:, k] * comp).sum(dim=(1, 2)) / safe / (255 * math.sqrt(3))
        centroid[:, k] = torch.where(present[:, k, None], torch.stack([cx, cy], dim=1), math.nan)
        colour_error[:, k] = torch.where(present[:, k], err, math.nan)

    shape_px = cls >= 1  # [T, S, S] any palette colour
    dilated = F.max_pool2d(shape_px[:, None].to(torch.float32), 3, stride=1, padding=1)[:, 0] > 0
    bg_px = ~dilated
    bg_err = ((x - bg).abs().mean(-1) / 255 * bg_px).sum(dim=(1, 2)) / bg_px.sum(dim=(1, 2))  # NaN if empty
    others = range(1 + k_count, 1 + len(names))
    spurious = torch.zeros(t_count, dtype=torch.float64)
    for p in others:
        spurious += _component_count(_erode_cross(cls == p), cfg.spurious_min_area)
    change = torch.full((t_count,), math.nan, dtype=torch.float64)
    if t_count > 1:
        change[1:] = (x[1:] - x[:-1]).abs().mean(dim=(1, 2, 3)) / 255
    return FrameAnalysis(present, area, centroid, colour_error, bg_err, spurious, change)


def _nanmean(x: torch.Tensor) -> float:
    finite = x[torch.isfinite(x)]
    return float(finite.mean()) if finite.numel() else math.nan


def segment_scores(a: FrameAnalysis, start: int, stop: int, cfg: OracleConfig | None = None) -> dict[str, float]:
    """Oracle numbers of frames ``[start, stop)`` from a whole-video analysis (see the module docs)."""
    cfg = cfg or OracleConfig()
    sl = slice(start, stop)
    k_count = a.present.shape[1]
    # Consecutive-frame speeds: pairs (t-1, t) with t in the segment (t >= 1), shape present at both.
    t = torch.arange(max(start, 1), stop)
    both = a.present[t] & a.present[t - 1]  # [n, K]
    step = (a.centroid[t] - a.centroid[t - 1]).norm(dim=-1)  # [n, K]
    speeds = []
    for k in range(k_count):
        s = step[both[:, k], k]
        # Too few measured steps (absent or occluded most of the segment): no speed; presence reports absence.
        speeds.append(float(s.mean()) if s.numel() >= cfg.min_motion_pairs else math.nan)
    measured = [v for v in speeds if math.isfinite(v)]
    frozen = sum(v < cfg.frozen_speed for v in measured) / len(measured) if measured else math.nan
    return {
        "presence": float(a.present[sl].to(torch.float64).mean()),
        "colour_error": _nanmean(a.colour_error[sl]),
        "background_error": _nanmean(a.background_error[sl]),
        "spurious": float(a.spurious[sl].mean()),
        "motion": _nanmean(torch.tensor(speeds, dtype=torch.float64)),
        "frozen": frozen,
        "frame_change": _nanmean(a.frame_change[sl]),
        "repetition": _repetition(a, start, stop, cfg),
    }


def _repetition(a: FrameAnalysis, start: int, stop: int, cfg: OracleConfig) -> float:
    """Fraction of frames in [start, stop) whose state recurs from ≥ repeat_lag frames earlier."""
    n = a.present.shape[0]
    velocity = torch.full_like(a.centroid, math.nan)
    velocity[1:] = a.centroid[1:] - a.centroid[:-1]  # [T, K, 2]
    valid = a.present.all(dim=1) & torch.isfinite(velocity).all(dim=(1, 2))  # [T]
    hits = 0
    frames = range(start, min(stop, n))
    for t in frames:
        earlier = torch.arange(0, max(0, t - cfg.repeat_lag + 1))
        if not valid[t] or earlier.numel() == 0:
            continue
        earlier = earlier[valid[earlier]]
        if earlier.numel() == 0:
            continue
        dpos = (a.centroid[earlier] - a.centroid[t]).norm(dim=-1).amax(dim=1)  # [n_earlier]
        dvel = (velocity[earlier] - velocity[t]).norm(dim=-1).amax(dim=1)
        hits += bool(((dpos <= cfg.repeat_position_px) & (dvel <= cfg.repeat_velocity_px)).any())
    return hits / max(1, len(frames))


def segments(num_frames: int, segment_frames: int) -> list[tuple[int, int]]:
    """Back-to-back ``[start, stop)`` segments; a short remainder becomes its own last segment."""
    if segment_frames <= 0:
        raise ValueError(f"segment_frames must be positive, got {segment_frames}")
    return [(s, min(s + segment_frames, num_frames)) for s in range(0, num_frames, segment_frames)]


def score_video(
    frames: torch.Tensor,
    caption: str | CaptionSpec,
    *,
    segment_frames: int = 21,
    world: WorldConfig | None = None,
    cfg: OracleConfig | None = None,
) -> list[dict[str, float]]:
    """Oracle numbers for each segment of a whole video.

    Args:
        frames: uint8 [T, H, W, 3], frame 0 = the video's first frame.
        caption: The prompt (parsed with the toy grammar) or its spec.
        segment_frames: Frames per segment (default: the trained horizon).
        world: World settings.
        cfg: Oracle thresholds.

    Returns:
        One dict per segment: ``segment``, ``start``, ``stop`` and every name in :data:`SEGMENT_METRICS`.
    """
    spec = parse_caption(caption) if isinstance(caption, str) else caption
    a = analyse(frames, spec, world, cfg)
    return [
        {"segment": i, "start": s, "stop": e, **segment_scores(a, s, e, cfg)}
        for i, (s, e) in enumerate(segments(frames.shape[0], segment_frames))
    ]


class ToyOracle(ClipMetric):
    """The oracle as a per-clip metric for the scoring harness (registered as ``toy_oracle``).

    The caption comes from the video's context (the harness hands every metric the unit's prompt) unless one is
    fixed here; a prompt outside the toy grammar is a per-video error naming the problem.

    Args:
        caption: A fixed caption (default: each video's prompt).
        world: World settings.
        cfg: Oracle thresholds.
    """

    aggregation: ClassVar[Aggregation] = Aggregation(higher_is_better=None, skip_undefined=True)

    def __init__(self, caption: str | None = None, world: WorldConfig | None = None, cfg: OracleConfig | None = None):
        self.spec = parse_caption(caption) if caption is not None else None
        self.world = world or WorldConfig()
        self.cfg = cfg or OracleConfig()
        self.ids = {name: metric_id(f"toyworld.{name}", self.cfg.protocol()) for name in SEGMENT_METRICS}

    @property
    def metric_ids(self) -> list[str]:
        """One id per oracle number."""
        return list(self.ids.values())

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Analyse the whole video once, then score each clip's frames (padded clips score their new frames).

        Raises:
            UserError: No caption (neither fixed nor in ``context``), or one outside the toy grammar.
        """
        spec = self.spec
        if spec is None:
            if context is None or not context.prompt:
                raise UserError("toy_oracle needs the video's caption", "score with the prompt (the harness does)")
            spec = parse_caption(context.prompt)
        a = analyse(frames, spec, self.world, self.cfg)
        out = []
        for span in clips:
            scores = segment_scores(a, span.new_frame, span.stop, self.cfg)
            out += [ClipScore(self.ids[name], span.index, scores[name]) for name in SEGMENT_METRICS]
        return out

"""Long-horizon coherence: how alike DINO features stay between frames Δt seconds apart (VBench issue #206).

VBench's subject consistency compares each frame with the previous one and with the first one, inside 2-s clips;
nothing in VBench(-Long) says whether minute 3 still shows what minute 1 showed. This metric does, with the
subject-consistency backbone:

* **Features**: DINO ViT-B/16 (``dino_vitbase16_pretrain.pth``, the backbone of ``vbench.subject_consistency``),
  VBench's ``dino_transform`` (bilinear short side 224, no crop, ImageNet normalisation), the final-norm **CLS
  token**, L2-normalised. No pooling over patches or over frames.
* **Frames**: a time grid of one frame every ``stride_s`` seconds (default 1 s): the frame shown at
  ``k * stride_s`` for ``k = 0, 1, ...``, i.e. frame ``ceil(k * stride_s * fps)``
  (:func:`~deepforcing.metrics.segments.time_to_frame`), while that frame exists. Only grid frames go through
  DINO.
* **Pairs**: for each gap ``Δt`` in ``gaps_s`` (default 2, 5, 10, 20, 50 s; multiples of ``stride_s``), every
  pair of grid frames ``Δt`` apart: ``(k, k + Δt / stride_s)`` for every ``k`` whose partner exists. A 30-s
  video at 1-s stride has 30 grid frames (0, 1, ..., 29 s), so 28 pairs at 2 s, 10 at 20 s and none at 50 s.
* **Value** per video and gap: the plain mean over those pairs of the raw cosine (no clamp at 0, unlike VBench's
  consistency), in ``[-1, 1]``; 1.0 for a video whose grid frames are identical. A gap without a pair (video
  shorter than ``Δt``) is undefined (NaN, left out of the means: the metric declares ``skip_undefined``).
* **Decay**: ``long_horizon_coherence.slope`` is the least-squares slope of a video's values against
  ``log10(Δt)`` over its defined gaps — the change of coherence per tenfold gap (0 for a video that does not
  change; negative when coherence decays; undefined with fewer than two defined gaps). Higher is better for both.

Every choice is in the metric ids: ``long_horizon_coherence@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dt=2s``
(one id per gap, one row per video: the curve) and
``long_horizon_coherence.slope@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dts=2-5-10-20-50,fit=log10``.
Rows span the whole video (clip index 0). The metric reads the video's timeline, so the clip protocol's
re-encode does not apply (``uses_clips = False``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from deepforcing.metrics.aggregate import Aggregation
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig, load_dino_vit
from deepforcing.metrics.base import ClipMetric, VideoContext, require_rgb_uint8
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.segments import time_to_frame
from deepforcing.metrics.vbench.transforms import dino_transform


@dataclass(frozen=True)
class LongHorizonCoherenceConfig:
    """Configuration of long-horizon coherence.

    Attributes:
        weights: Path of ``dino_vitbase16_pretrain.pth``.
        arch: DINO architecture (ViT-B/16 unless testing).
        resolution: Short side fed to DINO (224, as subject consistency).
        gaps_s: The gaps Δt in seconds (each a positive multiple of ``stride_s``), increasing.
        stride_s: Spacing of the frame grid in seconds.
    """

    weights: str
    arch: DinoViTConfig = field(default_factory=DinoViTConfig)
    resolution: int = 224
    gaps_s: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 50.0)
    stride_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.stride_s > 0:
            raise ValueError(f"stride_s must be positive, got {self.stride_s}")
        gaps = tuple(float(g) for g in self.gaps_s)
        if not gaps or any(b <= a for a, b in zip(gaps, gaps[1:], strict=False)) or gaps[0] <= 0:
            raise ValueError(f"gaps_s must be positive and increasing, got {self.gaps_s}")
        bad = [g for g in gaps if abs(g / self.stride_s - round(g / self.stride_s)) > 1e-9]
        if bad:
            raise ValueError(f"gaps {bad} are not multiples of stride_s={self.stride_s:g}")
        object.__setattr__(self, "gaps_s", gaps)

    @property
    def lags(self) -> list[int]:
        """The gaps in grid steps."""
        return [round(g / self.stride_s) for g in self.gaps_s]


def _backbone_name(arch: DinoViTConfig) -> str:
    return "dino_vitb16" if arch == DinoViTConfig() else f"dino_vit{arch.embed_dim}d{arch.depth}p{arch.patch_size}"


def _base_protocol(config: LongHorizonCoherenceConfig) -> dict[str, object]:
    return {
        "backbone": _backbone_name(config.arch),
        "res": config.resolution,
        "feat": "cls",
        "grid": f"{config.stride_s:g}s",
    }


def coherence_ids(config: LongHorizonCoherenceConfig) -> tuple[list[str], str]:
    """The per-gap ids (in gap order) and the slope id of a configuration."""
    base = _base_protocol(config)
    curve = [metric_id("long_horizon_coherence", {**base, "dt": f"{g:g}s"}) for g in config.gaps_s]
    dts = "-".join(f"{g:g}" for g in config.gaps_s)
    return curve, metric_id("long_horizon_coherence.slope", {**base, "dts": dts, "fit": "log10"})


def grid_frames(num_frames: int, fps: float, stride_s: float) -> list[int]:
    """Frame indices of the time grid ``0, stride_s, 2 stride_s, ...`` that exist in the video."""
    out = []
    k = 0
    while (i := time_to_frame(k * stride_s, fps)) < num_frames:
        out.append(i)
        k += 1
    return out


def coherence_curve(features: torch.Tensor, lags: Sequence[int]) -> list[tuple[float, int, float]]:
    """Mean cosine of grid features ``lag`` steps apart, for each lag.

    Args:
        features: ``(K, D)`` features of the grid frames, in order (normalised here).
        lags: Gaps in grid steps.

    Returns:
        Per lag ``(mean cosine, number of pairs, lowest cosine)``; ``(nan, 0, nan)`` without a pair.
    """
    f = F.normalize(features.double(), dim=-1)  # (K, D)
    out = []
    for lag in lags:
        if lag >= f.shape[0]:
            out.append((math.nan, 0, math.nan))
            continue
        cos = (f[:-lag] * f[lag:]).sum(-1)  # (K - lag,)
        out.append((math.fsum(cos.tolist()) / cos.numel(), int(cos.numel()), float(cos.min())))
    return out


def slope_per_decade(gaps_s: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``log10(gaps_s)`` over the finite values (NaN if fewer than 2)."""
    pts = [(math.log10(g), v) for g, v in zip(gaps_s, values, strict=True) if math.isfinite(v)]
    if len(pts) < 2:
        return math.nan
    mx = math.fsum(x for x, _ in pts) / len(pts)
    my = math.fsum(y for _, y in pts) / len(pts)
    sxx = math.fsum((x - mx) ** 2 for x, _ in pts)
    return math.fsum((x - mx) * (y - my) for x, y in pts) / sxx


class LongHorizonCoherence(ClipMetric):
    """Coherence curve over gaps of seconds to a minute, and its slope, one row per video and id."""

    aggregation: ClassVar[Aggregation] = Aggregation(skip_undefined=True)
    uses_clips: ClassVar[bool] = False

    def __init__(self, config: LongHorizonCoherenceConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_dino_vit(Path(config.weights), config.arch).to(self.device)
        self.curve_ids, self.slope_id = coherence_ids(config)

    @property
    def metric_ids(self) -> list[str]:
        """One id per gap, then the slope id."""
        return [*self.curve_ids, self.slope_id]

    @torch.inference_mode()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """DINO CLS features of ``(T, H, W, 3)`` uint8 frames → ``(T, D)`` float32 (not normalised)."""
        out = []
        for i in range(0, frames.shape[0], self.batch_size):
            x = dino_transform(frames[i : i + self.batch_size], self.config.resolution)  # (B, 3, 224, W')
            out.append(self.model(x.to(self.device)).float().cpu())
        return torch.cat(out)  # (T, D)

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """The curve and the slope of one video (``context.fps`` is needed)."""
        if context is None:
            raise ValueError("long_horizon_coherence needs the video's frame rate (context)")
        require_rgb_uint8(frames)
        grid = grid_frames(int(frames.shape[0]), context.fps, self.config.stride_s)
        curve = coherence_curve(self.features(frames[grid]), self.config.lags)
        scores = [
            ClipScore(mid, 0, mean, 1.0, {"pairs": float(n), "min": low})
            for mid, (mean, n, low) in zip(self.curve_ids, curve, strict=True)
        ]
        slope = slope_per_decade(self.config.gaps_s, [c[0] for c in curve])
        defined = sum(math.isfinite(c[0]) for c in curve)
        scores.append(
            ClipScore(self.slope_id, 0, slope, 1.0, {"gaps": float(defined), "grid_frames": float(len(grid))})
        )
        return scores

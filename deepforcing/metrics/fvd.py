"""Fréchet Video Distance with StyleGAN-V's I3D, as a torchmetrics ``Metric`` with mergeable statistics.

State (float64, reduced by sum across ranks and shards): ``n``, ``Σx`` and ``Σxxᵀ`` of real and of generated
clip features. ``compute()`` is pure; ``merge_state`` / DDP sync give the same result as a single pass.
Reference (real) statistics survive :meth:`reset` unless ``reset_real_features=True``, like torchmetrics' FID,
and can be saved once and reloaded (:meth:`FeatureStats.save`).

Two modes share this class:

* against real videos — ``update(real_clips, real=True)`` from a reference folder;
* **temporal FVD** — "real" = clips from the first window (the trained horizon) of a method's own videos,
  "fake" = clips from a later window of the same videos (:func:`window_clips`).

Protocol in the id: ``fvd@i3d=styleganv,frames=16,res=224,resize=stretch,cov=n-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from deepforcing.errors import UserError
from deepforcing.metrics.frechet import COV_ESTIMATORS, FeatureStats, fid_from_stats
from deepforcing.metrics.identity import metric_id

try:
    from torchmetrics import Metric
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise UserError("FVD needs torchmetrics", "pip install 'deepforcing-eval[metrics]'") from _err


@dataclass(frozen=True)
class FVDConfig:
    """FVD protocol.

    Attributes:
        i3d_weights: Path of StyleGAN-V's ``i3d_torchscript.pt``.
        num_frames: Frames per clip (16).
        resolution: I3D input side (224).
        cov: Covariance estimator, ``"n-1"`` (TF FVD, pytorch-fid, torchmetrics) or ``"n"`` (StyleGAN-V).
        feature_dim: Width of the I3D features (400).
    """

    i3d_weights: str
    num_frames: int = 16
    resolution: int = 224
    cov: str = "n-1"
    feature_dim: int = 400

    def __post_init__(self) -> None:
        if self.cov not in COV_ESTIMATORS:
            raise ValueError(f"cov must be one of {sorted(COV_ESTIMATORS)}, got {self.cov!r}")

    @property
    def metric_id(self) -> str:
        """The id naming every protocol choice."""
        return metric_id(
            "fvd",
            {
                "i3d": "styleganv",
                "frames": self.num_frames,
                "res": self.resolution,
                "resize": "stretch",
                "cov": self.cov,
            },
        )


class FrechetVideoDistance(Metric):
    """FVD between real (reference) clips and generated clips."""

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    def __init__(self, config: FVDConfig, reset_real_features: bool = False, extractor=None, **kwargs):
        """Create the metric.

        Args:
            config: The protocol.
            reset_real_features: Clear the real statistics on :meth:`reset` too.
            extractor: Optional callable ``(B, T, H, W, 3) uint8 -> (B, D)``; default: the TorchScript I3D
                from ``config.i3d_weights`` (loaded on first use).
            **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(**kwargs)
        self.config = config
        self.reset_real_features = reset_real_features
        self._extractor = extractor
        d = config.feature_dim
        for side in ("real", "fake"):
            self.add_state(f"{side}_n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")

    @property
    def metric_id(self) -> str:
        """Protocol id of this FVD."""
        return self.config.metric_id

    def _features(self, clips: torch.Tensor) -> torch.Tensor:
        if self._extractor is None:
            from deepforcing.metrics.i3d import i3d_features, load_i3d_torchscript

            model = load_i3d_torchscript(self.config.i3d_weights, self.device)
            self._extractor = lambda c: i3d_features(model, c, self.config.resolution)
        return self._extractor(clips)

    def update(self, clips: torch.Tensor, real: bool) -> None:
        """Add a batch of clips.

        Args:
            clips: ``(B, num_frames, H, W, 3)`` uint8 RGB.
            real: True for reference clips, False for generated ones.
        """
        if clips.ndim != 5 or clips.shape[1] != self.config.num_frames:
            raise ValueError(f"expected (B, {self.config.num_frames}, H, W, 3) clips, got {tuple(clips.shape)}")
        self.update_features(self._features(clips), real)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add precomputed ``(B, D)`` features."""
        if features.ndim != 2 or features.shape[1] != self.config.feature_dim:
            raise ValueError(f"expected (B, {self.config.feature_dim}) features, got {tuple(features.shape)}")
        x = features.detach().to(device=self.real_sum.device, dtype=torch.float64)
        side = "real" if real else "fake"
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + x.shape[0])
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + x.sum(dim=0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + x.T @ x)

    def stats(self, real: bool) -> FeatureStats:
        """The accumulated statistics of one side."""
        side = "real" if real else "fake"
        return FeatureStats(
            int(getattr(self, f"{side}_n")),
            getattr(self, f"{side}_sum").detach().cpu().clone(),
            getattr(self, f"{side}_outer").detach().cpu().clone(),
        )

    def set_real_stats(self, stats: FeatureStats) -> None:
        """Use precomputed reference statistics (e.g. loaded with :meth:`FeatureStats.load`)."""
        self.real_n = torch.tensor(stats.n, dtype=torch.long, device=self.real_sum.device)
        self.real_sum = stats.sum.to(self.real_sum.device)
        self.real_outer = stats.outer.to(self.real_sum.device)

    def compute(self) -> torch.Tensor:
        """FVD between everything added so far (float64 scalar)."""
        real, fake = self.stats(True), self.stats(False)
        for name, s in (("real", real), ("fake", fake)):
            if s.n < 2:
                raise UserError(f"FVD needs at least 2 {name} clips, got {s.n}")
        return torch.tensor(fid_from_stats(real, fake, self.config.cov), dtype=torch.float64)

    def reset(self) -> None:
        """Clear generated statistics (and real ones if ``reset_real_features``)."""
        if self.reset_real_features:
            super().reset()
            return
        keep = (self.real_n, self.real_sum, self.real_outer)
        super().reset()
        self.real_n, self.real_sum, self.real_outer = keep


def window_clips(frames: torch.Tensor, fps: float, t0: float, t1: float, num_frames: int = 16) -> torch.Tensor:
    """Non-overlapping ``num_frames``-frame clips that lie inside the time window ``[t0, t1)``.

    Args:
        frames: ``(T, H, W, 3)`` uint8 video.
        fps: Native frame rate.
        t0: Window start in seconds.
        t1: Window end in seconds.
        num_frames: Frames per clip.

    Returns:
        ``(N, num_frames, H, W, 3)`` clips, back to back from the first frame at or after ``t0``.

    Raises:
        UserError: If not even one clip fits in the window.
    """
    start = int(round(t0 * fps))
    stop = min(int(round(t1 * fps)), frames.shape[0])
    n = (stop - start) // num_frames
    if n < 1:
        raise UserError(
            f"window [{t0:g}, {t1:g}) s holds {max(stop - start, 0)} frames, fewer than one {num_frames}-frame clip"
        )
    clips = frames[start : start + n * num_frames]  # (n*F, H, W, 3)
    return clips.reshape(n, num_frames, *frames.shape[1:])


def load_fvd(config: FVDConfig, **kwargs) -> FrechetVideoDistance:
    """Build an FVD metric after checking that the I3D file exists (before any video is decoded)."""
    if not Path(config.i3d_weights).expanduser().is_file():
        raise UserError(
            f"I3D weights not found: {config.i3d_weights}",
            "run `deepforcing-eval weights list` to see where i3d_torchscript.pt goes",
        )
    return FrechetVideoDistance(config, **kwargs)

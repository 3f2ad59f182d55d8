"""Fréchet distance between Gaussians, and mergeable feature statistics, in float64.

``d² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁ Σ₂)^{1/2}``. The trace of the matrix square root is computed as
``Σ √λ`` over the eigenvalues of the symmetric PSD matrix ``Σ₁^{1/2} Σ₂ Σ₁^{1/2}`` (same spectrum as
``Σ₁ Σ₂``), with ``eigh`` only — no ``scipy.linalg.sqrtm`` and none of its deprecated ``disp`` argument.

:class:`FeatureStats` keeps the sufficient statistics ``(n, Σx, Σxxᵀ)``; two shards merge by adding them, so
statistics from any split of the data give the same distance as one pass. The covariance estimator is a
protocol choice (StyleGAN-V and cd-fvd divide by N, pytorch-fid / torchmetrics / TF FVD by N − 1) and goes
into the metric id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

COV_ESTIMATORS = {"n": 0, "n-1": 1}


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)  # (D,), (D, D)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``Tr (Σ₁ Σ₂)^{1/2}`` for symmetric PSD ``Σ₁, Σ₂`` (float64)."""
    s1 = _sqrtm_psd(sigma1.double())
    m = s1 @ sigma2.double() @ s1
    w = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(w.clamp_min(0).sqrt().sum())


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Squared Fréchet distance between ``N(μ₁, Σ₁)`` and ``N(μ₂, Σ₂)``.

    Args:
        mu1: ``(D,)`` mean.
        sigma1: ``(D, D)`` covariance.
        mu2: ``(D,)`` mean.
        sigma2: ``(D, D)`` covariance.

    Returns:
        The distance as a Python float (computed in float64).
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(),) * 2:
        raise ValueError(
            f"shape mismatch: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)}/{tuple(sigma2.shape)}"
        )
    diff = float(((mu1 - mu2) ** 2).sum())
    return diff + float(torch.trace(sigma1) + torch.trace(sigma2)) - 2.0 * trace_sqrt_product(sigma1, sigma2)


@dataclass
class FeatureStats:
    """Sufficient statistics of a feature set: count, sum and sum of outer products (float64).

    Attributes:
        n: Number of feature vectors.
        sum: ``(D,)`` sum of features.
        outer: ``(D, D)`` sum of ``x xᵀ``.
    """

    n: int
    sum: torch.Tensor
    outer: torch.Tensor

    @classmethod
    def empty(cls, dim: int) -> FeatureStats:
        """Statistics of no features."""
        return cls(0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64))

    @classmethod
    def of(cls, features: torch.Tensor) -> FeatureStats:
        """Statistics of ``(N, D)`` features."""
        s = cls.empty(features.shape[1])
        s.update(features)
        return s

    def update(self, features: torch.Tensor) -> None:
        """Add ``(N, D)`` features."""
        if features.ndim != 2 or features.shape[1] != self.sum.numel():
            raise ValueError(f"expected (N, {self.sum.numel()}) features, got {tuple(features.shape)}")
        x = features.detach().to(torch.float64).cpu()
        self.n += x.shape[0]
        self.sum += x.sum(dim=0)
        self.outer += x.T @ x

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Statistics of the union of both sets (a new object)."""
        return FeatureStats(self.n + other.n, self.sum + other.sum, self.outer + other.outer)

    def mean(self) -> torch.Tensor:
        """``(D,)`` mean."""
        if self.n == 0:
            raise ValueError("no features")
        return self.sum / self.n

    def cov(self, estimator: str = "n-1") -> torch.Tensor:
        """``(D, D)`` covariance, dividing by ``n`` (``"n"``) or ``n - 1`` (``"n-1"``)."""
        ddof = COV_ESTIMATORS[estimator]
        if self.n - ddof <= 0:
            raise ValueError(f"covariance with estimator {estimator!r} needs more than {ddof} features")
        mu = self.mean()
        return (self.outer - self.n * torch.outer(mu, mu)) / (self.n - ddof)

    def save(self, path: str | Path) -> None:
        """Write the statistics to a safetensors file (e.g. reference statistics of real videos)."""
        from safetensors.torch import save_file

        save_file({"n": torch.tensor([self.n]), "sum": self.sum, "outer": self.outer}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Read statistics written by :meth:`save`."""
        from safetensors.torch import load_file

        t = load_file(str(path))
        return cls(int(t["n"][0]), t["sum"].double(), t["outer"].double())


def fid_from_stats(a: FeatureStats, b: FeatureStats, estimator: str = "n-1") -> float:
    """Fréchet distance between two feature sets given their statistics."""
    return frechet_distance(a.mean(), a.cov(estimator), b.mean(), b.cov(estimator))

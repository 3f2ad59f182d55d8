"""Flow-matching timestep schedule shared by the few-step samplers (shifted sigmas, warped step lists)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from deepforcing.samplers.configs import StepConfig  # noqa: F401 - re-exported (its old home)


@functools.lru_cache(maxsize=8)
def _shifted_table(shift: float, num_train_timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (sigmas, timesteps) tables, built once per schedule (read-only: never modify them in place)."""
    n = num_train_timesteps
    sigmas = torch.linspace(1.0, 0.0, n + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return sigmas, sigmas * n


@functools.lru_cache(maxsize=1024)
def _scalar_sigma(shift: float, num_train_timesteps: int, timestep: float) -> float:
    """σ of the table entry nearest to one timestep: the float32 value, as a Python float (exact)."""
    sigmas, timesteps = _shifted_table(shift, num_train_timesteps)
    return float(sigmas[torch.argmin((timesteps - torch.tensor(timestep, dtype=torch.float32)).abs())])


@functools.lru_cache(maxsize=1024)
def _noise_weights(
    shift: float, num_train_timesteps: int, timestep: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 − σ, σ) as 0-d float32 tensors on ``device``, made once per timestep (read-only).

    They stay float32 *tensors* (not Python floats): with bf16 latents a 0-d float32 operand is rounded to bf16
    inside the multiply, a Python float is not, and the noising must not change with this memo.
    """
    sigma = torch.tensor(_scalar_sigma(shift, num_train_timesteps, timestep), dtype=torch.float32, device=device)
    return 1 - sigma, sigma


def _is_scalar(timestep: float | torch.Tensor) -> bool:
    return not isinstance(timestep, torch.Tensor) or timestep.ndim == 0


@dataclass(frozen=True)
class FlowSchedule:
    """Shifted flow-matching schedule over ``num_train_timesteps`` training timesteps.

    ``sigma_lin = linspace(1, 0, T + 1)[:-1]`` (float32), ``sigma = shift·s / (1 + (shift − 1)·s)``,
    ``t = T·sigma``. Forward noising is ``x_t = (1 − σ)·x0 + σ·ε`` and the model predicts ``v = ε − x0``.

    Attributes:
        shift: Timestep shift (5.0 for Self-Forcing and Rolling Forcing).
        num_train_timesteps: Training timesteps T.
    """

    shift: float = 5.0
    num_train_timesteps: int = 1000

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The float32 (sigmas, timesteps) tables, descending, length T (copies of the memoised ones)."""
        sigmas, timesteps = _shifted_table(self.shift, self.num_train_timesteps)
        return sigmas.clone(), timesteps.clone()

    def warp(self, nominal_steps: tuple[int, ...]) -> torch.Tensor:
        """Map nominal steps (e.g. 1000, 750, 500, 250) onto the shifted table: float32 [S].

        ``[1000, 750, 500, 250]`` with shift 5 gives ``[1000, 937.5, 833.33, 625]``.
        """
        _, timesteps = _shifted_table(self.shift, self.num_train_timesteps)
        extended = torch.cat([timesteps, torch.zeros(1, dtype=torch.float32)])
        index = self.num_train_timesteps - torch.tensor(nominal_steps, dtype=torch.long)
        if (index < 0).any() or (index > self.num_train_timesteps).any():
            raise ValueError(f"nominal steps must lie in [0, {self.num_train_timesteps}]: {nominal_steps}")
        return extended[index]

    def sigma(self, timestep: float | torch.Tensor) -> torch.Tensor:
        """Sigma of the table entry nearest to each timestep (float32; scalar in, scalar out; [n] in, [n] out)."""
        t = torch.as_tensor(timestep, dtype=torch.float32)
        if t.device.type == "cpu" and t.numel() <= 64:  # per value from the memo: the same entries, no search
            values = [_scalar_sigma(self.shift, self.num_train_timesteps, v) for v in t.reshape(-1).tolist()]
            return torch.tensor(values, dtype=torch.float32).reshape(t.shape)
        sigmas, timesteps = _shifted_table(self.shift, self.num_train_timesteps)
        t = t.cpu()
        return sigmas[torch.argmin((timesteps.unsqueeze(0) - t.reshape(-1, 1)).abs(), dim=1)].reshape(t.shape)

    @staticmethod
    def _per_frame(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Scalar, or one value per frame [n] broadcast over latents [B, n, C, H, W]."""
        return sigma if sigma.ndim == 0 else sigma.view(1, -1, *([1] * (like.ndim - 2)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timestep: float | torch.Tensor) -> torch.Tensor:
        """``(1 − σ)·x0 + σ·ε`` with σ in float32, returned in the noise dtype (timestep scalar or per frame)."""
        if _is_scalar(timestep):
            one_minus_sigma, sigma = _noise_weights(self.shift, self.num_train_timesteps, float(timestep), x0.device)
            out = one_minus_sigma * x0 + sigma * noise
        else:
            sigma = self._per_frame(self.sigma(timestep).to(x0.device), x0)
            out = (1 - sigma) * x0 + sigma * noise
        return out if out.dtype == noise.dtype else out.to(noise.dtype)

    def flow_to_x0(self, flow: torch.Tensor, x_t: torch.Tensor, timestep: float | torch.Tensor) -> torch.Tensor:
        """``x0 = x_t − σ·v`` in float64, returned in the flow dtype (timestep scalar or one per frame)."""
        if _is_scalar(timestep):  # σ as a Python float: the float32 value, exactly (the arithmetic is float64)
            sigma = _scalar_sigma(self.shift, self.num_train_timesteps, float(timestep))
        else:
            sigma = self._per_frame(self.sigma(timestep).to(torch.float64).to(flow.device), flow)
        return (x_t.to(torch.float64) - sigma * flow.to(torch.float64)).to(flow.dtype)

"""Flow-matching timestep schedule shared by the few-step samplers (shifted sigmas, warped step lists)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepforcing.samplers.configs import StepConfig  # noqa: F401 - re-exported (its old home)


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
        """The float32 (sigmas, timesteps) tables, descending, length T."""
        n = self.num_train_timesteps
        sigmas = torch.linspace(1.0, 0.0, n + 1)[:-1]
        sigmas = self.shift * sigmas / (1 + (self.shift - 1) * sigmas)
        return sigmas, sigmas * n

    def warp(self, nominal_steps: tuple[int, ...]) -> torch.Tensor:
        """Map nominal steps (e.g. 1000, 750, 500, 250) onto the shifted table: float32 [S].

        ``[1000, 750, 500, 250]`` with shift 5 gives ``[1000, 937.5, 833.33, 625]``.
        """
        _, timesteps = self.table()
        extended = torch.cat([timesteps, torch.zeros(1, dtype=torch.float32)])
        index = self.num_train_timesteps - torch.tensor(nominal_steps, dtype=torch.long)
        if (index < 0).any() or (index > self.num_train_timesteps).any():
            raise ValueError(f"nominal steps must lie in [0, {self.num_train_timesteps}]: {nominal_steps}")
        return extended[index]

    def sigma(self, timestep: float | torch.Tensor) -> torch.Tensor:
        """Sigma of the table entry nearest to each timestep (float32; scalar in, scalar out; [n] in, [n] out)."""
        sigmas, timesteps = self.table()
        t = torch.as_tensor(timestep, dtype=torch.float32).cpu()
        return sigmas[torch.argmin((timesteps.unsqueeze(0) - t.reshape(-1, 1)).abs(), dim=1)].reshape(t.shape)

    @staticmethod
    def _per_frame(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Scalar, or one value per frame [n] broadcast over latents [B, n, C, H, W]."""
        return sigma if sigma.ndim == 0 else sigma.view(1, -1, *([1] * (like.ndim - 2)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timestep: float | torch.Tensor) -> torch.Tensor:
        """``(1 − σ)·x0 + σ·ε`` with σ in float32, returned in the noise dtype (timestep scalar or per frame)."""
        sigma = self._per_frame(self.sigma(timestep).to(x0.device), x0)
        return ((1 - sigma) * x0 + sigma * noise).type_as(noise)

    def flow_to_x0(self, flow: torch.Tensor, x_t: torch.Tensor, timestep: float | torch.Tensor) -> torch.Tensor:
        """``x0 = x_t − σ·v`` in float64, returned in the flow dtype (timestep scalar or one per frame)."""
        sigma = self._per_frame(self.sigma(timestep).to(torch.float64).to(flow.device), flow)
        return (x_t.to(torch.float64) - sigma * flow.to(torch.float64)).to(flow.dtype)

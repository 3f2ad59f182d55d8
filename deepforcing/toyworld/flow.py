"""Flow-matching helpers of the toy model's training: x0 predictions with guidance, and the teacher's ODE sampler.

The model predicts the flow ``v = ε − x0`` of ``x_t = (1 − σ)·x0 + σ·ε`` (the engine's convention,
:class:`~deepforcing.samplers.schedule.FlowSchedule`). Here ``σ`` is passed directly (float per frame) and the
timestep fed to the DiT is ``1000·σ``, as in the schedule's table.
"""

from __future__ import annotations

import torch

from deepforcing.model.wan import CausalWanModel, TextConditioning


def predict_x0(
    dit: CausalWanModel,
    x_t: torch.Tensor,
    sigma: torch.Tensor,
    text: TextConditioning,
    *,
    causal_chunk_frames: int | None = None,
    uncond: TextConditioning | None = None,
    guidance: float = 1.0,
) -> torch.Tensor:
    """x0 predicted from ``x_t`` without a KV cache (full or block-causal attention), optionally guided.

    Args:
        dit: The DiT.
        x_t: Noisy latents [B, F, C, H, W].
        sigma: Noise level per clip and frame [B, F] (float, 0–1).
        text: Caption conditioning.
        causal_chunk_frames: Block-causal attention in chunks of this many frames; None = full attention.
        uncond: Conditioning of the empty caption (needed when ``guidance`` ≠ 1).
        guidance: Classifier-free guidance scale on the flow (1 = conditional only).

    Returns:
        x0 [B, F, C, H, W] (float32).
    """
    t = sigma * 1000.0
    v = dit(x_t, t, text, causal_chunk_frames=causal_chunk_frames).float()
    if guidance != 1.0:
        if uncond is None:
            raise ValueError("guidance needs the unconditional text")
        v_u = dit(x_t, t, uncond, causal_chunk_frames=causal_chunk_frames).float()
        v = v_u + guidance * (v - v_u)
    return x_t.float() - sigma[:, :, None, None, None] * v


def shifted_sigmas(steps: int, shift: float) -> torch.Tensor:
    """``steps + 1`` descending noise levels from 1 to 0, uniform then shifted: float32 [steps + 1]."""
    s = torch.linspace(1.0, 0.0, steps + 1)
    return shift * s / (1 + (shift - 1) * s)


@torch.no_grad()
def sample_ode(
    dit: CausalWanModel,
    text: TextConditioning,
    noise: torch.Tensor,
    *,
    steps: int = 24,
    shift: float = 3.0,
    uncond: TextConditioning | None = None,
    guidance: float = 1.0,
) -> torch.Tensor:
    """The teacher's sampler: Euler steps of the flow ODE over the whole clip at once, full attention.

    Args:
        dit: The DiT (its full-attention mode is the teacher).
        text: Caption conditioning.
        noise: Initial noise [B, F, C, H, W].
        steps: Euler steps.
        shift: Shift of the step spacing.
        uncond: Empty-caption conditioning for guidance.
        guidance: Classifier-free guidance scale.

    Returns:
        x0 [B, F, C, H, W] (float32).
    """
    sig = shifted_sigmas(steps, shift)
    x = noise.float()
    b, f = x.shape[:2]
    for i in range(steps):
        s, s_next = float(sig[i]), float(sig[i + 1])
        x0 = predict_x0(dit, x, torch.full((b, f), s), text, uncond=uncond, guidance=guidance)
        eps = (x - (1 - s) * x0) / s
        x = (1 - s_next) * x0 + s_next * eps
    return x

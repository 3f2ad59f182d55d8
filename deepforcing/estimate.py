"""Memory a generation needs, estimated before anything is allocated, and the check that refuses what cannot fit.

:func:`estimate` counts what the engine allocates for one video: the KV cache (per layer: keys, keys rotated to
their positions, values, and the int64 token table; ``deepforcing.cache.KVCache``), the policy's own buffers (Rolling
Sink's source bank), and the latent buffers that grow with the video (initial noise and output; the rolling sampler
keeps a third). A bounded-cache method's KV memory does not depend on the length; a full cache
(``self-forcing-full``) grows with it, and :func:`check_fits` refuses a request that would not fit the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from deepforcing.errors import UserError

#: Set to 1 to skip :func:`check_fits` (try anyway; the allocation may fail).
SKIP_ENV = "DEEPFORCING_SKIP_MEMORY_CHECK"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one generation allocates (the model's weights not included).

    Attributes:
        kv_cache_bytes: KV cache and token table, plus the policy's buffers.
        cache_frames: Latent frames of KV slots per layer.
        latent_bytes: Noise and output latents of the whole video (and the rolling sampler's re-noised copy).
        bounded: Whether the KV cache has the same size at any length.
    """

    kv_cache_bytes: int
    cache_frames: int
    latent_bytes: int
    bounded: bool

    @property
    def total_bytes(self) -> int:
        """KV cache plus latents."""
        return self.kv_cache_bytes + self.latent_bytes


def estimate(
    method, wan, latent_shape: tuple[int, int, int], num_latent_frames: int, dtype_bytes: int
) -> MemoryEstimate:
    """Memory of one video of ``num_latent_frames`` for a method on a model.

    Args:
        method: A :class:`deepforcing.methods.MethodConfig`.
        wan: The model's :class:`deepforcing.model.config.WanConfig`.
        latent_shape: ``(C, H, W)`` of one latent frame.
        num_latent_frames: Video length in latent frames.
        dtype_bytes: Bytes per element of the model dtype.
    """
    from deepforcing import methods

    c, h, w = latent_shape
    tpf = wan.tokens_per_frame(h, w)
    pass_frames = method.sampler_config.chunk_frames
    if method.sampler == "rolling":
        pass_frames *= len(method.sampler_config.denoising_steps)
    policy = methods.build_policy(method)
    frames = policy.capacity_frames(num_latent_frames, pass_frames)
    slots = frames * tpf
    per_layer = 3 * slots * wan.num_heads * wan.head_dim * dtype_bytes + 2 * slots * 8
    bank = _bank_frames(method) * tpf * wan.num_heads * wan.head_dim * dtype_bytes * 2
    kv = wan.num_layers * (per_layer + bank)
    copies = 3 if method.sampler == "rolling" else 2
    latents = copies * num_latent_frames * c * h * w * dtype_bytes
    bounded = policy.capacity_frames(10 * num_latent_frames, pass_frames) == frames
    return MemoryEstimate(kv, frames, latents, bounded)


def _bank_frames(method) -> int:
    """Frames of stored K/V a policy keeps besides the cache (Rolling Sink's sources)."""
    return int(getattr(method.policy_config, "source_frames", 0) or 0) if method.policy == "rolling-sink" else 0


def available_bytes(device) -> int | None:
    """Free memory of the device: CUDA free memory, or the host's MemAvailable; None if unknown."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(est: MemoryEstimate, method_name: str, num_latent_frames: int, available: int | None) -> None:
    """Refuse a generation whose estimate exceeds the device's free memory.

    Raises:
        UserError: What does not fit, the estimate, the limit and how to proceed.
    """
    if available is None or os.environ.get(SKIP_ENV, "").strip() in ("1", "true", "yes"):
        return
    if est.total_bytes <= available:
        return
    gib = 2**30
    grows = (
        f"its KV cache keeps every frame ({est.cache_frames} latent frames: {est.kv_cache_bytes / gib:.1f} GiB)"
        if not est.bounded
        else f"its KV cache ({est.kv_cache_bytes / gib:.1f} GiB) and the latents ({est.latent_bytes / gib:.1f} GiB)"
    )
    raise UserError(
        f"{method_name} at {num_latent_frames} latent frames does not fit: {grows}, {est.total_bytes / gib:.1f} GiB "
        f"estimated in all, against {available / gib:.1f} GiB free",
        "use a bounded-cache method (self-forcing, deep-forcing, rolling-sink, infinity-rope), fewer frames, or "
        f"{SKIP_ENV}=1 to try anyway",
    )

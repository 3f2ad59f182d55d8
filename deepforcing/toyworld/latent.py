"""The toy model's latent space: an exact, invertible pixel-unshuffle in place of the Wan VAE.

A frame of ``S×S`` RGB pixels in ``[-1, 1]`` becomes ``48`` channels at ``S/4 × S/4`` (each latent channel is
one colour channel of one position in a 4×4 pixel block). There is no temporal compression: **one video frame
is one latent frame**, so the trained horizon of 21 latent frames is 21 video frames and a chunk of 3 latent
frames is 3 video frames. Encoding then decoding returns the same uint8 frames exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Spatial factor of the pixel-unshuffle.
FACTOR = 4
#: Latent channels: 3 colours × FACTOR².
CHANNELS = 3 * FACTOR * FACTOR


def encode(frames: torch.Tensor) -> torch.Tensor:
    """Pixels to latents.

    Args:
        frames: uint8 [..., T, H, W, 3] RGB (H, W multiples of 4).

    Returns:
        float32 [..., T, 48, H/4, W/4] in [-1, 1].
    """
    x = frames.to(torch.float32) / 127.5 - 1.0
    x = x.movedim(-1, -3)  # [..., T, 3, H, W]
    lead = x.shape[:-3]
    y = F.pixel_unshuffle(x.reshape(-1, *x.shape[-3:]), FACTOR)  # [N, 48, H/4, W/4]
    return y.reshape(*lead, *y.shape[1:])


def decode(latents: torch.Tensor) -> torch.Tensor:
    """Latents to pixels (clamped to [-1, 1], rounded to uint8).

    Args:
        latents: [..., T, 48, h, w] (any float dtype).

    Returns:
        uint8 [..., T, 4h, 4w, 3].
    """
    lead = latents.shape[:-3]
    x = F.pixel_shuffle(latents.float().reshape(-1, *latents.shape[-3:]), FACTOR)  # [N, 3, 4h, 4w]
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.reshape(*lead, *x.shape[1:]).movedim(-3, -1)

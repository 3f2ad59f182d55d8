"""StyleGAN-V's TorchScript I3D (``i3d_torchscript.pt``), the feature extractor of FVD.

The archive is a port of the tf-hub ``i3d-kinetics-400`` model, called as
``model(videos, rescale=..., resize=..., return_features=True)`` on ``(B, 3, T, H, W)`` float videos and
returning the 400-d pre-softmax features. StyleGAN-V passes uint8-range videos with ``rescale=True,
resize=True``; here the preprocessing is done explicitly — each frame stretched to 224×224 (bilinear, no
antialias, aspect not kept, as the TF original) and scaled to [−1, 1] — and the model is called with
``rescale=False, resize=False``, as ``fvd-comparison/our_fvd.py`` does.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file


def load_i3d_torchscript(path: str | Path, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """Load StyleGAN-V's TorchScript I3D.

    Raises:
        UserError: If the file is missing or not a TorchScript archive.
    """
    p = require_file(path, "I3D (StyleGAN-V i3d_torchscript.pt)")
    try:
        model = torch.jit.load(str(p), map_location=device)
    except RuntimeError as err:
        raise UserError(f"{p} is not a TorchScript archive: {str(err).splitlines()[0]}") from err
    return model.eval()


def preprocess_clips(clips: torch.Tensor, resolution: int = 224) -> torch.Tensor:
    """Uint8 clips → I3D input.

    Args:
        clips: ``(B, T, H, W, 3)`` uint8 RGB.
        resolution: Output side (224).

    Returns:
        ``(B, 3, T, resolution, resolution)`` float32 in [−1, 1].
    """
    if clips.dtype != torch.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"clips must be (B, T, H, W, 3) uint8, got {tuple(clips.shape)} {clips.dtype}")
    b, t, h, w, _ = clips.shape
    x = clips.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float()  # (B*T, 3, H, W)
    x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=False)
    x = x * (2.0 / 255.0) - 1.0  # (B*T, 3, R, R) in [-1, 1]
    return x.reshape(b, t, 3, resolution, resolution).permute(0, 2, 1, 3, 4).contiguous()  # (B, 3, T, R, R)


@torch.inference_mode()
def i3d_features(
    model: torch.jit.ScriptModule, clips: torch.Tensor, resolution: int = 224, batch_size: int = 8
) -> torch.Tensor:
    """I3D features of uint8 clips.

    Args:
        model: From :func:`load_i3d_torchscript`.
        clips: ``(B, T, H, W, 3)`` uint8 RGB.
        resolution: Input side (224).
        batch_size: Clips per forward pass.

    Returns:
        ``(B, D)`` float64 features (D = 400 for the real model).
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    out = []
    for i in range(0, clips.shape[0], batch_size):
        x = preprocess_clips(clips[i : i + batch_size], resolution).to(device)
        out.append(model(x, rescale=False, resize=False, return_features=True).double().cpu())
    return torch.cat(out)

"""VBench's frame preprocessing (``vbench/utils.py``), applied to ``(T, H, W, 3)`` uint8 frames.

VBench's ``load_video`` returns ``torch.Tensor(frames)`` — **float32** values in 0–255 — so its resizes run on
float data (no uint8 rounding or clamping); the transforms below do the same.
"""

from __future__ import annotations

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from deepforcing.metrics.base import require_rgb_uint8

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_float_tchw(frames: torch.Tensor) -> torch.Tensor:
    require_rgb_uint8(frames)
    return frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W), 0..255


def clip_transform(frames: torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """VBench ``clip_transform``: bicubic short-side resize (no antialias), centre crop, /255, CLIP norm.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        n_px: Output size.

    Returns:
        ``(T, 3, n_px, n_px)`` float32.
    """
    x = _as_float_tchw(frames)
    x = TF.resize(x, n_px, interpolation=InterpolationMode.BICUBIC, antialias=False)  # (T, 3, h', w')
    x = TF.center_crop(x, [n_px, n_px])  # (T, 3, n_px, n_px)
    return TF.normalize(x.div(255.0), CLIP_MEAN, CLIP_STD)


def dino_transform(frames: torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """VBench ``dino_transform``: bilinear short-side resize (no antialias, **no crop**), /255, ImageNet norm.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        n_px: Short side after resizing.

    Returns:
        ``(T, 3, n_px, n_px * W / H)`` float32 (aspect kept).
    """
    x = _as_float_tchw(frames)
    x = TF.resize(x, n_px, antialias=False)  # (T, 3, h', w'), bilinear
    return TF.normalize(x.div(255.0), IMAGENET_MEAN, IMAGENET_STD)


def clip_transform_uint8(frames: torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """VBench ``clip_transform`` on **uint8** frames, as ``read_frames_decord_by_fps`` hands them over.

    The dimensions that sample frames with decord (overall_consistency, temporal_style, the competition CLIP
    score) resize uint8 tensors: torchvision rounds and clamps the bicubic result back to uint8 before the
    centre crop, /255 and CLIP normalisation (unlike :func:`clip_transform`, which resizes float frames).

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        n_px: Output size.

    Returns:
        ``(T, 3, n_px, n_px)`` float32.
    """
    require_rgb_uint8(frames)
    x = frames.permute(0, 3, 1, 2)  # (T, 3, H, W) uint8, a view as decord's frames.permute(0, 3, 1, 2)
    x = TF.resize(x, n_px, interpolation=InterpolationMode.BICUBIC, antialias=False)  # (T, 3, h', w') uint8
    x = TF.center_crop(x, [n_px, n_px])  # (T, 3, n_px, n_px) uint8
    return TF.normalize(x.float().div(255.0), CLIP_MEAN, CLIP_STD)

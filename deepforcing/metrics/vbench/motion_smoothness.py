"""VBench motion_smoothness: how well AMT-S predicts the odd frames of a clip from the even ones.

Per clip (VBench 0.1.5 ``vbench/motion_smoothness.py``, applied per 2-s clip by VBench-Long):

1. keep the even frames ``f_0, f_2, f_4, …`` (at least two, so a clip needs ``T >= 3`` frames);
2. convert each to float RGB in ``[0, 1]`` (``uint8 / 255``) and replicate-pad H and W to a multiple of 16
   (split evenly, extra pixel right / bottom);
3. for each consecutive pair ``(f_2k, f_2k+2)`` AMT-S predicts the frame at ``t = 0.5`` (one pass, no recursion);
4. crop the padding, convert back to uint8 the way VBench does — ``(x * 255)`` then clip and **truncate**
   (``astype(uint8)``, not rounding);
5. ``d_k`` = mean absolute difference (over H, W and the 3 channels) between the prediction and the real odd
   frame ``f_2k+1``; ``d`` = mean over the pairs (a clip with an even number of frames has one odd frame more
   than predictions; VBench ignores the last one);
6. score ``(255 - d) / 255``; 1.0 is a perfect interpolation.

A video's value is the plain mean of its clip scores (VBench-Long); the suite value is the plain mean over
videos (VBench's ``np.mean``), i.e. :data:`~deepforcing.metrics.aggregate.VBENCH_LONG`.

VBench may run AMT-S on downscaled frames: on CUDA it derives a factor from the GPU's total memory
(:func:`vbench_interpolation_scale`), on CPU it never downscales frames below 8192 x 8192 px. For 832 x 480 the
factor is 1 on any GPU with more than ~3.3 GiB, which is the default here (``vram_bytes=None`` = VBench's CPU
rule); a GPU size can be given to reproduce a VBench run on a small GPU.

What is and is not identical to vbench 0.1.5 (measured on CPU with random full-size AMT-S weights against
vbench's own ``motion_smoothness`` and its bundled AMT code, ``tests/metrics/test_motion_smoothness.py``):

* identical: frame selection, padding, the network (same parameters, same operations in the same order; with
  ``batch_size=1`` the per-video scores equal vbench's exactly, also on the downscaled path), the uint8
  truncation, the score formula and the aggregation (VBench's multi-GPU path, a mean of per-video values, gives
  the same number);
* not bit-identical: by default pairs are batched through the network (VBench runs one pair at a time), which
  changes float32 rounding: a few predicted pixels land on the other side of an integer after truncation
  (measured: scores within 7e-8, pooled predicted frames within 1.1e-7, flows within 3e-6 px); no gradients are
  tracked; frames come from one shared decode (VBench decodes the mp4 with OpenCV; on a lossless clip the frames
  are the same);
* deliberately different: frames under 128 px per side (after padding / scaling) and clips under 3 frames raise
  :class:`~deepforcing.errors.UserError`. VBench asserts on the latter; on the former its coarsest correlation
  level has one cell, the lookup divides by zero and the NaN prediction is cast to uint8 — a meaningless score;
* the checkpoint is read with ``weights_only=True`` first; the official file may need ``trust_pickle=True``
  (VBench 0.1.5 itself fails to load it under torch >= 2.6, see :mod:`~deepforcing.metrics.backbones.amt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.amt import AmtS, load_amt_s, pad_to_multiple, unpad
from deepforcing.metrics.base import ClipMetric
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore

#: VBench's CUDA rule: frames of this many pixels fit in ``_ANCHOR_MEMORY`` bytes beyond ``_ANCHOR_BIAS``.
_ANCHOR_RESOLUTION = 1024 * 512
_ANCHOR_MEMORY = 1500 * 1024**2
_ANCHOR_BIAS = 2500 * 1024**2
#: VBench's CPU rule (``initialization``): anchor 8192^2 px, memory 1, bias 0, "VRAM" 1.
_CPU_ANCHOR_RESOLUTION = 8192 * 8192


def vbench_interpolation_scale(height: int, width: int, vram_bytes: int | None = None) -> float:
    """The factor VBench runs AMT-S at for ``height x width`` frames (``MotionSmoothness.motion_score``).

    Args:
        height: Frame height (unpadded).
        width: Frame width (unpadded).
        vram_bytes: Total memory of the CUDA device, or ``None`` for VBench's CPU rule.

    Returns:
        ``16 / k`` for an integer ``k >= 16`` (1.0 whenever the frames fit).

    Raises:
        UserError: If ``vram_bytes`` is below VBench's 2500 MiB bias (VBench would compute a NaN factor).
    """
    if vram_bytes is None:
        anchor, memory, bias, vram = _CPU_ANCHOR_RESOLUTION, 1, 0, 1
    else:
        anchor, memory, bias, vram = _ANCHOR_RESOLUTION, _ANCHOR_MEMORY, _ANCHOR_BIAS, vram_bytes
    if vram <= bias:
        raise UserError(f"vram_bytes={vram_bytes} is below VBench's {bias} B bias; its scale rule is undefined there")
    scale = anchor / (height * width) * math.sqrt((vram - bias) / memory)
    scale = min(scale, 1.0)
    return 1 / math.floor(1 / math.sqrt(scale) * 16) * 16


def to_model_input(frames: torch.Tensor, divisor: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """VBench's ``img2tensor`` + ``InputPadder.pad``: ``(N, H, W, 3)`` uint8 -> padded ``(N, 3, H', W')`` in ``[0, 1]``.

    The result is made contiguous (NCHW), as VBench's padded tensors are: a channels-last input would make the
    convolutions take other kernels and differ from VBench at float rounding level.

    Returns:
        The padded batch and the padding ``(left, right, top, bottom)`` for :func:`unpad`.
    """
    x = (frames.permute(0, 3, 1, 2).float() / 255.0).contiguous()  # (N, 3, H, W)
    x, pad = pad_to_multiple(x, divisor)
    return x.contiguous(), pad


def to_uint8_like_vbench(images: torch.Tensor) -> torch.Tensor:
    """VBench's ``tensor2img``: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, H, W, 3)`` uint8 (``x * 255`` truncated)."""
    return (images * 255.0).permute(0, 2, 3, 1).clamp(0, 255).to(torch.uint8)


def score_from_predictions(predicted: torch.Tensor, targets: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(255 - mean_k mean|pred_k - target_k|) / 255`` and the per-pair mean absolute differences.

    Args:
        predicted: ``(P, H, W, 3)`` uint8 predicted odd frames.
        targets: ``(P, H, W, 3)`` uint8 real odd frames.

    Returns:
        The score and ``(P,)`` float64 per-pair mean absolute differences (0..255).
    """
    if predicted.shape != targets.shape or predicted.dtype != torch.uint8 or targets.dtype != torch.uint8:
        raise ValueError(f"need equal-shape uint8 frames, got {tuple(predicted.shape)} and {tuple(targets.shape)}")
    diffs = (predicted.to(torch.int16) - targets.to(torch.int16)).abs().flatten(1).double().mean(dim=1)  # (P,)
    return (255.0 - float(diffs.mean())) / 255.0, diffs


@dataclass(frozen=True)
class MotionSmoothnessConfig:
    """Configuration of motion_smoothness.

    Attributes:
        weights: Path of ``amt-s.pth``.
        vram_bytes: Reproduce VBench's downscaling on a CUDA device with this much memory (``None``: VBench's CPU
            rule, i.e. full resolution for any realistic frame size; the same as on a GPU with > 3.3 GiB at
            832 x 480).
        trust_pickle: Let the loader unpickle non-tensor objects in the checkpoint (the official file may hold
            some); only for files from a trusted source.
    """

    weights: str
    vram_bytes: int | None = None
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        if self.vram_bytes is not None and self.vram_bytes <= _ANCHOR_BIAS:
            raise ValueError(f"vram_bytes must exceed {_ANCHOR_BIAS} (VBench's bias), got {self.vram_bytes}")


class MotionSmoothness(ClipMetric):
    """VBench motion_smoothness per clip; clip mean per video, video mean per suite (VBench-Long)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(
        self, config: MotionSmoothnessConfig, device: str | torch.device = "cpu", batch_size: int | None = None
    ):
        self.config = config
        self.device = torch.device(device)
        # On one CPU thread AMT-S is ~13 % slower in batches of 4 than one pair at a time (1.94 s vs 1.71 s for
        # the 3 pairs of an 8-frame 240 x 320 clip, dev machine); batches pay off on an accelerator.
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else 4
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.model: AmtS = load_amt_s(Path(config.weights), trust_pickle=config.trust_pickle).to(self.device)
        vram = "cpu" if config.vram_bytes is None else config.vram_bytes
        self.id = metric_id(
            "vbench.motion_smoothness", {"model": "amt_s", "t": 0.5, "vram": vram, "ref": "vbench0.1.5"}
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def interpolate(self, keyframes: torch.Tensor) -> torch.Tensor:
        """AMT-S midpoints of consecutive frames, as VBench converts them back to pixels.

        Args:
            keyframes: ``(N, H, W, 3)`` uint8 RGB, ``N >= 2``.

        Returns:
            ``(N - 1, H, W, 3)`` uint8 predicted midpoints.
        """
        h, w = keyframes.shape[1:3]
        scale = vbench_interpolation_scale(h, w, self.config.vram_bytes)
        x, pad = to_model_input(keyframes, int(16 / scale))  # (N, 3, H', W') in [0, 1]
        out = []
        for i in range(0, x.shape[0] - 1, self.batch_size):
            j = min(i + self.batch_size, x.shape[0] - 1)
            a, b = x[i:j].to(self.device), x[i + 1 : j + 1].to(self.device)  # (b, 3, H', W') each
            frame = self.model(a, b, 0.5, scale=scale).frame  # (b, 3, H', W')
            out.append(to_uint8_like_vbench(unpad(frame, pad)).cpu())  # (b, H, W, 3)
        return torch.cat(out)

    def score_frames(self, frames: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Score one clip.

        Args:
            frames: ``(T, H, W, 3)`` uint8 RGB, ``T >= 3``.

        Returns:
            The score and the ``(P,)`` per-pair mean absolute differences, ``P = ceil(T / 2) - 1``.

        Raises:
            UserError: If the clip has fewer than 3 frames.
        """
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"need (T, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}")
        if frames.shape[0] < 3:
            raise UserError(
                f"motion_smoothness needs at least 3 frames (two even frames to interpolate), got {frames.shape[0]}"
            )
        predicted = self.interpolate(frames[0::2])  # (P, H, W, 3)
        targets = frames[1::2][: predicted.shape[0]]  # (P, H, W, 3)
        return score_from_predictions(predicted, targets)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8); the row's weight is the number of interpolated frames."""
        score, diffs = self.score_frames(frames)
        extra = {"pairs": float(diffs.numel()), "mean_abs_diff": float(diffs.mean())}
        return [ClipScore(self.id, clip_index, score, float(diffs.numel()), extra)]

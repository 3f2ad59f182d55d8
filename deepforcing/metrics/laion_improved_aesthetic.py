"""LAION improved aesthetic predictor per frame (1–10 scale), clip mean, VBench-Long aggregation.

Per frame: CLIP preprocessing → OpenAI CLIP ViT-L/14 ``encode_image`` (float32) → L2-normalise (a zero vector
stays zero) → the ``sac+logos+ava1-l14-linearMSE.pth`` MLP (:mod:`deepforcing.metrics.backbones.laion_improved`).
Clip score = mean over frames; video = mean over clips; suite = mean over videos. Not VBench's aesthetic_quality
(that is the v1 linear head ÷ 10, :mod:`deepforcing.metrics.vbench.aesthetic_quality`); both share the
CLIP ViT-L/14 file.

Option ``preprocess`` (in the metric id as ``pre``):

* ``pil`` (default, the predictor's own ``simple_inference.py``): OpenAI CLIP's preprocessing on a PIL image —
  bicubic short-side resize to 224 with PIL's filter (antialiased), centre crop, ``ToTensor``, CLIP mean/std;
* ``vbench``: VBench's tensor ``clip_transform`` (bicubic, no antialias, on float 0–255), the one
  aesthetic_quality uses, so both metrics see identical CLIP inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.laion_improved import load_improved_aesthetic_head
from deepforcing.metrics.backbones.openai_clip import load_openai_clip
from deepforcing.metrics.base import ClipMetric, require_rgb_uint8
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.transforms import CLIP_MEAN, CLIP_STD, clip_transform

Preprocess = Literal["pil", "vbench"]


def pil_clip_transform(frames: torch.Tensor, n_px: int = 224) -> torch.Tensor:
    """OpenAI CLIP's image preprocessing, applied to each frame as a PIL image.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        n_px: Output size.

    Returns:
        ``(T, 3, n_px, n_px)`` float32.
    """
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    require_rgb_uint8(frames)
    out = []
    for f in frames.numpy():
        im = TF.resize(Image.fromarray(f), n_px, interpolation=InterpolationMode.BICUBIC)
        out.append(TF.normalize(TF.to_tensor(TF.center_crop(im, [n_px, n_px])), CLIP_MEAN, CLIP_STD))
    return torch.stack(out)  # (T, 3, n_px, n_px)


@dataclass(frozen=True)
class LaionImprovedAestheticConfig:
    """Configuration of laion_improved_aesthetic.

    Attributes:
        clip_weights: Path of OpenAI ``ViT-L-14.pt``.
        head_weights: Path of ``sac+logos+ava1-l14-linearMSE.pth``.
        preprocess: ``pil`` (the predictor's reference) or ``vbench`` (VBench's tensor transform).
        resolution: CLIP input size (224).
    """

    clip_weights: str
    head_weights: str
    preprocess: Preprocess = "pil"
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.preprocess not in ("pil", "vbench"):
            raise ValueError(f"preprocess must be 'pil' or 'vbench', got {self.preprocess!r}")


class LaionImprovedAesthetic(ClipMetric):
    """LAION improved aesthetic score per clip (mean over frames, 1–10 scale)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: LaionImprovedAestheticConfig, device: str | torch.device = "cpu", batch_size: int = 32):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.clip = load_openai_clip(Path(config.clip_weights)).to(self.device)
        self.head = load_improved_aesthetic_head(Path(config.head_weights)).to(self.device)
        self.id = metric_id(
            "laion_improved_aesthetic",
            {"clip": "openai-vit-l14", "head": "sac+logos+ava1-l14-mse", "pre": config.preprocess, "scale": "1-10"},
        )

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    def transform(self, frames: torch.Tensor) -> torch.Tensor:
        """CLIP input of ``(T, H, W, 3)`` uint8 frames → ``(T, 3, 224, 224)`` float32."""
        if self.config.preprocess == "pil":
            return pil_clip_transform(frames, self.config.resolution)
        return clip_transform(frames, self.config.resolution)

    @torch.inference_mode()
    def frame_scores(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame scores (1–10 scale) of ``(T, H, W, 3)`` uint8 frames → ``(T,)`` float32."""
        x = self.transform(frames)  # (T, 3, 224, 224)
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            emb = self.clip.encode_image(x[i : i + self.batch_size].to(self.device)).float()  # (b, 768)
            out.append(self.head(F.normalize(emb, dim=-1, p=2)).cpu())  # (b,)
        return torch.cat(out)  # (T,)

    def score_clip(self, frames: torch.Tensor, clip_index: int) -> list[ClipScore]:
        """Score one clip (``(T, H, W, 3)`` uint8)."""
        s = self.frame_scores(frames)
        return [ClipScore(self.id, clip_index, float(s.double().mean()), s.numel())]

"""VBench overall_consistency: ViCLIP cosine between a clip's 8 middle frames and the video's prompt.

Per clip (VBench 0.1.5 ``vbench/overall_consistency.py``): 8 frames by ``middle`` sampling
(:func:`~deepforcing.metrics.vbench.frame_sampling.middle_frame_indices`; a clip with fewer frames repeats its
last pick), ``clip_transform(224)`` on the **uint8** frames decord returns
(:func:`~deepforcing.metrics.vbench.transforms.clip_transform_uint8`), ViCLIP video embedding of the 8 frames
and ViCLIP text embedding of the prompt (32-token context, truncated), both L2-normalised; the clip's score is
their raw cosine (no ×100, no clamp). A video's value is the mean over its clips (VBench-Long) and the
dimension the mean over videos.

VBench-Long cuts 2-s clips in ``long_custom_input`` mode (the suite's clip length, the default here) and
10-s clips for this dimension in ``long_vbench_standard`` mode (``clip_seconds=10``, recorded in the id).
The prompt comes from the caller (:class:`~deepforcing.metrics.base.VideoContext`), never from a file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from deepforcing.errors import UserError
from deepforcing.metrics.aggregate import VBENCH_LONG, Aggregation
from deepforcing.metrics.backbones.clip_tokenizer import PromptFeatures, load_clip_bpe_tokenizer
from deepforcing.metrics.backbones.viclip import ViCLIPConfig, load_viclip
from deepforcing.metrics.base import ClipMetric, VideoContext
from deepforcing.metrics.clips import ClipSpan
from deepforcing.metrics.identity import metric_id
from deepforcing.metrics.rows import ClipScore
from deepforcing.metrics.vbench.frame_sampling import middle_frame_indices
from deepforcing.metrics.vbench.transforms import clip_transform_uint8


@dataclass(frozen=True)
class OverallConsistencyConfig:
    """Configuration of overall_consistency.

    Attributes:
        weights: Path of ``ViClip-InternVid-10M-FLT.pth``.
        bpe_path: ``bpe_simple_vocab_16e6.txt.gz``; ``None`` uses open_clip's copy (sha256-checked).
        arch: ViCLIP architecture (the released ViT-L/14 unless testing); ``arch.num_frames`` frames are sampled.
        resolution: Frame side fed to ViCLIP (224).
        clip_seconds: Clip length in seconds; ``None`` uses the suite's (VBench-Long custom mode: 2 s),
            ``10.0`` is VBench-Long's standard-mode length for this dimension.
    """

    weights: str
    bpe_path: str | None = None
    arch: ViCLIPConfig = field(default_factory=ViCLIPConfig)
    resolution: int = 224
    clip_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.resolution != self.arch.image_size:
            raise ValueError(f"resolution {self.resolution} != ViCLIP image_size {self.arch.image_size}")
        if self.clip_seconds is not None and not self.clip_seconds > 0:
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds}")


def overall_consistency_id(config: OverallConsistencyConfig) -> str:
    """The metric id of a configuration (the backbone is named after the released ViCLIP or its sizes)."""
    a = config.arch
    backbone = "viclip_l14_internvid10m_flt" if a == ViCLIPConfig() else f"viclip_w{a.vision_width}d{a.vision_layers}"
    protocol: dict[str, object] = {
        "backbone": backbone,
        "frames": a.num_frames,
        "sample": "middle",
        "res": config.resolution,
        "ref": "vbench0.1.5",
    }
    if config.clip_seconds is not None:
        protocol["clip"] = f"{config.clip_seconds:g}s"
    return metric_id("vbench.overall_consistency", protocol)


class OverallConsistency(ClipMetric):
    """VBench overall_consistency per clip (raw ViCLIP cosine, about −1..1; published numbers are ×100)."""

    aggregation: ClassVar[Aggregation] = VBENCH_LONG

    def __init__(self, config: OverallConsistencyConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.clip_seconds = config.clip_seconds
        self.model = load_viclip(Path(config.weights), config.arch).to(self.device)
        self.tokenizer = load_clip_bpe_tokenizer(config.bpe_path, config.arch.context_length)
        #: prompt -> L2-normalised ViCLIP text embedding, ``(D,)`` float32 (cached per prompt)
        self.text_features = PromptFeatures(self.model, self.tokenizer, self.config.arch.context_length, self.device)
        self.id = overall_consistency_id(config)

    @property
    def metric_ids(self) -> list[str]:
        """The single id."""
        return [self.id]

    @torch.inference_mode()
    def video_features(self, frames: torch.Tensor) -> torch.Tensor:
        """L2-normalised ViCLIP embedding of one clip's ``(T, H, W, 3)`` uint8 frames → ``(E,)`` float32."""
        idx = middle_frame_indices(self.config.arch.num_frames, frames.shape[0])
        x = clip_transform_uint8(frames[idx], self.config.resolution)  # (F, 3, 224, 224)
        emb = self.model.encode_video(x[None].to(self.device)).float()  # (1, E)
        return F.normalize(emb, dim=-1)[0].cpu()

    def score_frames(self, frames: torch.Tensor, prompt: str) -> float:
        """Cosine between one clip's frames and ``prompt``."""
        return float(self.video_features(frames) @ self.text_features(prompt))

    def score_video(
        self, frames: torch.Tensor, clips: Sequence[ClipSpan], context: VideoContext | None = None
    ) -> list[ClipScore]:
        """Score every clip of a video against ``context.prompt``.

        Raises:
            UserError: If the video has no prompt.
        """
        if context is None or not context.prompt:
            raise UserError(
                "overall_consistency needs the video's prompt",
                "pass prompt=... to deepforcing.metrics.base.score_video",
            )
        return [
            ClipScore(self.id, span.index, self.score_frames(frames[span.start : span.stop], context.prompt))
            for span in clips
        ]

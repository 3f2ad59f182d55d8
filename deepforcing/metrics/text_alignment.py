"""Text–video alignment and frame features shared by the prompt-switch metrics.

Two text aligners, each reducing a stretch of frames to a vector ``u`` whose dot product with a prompt's
L2-normalised text embedding ``t`` is the alignment score ``u · t``:

* :class:`ViCLIPAligner` — ViCLIP (``ViClip-InternVid-10M-FLT.pth``), exactly as VBench's overall_consistency
  sees a clip: the ``arch.num_frames`` (8) middle-sampled frames
  (:func:`~deepforcing.metrics.vbench.frame_sampling.middle_frame_indices`), ``clip_transform`` on uint8 frames,
  one L2-normalised video embedding; the prompt through ViCLIP's text encoder (32 tokens, truncated). Score: the
  raw cosine.
* :class:`ClipAligner` — OpenAI CLIP ViT-B/32 (``ViT-B-32.pt``), as the VBench competition's CLIP score and
  :mod:`~deepforcing.metrics.clip_text_similarity`: ``num_frames`` (8) middle-sampled frames (or all),
  ``clip_transform`` on uint8 frames, L2-normalised image embeddings ``f_i``; ``u`` is their mean, so
  ``u · t`` is the mean over frames of the raw frame–prompt cosine. Per-frame vectors (:meth:`ClipAligner.frames`)
  give the alignment timeline the switch latency reads.

And the two consistency backbones for transition smoothness (:func:`consistency_features`): DINO ViT-B/16 CLS
(``dino_transform``, as subject consistency) and CLIP ViT-B/32 image features (``clip_transform``, as background
consistency).

Loaded models are cached per (file, architecture, device) for the life of the process, so the four prompt-switch
metrics of one suite share one ViCLIP, one CLIP and one DINO.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from deepforcing.metrics.backbones.clip_tokenizer import PromptFeatures, load_clip_bpe_tokenizer
from deepforcing.metrics.backbones.dino_vit import DinoViTConfig, load_dino_vit
from deepforcing.metrics.backbones.openai_clip import load_openai_clip
from deepforcing.metrics.backbones.viclip import ViCLIPConfig, load_viclip
from deepforcing.metrics.vbench.frame_sampling import middle_frame_indices
from deepforcing.metrics.vbench.transforms import clip_transform, clip_transform_uint8, dino_transform


@functools.cache
def _viclip(path: str, arch: ViCLIPConfig, device: str) -> torch.nn.Module:
    return load_viclip(Path(path), arch).to(torch.device(device))


@functools.cache
def _openai_clip(path: str, device: str) -> torch.nn.Module:
    return load_openai_clip(Path(path)).to(torch.device(device))


@functools.cache
def _dino(path: str, arch: DinoViTConfig, device: str) -> torch.nn.Module:
    return load_dino_vit(Path(path), arch).to(torch.device(device))


def viclip_name(arch: ViCLIPConfig) -> str:
    """Backbone name in metric ids (the released ViCLIP, or its sizes)."""
    if arch == ViCLIPConfig():
        return "viclip_l14_internvid10m_flt"
    return f"viclip_w{arch.vision_width}d{arch.vision_layers}"


def dino_name(arch: DinoViTConfig) -> str:
    """Backbone name in metric ids (``dino_vitb16``, or the sizes of another DINO)."""
    return "dino_vitb16" if arch == DinoViTConfig() else f"dino_vit{arch.embed_dim}d{arch.depth}p{arch.patch_size}"


class ViCLIPAligner:
    """ViCLIP video–text alignment of a stretch of frames (VBench overall_consistency's view of a clip).

    Args:
        weights: ``ViClip-InternVid-10M-FLT.pth``.
        arch: ViCLIP architecture (the released one unless testing).
        bpe_path: CLIP BPE vocabulary (None: open_clip's copy).
        resolution: Frame side (224).
        device: Where the model runs.
    """

    def __init__(
        self,
        weights: str,
        arch: ViCLIPConfig | None = None,
        bpe_path: str | None = None,
        resolution: int = 224,
        device: str | torch.device = "cpu",
    ):
        self.arch = arch or ViCLIPConfig()
        self.resolution = resolution
        self.device = torch.device(device)
        self.model = _viclip(str(weights), self.arch, str(self.device))
        tokenizer = load_clip_bpe_tokenizer(bpe_path, self.arch.context_length)
        #: prompt -> L2-normalised text embedding ``(E,)`` (cached per prompt)
        self.text = PromptFeatures(self.model, tokenizer, self.arch.context_length, self.device)
        self.protocol: dict[str, Any] = {
            "backbone": viclip_name(self.arch),
            "frames": self.arch.num_frames,
            "sample": "middle",
            "res": resolution,
            "text": f"trunc{self.arch.context_length}",
        }

    @torch.inference_mode()
    def segment_vector(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, H, W, 3)`` uint8 → L2-normalised video embedding ``(E,)`` of the middle-sampled frames."""
        idx = middle_frame_indices(self.arch.num_frames, frames.shape[0])
        x = clip_transform_uint8(frames[idx], self.resolution)  # (F, 3, 224, 224)
        emb = self.model.encode_video(x[None].to(self.device)).float()  # (1, E)
        return F.normalize(emb, dim=-1)[0].cpu()


class ClipAligner:
    """CLIP image–text alignment: per frame, or averaged over a stretch's middle-sampled frames.

    Args:
        weights: ``ViT-B-32.pt`` (any OpenAI-format CLIP).
        backbone: Its name in metric ids.
        num_frames: Middle-sampled frames per stretch (8, as VBench's CLIP score); None uses every frame.
        resolution: CLIP input size (224).
        context_length: Text tokens (77; longer prompts are truncated).
        device: Where the model runs.
        batch_size: Frames per forward pass.
    """

    def __init__(
        self,
        weights: str,
        backbone: str = "openai-vit-b32",
        num_frames: int | None = 8,
        resolution: int = 224,
        context_length: int = 77,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ):
        self.num_frames, self.resolution, self.batch_size = num_frames, resolution, batch_size
        self.device = torch.device(device)
        self.model = _openai_clip(str(weights), str(self.device))
        tokenizer = load_clip_bpe_tokenizer(None, context_length)
        #: prompt -> L2-normalised text embedding ``(D,)`` (cached per prompt)
        self.text = PromptFeatures(self.model, tokenizer, context_length, self.device)
        self.protocol: dict[str, Any] = {
            "backbone": backbone,
            "frames": "all" if num_frames is None else num_frames,
            "sample": "all" if num_frames is None else "middle",
            "res": resolution,
            "text": f"trunc{context_length}",
        }

    @torch.inference_mode()
    def frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``(T, H, W, 3)`` uint8 → L2-normalised image embeddings ``(T, D)``."""
        out = []
        for i in range(0, frames.shape[0], self.batch_size):
            x = clip_transform_uint8(frames[i : i + self.batch_size], self.resolution)  # (B, 3, 224, 224)
            out.append(self.model.encode_image(x.to(self.device)).float().cpu())
        return F.normalize(torch.cat(out), dim=-1)

    def segment_vector(self, frames: torch.Tensor) -> torch.Tensor:
        """Mean of the sampled frames' normalised embeddings ``(D,)`` (``u · t`` = mean frame–prompt cosine)."""
        if self.num_frames is not None:
            frames = frames[middle_frame_indices(self.num_frames, frames.shape[0])]
        return self.frames(frames).mean(0)


def consistency_backbone(
    kind: str, weights: str, arch: DinoViTConfig | None = None, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The (cached) consistency backbone: ``dino`` (DINO ViT) or ``clip`` (OpenAI CLIP).

    Raises:
        ValueError: On another ``kind``.
        UserError: If the checkpoint is missing or malformed.
    """
    dev = str(torch.device(device))
    if kind == "dino":
        return _dino(str(weights), arch or DinoViTConfig(), dev)
    if kind == "clip":
        return _openai_clip(str(weights), dev)
    raise ValueError(f"kind must be 'dino' or 'clip', got {kind!r}")


@torch.inference_mode()
def consistency_features(
    kind: str,
    weights: str,
    frames: torch.Tensor,
    arch: DinoViTConfig | None = None,
    resolution: int = 224,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
) -> torch.Tensor:
    """Features of the VBench consistency backbones, L2-normalised.

    Args:
        kind: ``dino`` (subject consistency: DINO CLS, ``dino_transform``) or ``clip`` (background consistency:
            CLIP ``encode_image``, ``clip_transform``).
        weights: The backbone's checkpoint.
        frames: ``(T, H, W, 3)`` uint8.
        arch: DINO architecture (``kind="dino"``).
        resolution: Input size (224).
        device: Where the model runs.
        batch_size: Frames per forward pass.

    Returns:
        ``(T, D)`` float32.
    """
    model = consistency_backbone(kind, weights, arch, device)
    transform, run = (dino_transform, model) if kind == "dino" else (clip_transform, model.encode_image)
    out = []
    for i in range(0, frames.shape[0], batch_size):
        x = transform(frames[i : i + batch_size], resolution).to(torch.device(device))
        out.append(run(x).float().cpu())
    return F.normalize(torch.cat(out), dim=-1)  # (T, D)

"""ViCLIP (InternVid), the video–text model behind VBench's overall_consistency and temporal_style.

The released checkpoint ``ViClip-InternVid-10M-FLT.pth`` is a ``torch.save``-d dict whose ``"model"`` entry is
the state dict of three parts (names as in the file; VBench loads it strictly):

* ``vision_encoder.*`` — a CLIP ViT-L/14 whose patch embedding is a ``Conv3d`` with a temporal kernel of 1
  (``conv1.weight (W, 3, 1, P, P)``, no bias), ``class_embedding (W,)``, ``positional_embedding (N + 1, W)``,
  ``temporal_positional_embedding (1, F, W)``, ``ln_pre``, ``transformer.resblocks.<i>`` (OpenAI CLIP block
  names: ``ln_1``, ``attn.in_proj_weight``/``in_proj_bias``, ``attn.out_proj``, ``ln_2``, ``mlp.c_fc``,
  ``mlp.c_proj``; QuickGELU), ``ln_post`` and ``proj (W, E)``;
* ``text_encoder.*`` — the OpenAI CLIP text transformer with a 32-token context: ``token_embedding``,
  ``positional_embedding (32, W_t)``, ``transformer.resblocks.<i>``, ``ln_final``, ``text_projection (W_t, E)``;
* ``temp`` — the contrastive temperature (unused at inference).

Video encoding (joint space–time attention): each of the ``F`` frames is patchified; every frame's patch
tokens get the spatial positional embedding and that frame's temporal embedding; the ``N * F`` patch tokens
(ordered patch-major, frame-minor) follow one class token (``class_embedding + positional_embedding[0]``, no
temporal term); ``ln_pre`` → transformer → ``ln_post`` on the class token → ``proj``. A single frame gets the
mean temporal embedding. Text encoding: causal transformer, features at the end-of-text token (the largest
token id), ``ln_final`` → ``text_projection``.

Text is tokenised with the OpenAI CLIP BPE (``bpe_simple_vocab_16e6.txt.gz``); ``open_clip``'s
``SimpleTokenizer`` reads the same merges, cleans text the same way (ftfy, double HTML unescape, whitespace
collapse, lower case) and truncates the same way (keep the first ``context_length`` tokens, last one set to
end-of-text), so it is used here with ``context_length=32`` (:mod:`.clip_tokenizer`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViCLIPConfig:
    """Architecture of ViCLIP; the defaults are the released ViT-L/14 (InternVid-10M-FLT).

    Attributes:
        image_size: Frame side the spatial positional embedding is for.
        patch_size: Patch side in pixels.
        num_frames: Frames per video (length of the temporal positional embedding).
        vision_width: Vision token width.
        vision_layers: Vision transformer blocks.
        vision_heads: Vision attention heads (not recoverable from a state dict).
        embed_dim: Joint embedding size (output of ``proj`` and ``text_projection``).
        text_width: Text token width.
        text_layers: Text transformer blocks.
        text_heads: Text attention heads.
        context_length: Text tokens per prompt (ViCLIP: 32).
        vocab_size: BPE vocabulary size (49408 for the OpenAI CLIP BPE).
    """

    image_size: int = 224
    patch_size: int = 14
    num_frames: int = 8
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    embed_dim: int = 768
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    context_length: int = 32
    vocab_size: int = 49408

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.vision_width % self.vision_heads or self.text_width % self.text_heads:
            raise ValueError("token widths must be divisible by the number of heads")


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the activation CLIP and ViCLIP were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply QuickGELU elementwise."""
        return x * torch.sigmoid(1.702 * x)


class _SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names (packed q/k/v)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D)
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, N, 3D)
        q, k, v = qkv.reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, N, D/h) each
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, N, D/h)
        return self.out_proj(y.transpose(1, 2).reshape(b, n, d))  # (B, N, D)


class _ResidualBlock(nn.Module):
    """Pre-norm transformer block with OpenAI CLIP's names (``ln_1``, ``attn``, ``ln_2``, ``mlp.c_fc/c_proj``)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = _SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(width, 4 * width)
        self.mlp.c_proj = nn.Linear(4 * width, width)
        self.act = QuickGELU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)  # (B, N, D)
        return x + self.mlp.c_proj(self.act(self.mlp.c_fc(self.ln_2(x))))  # (B, N, D)


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList(_ResidualBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x, mask)
        return x


class ViCLIPVision(nn.Module):
    """Video tower: frame patches + spatial and temporal positions, joint attention, class-token embedding."""

    def __init__(self, c: ViCLIPConfig):
        super().__init__()
        self.config = c
        w, p = c.vision_width, c.patch_size
        grid = c.image_size // p
        self.conv1 = nn.Conv3d(3, w, kernel_size=(1, p, p), stride=(1, p, p), bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(w))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, w))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, c.num_frames, w))
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = _Transformer(w, c.vision_layers, c.vision_heads)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.zeros(w, c.embed_dim))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Embed videos.

        Args:
            video: ``(B, F, 3, H, W)`` normalised frames; ``F`` is ``num_frames`` or 1, ``H = W = image_size``.

        Returns:
            ``(B, E)`` video embeddings (not L2-normalised).
        """
        b, f = video.shape[:2]
        if f not in (1, self.config.num_frames):
            raise ValueError(f"ViCLIP takes {self.config.num_frames} frames (or 1), got {f}")
        x = self.conv1(video.transpose(1, 2))  # (B, W, F, g, g)
        x = x.flatten(3).permute(0, 2, 3, 1)  # (B, F, N, W)
        x = x + self.positional_embedding[1:]  # (B, F, N, W)
        temporal = self.temporal_positional_embedding  # (1, F0, W)
        temporal = temporal.mean(1, keepdim=True) if f == 1 else temporal
        x = x + temporal[:, :, None, :]  # (B, F, N, W)
        x = x.transpose(1, 2).reshape(b, -1, x.shape[-1])  # (B, N*F, W), patch-major, frame-minor
        cls = (self.class_embedding + self.positional_embedding[0]).expand(b, 1, -1)  # (B, 1, W)
        x = self.ln_pre(torch.cat([cls, x], dim=1))  # (B, 1 + N*F, W)
        x = self.transformer(x)  # (B, 1 + N*F, W)
        return self.ln_post(x[:, 0]) @ self.proj  # (B, E)


class ViCLIPText(nn.Module):
    """Text tower: the OpenAI CLIP text transformer (causal), pooled at the end-of-text token."""

    def __init__(self, c: ViCLIPConfig):
        super().__init__()
        self.config = c
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(c.context_length, c.text_width))
        self.transformer = _Transformer(c.text_width, c.text_layers, c.text_heads)
        self.ln_final = nn.LayerNorm(c.text_width)
        self.text_projection = nn.Parameter(torch.zeros(c.text_width, c.embed_dim))
        causal = torch.full((c.context_length, c.context_length), float("-inf")).triu(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embed token sequences.

        Args:
            tokens: ``(B, context_length)`` token ids (start, BPE ids, end-of-text, zero padding).

        Returns:
            ``(B, E)`` text embeddings (not L2-normalised).
        """
        if tokens.ndim != 2 or tokens.shape[1] != self.config.context_length:
            raise ValueError(f"expected (B, {self.config.context_length}) tokens, got {tuple(tokens.shape)}")
        x = self.token_embedding(tokens.long()) + self.positional_embedding  # (B, L, W_t)
        x = self.ln_final(self.transformer(x, self.causal_mask))  # (B, L, W_t)
        eot = tokens.argmax(dim=-1)  # (B,) position of the end-of-text token (largest id)
        return x[torch.arange(x.shape[0]), eot] @ self.text_projection  # (B, E)


class ViCLIP(nn.Module):
    """ViCLIP with the released checkpoint's module names (``vision_encoder``, ``text_encoder``, ``temp``)."""

    def __init__(self, config: ViCLIPConfig = ViCLIPConfig()):
        super().__init__()
        self.config = config
        self.vision_encoder = ViCLIPVision(config)
        self.text_encoder = ViCLIPText(config)
        self.temp = nn.Parameter(torch.tensor(0.01))

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, F, 3, H, W)`` normalised frames → ``(B, E)`` embeddings (not normalised)."""
        return self.vision_encoder(video)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, context_length)`` token ids → ``(B, E)`` embeddings (not normalised)."""
        return self.text_encoder(tokens)


def _describe_mismatch(model: nn.Module, state: dict[str, torch.Tensor], limit: int = 6) -> str:
    """A short, readable list of missing / unexpected / mis-shaped tensors."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(want.keys() - have.keys())
    unexpected = sorted(have.keys() - want.keys())
    shapes = sorted(f"{k}: file {have[k]} vs model {want[k]}" for k in want.keys() & have.keys() if want[k] != have[k])
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label} {len(items)}: " + "; ".join(items[:limit]) + more)
    return " | ".join(parts)


def read_viclip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ViCLIP checkpoint: the released ``{"model": state_dict, ...}`` file or a bare state dict.

    Raises:
        UserError: If the file is missing, needs arbitrary unpickling, or holds no ViCLIP state dict.
    """
    p = require_file(path, "ViCLIP")
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means "not a plain tensor checkpoint"
        raise UserError(
            f"{p} could not be read as a tensor-only checkpoint (weights_only=True): {str(err).splitlines()[0]}",
            "check that the file is ViClip-InternVid-10M-FLT.pth as published by OpenGVLab/VBench_Used_Models",
        ) from err
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or "vision_encoder.conv1.weight" not in state:
        raise UserError(f"{p} does not look like a ViCLIP checkpoint (no model / vision_encoder.conv1.weight)")
    return state


def load_viclip(path: str | Path, config: ViCLIPConfig = ViCLIPConfig()) -> ViCLIP:
    """Load ``ViClip-InternVid-10M-FLT.pth`` (or a file in its format) strictly into :class:`ViCLIP`.

    Args:
        path: The checkpoint.
        config: Architecture; must match the file's tensors exactly.

    Returns:
        The model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing or malformed, or a tensor is missing, unexpected or mis-shaped.
    """
    state = read_viclip_state_dict(path)
    model = ViCLIP(config)
    problems = _describe_mismatch(model, state)
    if problems:
        raise UserError(f"{path} does not match ViCLIP {config}: {problems}")
    model.load_state_dict(state, strict=True)
    logger.debug("loaded ViCLIP (%d tensors) from %s", len(state), path)
    return model.float().eval()

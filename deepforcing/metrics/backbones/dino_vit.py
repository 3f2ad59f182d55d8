"""DINO ViT (``facebookresearch/dino``), as VBench's subject_consistency uses it through ``torch.hub``.

The checkpoint ``dino_vitbase16_pretrain.pth`` is a plain state dict of DINO's ``VisionTransformer``
(``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
mlp.fc2}.*``, ``norm.*``; no head). The forward pass returns the final-norm CLS token.

VBench feeds DINO frames resized to a short side of 224 **without** a centre crop, so the positional embedding
is resampled to a non-square patch grid. DINO does that with
``F.interpolate(..., scale_factor=(h0 + 0.1) / sqrt(N), mode="bicubic")`` — a scale factor, not a target
size, which moves the sampling positions. The same call is made here; a size-based resampler (e.g. timm's)
gives different features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file


@dataclass(frozen=True)
class DinoViTConfig:
    """Architecture of a DINO ViT; the defaults are ViT-B/16 (``dino_vitb16``).

    Attributes:
        embed_dim: Token width.
        depth: Number of transformer blocks.
        num_heads: Attention heads (not recoverable from a state dict).
        patch_size: Patch size in pixels.
        mlp_ratio: MLP hidden width / ``embed_dim``.
        pretrain_size: Image size the positional embedding was trained for.
    """

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    patch_size: int = 16
    mlp_ratio: float = 4.0
    pretrain_size: int = 224


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D)
        qkv = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, D/heads)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, D/heads)
        x = x + self.attn.proj(y.transpose(1, 2).reshape(b, n, d))  # (B, N, D)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))  # (B, N, D)


class DinoViT(nn.Module):
    """DINO Vision Transformer returning the CLS feature of arbitrary-size inputs."""

    def __init__(self, config: DinoViTConfig = DinoViTConfig()):
        super().__init__()
        c = config
        self.config = c
        grid = c.pretrain_size // c.patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, c.embed_dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, c.embed_dim))
        hidden = int(c.embed_dim * c.mlp_ratio)
        self.blocks = nn.ModuleList(_Block(c.embed_dim, c.num_heads, hidden) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        """Positional embedding for an ``h x w`` pixel input, resampled as DINO does."""
        n = self.pos_embed.shape[1] - 1
        gh, gw = h // self.config.patch_size, w // self.config.patch_size
        if gh * gw == n and h == w:
            return self.pos_embed
        side = int(math.sqrt(n))
        d = self.pos_embed.shape[-1]
        grid = self.pos_embed[:, 1:].reshape(1, side, side, d).permute(0, 3, 1, 2)  # (1, D, side, side)
        # DINO adds 0.1 so that floor(scale * side) == gh; the scale factor also sets the sampling grid.
        grid = F.interpolate(
            grid, scale_factor=((gh + 0.1) / math.sqrt(n), (gw + 0.1) / math.sqrt(n)), mode="bicubic"
        )  # (1, D, gh, gw)
        if grid.shape[-2:] != (gh, gw):
            raise RuntimeError(f"positional grid {tuple(grid.shape[-2:])} != patch grid {(gh, gw)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, d)  # (1, gh*gw, D)
        return torch.cat([self.pos_embed[:, :1], grid], dim=1)  # (1, 1 + gh*gw, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """CLS features.

        Args:
            x: ``(B, 3, H, W)`` normalised images.

        Returns:
            ``(B, D)`` final-norm CLS tokens (not L2-normalised).
        """
        b, _, h, w = x.shape
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)  # (B, gh*gw, D)
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (B, 1 + gh*gw, D)
        tokens = tokens + self._pos_embed(h, w)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.norm(tokens)[:, 0]  # (B, D)


def load_dino_vit(path: str | Path, config: DinoViTConfig = DinoViTConfig()) -> DinoViT:
    """Load a DINO checkpoint (e.g. ``dino_vitbase16_pretrain.pth``) into :class:`DinoViT`.

    Args:
        path: The ``.pth`` state dict as published by DINO (loaded with ``weights_only=True``).
        config: Architecture; must match the checkpoint (checked strictly).

    Returns:
        The model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing or its tensors do not match the architecture.
    """
    p = require_file(path, "DINO ViT")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "teacher" in state and "cls_token" not in state:
        raise UserError(
            f"{p} is a DINO training checkpoint, not the released backbone state dict",
            "use dino_vitbase16_pretrain.pth",
        )
    model = DinoViT(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserError(f"{p} does not match DINO ViT {config}: {str(err).splitlines()[0]}") from err
    return model.eval()

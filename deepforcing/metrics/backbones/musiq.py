"""MUSIQ (multi-scale image quality transformer) reading pyiqa's checkpoints, e.g. ``musiq_spaq_ckpt-358bb6af.pth``.

VBench's imaging_quality builds ``pyiqa.archs.musiq_arch.MUSIQ(pretrained_model_path=...)`` with its defaults:
32-px patches, a ResNet stem (weight-standardised 7x7 conv, GroupNorm, max-pool, one bottleneck), a 14-layer
384-wide transformer with hash-based spatial and learned scale embeddings, and a linear 1-output head (SPAQ).
pyiqa itself is not a dependency (its current release pulls in dozens of packages); this module re-implements
the network under pyiqa's parameter names so that the published state dict loads strictly.

Inference input: an image in 0–1. It is mapped to [-1, 1] and represented as patches at three scales — resized
(bicubic, no antialias) so that the longer side is 224 and 384 (each padded with masked zero patches to
``ceil(L / 32) ** 2`` tokens), plus every patch of the original resolution — with TF "SAME" zero padding at the
borders. Spatial positions are hashed onto a 10x10 grid by nearest-neighbour resampling.
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
class MusiqConfig:
    """MUSIQ architecture and multi-scale input; the defaults are pyiqa's (and VBench's).

    Attributes:
        patch_size: Patch side in pixels (also the patch stride).
        hidden_size: Transformer width.
        mlp_dim: Transformer MLP width.
        num_heads: Attention heads.
        num_layers: Transformer blocks.
        num_scales: Learned scale embeddings (resized scales + the original resolution).
        grid_size: Side of the hashed spatial-position grid.
        num_class: Head outputs; only 1 (the SPAQ / KonIQ heads) is supported — pyiqa's 10-class AVA head is a
            ``Sequential`` with a softmax and other parameter names.
        longer_side_lengths: Longer sides of the resized scales.
    """

    patch_size: int = 32
    hidden_size: int = 384
    mlp_dim: int = 1152
    num_heads: int = 6
    num_layers: int = 14
    num_scales: int = 3
    grid_size: int = 10
    num_class: int = 1
    longer_side_lengths: tuple[int, ...] = (224, 384)

    def __post_init__(self) -> None:
        if self.num_class != 1:
            raise ValueError(f"only the 1-output MUSIQ head is supported, got num_class={self.num_class}")


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "SAME" zero padding (extra pixel at the bottom / right)."""
    h, w = x.shape[-2:]
    pad_h = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pad_w = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class _StdConv(nn.Conv2d):
    """Conv with weight standardisation (per output channel, unbiased std + 1e-5) and "SAME" padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(_same_pad(x, self.kernel_size[0], self.stride[0]), w, self.bias, self.stride)


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _StdConv(cin, cin, 1, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, cin, eps=1e-4)
        self.conv2 = _StdConv(cin, cin, 3, 1, bias=False)
        self.gn2 = nn.GroupNorm(32, cin, eps=1e-4)
        self.conv3 = _StdConv(cin, cout, 1, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, cout, eps=1e-4)
        self.conv_proj = _StdConv(cin, cout, 1, 1, bias=False)
        self.gn_proj = nn.GroupNorm(32, cout, eps=1e-4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.gn_proj(self.conv_proj(x))
        y = F.relu(self.gn1(self.conv1(x)))
        y = F.relu(self.gn2(self.conv2(y)))
        return F.relu(self.gn3(self.conv3(y)) + identity)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D); mask (B, N) bool
        q, k, v = (
            f(x).reshape(b, n, self.heads, d // self.heads).transpose(1, 2) for f in (self.query, self.key, self.value)
        )
        logits = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5  # (B, heads, N, N)
        pair = mask[:, None, :, None] & mask[:, None, None, :]  # (B, 1, N, N)
        logits = logits.masked_fill(~pair, -1e3)  # MUSIQ masks with -1000, not -inf
        y = logits.softmax(dim=-1) @ v  # (B, heads, N, D/heads)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim: int, mlp_dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, mlp_dim)
        self.mlp.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), mask)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class _Encoder(nn.Module):
    def __init__(self, c: MusiqConfig):
        super().__init__()
        self.posembed_input = nn.Module()
        self.posembed_input.position_emb = nn.Parameter(torch.zeros(1, c.grid_size**2, c.hidden_size))
        self.scaleembed_input = nn.Module()
        self.scaleembed_input.scale_emb = nn.Parameter(torch.zeros(c.num_scales, c.hidden_size))
        self.cls = nn.Parameter(torch.zeros(1, 1, c.hidden_size))
        self.encoder_norm = nn.LayerNorm(c.hidden_size, eps=1e-6)
        self.transformer = nn.ModuleDict(
            {f"encoderblock_{i}": _Block(c.hidden_size, c.mlp_dim, c.num_heads) for i in range(c.num_layers)}
        )

    def forward(self, x: torch.Tensor, spatial: torch.Tensor, scale: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.posembed_input.position_emb[0][spatial] + self.scaleembed_input.scale_emb[scale]  # (B, N, D)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, D)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # (B, 1 + N)
        for blk in self.transformer.values():
            x = blk(x, mask)
        return self.encoder_norm(x)


def _hashed_positions(grid: int, count_h: int, count_w: int) -> torch.Tensor:
    """Hash a ``count_h x count_w`` patch grid onto ``grid x grid`` (nearest-neighbour), row-major ``(h*w,)``."""
    g = torch.arange(grid, dtype=torch.float32)[None, None]  # (1, 1, grid)
    col = F.interpolate(g, count_w, mode="nearest")[0, 0]  # (count_w,)
    row = F.interpolate(g, count_h, mode="nearest")[0, 0]  # (count_h,)
    return (row[:, None] * grid + col[None, :]).reshape(-1).long()  # (count_h * count_w,)


def _patches(x: torch.Tensor, size: int) -> tuple[torch.Tensor, int, int]:
    """Non-overlapping ``size`` patches after "SAME" padding: ``(B, n, 3 * size * size)`` and the grid shape."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / size), math.ceil(w / size)
    p = F.unfold(_same_pad(x, size, size), size, stride=size)  # (B, 3*size*size, ch*cw)
    return p.transpose(1, 2), ch, cw


class Musiq(nn.Module):
    """MUSIQ quality predictor; ``forward`` takes ``(B, 3, H, W)`` images in 0–1 and returns ``(B,)`` scores."""

    def __init__(self, config: MusiqConfig = MusiqConfig()):
        super().__init__()
        c = config
        self.config = c
        self.conv_root = _StdConv(3, 64, 7, 2, bias=False)
        self.gn_root = nn.GroupNorm(32, 64, eps=1e-6)
        self.block1 = _Bottleneck(64, 256)
        self.embedding = nn.Linear(256 * (c.patch_size // 4) ** 2, c.hidden_size)
        self.transformer_encoder = _Encoder(c)
        self.head = nn.Linear(c.hidden_size, c.num_class)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Multi-scale patch tokens of ``(B, 3, H, W)`` images in [-1, 1].

        Returns:
            ``(patches (B, N, 3*P*P), spatial (N,), scale (N,), mask (N,))``.
        """
        c = self.config
        h, w = x.shape[-2:]
        parts, spatial, scales, masks = [], [], [], []
        for scale_id, side in enumerate(sorted(c.longer_side_lengths)):
            ratio = side / max(h, w)
            rh, rw = round(h * ratio), round(w * ratio)
            resized = F.interpolate(x, (rh, rw), mode="bicubic", align_corners=False)  # (B, 3, rh, rw)
            p, ch, cw = _patches(resized, c.patch_size)
            n_max = math.ceil(side / c.patch_size) ** 2
            n = min(p.shape[1], n_max)
            pad = n_max - n
            parts.append(F.pad(p[:, :n], (0, 0, 0, pad)))  # masked zero patches up to n_max
            spatial.append(F.pad(_hashed_positions(c.grid_size, ch, cw)[:n], (0, pad)))
            scales.append(torch.full((n_max,), scale_id).masked_fill(torch.arange(n_max) >= n, 0))
            masks.append(torch.arange(n_max) < n)
        p, ch, cw = _patches(x, c.patch_size)  # the original resolution, every patch
        parts.append(p)
        spatial.append(_hashed_positions(c.grid_size, ch, cw))
        scales.append(torch.full((p.shape[1],), len(c.longer_side_lengths)))
        masks.append(torch.ones(p.shape[1], dtype=torch.bool))
        dev = x.device
        return torch.cat(parts, 1), torch.cat(spatial).to(dev), torch.cat(scales).to(dev), torch.cat(masks).to(dev)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Quality scores.

        Args:
            images: ``(B, 3, H, W)`` float in 0–1.

        Returns:
            ``(B,)`` scores (for the SPAQ head: roughly 0–100).
        """
        c = self.config
        patches, spatial, scale, mask = self.tokens((images - 0.5) * 2)  # (B, N, 3*P*P), (N,) ×3
        b, n, _ = patches.shape
        x = patches.reshape(b * n, 3, c.patch_size, c.patch_size)  # (B*N, 3, P, P)
        x = F.relu(self.gn_root(self.conv_root(x)))  # (B*N, 64, P/2, P/2)
        # max-pooling is exact in any layout; channels-last is ~10x faster on CPU than NCHW for these shapes
        x = _same_pad(x, 3, 2).contiguous(memory_format=torch.channels_last)
        x = F.max_pool2d(x, 3, 2).contiguous()  # (B*N, 64, P/4, P/4), NCHW again
        x = self.block1(x)  # (B*N, 256, P/4, P/4)
        x = self.embedding(x.permute(0, 2, 3, 1).reshape(b, n, -1))  # (B, N, D), TF (h, w, c) order
        x = self.transformer_encoder(x, spatial.expand(b, -1), scale.expand(b, -1), mask.expand(b, -1))
        return self.head(x[:, 0])[:, 0]  # (B,)


def load_musiq(path: str | Path, config: MusiqConfig = MusiqConfig()) -> Musiq:
    """Load a pyiqa MUSIQ checkpoint (plain state dict, ``module.`` prefixes allowed).

    Args:
        path: E.g. ``musiq_spaq_ckpt-358bb6af.pth``.
        config: Architecture; must match the checkpoint (checked strictly).

    Returns:
        The model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing or does not match the architecture.
    """
    p = require_file(path, "MUSIQ")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "params" in state and "conv_root.weight" not in state:
        state = state["params"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = Musiq(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserError(f"{p} does not match MUSIQ {config}: {str(err).splitlines()[0]}") from err
    return model.eval()

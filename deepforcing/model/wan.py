"""Causal Wan2.1 text-to-video DiT, written for chunk-wise generation over a KV cache.

Parameter names are those of the original Wan checkpoints (``patch_embedding``, ``blocks.{i}.self_attn.q``,
``blocks.{i}.norm3``, ``head.modulation`` …), so Wan2.1 safetensors and Self-Forcing / Rolling Forcing
checkpoints load with strict key checking (see ``deepforcing.model.checkpoint``).

Numerics follow the reference inference path: the timestep sinusoid in float64, RoPE in complex128, q/k RMS
norm in float32 then cast back, LayerNorm and modulation in the model dtype.

Shapes: ``B`` batch, ``F`` latent frames in the call, ``C`` latent channels, ``H, W`` latent size,
``h, w`` patch grid (H/2, W/2), ``L = F*h*w`` tokens, ``Lt`` text tokens, ``N`` heads, ``D`` head dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.cache import KVCache
from deepforcing.model.config import WanConfig
from deepforcing.model.rope import RotaryEmbedding


def sinusoidal_embedding(dim: int, timesteps: torch.Tensor) -> torch.Tensor:
    """Wan's timestep sinusoid in float64, cosine half first: timesteps [T] -> [T, dim]."""
    half = dim // 2
    position = timesteps.to(torch.float64)
    args = torch.outer(position, torch.pow(10000, -torch.arange(half).to(position).div(half)))
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head attention: q [B, Lq, N, D], k/v [B, Lk, N, D] -> [B, Lq, N, D].

    Uses ``torch.nn.functional.scaled_dot_product_attention`` (which picks a flash / memory-efficient kernel on
    GPUs by itself); softmax scale is the default ``1/sqrt(D)``. ``mask`` [Lq, Lk] (bool, True = attend) is only
    used by training-style calls without a cache; inference attends unmasked, as the references do.
    """
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2)


def block_causal_mask(num_frames: int, tokens_per_frame: int, chunk_frames: int, device=None) -> torch.Tensor:
    """Bool [L, L] mask: a token attends to every token of its own chunk and of earlier chunks (L = F·tpf)."""
    chunk = torch.arange(num_frames, device=device).repeat_interleave(tokens_per_frame) // chunk_frames
    return chunk.unsqueeze(1) >= chunk.unsqueeze(0)


class WanRMSNorm(nn.Module):
    """RMS norm over the last dim, computed in float32 then cast back, then scaled by ``weight``."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [..., dim] -> [..., dim]."""
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class WanLayerNorm(nn.LayerNorm):
    """LayerNorm that returns the input dtype (affine only where Wan has it: ``norm3``)."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = False):
        super().__init__(dim, elementwise_affine=elementwise_affine, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [..., dim] -> [..., dim]."""
        return super().forward(x).type_as(x)


@dataclass
class TextConditioning:
    """Per-layer cross-attention keys and values of one batch of prompts, computed once per prompt.

    Attributes:
        keys: One tensor [B, Lt, N, D] per block.
        values: One tensor [B, Lt, N, D] per block.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]


class _AttentionProjections(nn.Module):
    """Q/K/V/O projections with optional RMS q/k norms (Wan's ``WanSelfAttention`` parameter layout)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = WanRMSNorm(dim, eps=eps) if qk_norm else nn.Identity()
        self.norm_k = WanRMSNorm(dim, eps=eps) if qk_norm else nn.Identity()


class CausalSelfAttention(_AttentionProjections):
    """Self-attention with RMS q/k norm and 3-D RoPE; reads and writes the KV cache when one is given."""

    def forward(
        self,
        x: torch.Tensor,
        grid: tuple[int, int, int],
        frame_positions: torch.Tensor,
        rope: RotaryEmbedding,
        kv: KVCache | None,
        layer_idx: int,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """X [B, L, dim] -> [B, L, dim].

        Without a cache the call attends over its own frames (bidirectionally, or as ``mask`` allows). With a
        cache the chunk's K/V are written to the cache first and the chunk attends to everything the cache then
        holds (itself included).
        """
        b, length, _ = x.shape
        n, d = self.num_heads, self.head_dim
        num_frames, h, w = grid
        q = self.norm_q(self.q(x)).view(b, length, n, d)
        k = self.norm_k(self.k(x)).view(b, length, n, d)
        v = self.v(x).view(b, length, n, d)
        q = rope.apply(q, frame_positions, h, w)
        if kv is None:
            k = rope.apply(k, frame_positions, h, w)
        else:
            k, v = kv.update(layer_idx, q, rope.apply_spatial(k, num_frames, h, w), v)
        return self.o(attention(q, k, v, mask).flatten(2))


class TextCrossAttention(_AttentionProjections):
    """Cross-attention from video tokens to the (padded) text tokens; no mask, as Wan."""

    def project_text(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded text [B, Lt, dim] -> keys, values [B, Lt, N, D]."""
        b, length, _ = context.shape
        k = self.norm_k(self.k(context)).view(b, length, self.num_heads, self.head_dim)
        v = self.v(context).view(b, length, self.num_heads, self.head_dim)
        return k, v

    def forward(self, x: torch.Tensor, text_k: torch.Tensor, text_v: torch.Tensor) -> torch.Tensor:
        """X [B, L, dim] attends to text_k/text_v [B, Lt, N, D] -> [B, L, dim]."""
        b, length, _ = x.shape
        q = self.norm_q(self.q(x)).view(b, length, self.num_heads, self.head_dim)
        return self.o(attention(q, text_k, text_v).flatten(2))


class CausalWanBlock(nn.Module):
    """One DiT block: modulated self-attention, text cross-attention, modulated FFN."""

    def __init__(self, cfg: WanConfig):
        super().__init__()
        dim = cfg.dim
        self.norm1 = WanLayerNorm(dim, cfg.eps)
        self.self_attn = CausalSelfAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = WanLayerNorm(dim, cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = TextCrossAttention(dim, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm2 = WanLayerNorm(dim, cfg.eps)
        self.ffn = nn.Sequential(nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        text_k: torch.Tensor,
        text_v: torch.Tensor,
        grid: tuple[int, int, int],
        frame_positions: torch.Tensor,
        rope: RotaryEmbedding,
        kv: KVCache | None,
        layer_idx: int,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """X [B, L, dim], e0 [B, F, 6, dim] (per-frame modulation) -> [B, L, dim]."""
        num_frames = e0.shape[1]
        per_frame = x.shape[1] // num_frames
        # shift1, scale1, gate1, shift2, scale2, gate2, each [B, F, 1, dim], broadcast over a frame's tokens.
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation.unsqueeze(1) + e0).chunk(6, dim=2)

        def frames(t: torch.Tensor) -> torch.Tensor:  # [B, L, dim] -> [B, F, L/F, dim]
            return t.unflatten(1, (num_frames, per_frame))

        y = self.self_attn(
            (frames(self.norm1(x)) * (1 + scale1) + shift1).flatten(1, 2),
            grid,
            frame_positions,
            rope,
            kv,
            layer_idx,
            mask,
        )
        x = x + (frames(y) * gate1).flatten(1, 2)
        x = x + self.cross_attn(self.norm3(x), text_k, text_v)
        y = self.ffn((frames(self.norm2(x)) * (1 + scale2) + shift2).flatten(1, 2))
        return x + (frames(y) * gate2).flatten(1, 2)


class CausalHead(nn.Module):
    """Output head: modulated LayerNorm and a linear map back to patch pixels."""

    def __init__(self, cfg: WanConfig):
        super().__init__()
        self.norm = WanLayerNorm(cfg.dim, cfg.eps)
        self.head = nn.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """X [B, L, dim], e [B, F, 1, dim] (time embedding, not e0) -> [B, F, L/F, prod(patch)*out_dim]."""
        num_frames = e.shape[1]
        shift, scale = (self.modulation.unsqueeze(1) + e).chunk(2, dim=2)
        return self.head(self.norm(x).unflatten(1, (num_frames, x.shape[1] // num_frames)) * (1 + scale) + shift)


class CausalWanModel(nn.Module):
    """The causal Wan DiT. Predicts the flow ``v ≈ noise − x0`` for every latent frame of a call.

    Args:
        cfg: Model shape.
    """

    def __init__(self, cfg: WanConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_dim, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(
            nn.Linear(cfg.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([CausalWanBlock(cfg) for _ in range(cfg.num_layers)])
        self.head = CausalHead(cfg)
        self.rope = RotaryEmbedding(cfg.head_dim)  # plain attribute: stays float64 under .to(dtype)

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype."""
        return self.patch_embedding.weight.dtype

    @property
    def device(self) -> torch.device:
        """Parameter device."""
        return self.patch_embedding.weight.device

    def encode_text(self, context: torch.Tensor) -> TextConditioning:
        """Embed text-encoder states once per prompt and project them for every block's cross-attention.

        Args:
            context: Text encoder output [B, Lt <= text_len, text_dim]; padding rows should already be zero.

        Returns:
            Per-layer cross-attention keys and values.
        """
        b, length, _ = context.shape
        if length > self.cfg.text_len:
            raise ValueError(f"text context has {length} tokens, the model attends to at most {self.cfg.text_len}")
        context = context.to(self.device, self.dtype)
        padded = torch.cat([context, context.new_zeros(b, self.cfg.text_len - length, context.shape[2])], dim=1)
        embedded = self.text_embedding(padded)  # [B, text_len, dim]
        keys, values = zip(*(block.cross_attn.project_text(embedded) for block in self.blocks), strict=True)
        return TextConditioning(list(keys), list(values))

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        text: TextConditioning,
        kv: KVCache | None = None,
        start_frame: int = 0,
        causal_chunk_frames: int | None = None,
    ) -> torch.Tensor:
        """Predict the flow for a run of latent frames.

        Args:
            latents: Noisy latents [B, F, C, H, W].
            timestep: One timestep per frame [B, F].
            text: Output of :meth:`encode_text`.
            kv: The generation's cache. With a cache, the frames are the chunk announced by
                ``kv.begin_chunk`` and take their temporal positions from it.
            start_frame: Without a cache, the temporal position of the first frame.
            causal_chunk_frames: Without a cache, attend block-causally in chunks of this many frames (the
                training view of chunk-wise generation, e.g. teacher / diffusion forcing); None = bidirectional.

        Returns:
            Flow prediction [B, F, C, H, W] in the model dtype.
        """
        b, num_frames, _, height, width = latents.shape
        x = self.patch_embedding(latents.permute(0, 2, 1, 3, 4).to(self.dtype))  # [B, dim, F, h, w]
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)  # [B, L, dim]

        if kv is not None:
            if kv.chunk is None or kv.chunk.num_frames != num_frames:
                raise RuntimeError("forward with a KV cache needs kv.begin_chunk for exactly these frames")
            frame_positions = kv.chunk.frame_positions.to(x.device)
        else:
            frame_positions = torch.arange(start_frame, start_frame + num_frames, device=x.device)

        e = self.time_embedding(sinusoidal_embedding(self.cfg.freq_dim, timestep.flatten()).type_as(x))  # [B*F, dim]
        e0 = self.time_projection(e).unflatten(1, (6, self.cfg.dim)).unflatten(0, (b, num_frames))  # [B, F, 6, dim]

        mask = None
        if causal_chunk_frames is not None:
            if kv is not None:
                raise ValueError("causal_chunk_frames is for calls without a KV cache")
            mask = block_causal_mask(num_frames, grid[1] * grid[2], causal_chunk_frames, x.device)
        for i, block in enumerate(self.blocks):
            rope = self.rope if kv is None else kv.rope_for(i)  # a policy may give a layer its own RoPE (LoL)
            x = block(x, e0, text.keys[i], text.values[i], grid, frame_positions, rope, kv, i, mask)

        x = self.head(x, e.unflatten(0, (b, num_frames)).unsqueeze(2))  # [B, F, h*w, pt*ph*pw*C]
        return self._unpatchify(x, grid)

    def _unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """[B, F, h*w, pt*ph*pw*C] -> [B, F*pt, C, h*ph, w*pw]."""
        b = x.shape[0]
        f, h, w = grid
        pt, ph, pw = self.cfg.patch_size
        c = self.cfg.out_dim
        x = x.reshape(b, f, h, w, pt, ph, pw, c)
        x = torch.einsum("bfhwpqrc->bcfphqwr", x).reshape(b, c, f * pt, h * ph, w * pw)
        return x.permute(0, 2, 1, 3, 4)

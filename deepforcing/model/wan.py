"""Causal Wan2.1 text-to-video DiT, written for chunk-wise generation over a KV cache.

Parameter names are those of the original Wan checkpoints (``patch_embedding``, ``blocks.{i}.self_attn.q``,
``blocks.{i}.norm3``, ``head.modulation`` …), so Wan2.1 safetensors and Self-Forcing / Rolling Forcing
checkpoints load with strict key checking (see ``deepforcing.model.checkpoint``).

Numerics follow the reference inference path: the timestep sinusoid in float64, RoPE in complex128, q/k RMS
norm in float32 then cast back, LayerNorm and modulation in the model dtype.

Shapes: ``B`` batch, ``F`` latent frames in the call, ``C`` latent channels, ``H, W`` latent size,
``h, w`` patch grid (H/2, W/2), ``T = h*w`` tokens per frame, ``L = F*T`` tokens, ``Lt`` text tokens, ``N`` heads,
``D`` head dim. Inside the blocks the residual stream is kept as [B, F, T, dim] (frame-wise modulation broadcasts).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepforcing.cache import KVCache
from deepforcing.model.config import WanConfig
from deepforcing.model.rope import RotaryEmbedding, rotate


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


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` as the bare op.

    The inner layers of a block have no hooks, and the module-call machinery costs more than the op itself on
    small models.
    """
    return F.linear(x, layer.weight, layer.bias)


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
        # rms_norm is x·rsqrt(mean(x²) + eps) in float32 for low-precision x, returned in x's dtype: on CPU the
        # same operations as Wan's formula (bit for bit), on CUDA one fused kernel.
        return torch.rms_norm(x, self.weight.shape, None, self.eps) * self.weight


class WanLayerNorm(nn.LayerNorm):
    """LayerNorm that returns the input dtype (affine only where Wan has it: ``norm3``)."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = False):
        super().__init__(dim, elementwise_affine=elementwise_affine, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [..., dim] -> [..., dim]."""
        y = torch.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)  # F.layer_norm's op
        return y if y.dtype == x.dtype else y.to(x.dtype)


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
    """Self-attention with RMS q/k norm and 3-D RoPE.

    The block applies RoPE and the KV cache between :meth:`project` and the output projection ``o``.
    """

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """X [B, F, T, dim] -> q, k, v [B, F*T, N, D], q and k RMS-normed, not rotated."""
        b, num_frames, per_frame, _ = x.shape
        shape = (b, num_frames * per_frame, self.num_heads, self.head_dim)
        q = self.norm_q(_linear(self.q, x)).view(shape)
        k = self.norm_k(_linear(self.k, x)).view(shape)
        return q, k, _linear(self.v, x).view(shape)


class TextCrossAttention(_AttentionProjections):
    """Cross-attention from video tokens to the (padded) text tokens; no mask, as Wan."""

    def project_text(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded text [B, Lt, dim] -> keys, values [B, Lt, N, D]."""
        b, length, _ = context.shape
        k = self.norm_k(self.k(context)).view(b, length, self.num_heads, self.head_dim)
        v = self.v(context).view(b, length, self.num_heads, self.head_dim)
        return k, v

    def forward(self, x: torch.Tensor, text_k: torch.Tensor, text_v: torch.Tensor) -> torch.Tensor:
        """X [B, F, T, dim] attends to text_k/text_v [B, Lt, N, D] -> [B, F, T, dim]."""
        b, num_frames, per_frame, dim = x.shape
        q = self.norm_q(_linear(self.q, x)).view(b, num_frames * per_frame, self.num_heads, self.head_dim)
        return _linear(self.o, attention(q, text_k, text_v).reshape(b, num_frames, per_frame, dim))


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

        #: (pre_attention, post_attention) replacements set by ``deepforcing.model.compiled``; None = eager.
        self.compiled: tuple | None = None

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        text_k: torch.Tensor,
        text_v: torch.Tensor,
        phases: torch.Tensor,
        kv: KVCache | None,
        layer_idx: int,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """X [B, F, T, dim], e0 [B, F, 6, dim] (per-frame modulation), phases [F*T, 1, D/2] -> [B, F, T, dim].

        Without a cache the call attends over its own frames (bidirectionally, or as ``mask`` allows). With a
        cache the chunk's K/V are written to the cache first and the chunk attends to everything the cache then
        holds (itself included). RoPE and the cache run eagerly between the two dense regions
        (:meth:`pre_attention`, :meth:`post_attention`), which the compiled path replaces; it then reads the
        cache as whole, static-shaped buffers with a slot mask.
        """
        compiled = self.compiled if kv is not None else None
        pre, post = compiled or (self.pre_attention, self.post_attention)
        q, k, v, modulation = pre(x, e0)
        q = rotate(q, phases)
        if kv is None:
            k = rotate(k, phases)
        elif compiled is None:  # the cache stores k and its rotation
            k, v = kv.update(layer_idx, q, k, v, phases)
        else:
            k, v, mask = kv.update(layer_idx, q, k, v, phases, static=True)
        return post(x, q, k, v, mask, modulation, text_k, text_v)

    def pre_attention(self, x: torch.Tensor, e0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """X [B, F, T, dim], e0 [B, F, 6, dim] -> q, k, v [B, F*T, N, D] (not rotated), modulation [B, F, 6, 1, dim].

        The modulation rows are shift1, scale1, gate1, shift2, scale2, gate2, each broadcast over a frame's tokens.
        """
        modulation = (self.modulation.unsqueeze(1) + e0).unsqueeze(3)
        q, k, v = self.self_attn.project(self.norm1(x) * (1 + modulation[:, :, 1]) + modulation[:, :, 0])
        return q, k, v, modulation

    def post_attention(
        self,
        x: torch.Tensor,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        modulation: torch.Tensor,
        text_k: torch.Tensor,
        text_v: torch.Tensor,
    ) -> torch.Tensor:
        """Self-attention of q [B, L, N, D] over k/v [B, S, N, D] (bool ``mask`` [L or 1, S]), then the rest.

        Returns:
            The block's output [B, F, T, dim].
        """
        b, num_frames, per_frame, dim = x.shape
        _, _, gate1, shift2, scale2, gate2 = modulation.unbind(2)
        y = _linear(self.self_attn.o, attention(q, k, v, mask).reshape(b, num_frames, per_frame, dim))
        x = x + y * gate1
        x = x + self.cross_attn(self.norm3(x), text_k, text_v)
        hidden = _linear(self.ffn[0], self.norm2(x) * (1 + scale2) + shift2)
        y = _linear(self.ffn[2], F.gelu(hidden, approximate="tanh"))  # self.ffn, as its ops
        return x + y * gate2


class CausalHead(nn.Module):
    """Output head: modulated LayerNorm and a linear map back to patch pixels."""

    def __init__(self, cfg: WanConfig):
        super().__init__()
        self.norm = WanLayerNorm(cfg.dim, cfg.eps)
        self.head = nn.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """X [B, F, T, dim], e [B, F, 1, dim] (time embedding, not e0) -> [B, F, T, prod(patch)*out_dim]."""
        shift, scale = (self.modulation.unsqueeze(1) + e).chunk(2, dim=2)
        return _linear(self.head, self.norm(x) * (1 + scale) + shift)


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
        self._sinusoids: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # memo of CPU timestep sinusoids

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
        x = x.flatten(3).permute(0, 2, 3, 1).contiguous()  # [B, F, h*w, dim], the residual stream

        if kv is not None:
            if kv.chunk is None or kv.chunk.num_frames != num_frames:
                raise RuntimeError("forward with a KV cache needs kv.begin_chunk for exactly these frames")
            frame_positions = kv.chunk.frame_positions.tolist()
        else:
            frame_positions = list(range(start_frame, start_frame + num_frames))
        phases = self.rope.phases(frame_positions, grid[1], grid[2], x.device)  # [L, 1, D/2], memoised

        e = self.time_embedding(self._sinusoid(timestep.flatten(), x))  # [B*F, dim]
        e0 = self.time_projection(e).unflatten(1, (6, self.cfg.dim)).unflatten(0, (b, num_frames))  # [B, F, 6, dim]

        mask = None
        if causal_chunk_frames is not None:
            if kv is not None:
                raise ValueError("causal_chunk_frames is for calls without a KV cache")
            mask = block_causal_mask(num_frames, grid[1] * grid[2], causal_chunk_frames, x.device)
        for i, block in enumerate(self.blocks):
            rope = self.rope if kv is None else kv.rope_for(i)  # a policy may give a layer its own RoPE (LoL)
            layer_phases = phases if rope is self.rope else rope.phases(frame_positions, grid[1], grid[2], x.device)
            x = block(x, e0, text.keys[i], text.values[i], layer_phases, kv, i, mask)

        x = self.head(x, e.unflatten(0, (b, num_frames)).unsqueeze(2))  # [B, F, h*w, pt*ph*pw*C]
        return self._unpatchify(x, grid)

    def _sinusoid(self, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``sinusoidal_embedding`` of timesteps [T] on ``like``'s device and dtype.

        Memoised for CPU timesteps: a video has a few distinct rows (the sampler's steps).
        """
        if timesteps.device.type != "cpu" or timesteps.requires_grad:
            return sinusoidal_embedding(self.cfg.freq_dim, timesteps).to(like.device, like.dtype)
        key = (tuple(timesteps.tolist()), timesteps.dtype, like.device, like.dtype)
        table = self._sinusoids.get(key)
        if table is None:
            table = sinusoidal_embedding(self.cfg.freq_dim, timesteps).to(like.device, like.dtype)
            self._sinusoids[key] = table
            if len(self._sinusoids) > 32:
                self._sinusoids.popitem(last=False)
        return table

    def _unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """[B, F, h*w, pt*ph*pw*C] -> [B, F*pt, C, h*ph, w*pw]."""
        b = x.shape[0]
        f, h, w = grid
        pt, ph, pw = self.cfg.patch_size
        c = self.cfg.out_dim
        x = x.reshape(b, f, h, w, pt, ph, pw, c)
        x = torch.einsum("bfhwpqrc->bcfphqwr", x).reshape(b, c, f * pt, h * ph, w * pw)
        return x.permute(0, 2, 1, 3, 4)

"""Causal Wan DiT configuration and named presets."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from deepforcing.errors import UserError


@dataclass(frozen=True)
class WanConfig:
    """Shape of a (causal) Wan2.1 text-to-video DiT.

    Field names follow the original Wan ``WanModel`` constructor so that a Wan ``config.json`` maps onto it.

    Attributes:
        dim: Hidden size.
        ffn_dim: Inner size of each block's feed-forward network.
        num_heads: Attention heads; ``dim // num_heads`` must be even (RoPE pairs channels).
        num_layers: Transformer blocks.
        freq_dim: Size of the sinusoidal timestep embedding.
        text_dim: Size of the text encoder's hidden states (UMT5-XXL: 4096).
        text_len: Text tokens the model attends to (prompts are zero-padded to this length).
        in_dim: Latent channels in.
        out_dim: Latent channels out.
        patch_size: (t, h, w) patch of the 3-D patch embedding.
        qk_norm: RMS-normalise queries and keys (across all heads).
        cross_attn_norm: Affine LayerNorm before text cross-attention (``norm3``).
        eps: Epsilon of every norm.
    """

    dim: int
    ffn_dim: int
    num_heads: int
    num_layers: int
    freq_dim: int = 256
    text_dim: int = 4096
    text_len: int = 512
    in_dim: int = 16
    out_dim: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if not isinstance(self.patch_size, tuple):  # a JSON list: frozen configs must stay hashable
            object.__setattr__(self, "patch_size", tuple(self.patch_size))
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if (self.dim // self.num_heads) % 2:
            raise ValueError(f"head dim {self.dim // self.num_heads} must be even for RoPE")
        if self.freq_dim % 2:
            raise ValueError(f"freq_dim {self.freq_dim} must be even")
        if self.patch_size[0] != 1:
            raise ValueError("the causal engine needs a temporal patch size of 1 (one token row per frame)")

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> WanConfig:
        """A config from a Wan ``config.json`` (``WanModel`` names) or a Diffusers ``WanTransformer3DModel`` one.

        Only text-to-video models fit the causal engine (``model_type: t2v``); bookkeeping keys (``_class_name``,
        ``_diffusers_version`` …) are ignored, every other unknown key is an error.

        Raises:
            UserError: Another model type, or keys this engine does not understand (all of them named).
        """
        cfg = {k: v for k, v in config.items() if not k.startswith("_")}
        model_type = cfg.pop("model_type", "t2v")
        if model_type != "t2v":
            raise UserError(f"model_type '{model_type}' is not text-to-video; the causal engine runs t2v models")
        if "num_attention_heads" in cfg:  # Diffusers names
            cfg = _from_diffusers(cfg)
        for ignored in ("window_size", "dim_head"):  # Wan's unused local-attention size; implied by dim/heads
            cfg.pop(ignored, None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise UserError(f"unknown config key(s) {unknown}", f"known: {', '.join(sorted(known))}")
        if "patch_size" in cfg:
            cfg["patch_size"] = tuple(cfg["patch_size"])
        try:
            return cls(**cfg)
        except (TypeError, ValueError) as exc:
            raise UserError(f"not a valid Wan config: {exc}") from exc

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> WanConfig:
        """:meth:`from_dict` of a ``config.json`` file (UserError naming the file when it is not one)."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the model config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise UserError(f"{path} is not a model config (a JSON object)")
        try:
            return cls.from_dict(data)
        except UserError as exc:
            raise UserError(f"{path}: {exc.message}", exc.hint) from exc

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.dim // self.num_heads

    def tokens_per_frame(self, latent_height: int, latent_width: int) -> int:
        """Tokens one latent frame becomes after patchify."""
        return (latent_height // self.patch_size[1]) * (latent_width // self.patch_size[2])


def _from_diffusers(cfg: dict[str, Any]) -> dict[str, Any]:
    """Diffusers ``WanTransformer3DModel`` config keys -> ``WanConfig`` fields."""
    cfg = dict(cfg)
    heads, head_dim = cfg.pop("num_attention_heads"), cfg.pop("attention_head_dim")
    out = {"dim": heads * head_dim, "num_heads": heads}
    renames = {"in_channels": "in_dim", "out_channels": "out_dim", "text_dim": "text_dim", "freq_dim": "freq_dim",
               "ffn_dim": "ffn_dim", "num_layers": "num_layers", "patch_size": "patch_size", "eps": "eps",
               "cross_attn_norm": "cross_attn_norm"}  # fmt: skip
    for key, field_name in renames.items():
        if key in cfg:
            out[field_name] = cfg.pop(key)
    qk_norm = cfg.pop("qk_norm", "rms_norm_across_heads")
    if qk_norm not in ("rms_norm_across_heads", None):
        raise UserError(f"qk_norm '{qk_norm}' is not Wan's RMS norm across heads")
    out["qk_norm"] = qk_norm is not None
    for unused in ("rope_max_seq_len", "image_dim", "added_kv_proj_dim", "pos_embed_seq_len"):
        value = cfg.pop(unused, None)
        if unused in ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len") and value is not None:
            raise UserError(f"'{unused}' is set: an image-to-video transformer, not a text-to-video one")
    return {**out, **cfg}


@dataclass(frozen=True)
class ModelPreset:
    """A generator preset: DiT shape plus the latent frame size it is run at.

    Attributes:
        name: Preset name used on the command line.
        wan: DiT configuration.
        latent_height: Latent rows (pixels / 8).
        latent_width: Latent columns (pixels / 8).
        description: One line for ``--help`` and listings.
        frames_per_latent: Video frames per latent frame after the first (Wan VAE: 4, so F latent frames decode
            to ``1 + 4·(F − 1)`` frames; a latent without temporal compression: 1).
        fps: Frame rate of the decoded video.
    """

    name: str
    wan: WanConfig
    latent_height: int
    latent_width: int
    description: str = field(default="", compare=False)
    frames_per_latent: int = 4
    fps: int = 16

    def pixel_frames(self, latent_frames: int) -> int:
        """Video frames decoded from ``latent_frames`` latent frames."""
        return 1 + self.frames_per_latent * (latent_frames - 1)

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per latent frame at this preset's resolution."""
        return self.wan.tokens_per_frame(self.latent_height, self.latent_width)


#: Wan2.1-T2V-1.3B as released (engines.md §1): 480x832 pixels -> 60x104 latents -> 1560 tokens/frame.
WAN21_T2V_1_3B = WanConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30)

#: Tiny config: same classes, runs on a CPU in seconds. Shapes match tests/fixtures/parity.
TINY = WanConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=2, freq_dim=32, text_dim=32, text_len=16)

#: Medium config for CPU benchmarks only (random weights).
MEDIUM = WanConfig(dim=512, ffn_dim=1536, num_heads=8, num_layers=8, freq_dim=256, text_dim=32, text_len=16)

#: Toy-world model (deepforcing.toyworld): trained in-repo on 32x32 synthetic videos; the latent is the toy
#: autoencoder's (16 channels at 8x8, one latent frame per video frame), text is a learned caption embedding.
#: A token carries a 2x2 patch of 16 channels = 64 values.
TOYWORLD = WanConfig(
    dim=256, ffn_dim=512, num_heads=4, num_layers=3, freq_dim=64, text_dim=64, text_len=7, in_dim=16, out_dim=16
)

PRESETS: dict[str, ModelPreset] = {
    "wan2.1-t2v-1.3b": ModelPreset(
        "wan2.1-t2v-1.3b",
        WAN21_T2V_1_3B,
        60,
        104,
        "Self-Forcing / Wan2.1-T2V-1.3B, 832x480, official weights",
    ),
    "tiny": ModelPreset("tiny", TINY, 8, 8, "tiny random-weight model on CPU (64x64 px), same code paths"),
    "medium": ModelPreset("medium", MEDIUM, 16, 16, "medium random-weight model for CPU benchmarks"),
    # One toy frame per latent frame, played at 4 fps so that a toy frame lasts as long as a Wan latent frame
    # (4 frames at 16 fps): the trained horizon of 21 frames is ~5 s, and every duration in seconds (2-s clips,
    # first / last 5 s) covers the same number of latent frames as on the real model.
    "toyworld": ModelPreset(
        "toyworld",
        TOYWORLD,
        8,
        8,
        "toy-world model trained in-repo (32x32 px bouncing shapes), CPU; see toyworld",
        frames_per_latent=1,
        fps=4,
    ),
}

"""Tiny random-weight checkpoints in the exact file formats the metric backbones are published in.

Weights are filled from a seeded generator in a fixed key order that depends on no library, so the same seed
gives the same bytes everywhere; ``state_dict_sha256`` lets a test notice if that ever stops being true.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch


def _fill(spec: list[tuple[str, tuple[int, ...], str]], seed: int, scale: float) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, kind in spec:
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        if kind == "ln_w":
            x = 1.0 + 0.1 * x
        elif kind == "bias":
            x = 0.05 * x
        elif kind == "w":
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            x = x * scale / math.sqrt(fan_in)
        else:  # embeddings
            x = 0.5 * x
        out[name] = x
    return out


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _block(prefix: str, d: int, hidden: int, names: dict[str, str]) -> list:
    return [
        (f"{prefix}.{names['ln1']}.weight", (d,), "ln_w"),
        (f"{prefix}.{names['ln1']}.bias", (d,), "bias"),
        (
            f"{prefix}.{names['qkv']}.weight" if names["qkv"] != "attn.in_proj" else f"{prefix}.attn.in_proj_weight",
            (3 * d, d),
            "w",
        ),
        (
            f"{prefix}.{names['qkv']}.bias" if names["qkv"] != "attn.in_proj" else f"{prefix}.attn.in_proj_bias",
            (3 * d,),
            "bias",
        ),
        (f"{prefix}.{names['proj']}.weight", (d, d), "w"),
        (f"{prefix}.{names['proj']}.bias", (d,), "bias"),
        (f"{prefix}.{names['ln2']}.weight", (d,), "ln_w"),
        (f"{prefix}.{names['ln2']}.bias", (d,), "bias"),
        (f"{prefix}.{names['fc1']}.weight", (hidden, d), "w"),
        (f"{prefix}.{names['fc1']}.bias", (hidden,), "bias"),
        (f"{prefix}.{names['fc2']}.weight", (d, hidden), "w"),
        (f"{prefix}.{names['fc2']}.bias", (d,), "bias"),
    ]


_DINO_NAMES = {
    "ln1": "norm1",
    "qkv": "attn.qkv",
    "proj": "attn.proj",
    "ln2": "norm2",
    "fc1": "mlp.fc1",
    "fc2": "mlp.fc2",
}
_CLIP_NAMES = {
    "ln1": "ln_1",
    "qkv": "attn.in_proj",
    "proj": "attn.out_proj",
    "ln2": "ln_2",
    "fc1": "mlp.c_fc",
    "fc2": "mlp.c_proj",
}


def tiny_dino_state_dict(
    seed: int = 0, dim: int = 32, depth: int = 2, patch: int = 16, image: int = 224
) -> dict[str, torch.Tensor]:
    """A DINO ``VisionTransformer`` state dict (same keys as ``dino_vitbase16_pretrain.pth``), tiny widths."""
    grid = image // patch
    spec = [
        ("cls_token", (1, 1, dim), "emb"),
        ("pos_embed", (1, grid * grid + 1, dim), "emb"),
        ("patch_embed.proj.weight", (dim, 3, patch, patch), "w"),
        ("patch_embed.proj.bias", (dim,), "bias"),
    ]
    for i in range(depth):
        spec += _block(f"blocks.{i}", dim, 4 * dim, _DINO_NAMES)
    spec += [("norm.weight", (dim,), "ln_w"), ("norm.bias", (dim,), "bias")]
    return _fill(spec, seed, scale=1.5)


def tiny_openai_clip_state_dict(
    seed: int = 0,
    embed_dim: int = 512,
    width: int = 64,
    layers: int = 2,
    patch: int = 32,
    image: int = 224,
    vocab: int = 100,
    context: int = 77,
) -> dict[str, torch.Tensor]:
    """An OpenAI CLIP ViT state dict (the keys ``clip.load`` reads), tiny widths, fp16 like the release."""
    grid = image // patch
    spec = [
        ("visual.class_embedding", (width,), "emb"),
        ("visual.positional_embedding", (grid * grid + 1, width), "emb"),
        ("visual.proj", (width, embed_dim), "w"),
        ("visual.conv1.weight", (width, 3, patch, patch), "w"),
        ("visual.ln_pre.weight", (width,), "ln_w"),
        ("visual.ln_pre.bias", (width,), "bias"),
    ]
    for i in range(layers):
        spec += _block(f"visual.transformer.resblocks.{i}", width, 4 * width, _CLIP_NAMES)
    spec += [("visual.ln_post.weight", (width,), "ln_w"), ("visual.ln_post.bias", (width,), "bias")]
    spec += [
        ("positional_embedding", (context, width), "emb"),
        ("text_projection", (width, embed_dim), "w"),
        ("token_embedding.weight", (vocab, width), "emb"),
        ("ln_final.weight", (width,), "ln_w"),
        ("ln_final.bias", (width,), "bias"),
    ]
    spec += _block("transformer.resblocks.0", width, 4 * width, _CLIP_NAMES)
    state = _fill(spec, seed, scale=1.5)
    state["logit_scale"] = torch.tensor(math.log(100.0))
    # The released checkpoints store the matrices in fp16 (clip.model.convert_weights); keep that format.
    return {k: (v.half() if v.ndim >= 1 else v) for k, v in state.items()}


def save_openai_clip_torchscript(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Save an OpenAI-format CLIP state dict as a TorchScript archive, like ``ViT-B-32.pt``.

    The archive holds an eager CLIP (built by open_clip from the state dict) traced on ``encode_image``; like
    the released files, ``torch.jit.load(path).state_dict()`` gives back the OpenAI keys.
    """
    from open_clip.model import build_model_from_openai_state_dict

    model = build_model_from_openai_state_dict(dict(state), cast_dtype=None).float().eval()
    model._buffers.pop("attn_mask", None)  # open_clip's causal mask is not part of the released archives
    image = torch.zeros(1, 3, model.visual.image_size[0], model.visual.image_size[1])
    traced = torch.jit.trace_module(model, {"encode_image": (image,)})
    traced.save(str(path))
    return path


def tiny_laion_head_state_dict(seed: int = 0, dim: int = 768) -> dict[str, torch.Tensor]:
    """``sa_0_4_vit_l_14_linear.pth`` format: ``weight (1, dim)``, ``bias (1,)``."""
    g = torch.Generator().manual_seed(seed)
    return {"weight": torch.randn(1, dim, generator=g) * 2.0, "bias": torch.tensor([5.0])}


def synthetic_clip(seed: int, frames: int = 12, height: int = 40, width: int = 56) -> torch.Tensor:
    """A smooth, moving, slightly noisy RGB clip, ``(T, H, W, 3)`` uint8."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)[:, None, None]
    y = torch.linspace(0, 1, height)[None, :, None]
    x = torch.linspace(0, 1, width)[None, None, :]
    phase = torch.rand(3, generator=g) * 6.28
    chans = [0.5 + 0.4 * torch.sin(6 * x + 4 * y + 0.35 * t * (c + 1) + phase[c]) for c in range(3)]
    img = torch.stack(chans, dim=-1)  # (T, H, W, 3)
    cx = (0.2 + 0.05 * t).clamp(max=0.8)
    square = ((x - cx).abs() < 0.12) & ((y - 0.5).abs() < 0.15)  # (T, H, W)
    img = torch.where(square[..., None], torch.tensor([0.9, 0.2, 0.1]), img)
    img = img + 0.03 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def _raft_encoder_spec(prefix: str, batch_norm: bool) -> list:
    """Original RAFT ``BasicEncoder`` keys in state-dict order (instance norm has no tensors)."""

    def bn(name: str, c: int) -> list:
        if not batch_norm:
            return []
        return [
            (f"{name}.weight", (c,), "ln_w"),
            (f"{name}.bias", (c,), "bias"),
            (f"{name}.running_mean", (c,), "bias"),
            (f"{name}.running_var", (c,), "var"),
            (f"{name}.num_batches_tracked", (), "count"),
        ]

    spec = bn(f"{prefix}.norm1", 64)
    spec += [(f"{prefix}.conv1.weight", (64, 3, 7, 7), "w"), (f"{prefix}.conv1.bias", (64,), "bias")]
    c_in = 64
    for layer, c in ((1, 64), (2, 96), (3, 128)):
        for blk in (0, 1):
            p = f"{prefix}.layer{layer}.{blk}"
            cin = c_in if blk == 0 else c
            spec += [(f"{p}.conv1.weight", (c, cin, 3, 3), "w"), (f"{p}.conv1.bias", (c,), "bias")]
            spec += [(f"{p}.conv2.weight", (c, c, 3, 3), "w"), (f"{p}.conv2.bias", (c,), "bias")]
            spec += bn(f"{p}.norm1", c) + bn(f"{p}.norm2", c)
            if blk == 0 and layer > 1:  # stride-2 block: norm3 is also downsample.1 (one module, two names)
                spec += bn(f"{p}.norm3", c)
                spec += [(f"{p}.downsample.0.weight", (c, cin, 1, 1), "w"), (f"{p}.downsample.0.bias", (c,), "bias")]
                spec += bn(f"{p}.downsample.1", c)
        c_in = c
    spec += [(f"{prefix}.conv2.weight", (256, 128, 1, 1), "w"), (f"{prefix}.conv2.bias", (256,), "bias")]
    return spec


def raft_things_state_dict(seed: int = 0, flow_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """A random state dict in ``raft-things.pth``'s format: original RAFT-large keys, ``module.`` prefixed.

    Full size (5.3 M parameters, 21 MB): RAFT's widths are fixed by its code, so nothing smaller loads.
    ``flow_scale`` multiplies the flow head's last conv (``0`` gives a network that predicts zero flow).
    """
    spec = _raft_encoder_spec("fnet", batch_norm=False) + _raft_encoder_spec("cnet", batch_norm=True)
    convs = [
        ("update_block.encoder.convc1", (256, 324, 1, 1)),
        ("update_block.encoder.convc2", (192, 256, 3, 3)),
        ("update_block.encoder.convf1", (128, 2, 7, 7)),
        ("update_block.encoder.convf2", (64, 128, 3, 3)),
        ("update_block.encoder.conv", (126, 256, 3, 3)),
    ]
    convs += [(f"update_block.gru.conv{g}1", (128, 384, 1, 5)) for g in "zrq"]
    convs += [(f"update_block.gru.conv{g}2", (128, 384, 5, 1)) for g in "zrq"]
    convs += [
        ("update_block.flow_head.conv1", (256, 128, 3, 3)),
        ("update_block.flow_head.conv2", (2, 256, 3, 3)),
        ("update_block.mask.0", (256, 128, 3, 3)),
        ("update_block.mask.2", (576, 256, 1, 1)),
    ]
    for name, shape in convs:
        spec += [(f"{name}.weight", shape, "w"), (f"{name}.bias", shape[:1], "bias")]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape, kind in spec:
        if kind == "count":
            state[name] = torch.tensor(1000, dtype=torch.int64)
            continue
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        if kind == "ln_w":
            x = 1.0 + 0.1 * x
        elif kind == "bias":
            x = 0.05 * x
        elif kind == "var":
            x = 1.0 + 0.2 * x.abs()
        else:
            x = x / math.sqrt(math.prod(shape[1:]))
        state[name] = x
    for name in list(state):  # the duplicate registration of the stride-2 blocks' downsample norm
        if ".norm3." in name:
            state[name] = state[name.replace(".norm3.", ".downsample.1.")].clone()
    state["update_block.flow_head.conv2.weight"] *= flow_scale
    state["update_block.flow_head.conv2.bias"] *= flow_scale
    return {f"module.{k}": v for k, v in state.items()}


def musiq_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in pyiqa's MUSIQ format (``musiq_spaq_ckpt-358bb6af.pth``): full size, 27 M params.

    Keys and shapes come from :class:`deepforcing.metrics.backbones.musiq.Musiq` (which loads pyiqa's file
    strictly); values from a seeded generator in key order.
    """
    from deepforcing.metrics.backbones.musiq import Musiq

    spec = []
    for name, t in Musiq().state_dict().items():
        if name.endswith("bias"):
            kind = "bias"
        elif "gn" in name or "norm" in name:
            kind = "ln_w"
        elif t.ndim >= 2 and not name.endswith(("position_emb", "scale_emb", "cls")):
            kind = "w"
        else:
            kind = "emb"
        spec.append((name, tuple(t.shape), kind))
    state = _fill(spec, seed, scale=1.0)
    state["head.bias"] = torch.tensor([50.0])  # SPAQ scores live around 0-100
    state["head.weight"] = state["head.weight"] * 10.0
    return state

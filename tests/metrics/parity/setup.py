"""The parity scenario shared by the live vbench comparison and the committed fixture: weights and clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tests.metrics.parity.tiny import (
    save_openai_clip_torchscript,
    state_dict_sha256,
    synthetic_clip,
    tiny_dino_state_dict,
    tiny_laion_head_state_dict,
    tiny_openai_clip_state_dict,
)

#: Architecture of the tiny DINO (the real one is ViT-B/16: 768 wide, 12 deep, 12 heads).
TINY_DINO_ARCH = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 16}


@dataclass
class Scenario:
    dino: Path
    clip_b32: Path
    clip_l14: Path
    aesthetic_dir: Path
    clips: dict[str, torch.Tensor]
    sha256: dict[str, str]


def build_scenario(root: Path) -> Scenario:
    """Write tiny checkpoints in the released formats under ``root`` and make three test clips."""
    root.mkdir(parents=True, exist_ok=True)
    dino_sd = tiny_dino_state_dict(seed=1)
    dino = root / "dino_vitbase16_pretrain.pth"
    torch.save(dino_sd, dino)
    b32_sd = tiny_openai_clip_state_dict(seed=2, embed_dim=512, patch=32)
    clip_b32 = save_openai_clip_torchscript(b32_sd, root / "ViT-B-32.pt")
    l14_sd = tiny_openai_clip_state_dict(seed=3, embed_dim=768, patch=14)
    clip_l14 = save_openai_clip_torchscript(l14_sd, root / "ViT-L-14.pt")
    head_sd = tiny_laion_head_state_dict(seed=4)
    aesthetic_dir = root / "aesthetic_model" / "emb_reader"
    aesthetic_dir.mkdir(parents=True, exist_ok=True)
    torch.save(head_sd, aesthetic_dir / "sa_0_4_vit_l_14_linear.pth")
    still = synthetic_clip(12, frames=1)
    clips = {
        "landscape": synthetic_clip(10),
        "portrait": synthetic_clip(11, frames=9, height=48, width=36),
        "static": still.expand(6, -1, -1, -1).contiguous(),
    }
    sha = {
        "dino": state_dict_sha256(dino_sd),
        "clip_b32": state_dict_sha256(b32_sd),
        "clip_l14": state_dict_sha256(l14_sd),
        "aesthetic_head": state_dict_sha256(head_sd),
        "clips": state_dict_sha256(clips),
    }
    return Scenario(dino, clip_b32, clip_l14, aesthetic_dir, clips, sha)

"""The parity scenario shared by the live vbench comparison and the committed fixture: weights and clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tests.metrics.parity.tiny import (
    musiq_state_dict,
    raft_things_state_dict,
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
    raft: Path | None = None
    raft_zero: Path | None = None
    flow_clips: dict[str, torch.Tensor] | None = None


#: Frame rate the flow clips are scored at (stride round(16 / 8) = 2: 5 frames -> 3 sampled, 2 pairs).
FLOW_FPS = 16.0
#: Scale of the random RAFT's flow head: flows of a few pixels, near VBench's 6 * 130 / 256 px threshold.
RAFT_FLOW_SCALE = 0.03


def flow_clips() -> dict[str, torch.Tensor]:
    """Clips large enough for torchvision's RAFT (>= 128 px after padding to a multiple of 8)."""
    return {
        "moving": synthetic_clip(20, frames=5, height=130, width=150),
        "portrait": synthetic_clip(21, frames=5, height=150, width=130),
    }


def static_flow_clip() -> torch.Tensor:
    """One frame repeated: the known-answer clip for a zero-flow RAFT (``(5, 130, 150, 3)`` uint8)."""
    return synthetic_clip(22, frames=1, height=130, width=150).expand(5, -1, -1, -1).contiguous()


def build_flow_scenario(root: Path) -> Scenario:
    """Write random ``raft-things.pth``-format checkpoints (normal and zero-flow) and the flow clips."""
    root.mkdir(parents=True, exist_ok=True)
    raft_sd = raft_things_state_dict(seed=5, flow_scale=RAFT_FLOW_SCALE)
    raft = root / "raft-things.pth"
    torch.save(raft_sd, raft)
    raft_zero = root / "raft-things-zero-flow.pth"
    torch.save(raft_things_state_dict(seed=5, flow_scale=0.0), raft_zero)
    clips = flow_clips()
    sha = {"raft": state_dict_sha256(raft_sd), "flow_clips": state_dict_sha256(clips)}
    return Scenario(Path(), Path(), Path(), Path(), {}, sha, raft=raft, raft_zero=raft_zero, flow_clips=clips)


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


def imaging_clips() -> dict[str, torch.Tensor]:
    """Clips for imaging_quality; ``wide`` is longer than 512 px, so VBench's resize step runs."""
    return {
        "landscape": synthetic_clip(10, frames=2),
        "portrait": synthetic_clip(11, frames=2, height=48, width=36),
        "wide": synthetic_clip(13, frames=2, height=24, width=520),
    }


def build_musiq_scenario(root: Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, str]]:
    """Write a random full-size MUSIQ checkpoint in pyiqa's format; return (path, clips, sha256)."""
    root.mkdir(parents=True, exist_ok=True)
    state = musiq_state_dict(seed=7)
    path = root / "musiq_spaq_ckpt-358bb6af.pth"
    torch.save(state, path)
    clips = imaging_clips()
    return path, clips, {"musiq": state_dict_sha256(state), "imaging_clips": state_dict_sha256(clips)}

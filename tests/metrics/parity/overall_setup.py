"""The overall_consistency parity scenario: a tiny seeded ViCLIP in the released file format, clips and prompts.

Shared by the committed fixture (``make_overall_fixture.py``) and the live comparison with vbench's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from deepforcing.metrics.backbones.viclip import ViCLIP, ViCLIPConfig
from tests.metrics.parity.tiny import _fill, state_dict_sha256, synthetic_clip

#: Tiny ViCLIP (the released one is ViT-L/14: vision 1024 x 24, text 768 x 12, embedding 768). The vocabulary
#: stays at 49408 so that real BPE ids can be embedded; the context stays at ViCLIP's 32 tokens.
TINY_VICLIP = ViCLIPConfig(
    vision_width=64, vision_layers=2, vision_heads=4, embed_dim=48, text_width=32, text_layers=2, text_heads=4
)

#: One prompt per clip: plain text, a prompt longer than 32 tokens (truncated), HTML entities + accents +
#: digits + irregular whitespace, contractions, and a one-word prompt.
PROMPTS = {
    "landscape": "A red square slides across a rippling, colourful background.",
    "portrait": (
        "An extremely long and detailed prompt describing a cinematic drone shot over snowy mountains at dawn, "
        "with golden light, drifting clouds, pine forests, a frozen lake and a lone hiker walking slowly"
    ),
    "short": "Caf\u00e9 cr\u00e8me &amp; croissants \u2014 2 cats,\t  dancing!!\n",
    "large": "it's a dog's life; they've gone, I'm here, we'll see, you'd KNOW",
    "long": "sunset",
}

#: Extra strings whose tokens are compared with vbench's tokenizer (not scored).
TOKENIZER_ONLY = [
    "",
    "&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;",
    "\u4e00\u53ea\u732b\u5728\u8df3\u821e \U0001f408 emoji and CJK",
    "  multiple   spaces\u00a0and\u2003unicode\u3000spaces  ",
    "numbers 1234567890 and 3.14159, 1e-5",
    "MiXeD CaSe WoRdS \u00c9T\u00c9 \u00df",
    "word " * 40,
]


@dataclass
class OverallScenario:
    checkpoint: Path
    clips: dict[str, torch.Tensor]
    prompts: dict[str, str]
    sha256: dict[str, str]


def overall_clips() -> dict[str, torch.Tensor]:
    """Clips covering up-scaling, down-scaling (uint8 bicubic), < 8 frames (padding) and uneven intervals."""
    return {
        "landscape": synthetic_clip(30, frames=12, height=40, width=56),
        "portrait": synthetic_clip(31, frames=9, height=48, width=36),
        "short": synthetic_clip(32, frames=5, height=40, width=56),
        "large": synthetic_clip(33, frames=10, height=240, width=300),
        "long": synthetic_clip(34, frames=37, height=32, width=32),
    }


def tiny_viclip_state_dict(seed: int = 8, config: ViCLIPConfig = TINY_VICLIP) -> dict[str, torch.Tensor]:
    """A seeded ViCLIP state dict; keys and shapes are those of :class:`ViCLIP` (the released names)."""
    spec = []
    for name, t in ViCLIP(config).state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if name == "temp":
            continue
        if leaf == "bias" or leaf == "in_proj_bias":
            kind = "bias"
        elif ".ln_" in f".{name}" and leaf == "weight":
            kind = "ln_w"
        elif leaf in ("weight", "in_proj_weight", "proj", "text_projection") and "token_embedding" not in name:
            kind = "w"
        else:  # class / positional / temporal / token embeddings
            kind = "emb"
        spec.append((name, tuple(t.shape), kind))
    state = _fill(spec, seed, scale=1.5)
    state["temp"] = torch.tensor(0.01)
    return state


def build_overall_scenario(root: Path) -> OverallScenario:
    """Write the tiny ViCLIP as ``{"model": state_dict}`` (the released layout) and make the clips."""
    root.mkdir(parents=True, exist_ok=True)
    state = tiny_viclip_state_dict()
    ckpt = root / "ViClip-InternVid-10M-FLT.pth"
    torch.save({"model": state}, ckpt)
    clips = overall_clips()
    sha = {"viclip": state_dict_sha256(state), "overall_clips": state_dict_sha256(clips)}
    return OverallScenario(ckpt, clips, dict(PROMPTS), sha)

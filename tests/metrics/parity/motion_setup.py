"""The motion_smoothness parity scenario: random full-size AMT-S checkpoints in ``amt-s.pth``'s format, and clips.

AMT-S is small (~3.0 M parameters), so the real architecture is used. Weights are drawn from a seeded generator
in sorted key order (shapes fixed by the official checkpoint layout), scaled by fan-in so activations stay
tame. Two output gains keep the random interpolator non-degenerate: flows of a few pixels (so warping, the
correlation lookups and the flow up-sampling all matter) and predictions that are mostly not clamped.

The "zero-motion" variant zeroes every flow output, the blend-mask logits and both residual heads: the network
still runs its encoders, correlation and update blocks, but its prediction is ``(img0 + img1) / 2`` up to float
rounding — a known answer.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from tests.metrics.parity.tiny import state_dict_sha256, synthetic_clip

#: Gain of every layer that outputs flow (decoders' first 4 / 4n channels, update blocks' flow heads).
FLOW_GAIN = 0.01
#: Gain of the RGB residual channels of ``decoder1`` and of ``comb_block``'s last convolution.
RESIDUAL_GAIN = 0.001
#: Gain of ``decoder1``'s blend-mask logits (channels ``4n:5n``).
MASK_GAIN = 0.03
NUM_FLOWS = 3


def _flow_rows(key: str) -> slice | None:
    """Output channels of ``key`` that are flows (``None``: the layer outputs no flow)."""
    if key.startswith(("decoder4.convblock.2", "decoder3.convblock.2", "decoder2.convblock.2")):
        return slice(0, 4)
    if key.startswith("decoder1.convblock.2"):
        return slice(0, 4 * NUM_FLOWS)
    if ".flow_head.2." in key:
        return slice(0, 4)
    return None


def amt_s_state_dict(
    seed: int = 0,
    flow_gain: float = FLOW_GAIN,
    residual_gain: float = RESIDUAL_GAIN,
    mask_gain: float = MASK_GAIN,
    zero_motion: bool = False,
) -> dict[str, torch.Tensor]:
    """A random AMT-S state dict with the keys and shapes of ``amt-s.pth``'s ``state_dict``.

    Args:
        seed: Generator seed.
        flow_gain: Multiplies the flow outputs' weights and biases.
        residual_gain: Multiplies the RGB residual outputs (``decoder1`` channels ``5n:8n``, ``comb_block.2``).
        mask_gain: Multiplies the blend-mask logits (``decoder1`` channels ``4n:5n``).
        zero_motion: Zero all flow outputs, the mask logits and the residual heads (prediction = mean of inputs).
    """
    from deepforcing.metrics.backbones.amt import AmtS

    shapes = {k: tuple(v.shape) for k, v in AmtS().state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        x = torch.randn(shape, generator=g, dtype=torch.float32)
        if len(shape) == 1 and key.endswith(".weight"):  # PReLU slopes around PyTorch's 0.25
            x = 0.25 + 0.05 * x
        elif len(shape) == 1:  # biases
            x = 0.02 * x
        elif key.endswith("convblock.2.weight"):  # ConvTranspose2d (in, out, 4, 4), stride 2: fan-in in * 4
            x = x / math.sqrt(shape[0] * 4)
        else:  # Conv2d (out, in, k, k)
            x = x * math.sqrt(2.0) / math.sqrt(math.prod(shape[1:]))
        out[key] = x
    for key, x in out.items():
        # ConvTranspose2d keeps output channels in dim 1 of the weight; Conv2d and biases in dim 0.
        dim = 1 if key.endswith("convblock.2.weight") else 0
        rows = _flow_rows(key)
        if rows is not None:
            x.narrow(dim, rows.start, rows.stop - rows.start).mul_(0.0 if zero_motion else flow_gain)
        if key.startswith("decoder1.convblock.2"):
            n = NUM_FLOWS
            x.narrow(dim, 5 * n, 3 * n).mul_(0.0 if zero_motion else residual_gain)
            x.narrow(dim, 4 * n, n).mul_(0.0 if zero_motion else mask_gain)  # zero logits: blend weight 0.5
        if key.startswith("comb_block.2."):
            x.mul_(0.0 if zero_motion else residual_gain)
    return out


def save_amt_checkpoint(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Save like AMT's trainer does (``OrderedDict(epoch=..., state_dict=...)``; the optimiser state is left out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict(epoch=299, state_dict=state), path)
    return path


def motion_clips() -> dict[str, torch.Tensor]:
    """Clips for motion_smoothness. AMT-S needs >= 128 px per side after padding to a multiple of 16.

    ``landscape`` (5 frames, 130 x 150: padded to 144 x 160), ``portrait`` (6 frames: the last odd frame has no
    prediction and is ignored, 150 x 130) and ``static`` (one frame repeated).
    """
    still = synthetic_clip(32, frames=1, height=128, width=144)
    return {
        "landscape": synthetic_clip(30, frames=5, height=130, width=150),
        "portrait": synthetic_clip(31, frames=6, height=150, width=130),
        "static": still.expand(5, -1, -1, -1).contiguous(),
    }


#: GPU memory for the downscaled case: VBench's CUDA rule gives scale 16/17 for 200 x 240 frames (padding to a
#: multiple of 17, network at 192 x 240).
SCALED_VRAM_BYTES = 2500 * 1024**2 + 8 * 1024**2


def scaled_clip() -> dict[str, torch.Tensor]:
    """One 3-frame 200 x 240 clip for the downscaled path."""
    return {"scaled": synthetic_clip(33, frames=3, height=200, width=240)}


@dataclass
class MotionScenario:
    amt: Path
    amt_zero_motion: Path
    clips: dict[str, torch.Tensor]
    sha256: dict[str, str]


def build_motion_scenario(root: Path) -> MotionScenario:
    """Write the two random ``amt-s.pth``-format checkpoints under ``root``; make the clips."""
    root.mkdir(parents=True, exist_ok=True)
    sd = amt_s_state_dict(seed=40)
    zero = amt_s_state_dict(seed=40, zero_motion=True)
    amt = save_amt_checkpoint(sd, root / "amt-s.pth")
    amt_zero = save_amt_checkpoint(zero, root / "zero-motion" / "amt-s.pth")
    clips = motion_clips()
    sha = {
        "amt_s": state_dict_sha256(sd),
        "amt_s_zero_motion": state_dict_sha256(zero),
        "clips": state_dict_sha256(clips),
        "scaled_clip": state_dict_sha256(scaled_clip()),
    }
    return MotionScenario(amt, amt_zero, clips, sha)

"""RAFT optical flow from the original ``raft-things.pth``, run by torchvision's ``raft_large``.

``raft-things.pth`` (princeton-vl/RAFT ``models.zip``, the file VBench's dynamic_degree and static filter load)
is a ``torch.save``-d state dict of the original ``RAFT`` module wrapped in ``DataParallel`` (keys start with
``module.``). torchvision's ``raft_large`` is the same network under other parameter names; the converter
below renames the tensors (no tensor is changed) and drops the original's duplicate ``norm3`` entries (in the
original residual blocks ``norm3`` and ``downsample.1`` are one module registered twice).

What stays the caller's job, as in the original code:

* images are padded to a multiple of 8 with replicate padding, split evenly between the two sides
  (RAFT's ``InputPadder``, "sintel" mode) — :func:`pad_to_multiple_of_8`;
* the original ``forward`` maps 0–255 pixels to ``2 * x / 255 - 1``; torchvision expects that range as input.

Measured: same weights, same padded pair ⇒ torchvision's final flow equals the original's bit for bit on CPU
(``tests/metrics/test_dynamic_degree.py``). torchvision needs both padded sides ≥ 128 px (the original works
down to 64 px); smaller frames are rejected with a clear error.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

#: Smallest padded side torchvision's RAFT accepts (its correlation pyramid needs 16 feature cells).
MIN_SIDE = 128

_UPDATE_RENAMES = (
    ("update_block.encoder.convc1.", "update_block.motion_encoder.convcorr1.0."),
    ("update_block.encoder.convc2.", "update_block.motion_encoder.convcorr2.0."),
    ("update_block.encoder.convf1.", "update_block.motion_encoder.convflow1.0."),
    ("update_block.encoder.convf2.", "update_block.motion_encoder.convflow2.0."),
    ("update_block.encoder.conv.", "update_block.motion_encoder.conv.0."),
    ("update_block.mask.0.", "mask_predictor.convrelu.0."),
    ("update_block.mask.2.", "mask_predictor.conv."),
)


def original_to_torchvision_key(key: str) -> str | None:
    """Map one ``raft-things.pth`` key to torchvision's ``raft_large`` name (``None``: a duplicate to drop).

    Args:
        key: Original key, with or without the ``module.`` prefix.

    Returns:
        The torchvision key, or ``None`` for the duplicate ``layer*.norm3.*`` entries.
    """
    k = key.removeprefix("module.")
    k = re.sub(r"^fnet\.", "feature_encoder.", k)
    k = re.sub(r"^cnet\.", "context_encoder.", k)
    if re.search(r"\.layer\d\.\d\.norm3\.", k):
        return None
    # Encoder stem and head: conv1/norm1 → convnormrelu.{0,1}; conv2 (1x1 output conv) → conv.
    k = re.sub(r"^(\w+_encoder)\.conv1\.", r"\1.convnormrelu.0.", k)
    k = re.sub(r"^(\w+_encoder)\.norm1\.", r"\1.convnormrelu.1.", k)
    k = re.sub(r"^(\w+_encoder)\.conv2\.", r"\1.conv.", k)
    # Residual blocks: conv{i}/norm{i} → convnormrelu{i}.{0,1}; downsample keeps its name.
    k = re.sub(r"(\.layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0.", k)
    k = re.sub(r"(\.layer\d\.\d)\.norm(\d)\.", r"\1.convnormrelu\2.1.", k)
    for old, new in _UPDATE_RENAMES:
        if k.startswith(old):
            k = new + k[len(old) :]
    # Separable ConvGRU: convz1 (1x5) → convgru1.convz, convz2 (5x1) → convgru2.convz, same for r and q.
    return re.sub(r"^update_block\.gru\.conv([zrq])([12])\.", r"update_block.recurrent_block.convgru\2.conv\1.", k)


def convert_raft_things_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an original RAFT (large) state dict to torchvision ``raft_large`` keys.

    Args:
        state: ``raft-things.pth`` contents (``module.``-prefixed or not).

    Returns:
        A state dict for ``torchvision.models.optical_flow.raft_large``. The tensors are the same objects.
    """
    out = {}
    for key, value in state.items():
        new = original_to_torchvision_key(key)
        if new is not None:
            out[new] = value
    return out


def load_raft_things(path: str | Path) -> torch.nn.Module:
    """Load ``raft-things.pth`` into torchvision's ``raft_large``.

    Args:
        path: The original checkpoint (a plain state dict; loaded with ``weights_only=True``).

    Returns:
        The model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing or is not an original RAFT-large state dict.
    """
    p = require_file(path, "RAFT (raft-things)")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not any(k.removeprefix("module.").startswith("fnet.") for k in state):
        raise UserError(f"{p} is not an original RAFT state dict (no fnet.* tensors)", "use raft-things.pth")
    from torchvision.models.optical_flow import raft_large

    model = raft_large(weights=None, progress=False)
    converted = convert_raft_things_state_dict(state)
    # Checkpoints saved before PyTorch 0.4.1 have no BatchNorm num_batches_tracked; it is unused in eval mode.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            converted.setdefault(key, value)
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as err:
        raise UserError(f"{p} does not match RAFT-large: {str(err).splitlines()[0]}", "use raft-things.pth") from err
    return model.eval()


def pad_to_multiple_of_8(images: torch.Tensor) -> torch.Tensor:
    """RAFT's ``InputPadder`` ("sintel" mode): replicate-pad H and W up to a multiple of 8, split evenly.

    Args:
        images: ``(B, C, H, W)`` float images.

    Returns:
        ``(B, C, H', W')`` with ``H' = ceil(H / 8) * 8`` (extra row at the bottom / column at the right when odd).
    """
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % 8, (-w) % 8
    pad = [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
    return F.pad(images, pad, mode="replicate")


@torch.inference_mode()
def raft_flow(model: torch.nn.Module, image1: torch.Tensor, image2: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """Final RAFT flow between padded image pairs, as the original ``RAFT(..., test_mode=True)`` returns it.

    Args:
        model: torchvision ``raft_large`` with converted weights.
        image1: ``(B, 3, H, W)`` float RGB in 0–255, ``H`` and ``W`` multiples of 8 and ≥ :data:`MIN_SIDE`.
        image2: Same shape as ``image1``.
        iters: Refinement iterations (VBench: 20).

    Returns:
        ``(B, 2, H, W)`` float32 flow (x, y) in pixels.

    Raises:
        UserError: If the frames are smaller than torchvision's RAFT accepts.
    """
    h, w = image1.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise UserError(
            f"frames of {h}x{w} px (after padding) are too small for RAFT (torchvision needs >= {MIN_SIDE} px)",
            "dynamic_degree needs frames at least 128 px on each side",
        )
    x1 = 2 * (image1 / 255.0) - 1.0  # (B, 3, H, W) in [-1, 1]
    x2 = 2 * (image2 / 255.0) - 1.0
    return model(x1.contiguous(), x2.contiguous(), num_flow_updates=iters)[-1]  # (B, 2, H, W)

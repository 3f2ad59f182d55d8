"""LAION aesthetic predictor v1: a linear head on L2-normalised CLIP ViT-L/14 image embeddings.

File ``sa_0_4_vit_l_14_linear.pth`` (4,071 B): a state dict with ``weight (1, 768)`` and ``bias (1,)`` of an
``nn.Linear(768, 1)``. Output is roughly on a 1–10 scale; VBench's aesthetic_quality divides it by 10.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file


def load_laion_linear_head(path: str | Path, dim: int = 768) -> nn.Linear:
    """Load the v1 linear aesthetic head.

    Args:
        path: ``sa_0_4_vit_l_14_linear.pth``.
        dim: Embedding width (768 for ViT-L/14).

    Returns:
        ``nn.Linear(dim, 1)`` in eval mode, float32.

    Raises:
        UserError: If the file is missing or has other tensors.
    """
    p = require_file(path, "LAION aesthetic head")
    state = torch.load(p, map_location="cpu", weights_only=True)
    head = nn.Linear(dim, 1)
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserError(f"{p} is not an nn.Linear({dim}, 1) state dict: {str(err).splitlines()[0]}") from err
    return head.float().eval()

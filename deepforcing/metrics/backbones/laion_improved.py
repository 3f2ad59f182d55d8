"""LAION "improved" aesthetic predictor: an MLP on L2-normalised CLIP ViT-L/14 image embeddings.

File ``sac+logos+ava1-l14-linearMSE.pth`` (christophschuhmann/improved-aesthetic-predictor, 3,714,759 B): the
state dict of an ``nn.Sequential`` stored under ``layers.*``::

    layers.0  Linear(768, 1024)   layers.1  Dropout(0.2)
    layers.2  Linear(1024, 128)   layers.3  Dropout(0.2)
    layers.4  Linear(128, 64)     layers.5  Dropout(0.1)
    layers.6  Linear(64, 16)
    layers.7  Linear(16, 1)

There is no activation between the layers (the published model has its ReLUs commented out), so at inference
the network is an affine map of the embedding. Output: an AVA-like 1–10 score.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

#: Widths of the linear layers (input first).
WIDTHS = (768, 1024, 128, 64, 16, 1)


class ImprovedAestheticMLP(nn.Module):
    """The improved predictor's head, under the published parameter names (``layers.{0,2,4,6,7}``)."""

    def __init__(self, dim: int = 768):
        super().__init__()
        w = (dim, *WIDTHS[1:])
        self.layers = nn.Sequential(
            nn.Linear(w[0], w[1]),
            nn.Dropout(0.2),
            nn.Linear(w[1], w[2]),
            nn.Dropout(0.2),
            nn.Linear(w[2], w[3]),
            nn.Dropout(0.1),
            nn.Linear(w[3], w[4]),
            nn.Linear(w[4], w[5]),
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Scores of ``(B, dim)`` L2-normalised embeddings → ``(B,)``."""
        return self.layers(emb)[:, 0]


def load_improved_aesthetic_head(path: str | Path, dim: int = 768) -> ImprovedAestheticMLP:
    """Load ``sac+logos+ava1-l14-linearMSE.pth`` (or a sibling with the same layout).

    Args:
        path: The state dict (loaded with ``weights_only=True``).
        dim: Embedding width (768 for ViT-L/14).

    Returns:
        The head in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing, not a state dict, or its keys / shapes differ from the layout above.
    """
    p = require_file(path, "LAION improved aesthetic head")
    state = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{p} is not a state dict of tensors", "use sac+logos+ava1-l14-linearMSE.pth")
    head = ImprovedAestheticMLP(dim)
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise UserError(
            f"{p} is not the improved aesthetic MLP (layers.0/2/4/6/7, widths {(dim, *WIDTHS[1:])}): "
            f"{str(err).splitlines()[0]} {sorted(state)[:6]}",
            "use sac+logos+ava1-l14-linearMSE.pth",
        ) from err
    return head.float().eval()

"""Shared helpers of the parity tests: the reference's tiny weights and replay of recorded noise streams."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from deepforcing.model.checkpoint import load_weights, read_state_dict
from deepforcing.model.config import TINY
from deepforcing.model.wan import CausalWanModel

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
TOLERANCE = 1e-4  # max-abs on output latents, float32 on CPU (the issues' parity bar)


def reference_model() -> CausalWanModel:
    """The tiny model all parity fixtures were recorded with, loaded from the official checkpoint layout."""
    model = CausalWanModel(TINY).eval()
    load_weights(model, read_state_dict(FIXTURES / "self_forcing" / "generator.pt"))
    return model


def load_case(path: str, inputs_from: str | None = None) -> dict[str, torch.Tensor]:
    """A fixture file; inputs shared with another case (same seeds) are filled in from ``inputs_from``."""
    data = load_file(str(FIXTURES / f"{path}.safetensors"))
    if inputs_from:
        data.update({k: v for k, v in load_file(str(FIXTURES / f"{inputs_from}.safetensors")).items() if k not in data})
    return data


def unflatten_draws(flat: torch.Tensor, shapes: torch.Tensor, batch: int = 1) -> list[torch.Tensor]:
    """Recorded draws stored as one flat tensor plus a zero-padded [N, ndim] shape table.

    The references draw ``randn_like(x0)`` with batch and frames flattened (``[B·n, C, H, W]``); each draw is
    returned in the engine's layout ``[B, n, C, H, W]`` (the replay checks shapes exactly, so this is the one
    place where the layout is converted, explicitly).
    """
    draws, offset = [], 0
    for shape in shapes.tolist():
        shape = [s for s in shape if s]
        n = int(torch.tensor(shape).prod())
        draws.append(flat[offset : offset + n].reshape(batch, shape[0] // batch, *shape[1:]))
        offset += n
    assert offset == flat.numel()
    return draws

"""Shared helpers of the parity tests: the reference's tiny weights and replay of recorded noise streams."""

import hashlib
from pathlib import Path

import numpy as np
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


class CounterNormal:
    """Standard normal float32 draws defined by a formula, for fixtures too long to store their noise.

    NumPy's PCG64 bit generator (whose raw stream NumPy keeps stable across versions) gives two 53-bit uniforms
    per value; Box–Muller in float64 turns them into ``sqrt(-2 ln u1) · cos(2π u2)``, cast to float32. Draws are
    consecutive: ``draw(shape)`` consumes ``2 · numel`` raw values. Fixtures store the seed and the sha256 of the
    float32 bytes, so a platform whose stream differs fails loudly (see :func:`sha256`).

    Args:
        seed: PCG64 seed.
    """

    def __init__(self, seed: int):
        self.bits = np.random.PCG64(seed)

    def draw(self, shape) -> torch.Tensor:
        n = int(np.prod(shape))
        raw = self.bits.random_raw(2 * n).reshape(2, n)
        u1 = ((raw[0] >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53  # (0, 1]
        u2 = (raw[1] >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        return torch.from_numpy(z.astype(np.float32).reshape(tuple(shape)))


def sha256(t: torch.Tensor) -> str:
    """sha256 of a tensor's float32 bytes (C order)."""
    return hashlib.sha256(t.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()

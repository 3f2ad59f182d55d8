"""Parity with Rolling Forcing's released inference (TencentARC/RollingForcing @ a1477d0), float32 on CPU.

Fixtures in tests/fixtures/parity/rolling_forcing/ were recorded from the release's own pipeline and model on the
shared tiny weights (README.md there). Re-noising draws have the whole window's shape; only the slice of the
chunk being re-noised is used, so the fixture stores just those slices and we rebuild full-shape draws with
zeros elsewhere (the zeros are never read).
"""

import pytest
import torch
from parity_utils import TOLERANCE, ListReplay, load_case, reference_model

from deepforcing.policies.rolling_sink import RollingSinkPolicy
from deepforcing.samplers.rolling import RollingSampler


def _window_draws(data):
    draws, offset = [], 0
    for shape, (a, b) in zip(data["renoise_shapes"].tolist(), data["renoise_used_frames"].tolist(), strict=True):
        full = torch.zeros([s for s in shape if s])
        n = (b - a) * full[0].numel()
        full[a:b] = data["renoise_used_flat"][offset : offset + n].reshape(b - a, *full.shape[1:])
        offset += n
        draws.append(full)
    return draws


@pytest.fixture(scope="module")
def model():
    return reference_model()


def test_rolling_forcing_45_frames(model):
    data = load_case("rolling_forcing/rf45")
    replay = ListReplay(_window_draws(data))
    finished = []
    out = RollingSampler().sample(
        model,
        model.encode_text(data["context"]),
        RollingSinkPolicy(),
        data["noise"],
        replay,
        on_chunk=lambda i, x: finished.append(i),
    )
    assert replay.used == len(replay.draws)
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    assert finished == list(range(15))  # chunks become final in order, one per window

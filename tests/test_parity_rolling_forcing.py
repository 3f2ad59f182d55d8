"""Parity with Rolling Forcing's released inference (TencentARC/RollingForcing @ a1477d0), float32 on CPU.

Fixtures in tests/fixtures/parity/rolling_forcing/ were recorded from the release's own pipeline and model on the
shared tiny weights (README.md there). Re-noising draws have the whole window's shape; only the slice of the
chunk being re-noised is used, so the fixture stores just those slices and we rebuild full-shape draws with
zeros elsewhere (the zeros are never read). Each draw is re-noising request ``(chunk, step, window)``.
"""

import pytest
import torch
from parity_utils import TOLERANCE, load_case, reference_model

from deepforcing.noise import ReplayNoise
from deepforcing.policies.rolling_forcing_sink import RollingForcingSinkPolicy
from deepforcing.samplers.rolling import RollingSampler


def _window_draws(data):
    draws, offset = [], 0
    for shape, (a, b) in zip(data["renoise_shapes"].tolist(), data["renoise_used_frames"].tolist(), strict=True):
        full = torch.zeros([s for s in shape if s])
        n = (b - a) * full[0].numel()
        full[a:b] = data["renoise_used_flat"][offset : offset + n].reshape(b - a, *full.shape[1:])
        offset += n
        draws.append(full.unsqueeze(0))  # the reference draws [n, C, H, W]; the engine asks for [1, n, C, H, W]
    return draws


@pytest.fixture(scope="module")
def model():
    return reference_model()


def test_rolling_forcing_45_frames(model):
    data = load_case("rolling_forcing/rf45")
    replay = ReplayNoise(_window_draws(data))
    policy = RollingForcingSinkPolicy()
    finished = []
    out = RollingSampler().sample(
        model,
        model.encode_text(data["context"]),
        policy,
        data["noise"],
        replay,
        on_chunk=lambda i, x: finished.append(i),
    )
    replay.assert_all_used()
    # every draw names the chunk it re-noises, as the reference's own bookkeeping does
    assert [r.chunk for r in replay.requests] == data["renoise_block"].tolist()
    assert all(r.window - 4 <= r.chunk <= r.window for r in replay.requests)
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    assert finished == list(range(15))  # chunks become final in order, one per window
    # the sink sits just before the working cache in every window pass that is not at frame 0 (README: anchor
    # re-RoPE'd at s-6..s-4 in a full window, the working part growing in the tail windows)
    windows = [p for p in policy.history if not p.is_context_pass and p.sink_frames]
    assert [p.window for p in windows] == list(range(5, 19))
    for p in windows:
        assert p.sink_start == 3 * (p.window - 4) - p.working_frames - 3
    assert [p.working_frames for p in windows] == [0] + [3] * 9 + [6, 9, 12, 15]  # window 5: only chunk 0 cached

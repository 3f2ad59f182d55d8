"""Parity with Rolling Sink's released code (Rolling-Sink/Rolling-Sink @ d7fc0d9), float32 on CPU.

Fixtures in tests/fixtures/parity/rolling_sink/ were recorded by running the release's own pipeline and model on the
shared tiny weights (README.md there). ``rs72`` replays the inputs of ``deep_forcing/ds_pc72`` (bitwise the same
context, noise and re-noising stream); ``rs1050`` runs 1,050 latent frames, so positions pass 1,024 (the stock
RoPE table), with noise from the formula-defined :class:`parity_utils.CounterNormal` stream whose sha256 the
fixture stores.
"""

import json

import pytest
import torch
from parity_utils import FIXTURES, TOLERANCE, CounterNormal, load_case, reference_model, sha256, unflatten_draws

from deepforcing.noise import ReplayNoise
from deepforcing.policies.rolling_sink import RollingSinkPolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler


@pytest.fixture(scope="module")
def model():
    return reference_model()


def _check_substitutions(policy, data):
    starts = [h.positions[-1] + 1 for h in policy.history]  # chunk start = the previous chunk's end + 1
    assert starts == data["sub_chunk_start"].tolist()
    for h, reversed_, first in zip(
        policy.history, data["sub_reversed"].tolist(), data["sub_first_src"].tolist(), strict=True
    ):
        # the release prints (right, left) for a reversed slice, i.e. its first source frame is right - 1
        assert h.sources[0] == (first - 1 if reversed_ else first)
        assert list(h.sources) == (
            list(range(first - 1, first - 4, -1)) if reversed_ else list(range(first, first + 3))
        )


def test_rolling_sink_72_frames(model):
    data = load_case("rolling_sink/rs72", inputs_from="deep_forcing/ds_pc72")
    policy = RollingSinkPolicy()
    replay = ReplayNoise(unflatten_draws(data["renoise_flat"], data["renoise_shapes"]))
    out = ChunkwiseSampler().sample(model, model.encode_text(data["context"]), policy, data["noise"], replay)
    replay.assert_all_used()
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    assert len(policy.history) == 17  # chunks 7..23 refill the previous chunk's slots
    _check_substitutions(policy, data)


def test_rolling_sink_1050_frames_past_the_rope_table(model):
    """Positions up to 1,049: the release (8,192-row table) and the engine (phases from integers) agree."""
    data = load_case("rolling_sink/rs1050")
    meta = json.loads((FIXTURES / "rolling_sink" / "config.json").read_text())["cases"]["rs1050"]
    noise = CounterNormal(2002).draw((1, 1050, 16, 4, 4))
    assert sha256(noise) == meta["noise_sha256"], "this platform's CounterNormal stream differs from the recording"
    stream = CounterNormal(3003)
    draws = [stream.draw((1, 3, 16, 4, 4)) for _ in range(3 * 350)]
    assert sha256(torch.cat([d.flatten() for d in draws])) == meta["renoise_sha256"]
    policy = RollingSinkPolicy()
    replay = ReplayNoise(draws)
    calls = []
    out = ChunkwiseSampler().sample(
        model,
        model.encode_text(data["context"]),
        policy,
        noise,
        replay,
        observer=lambda c: calls.append(int(c.query_positions.max())) if c.is_context_pass else None,
    )
    replay.assert_all_used()
    assert max(calls) == 1049
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    _check_substitutions(policy, data)

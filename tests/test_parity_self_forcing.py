"""Parity with the official Self-Forcing inference (guandeh17/Self-Forcing @ 33593df), float32 on CPU.

The fixtures under tests/fixtures/parity/self_forcing/ were produced by running the reference's own
CausalInferencePipeline on a tiny random model (see that folder's README.md for how): same weights (saved in
the official ``generator_ema`` layout), same text embedding, same initial noise and the exact sequence of
re-noising draws. We replay them through our engine and require max-abs <= 1e-4 on the output latents.
"""

import json

import pytest
import torch
from parity_utils import FIXTURES, TOLERANCE, load_case, reference_model

from deepforcing.model.config import TINY
from deepforcing.noise import ReplayNoise
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.policies.full import FullCachePolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler


def test_fixture_config_is_the_tiny_preset():
    cfg = json.loads((FIXTURES / "self_forcing" / "config.json").read_text())["model"]
    for field in ("dim", "ffn_dim", "num_heads", "num_layers", "freq_dim", "text_dim", "text_len", "in_dim", "out_dim"):
        assert cfg[field] == getattr(TINY, field), field


@pytest.fixture(scope="module")
def model():
    return reference_model()


def _case(name, inputs_from=None):
    return load_case(f"self_forcing/{name}", f"self_forcing/{inputs_from}" if inputs_from else None)


def _replay(model, data, policy):
    text = model.encode_text(data["context"])
    replay = ReplayNoise(data["renoise"])
    out = ChunkwiseSampler().sample(model, text, policy, data["noise"], replay).latents
    replay.assert_all_used()  # consumed the reference's stream exactly
    return out


def test_first_dit_call_matches(model):
    data = _case("sf_full21")
    text = model.encode_text(data["context"])
    flow = model(data["noise"][:, :3], torch.full((1, 3), 1000.0), text)
    assert (flow - data["first_flow"]).abs().max() <= TOLERANCE


def test_timesteps_match(model):
    data = _case("sf_full21")
    ts = ChunkwiseSampler().timesteps
    per_chunk = torch.cat([ts, torch.zeros(1)])
    assert torch.equal(data["timesteps"], per_chunk.repeat(7))


def test_full_cache_inside_trained_horizon(model):
    data = _case("sf_full21")
    out = _replay(model, data, FullCachePolicy())
    assert (out - data["output"]).abs().max() <= TOLERANCE  # measured: 0.0 (bit-exact) on torch 2.14 CPU


def test_rolling_window_48_frames(model):
    data = _case("sf_rolling48")
    out = _replay(model, data, FifoPolicy(FifoConfig(window_frames=21)))
    assert (out - data["output"]).abs().max() <= TOLERANCE  # measured: 0.0 (bit-exact) on torch 2.14 CPU


def test_rolling_window_with_static_sink(model):
    data = _case("sf_rolling48_sink3", inputs_from="sf_rolling48")
    out = _replay(model, data, FifoPolicy(FifoConfig(window_frames=21, sink_frames=3)))
    assert (out - data["output"]).abs().max() <= TOLERANCE  # measured: 0.0 (bit-exact) on torch 2.14 CPU

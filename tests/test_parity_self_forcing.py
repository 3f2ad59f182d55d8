"""Parity with the official Self-Forcing inference (guandeh17/Self-Forcing @ 33593df), float32 on CPU.

The fixtures under tests/fixtures/parity/self_forcing/ were produced by running the reference's own
CausalInferencePipeline on a tiny random model (see that folder's README.md for how): same weights (saved in
the official ``generator_ema`` layout), same text embedding, same initial noise and the exact sequence of
re-noising draws. We replay them through our engine and require max-abs <= 1e-4 on the output latents.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepforcing.model.checkpoint import load_weights, read_state_dict
from deepforcing.model.config import TINY, WanConfig
from deepforcing.model.wan import CausalWanModel
from deepforcing.noise import ReplayNoise
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.policies.full import FullCachePolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler

FIXTURES = Path(__file__).parent / "fixtures" / "parity" / "self_forcing"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference_model():
    cfg = json.loads((FIXTURES / "config.json").read_text())["model"]
    wan = WanConfig(
        dim=cfg["dim"],
        ffn_dim=cfg["ffn_dim"],
        num_heads=cfg["num_heads"],
        num_layers=cfg["num_layers"],
        freq_dim=cfg["freq_dim"],
        text_dim=cfg["text_dim"],
        text_len=cfg["text_len"],
        in_dim=cfg["in_dim"],
        out_dim=cfg["out_dim"],
        patch_size=tuple(cfg["patch_size"]),
        eps=cfg["eps"],
    )
    assert wan == TINY  # the fixtures use the project's tiny preset shape
    model = CausalWanModel(wan).eval()
    load_weights(model, read_state_dict(FIXTURES / "generator.pt"))  # official layout, strict keys
    return model


def _case(name, inputs_from=None):
    data = load_file(str(FIXTURES / f"{name}.safetensors"))
    if inputs_from:
        data.update({k: v for k, v in load_file(str(FIXTURES / f"{inputs_from}.safetensors")).items() if k not in data})
    return data


def _replay(model, data, policy):
    text = model.encode_text(data["context"])
    replay = ReplayNoise(data["renoise"])
    out = ChunkwiseSampler().sample(model, text, policy, data["noise"], replay).latents
    assert replay.used == len(data["renoise"])  # consumed the reference's stream exactly
    return out


def test_first_dit_call_matches(reference_model):
    data = _case("sf_full21")
    text = reference_model.encode_text(data["context"])
    flow = reference_model(data["noise"][:, :3], torch.full((1, 3), 1000.0), text)
    assert (flow - data["first_flow"]).abs().max() <= TOLERANCE


def test_timesteps_match(reference_model):
    data = _case("sf_full21")
    ts = ChunkwiseSampler().timesteps
    per_chunk = torch.cat([ts, torch.zeros(1)])
    assert torch.equal(data["timesteps"], per_chunk.repeat(7))


def test_full_cache_inside_trained_horizon(reference_model):
    data = _case("sf_full21")
    out = _replay(reference_model, data, FullCachePolicy())
    assert (out - data["output"]).abs().max() <= TOLERANCE


def test_rolling_window_48_frames(reference_model):
    data = _case("sf_rolling48")
    out = _replay(reference_model, data, FifoPolicy(FifoConfig(window_frames=21)))
    assert (out - data["output"]).abs().max() <= TOLERANCE


def test_rolling_window_with_static_sink(reference_model):
    data = _case("sf_rolling48_sink3", inputs_from="sf_rolling48")
    out = _replay(reference_model, data, FifoPolicy(FifoConfig(window_frames=21, sink_frames=3)))
    assert (out - data["output"]).abs().max() <= TOLERANCE

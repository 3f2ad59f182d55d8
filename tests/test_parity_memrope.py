"""Parity with MemRoPE's released code (YoungRaeKimm/MemRoPE @ b89bf5b, Self-Forcing config), float32 on CPU.

The fixture in tests/fixtures/parity/memrope/ was recorded by running the release's own pipeline and model on the
shared tiny weights (README.md there): 72 frames, the EMA memories initialised at chunk 4 and updated at every chunk
after. Its inputs are bitwise those of ``deep_forcing/ds_pc72``.
"""

import pytest
import torch
from parity_utils import TOLERANCE, load_case, reference_model, unflatten_draws

from deepforcing.noise import ReplayNoise
from deepforcing.policies.memrope import MemRopePolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler


@pytest.fixture(scope="module")
def model():
    return reference_model()


def test_memrope_72_frames(model):
    data = load_case("memrope/memrope72", inputs_from="deep_forcing/ds_pc72")
    policy = MemRopePolicy()
    replay = ReplayNoise(unflatten_draws(data["renoise_flat"], data["renoise_shapes"]))
    calls = []
    out = ChunkwiseSampler().sample(
        model, model.encode_text(data["context"]), policy, data["noise"], replay, observer=calls.append
    )
    replay.assert_all_used()
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    assert policy.updates == list(range(4, 24))  # memories folded at every chunk's first pass from chunk 4
    assert [c.query_positions.tolist() for c in calls] == data["query_positions"].tolist()
    keys = torch.split(data["key_positions_flat"], data["key_positions_len"].tolist())
    assert [c.attended[0].positions.unique_consecutive().tolist() for c in calls] == [k.tolist() for k in keys]

"""Parity with Infinity-RoPE's released code (yesiltepe-hidir/infinity-rope @ 63d7b84), float32 on CPU.

Fixtures in tests/fixtures/parity/infinity_rope/ were recorded by running the release's own pipeline and model on the
shared tiny weights (README.md there): 48 frames with one prompt, with a prompt switch at frame 24 (KV flush, the
code's ``A[6s] | B``) and with a RoPE cut there (``A[6s#] | B``). Context A, the noise and the re-noising stream are
bitwise those of ``self_forcing/sf_rolling48``; context B is stored in the switch fixtures.
"""

import pytest
import torch
from parity_utils import TOLERANCE, load_case, reference_model

from deepforcing.noise import ReplayNoise
from deepforcing.policies.infinity_rope import InfinityRopePolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler
from deepforcing.samplers.switching import TextSegment


@pytest.fixture(scope="module")
def model():
    return reference_model()


def _run(model, case, switch=None):
    data = load_case(f"infinity_rope/{case}", inputs_from="self_forcing/sf_rolling48")
    text = model.encode_text(data["context"])
    if switch is not None:
        text = [TextSegment(0, text), TextSegment(24, model.encode_text(data["context_b"]), switch)]
    policy = InfinityRopePolicy()
    replay = ReplayNoise(data["renoise"])
    calls = []
    out = ChunkwiseSampler().sample(model, text, policy, data["noise"], replay, observer=calls.append)
    replay.assert_all_used()
    return data, out, policy, calls


@pytest.mark.parametrize(("case", "switch"), [("ir48", None), ("ir48_flush", "flush"), ("ir48_cut", "cut")])
def test_infinity_rope_48_frames(model, case, switch):
    data, out, policy, calls = _run(model, case, switch)
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    # the positions every call used, layer 0: queries as the release's RoPE saw them, keys likewise
    assert [c.query_positions.tolist() for c in calls] == data["query_positions"].tolist()
    keys = torch.split(data["key_positions_flat"], data["key_positions_len"].tolist())
    assert [c.attended[0].positions.unique_consecutive().tolist() for c in calls] == [k.tolist() for k in keys]
    assert [p.cut for p in policy.history] == [bool(data["scene_cut_l0"][5 * c]) for c in range(16)]

"""Parity with the Deep Forcing release (commit ea9961a; DS-only and DS+PC), float32 on CPU.

Fixtures in tests/fixtures/parity/deep_forcing/ were recorded by running the release's own models and the
Self-Forcing pipeline loop on the shared tiny weights (README.md there says how). Our exact positions-as-data
sink re-alignment differs from the release's accumulated in-place rotation only by float rounding (measured
max-abs 4.8e-7), far inside the 1e-4 bar.
"""

import pytest
import torch
from parity_utils import TOLERANCE, load_case, reference_model, unflatten_draws

from deepforcing.noise import ReplayNoise
from deepforcing.policies.deep_sink import DeepSinkConfig, DeepSinkPolicy
from deepforcing.policies.participative_compression import (
    ParticipativeCompressionConfig,
    ParticipativeCompressionPolicy,
)
from deepforcing.samplers.chunkwise import ChunkwiseSampler


@pytest.fixture(scope="module")
def model():
    return reference_model()


def test_deep_sink_only_48_frames(model):
    data = load_case("deep_forcing/ds_only48", inputs_from="self_forcing/sf_rolling48")
    policy = DeepSinkPolicy(DeepSinkConfig(window_frames=21, sink_frames=10, placement="released"))
    replay = ReplayNoise(data["renoise"])
    out = ChunkwiseSampler().sample(model, model.encode_text(data["context"]), policy, data["noise"], replay)
    replay.assert_all_used()
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    assert [start for _, start in policy.sink_starts] == data["roll_sink_base"].tolist()


@pytest.mark.parametrize(("case", "sink"), [("ds_pc72", 10), ("ds_pc72_sink4", 4)])
def test_deep_sink_and_participative_compression_72_frames(model, case, sink):
    data = load_case(f"deep_forcing/{case}", inputs_from="deep_forcing/ds_pc72")
    policy = ParticipativeCompressionPolicy(ParticipativeCompressionConfig(sink_frames=sink))
    replay = ReplayNoise(unflatten_draws(data["renoise_flat"], data["renoise_shapes"]))
    out = ChunkwiseSampler().sample(model, model.encode_text(data["context"]), policy, data["noise"], replay)
    replay.assert_all_used()
    assert (out.latents - data["output"]).abs().max() <= TOLERANCE
    layer0 = [h for h in policy.history if h.layer == 0]
    assert [h.chunk for h in layer0] == data["pc_chunk"].tolist()  # compressions fired at the same chunks
    assert [h.sink_start for h in layer0] == data["pc_sink_base_l0"].tolist()  # and re-aligned the sink alike
    # the same tokens were kept: source frames of the kept Top-C tokens, per compression, in layer 0
    offsets = data["pc_keep_l0_offsets"].tolist()
    kept = data["pc_keep_l0_absframe_flat"]
    tpf = 16
    kept_slots = data["pc_keep_l0_flat"]
    for i, h in enumerate(layer0):
        assert torch.equal(h.kept, kept_slots[offsets[i] : offsets[i + 1]].to(torch.int64))  # the same token slots
        assert (h.selected_scores > h.threshold).all()  # every kept Top-C token outscored every rejected one
        frames = kept[offsets[i] : offsets[i + 1]]
        topc = frames[sink * tpf : len(frames) - 4 * tpf]
        assert torch.equal(topc.to(h.selected_frames.dtype), h.selected_frames)

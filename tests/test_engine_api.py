"""The engine's researcher-facing API: replayed noise, the re-noising request, the per-DiT-call observer."""

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.noise import NoiseRequest, NoiseStream, ReplayNoise
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.policies.rolling_forcing_sink import RollingForcingSinkPolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler
from deepforcing.samplers.rolling import RollingSampler


class Recorder(NoiseStream):
    """A seeded stream that also records every request."""

    def __init__(self):
        super().__init__("api", 0)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        return super().__call__(request)


def test_replay_checks_each_shape_exactly():
    replay = ReplayNoise([torch.zeros(1, 3, 16, 8, 4)])
    with pytest.raises(UserError, match=r"shape \(1, 3, 16, 8, 4\).*asks for \(1, 3, 16, 4, 8\)"):
        replay(NoiseRequest((1, 3, 16, 4, 8), chunk=0, step=0))  # an H/W swap has the right element count
    assert replay.used == 0


def test_replay_takes_differently_shaped_draws_and_reports_exhaustion_and_leftovers():
    draws = [torch.randn(1, 3, 2), torch.randn(1, 6, 2)]
    replay = ReplayNoise(draws)
    assert replay(NoiseRequest((1, 3, 2), chunk=0, step=0, window=0)) is draws[0]
    with pytest.raises(UserError, match="1 of 2 recorded draws used"):
        replay.assert_all_used()
    assert replay(NoiseRequest((1, 6, 2), chunk=1, step=0, window=1)) is draws[1]
    replay.assert_all_used()
    with pytest.raises(UserError, match="exhausted.*only 2 were recorded"):
        replay(NoiseRequest((1, 3, 2), chunk=2, step=0))
    stacked = ReplayNoise(torch.zeros(4, 1, 3, 2))  # a stacked tensor is read as 4 draws
    assert stacked.remaining == 4


def test_noise_requests_mean_the_same_in_both_samplers(tiny_model, tiny_text):
    """chunk = the chunk re-noised, step = the step it just finished, in the chunk-wise and the rolling loop."""
    stream = Recorder()
    noise = stream.initial((1, 9, 16, 8, 8))
    ChunkwiseSampler().sample(tiny_model, tiny_text, FifoPolicy(), noise, stream)
    assert [(r.chunk, r.step, r.window) for r in stream.requests] == [(c, i, None) for c in range(3) for i in range(3)]
    assert all(r.shape == (1, 3, 16, 8, 8) for r in stream.requests)

    stream = Recorder()
    noise = stream.initial((1, 18, 16, 8, 8))  # 6 chunks, 5 levels: windows 0..9
    RollingSampler().sample(tiny_model, tiny_text, RollingForcingSinkPolicy(), noise, stream)
    per_chunk = {}
    for r in stream.requests:
        per_chunk.setdefault(r.chunk, []).append(r.step)
        assert r.shape[1] == 3 * (min(r.window, 5) - max(0, r.window - 4) + 1)  # the window's frames
    assert per_chunk == {c: [0, 1, 2, 3] for c in range(6)}  # each chunk re-noised after steps 0-3 of 5


def test_observer_reports_every_call_with_positions_and_attended_keys(tiny_model, tiny_text):
    def stream_and_noise():
        stream = NoiseStream("api", 0)
        return stream, stream.initial((1, 30, 16, 8, 8))

    calls = []
    plain = ChunkwiseSampler().sample(tiny_model, tiny_text, FifoPolicy(FifoConfig(21)), *reversed(stream_and_noise()))
    stream, noise = stream_and_noise()
    out = ChunkwiseSampler().sample(
        tiny_model, tiny_text, FifoPolicy(FifoConfig(21)), noise, stream, observer=calls.append
    )
    assert torch.equal(out.latents, plain.latents)  # observing changes nothing
    assert len(calls) == 10 * 5 and [c.call for c in calls] == list(range(50))
    last = calls[-1]
    assert last.is_context_pass and last.index == 9 and last.start_frame == 27
    assert torch.equal(last.timesteps, torch.zeros(3)) and torch.equal(last.query_positions, torch.arange(27, 30))
    assert torch.equal(calls[-5].timesteps, torch.full((3,), 1000.0))
    assert torch.equal(calls[-2].x0, last.x0) and torch.equal(calls[-2].x0, out.latents[:, 27:30])
    assert len(last.attended) == tiny_model.cfg.num_layers
    frames = last.attended[0].frames.unique_consecutive()
    assert torch.equal(frames, torch.arange(9, 30))  # FIFO: the last 21 frames, chunk included
    assert torch.equal(last.attended[1].positions.unique_consecutive(), torch.arange(9, 30))  # absolute positions


def test_observer_in_the_rolling_sampler(tiny_model, tiny_text):
    stream = NoiseStream("api", 0)
    noise = stream.initial((1, 18, 16, 8, 8))
    calls = []
    RollingSampler().sample(tiny_model, tiny_text, RollingForcingSinkPolicy(), noise, stream, observer=calls.append)
    assert len(calls) == 2 * 10  # a denoising and a re-encode call per window
    full = [c for c in calls if not c.is_context_pass and c.index == 6]  # window 6: chunks 2-5 (tail of 6 chunks)
    (call,) = full
    assert call.start_frame == 6 and call.num_frames == 12
    positions = call.attended[0].positions.unique_consecutive()
    assert torch.equal(positions, torch.arange(0, 18))  # [sink @0-2 | chunk 1 @3-5 | window @6-17], contiguous
    assert call.timesteps.shape == (12,)


def test_no_observer_records_nothing(tiny_model, tiny_text):
    from deepforcing.cache import KVCache

    seen = []
    original = KVCache._record

    def spy(self, layer_idx, layer):
        seen.append(layer_idx)
        return original(self, layer_idx, layer)

    KVCache._record = spy
    try:
        stream = NoiseStream("api", 0)
        ChunkwiseSampler().sample(tiny_model, tiny_text, FifoPolicy(), stream.initial((1, 6, 16, 8, 8)), stream)
    finally:
        KVCache._record = original
    assert seen == []

"""Prompt switches in the chunk-wise sampler: every mode where a policy defines it, clear refusals elsewhere."""

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.noise import NoiseStream
from deepforcing.policies.deep_sink import DeepSinkConfig, DeepSinkPolicy
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.policies.infinity_rope import InfinityRopePolicy
from deepforcing.policies.participative_compression import ParticipativeCompressionPolicy
from deepforcing.policies.rolling_forcing_sink import RollingForcingSinkPolicy
from deepforcing.policies.rolling_sink import RollingSinkPolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler
from deepforcing.samplers.rolling import RollingSampler
from deepforcing.samplers.switching import TextSegment

TPF = 16


@pytest.fixture
def two_texts(tiny_model):
    g = torch.Generator().manual_seed(11)
    return [tiny_model.encode_text(torch.randn(1, 12, tiny_model.cfg.text_dim, generator=g)) for _ in range(2)]


def _run(model, texts, policy, switch, frames=36, at=18, observer=None):
    stream = NoiseStream("switch", 0)
    noise = stream.initial((1, frames, 16, 8, 8))
    segments = [TextSegment(0, texts[0]), TextSegment(at, texts[1], switch)]
    return ChunkwiseSampler().sample(model, segments, policy, noise, stream, observer=observer)


def _cache_after_switch(model, texts, policy, switch):
    """Layer 0's source frames right after the switch (before the new chunk is written)."""
    seen = {}
    inner = policy.before_chunk

    def before_chunk(kv, chunk):
        if chunk.start_frame == 18:
            layer = kv.layers[0]
            seen["frames"] = layer.frames[: layer.length : TPF].tolist()
        inner(kv, chunk)

    policy.before_chunk = before_chunk
    _run(model, texts, policy, switch)
    return seen["frames"]


def test_keep_changes_only_the_text(tiny_model, two_texts):
    a = _run(tiny_model, two_texts, FifoPolicy(), "keep").latents
    single = _run(tiny_model, [two_texts[0], two_texts[0]], FifoPolicy(), "keep").latents
    assert torch.equal(a[:, :18], single[:, :18]) and not torch.allclose(a[:, 18:], single[:, 18:])
    assert _cache_after_switch(tiny_model, two_texts, FifoPolicy(), "keep") == list(range(18))


def test_flush_keeps_the_sink_and_the_last_two_frames_flush_paper_the_last_one(tiny_model, two_texts):
    policy = FifoPolicy(FifoConfig(window_frames=21, sink_frames=3))
    assert _cache_after_switch(tiny_model, two_texts, policy, "flush") == [0, 1, 2, 16, 17]
    policy = DeepSinkPolicy(DeepSinkConfig(window_frames=21, sink_frames=10))
    assert _cache_after_switch(tiny_model, two_texts, policy, "flush-paper") == list(range(10)) + [17]
    assert _cache_after_switch(tiny_model, two_texts, FifoPolicy(), "flush") == [16, 17]  # no sink


def test_recache_recomputes_the_non_sink_frames_under_the_new_prompt(tiny_model, two_texts):
    calls = []
    policy = FifoPolicy(FifoConfig(window_frames=12, sink_frames=3))  # LongLive's geometry
    _run(tiny_model, two_texts, policy, "recache", observer=calls.append)
    recache = [c for c in calls if c.is_context_pass and c.num_frames == 9]
    (call,) = recache  # one extra pass: the 9 frames after the sink, at their own positions, at t = 0
    assert call.start_frame == 9 and call.query_positions.tolist() == list(range(9, 18))
    assert torch.equal(call.timesteps, torch.zeros(9))
    assert call.attended[0].frames.unique_consecutive().tolist() == [0, 1, 2, *range(9, 18)]  # sink + themselves
    keep = _run(tiny_model, two_texts, FifoPolicy(FifoConfig(window_frames=12, sink_frames=3)), "keep").latents
    recached = _run(tiny_model, two_texts, FifoPolicy(FifoConfig(window_frames=12, sink_frames=3)), "recache").latents
    assert torch.equal(keep[:, :18], recached[:, :18]) and not torch.allclose(keep[:, 18:], recached[:, 18:])


@pytest.mark.parametrize(
    ("policy", "mode", "match"),
    [
        (FifoPolicy(), "cut", "not defined for cache policy 'fifo'"),
        (ParticipativeCompressionPolicy(), "recache", "not defined"),
        (RollingSinkPolicy(), "flush", "not defined for cache policy 'rolling-sink'"),
    ],
)
def test_modes_a_policy_does_not_define_are_refused_before_any_compute(tiny_model, two_texts, policy, mode, match):
    calls = []
    with pytest.raises(UserError, match=match):
        _run(tiny_model, two_texts, policy, mode, observer=calls.append)
    assert calls == []


def test_infinity_rope_defines_every_mode(tiny_model, two_texts):
    outs = {}
    for mode in ("keep", "flush", "flush-paper", "cut", "recache"):
        outs[mode] = _run(tiny_model, two_texts, InfinityRopePolicy(), mode).latents
    assert torch.equal(outs["keep"], outs["flush"])  # the code's flush = what the next eviction leaves
    for mode in ("flush-paper", "cut", "recache"):
        assert torch.equal(outs[mode][:, :18], outs["keep"][:, :18])
        assert not torch.allclose(outs[mode][:, 18:21], outs["keep"][:, 18:21])


def test_segments_must_start_on_chunk_boundaries_and_the_rolling_sampler_takes_one_prompt(tiny_model, two_texts):
    with pytest.raises(UserError, match="chunk boundaries.*; segment 2: unknown switch mode 'swap'"):
        stream = NoiseStream("switch", 0)
        segments = [TextSegment(0, two_texts[0]), TextSegment(10, two_texts[1]), TextSegment(12, two_texts[0], "swap")]
        ChunkwiseSampler().sample(tiny_model, segments, FifoPolicy(), stream.initial((1, 18, 16, 8, 8)), stream)
    with pytest.raises(UserError, match="rolling sampler .* takes one prompt"):
        stream = NoiseStream("switch", 0)
        segments = [TextSegment(0, two_texts[0]), TextSegment(15, two_texts[1])]
        RollingSampler().sample(
            tiny_model, segments, RollingForcingSinkPolicy(), stream.initial((1, 30, 16, 8, 8)), stream
        )


def test_the_torch_free_switch_table_matches_every_policy_class():
    from deepforcing import policies

    for name in policies.available():
        assert policies.SWITCH_MODES[name] == policies.REGISTRY.resolve(name)[0].switch_modes, name

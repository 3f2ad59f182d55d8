"""LoL (arXiv 2601.16914v1), implemented from the paper (no reference code): what the paper states, checked."""

import torch

from deepforcing.model.rope import RotaryEmbedding
from deepforcing.noise import NoiseStream
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.policies.lol import HeadJitteredRope, LolConfig, LolPolicy, head_bases
from deepforcing.samplers.chunkwise import ChunkwiseSampler


def test_bases_are_seeded_per_layer_and_head_in_the_stated_range():
    bases = head_bases(30, 12, sigma=0.8, seed=0)
    assert bases.shape == (30, 12) and bool(((bases >= 2000) & (bases <= 18000)).all())  # 10000 (1 ± 0.8)
    assert torch.equal(bases, head_bases(30, 12, sigma=0.8, seed=0))  # seeded
    assert not torch.equal(bases, head_bases(30, 12, sigma=0.8, seed=1))
    assert len(torch.unique(bases)) == 360  # every (layer, head) its own
    assert bases.min() < 4000 and bases.max() > 16000  # the draws span the range
    assert torch.equal(head_bases(4, 2, sigma=0.0, seed=5), torch.full((4, 2), 10000.0, dtype=torch.float64))


def test_zero_jitter_is_the_engine_plain_rope_bitwise():
    torch.manual_seed(0)
    x = torch.randn(1, 3 * 16, 2, 32)
    plain = RotaryEmbedding(32).apply(x, torch.tensor([5, 6, 7]), 4, 4)
    jittered = HeadJitteredRope(32, torch.full((2,), 10000.0, dtype=torch.float64)).apply(
        x, torch.tensor([5, 6, 7]), 4, 4
    )
    assert torch.equal(plain, jittered)


def test_zero_jitter_generates_exactly_what_the_plain_window_does(tiny_model, tiny_text):
    def run(policy):
        stream = NoiseStream("lol", 0)
        return ChunkwiseSampler().sample(tiny_model, tiny_text, policy, stream.initial((1, 24, 16, 8, 8)), stream)

    lol = run(LolPolicy(LolConfig(sigma=0.0))).latents
    plain = run(FifoPolicy(FifoConfig(window_frames=12, sink_frames=3))).latents
    assert torch.equal(lol, plain)
    assert not torch.allclose(run(LolPolicy()).latents[:, 3:], plain[:, 3:])  # sigma 0.8 changes the video


def test_each_head_keeps_relative_positions_and_its_own_speed():
    """Q and K of a head share its base: logits depend on the distance only; heads rotate at different rates."""
    rope = HeadJitteredRope(32, torch.tensor([2000.0, 18000.0], dtype=torch.float64))
    torch.manual_seed(1)
    q, k = torch.randn(2, 1, 1, 2, 32, dtype=torch.float64)

    def logits(pq, pk):
        return (rope.apply_temporal(q, torch.tensor([pq])) * rope.apply_temporal(k, torch.tensor([pk]))).sum(-1)

    torch.testing.assert_close(logits(500, 480), logits(20, 0), rtol=0, atol=1e-9)  # per head, relative
    phases = rope.temporal_phases(torch.tensor([1]))[0]  # [H, pairs]
    assert torch.allclose(phases[:, 0], phases[0, 0]) and not torch.allclose(phases[0, 1:], phases[1, 1:])
    x = torch.randn(1, 16, 2, 32)
    t = rope.temporal_channels
    assert torch.equal(rope.apply_temporal(x, torch.full((16,), 77))[..., t:], x[..., t:])  # spatial untouched

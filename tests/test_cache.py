import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.noise import NoiseStream
from deepforcing.policies.fifo import FifoConfig, FifoPolicy
from deepforcing.samplers.chunkwise import ChunkwiseSampler


class Recorder(FifoPolicy):
    """FIFO policy that snapshots layer 0's token table after every chunk."""

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.snapshots = []
        self.bytes = []

    def after_chunk(self, kv, chunk):
        layer = kv.layers[0]
        self.snapshots.append((layer.frames[: layer.length].clone(), layer.positions[: layer.length].clone()))
        self.bytes.append(kv.memory_bytes())


def _rollout(model, text, policy, frames):
    stream = NoiseStream("cache-test", 0)
    noise = stream.initial((1, frames, 16, 8, 8))
    return ChunkwiseSampler().sample(model, text, policy, noise, stream)


def test_fifo_keeps_exactly_the_last_21_frames_with_absolute_positions(tiny_model, tiny_text):
    policy = Recorder(FifoConfig(window_frames=21))
    _rollout(tiny_model, tiny_text, policy, 48)
    tpf = 16
    for c, (frames, positions) in enumerate(policy.snapshots):
        end = 3 * (c + 1)
        expected = torch.arange(max(0, end - 21), end).repeat_interleave(tpf)
        assert torch.equal(frames, expected), c
        assert torch.equal(positions, expected), c  # Self-Forcing keeps absolute temporal positions


def test_fifo_with_static_sink(tiny_model, tiny_text):
    policy = Recorder(FifoConfig(window_frames=12, sink_frames=3))
    _rollout(tiny_model, tiny_text, policy, 30)
    frames, _ = policy.snapshots[-1]
    expected = torch.cat([torch.arange(0, 3), torch.arange(21, 30)]).repeat_interleave(16)
    assert torch.equal(frames, expected)


def test_cache_memory_is_constant_over_120_latent_frames(tiny_model, tiny_text):
    policy = Recorder(FifoConfig(window_frames=21))
    result = _rollout(tiny_model, tiny_text, policy, 120)
    assert len(set(policy.bytes)) == 1
    cfg = tiny_model.cfg
    assert policy.bytes[0] == result.kv_cache_bytes
    # K, rotated-K and V buffers of 21 frames per layer (float32) + two int64 token tables
    expected = cfg.num_layers * (3 * 21 * 16 * cfg.dim * 4 + 2 * 21 * 16 * 8)
    assert result.kv_cache_bytes == expected
    assert [c.attended_frames for c in result.chunks][-1] == 21


def test_keep_and_evict_move_the_token_table(tiny_model):
    cfg = tiny_model.cfg
    kv = KVCache(1, 1, 10, cfg.num_heads, cfg.head_dim, 2, tiny_model.rope, torch.float32, "cpu")
    layer = kv.layers[0]
    for c in range(3):
        kv.begin_chunk(ChunkState(c, c, 1, torch.tensor([c])))
        k = torch.full((1, 2, cfg.num_heads, cfg.head_dim), float(c))
        layer.write_pending(k, k, kv._token_positions, kv._token_frames)
        kv.end_chunk()
    assert layer.frames[:6].tolist() == [0, 0, 1, 1, 2, 2]
    layer.evict(0, 2)
    assert layer.frames[:4].tolist() == [1, 1, 2, 2] and layer.k[0, 0, 0, 0] == 1.0
    layer.keep(torch.tensor([1, 3]))
    assert layer.frames[:2].tolist() == [1, 2] and layer.length == 2


def test_rotated_keys_always_match_the_stored_positions(tiny_model, tiny_text, monkeypatch):
    """k_rot is a per-slot memo: after every update it equals the keys rotated to the positions stored now.

    Runs policies that move tokens in time every chunk (Deep Sink re-alignment, Top-C compression with
    keep()) and every pass (Rolling Forcing's sink).
    """
    from deepforcing.policies.participative_compression import ParticipativeCompressionPolicy
    from deepforcing.policies.rolling_forcing_sink import RollingForcingSinkPolicy
    from deepforcing.samplers.rolling import RollingSampler

    rope = tiny_model.rope
    checked = []
    original = KVCache.update

    def checked_update(self, layer_idx, q, k, v, phases=None):
        out = original(self, layer_idx, q, k, v, phases)
        layer = self.layers[layer_idx]
        n = layer.valid
        expected = rope.apply_temporal(layer.k[:, :n], layer.positions[:n])
        torch.testing.assert_close(layer.k_rot[:, :n], expected, rtol=0, atol=1e-6)
        checked.append(n)
        return out

    monkeypatch.setattr(KVCache, "update", checked_update)
    _rollout(tiny_model, tiny_text, ParticipativeCompressionPolicy(), 36)
    stream = NoiseStream("cache-test", 0)
    RollingSampler().sample(
        tiny_model, tiny_text, RollingForcingSinkPolicy(), stream.initial((1, 36, 16, 8, 8)), stream
    )
    assert len(checked) > 100


def test_a_hook_moving_the_chunk_in_time_is_undone_at_the_next_pass(tiny_model):
    """Positions of pending tokens are rewritten from the chunk on every pass once a hook has moved them."""
    cfg = tiny_model.cfg
    rope = tiny_model.rope
    kv = KVCache(1, 1, 8, cfg.num_heads, cfg.head_dim, 4, rope, torch.float32, "cpu")
    layer = kv.layers[0]
    kv.begin_chunk(ChunkState(0, 0, 1, torch.tensor([5])))
    k = torch.randn(1, 4, cfg.num_heads, cfg.head_dim)
    q = torch.zeros_like(k)
    phases = rope.phases([5], 2, 2, "cpu")
    kv.begin_pass(0, is_context_pass=False)
    kv.update(0, q, k, k, phases)
    layer.set_positions(0, torch.full((4,), 9))  # a policy moves the in-flight chunk for this pass only
    rotated, _ = kv.update(0, q, k, k, phases)  # the next pass
    assert layer.positions[:4].tolist() == [5, 5, 5, 5]
    assert torch.equal(rotated, rope.apply(k, [5], 2, 2))

import pytest
import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.noise import NoiseStream
from deepforcing.policies.deep_sink import DeepSinkConfig, DeepSinkPolicy
from deepforcing.policies.participative_compression import (
    ParticipativeCompressionConfig,
    ParticipativeCompressionPolicy,
)
from deepforcing.samplers.chunkwise import ChunkwiseSampler

TPF = 16  # tokens per latent frame of the tiny preset


def _attach_recorder(policy):
    """Record layer 0's token table after every chunk (wraps after_chunk)."""
    snapshots, sizes = [], []
    inner = policy.after_chunk

    def after_chunk(kv, chunk):
        inner(kv, chunk)
        layer = kv.layers[0]
        snapshots.append((layer.frames[: layer.length].clone(), layer.positions[: layer.length].clone()))
        sizes.append(kv.memory_bytes())

    policy.after_chunk = after_chunk
    return snapshots, sizes


def _rollout(model, text, policy, frames):
    stream = NoiseStream("policy-test", 0)
    noise = stream.initial((1, frames, 16, 8, 8))
    return ChunkwiseSampler().sample(model, text, policy, noise, stream)


def test_deep_sink_released_placement(tiny_model, tiny_text):
    policy = DeepSinkPolicy(DeepSinkConfig(window_frames=21, sink_frames=10))
    snaps, _ = _attach_recorder(policy)
    _rollout(tiny_model, tiny_text, policy, 36)
    for c, (frames, positions) in enumerate(snaps):
        end = 3 * (c + 1)
        sink = min(10, end)
        assert torch.equal(frames[: sink * TPF], torch.arange(sink).repeat_interleave(TPF))  # sink never evicted
        tail = frames[10 * TPF :]
        assert torch.equal(tail, torch.arange(min(end, max(10, end - 11)), end).repeat_interleave(TPF))
        assert torch.equal(positions[10 * TPF :], tail)  # the tail keeps absolute positions
        if end > 21:  # rolled: the sink starts at cs - 21 (one-chunk gap before the tail)
            cs = end - 3
            assert torch.equal(positions[: 10 * TPF], torch.arange(cs - 21, cs - 11).repeat_interleave(TPF))
        else:
            assert torch.equal(positions, frames)
    assert policy.sink_starts == [(7, 0), (8, 3), (9, 6), (10, 9), (11, 12)]


def test_deep_sink_paper_placement_is_contiguous(tiny_model, tiny_text):
    policy = DeepSinkPolicy(DeepSinkConfig(window_frames=21, sink_frames=10, placement="paper"))
    snaps, _ = _attach_recorder(policy)
    _rollout(tiny_model, tiny_text, policy, 36)
    _, positions = snaps[-1]
    by_frame = positions[::TPF]
    assert torch.equal(by_frame, torch.arange(by_frame[0], by_frame[0] + 21))  # one contiguous run
    assert int(by_frame[-1]) == 35


def test_pc_cache_length_timeline_and_sink_positions(tiny_model, tiny_text):
    policy = ParticipativeCompressionPolicy()
    snaps, sizes = _attach_recorder(policy)
    _rollout(tiny_model, tiny_text, policy, 60)
    lengths = [len(f) // TPF for f, _ in snaps]
    assert lengths == [3, 6, 9, 12, 15, 18, 21] + [16, 19] * 6 + [16]
    layer0 = [h for h in policy.history if h.layer == 0]
    assert [h.chunk for h in layer0] == [7, 9, 11, 13, 15, 17, 19]
    assert [h.sink_start for h in layer0] == [5, 11, 17, 23, 29, 35, 41]  # cs - 16 at each compression
    for c, (frames, _) in enumerate(snaps):
        end = 3 * (c + 1)
        sink = min(10, end)
        assert torch.equal(frames[: sink * TPF], torch.arange(sink).repeat_interleave(TPF))  # sink never pruned
        recent = 4 if c >= 7 else 3
        assert torch.equal(frames[-recent * TPF :], torch.arange(end - recent, end).repeat_interleave(TPF))
        assert bool((frames[1:] >= frames[:-1]).all())  # temporal order kept
    assert len(set(sizes)) == 1


def test_pc_every_layer_compresses_independently(tiny_model, tiny_text):
    policy = ParticipativeCompressionPolicy()
    _rollout(tiny_model, tiny_text, policy, 27)
    by_layer = {h.layer: h for h in policy.history}
    assert set(by_layer) == {0, 1}
    assert all(h.selected_frames.numel() == 2 * TPF for h in by_layer.values())  # C = 16 - 10 - 4 = 2 frames


def _hand_built_layer(scores_for_frames, tiny_model, tpf=2):
    """A 1-layer cache whose keys are chosen so that φ_j equals a chosen number per token."""
    cfg = tiny_model.cfg
    kv = KVCache(1, 1, 64, cfg.num_heads, cfg.head_dim, tpf, tiny_model.rope, torch.float64, "cpu")
    layer = kv.layers[0]
    n = len(scores_for_frames)
    for f in range(n):
        kv.begin_chunk(ChunkState(f, f, 1, torch.tensor([0])))  # all at position 0: rotation is the identity
        k = torch.zeros(1, tpf, cfg.num_heads, cfg.head_dim, dtype=torch.float64)
        k[0, :, 0, 0] = torch.tensor(scores_for_frames[f], dtype=torch.float64)
        layer.write_pending(k, k.clone(), kv._token_positions, kv._token_frames)
        kv.end_chunk()
    return kv, layer


def test_topc_picks_the_highest_scoring_tokens(tiny_model):
    cfg = ParticipativeCompressionConfig(window_frames=8, sink_frames=1, budget_frames=5, recent_frames=2)
    # per frame two tokens with chosen scores; frame 0 = sink, frames 6-7 = recent
    scores = [[9, 9], [1, 7], [3, 2], [8, 0], [5, 6], [4, 1], [0, 0], [0, 0]]
    kv, layer = _hand_built_layer(scores, tiny_model)
    policy = ParticipativeCompressionPolicy(cfg)
    policy._kv = kv
    q = torch.zeros(1, 4, kv.layers[0].k.shape[2], kv.layers[0].k.shape[3], dtype=torch.float64)
    q[0, :, 0, 0] = 1.0  # q·k = the chosen score (times the constant scale)
    phi = policy.scores(layer, q)
    assert torch.equal(torch.argsort(phi[2:12], descending=True)[:3], torch.tensor([4, 1, 7]))
    layer.length, layer.pending = 6 * 2, 2 * 2  # frames 6-7 play the in-flight chunk
    policy._compress_layer(0, layer, q, ChunkState(0, 6, 2, torch.tensor([0, 0])), tpf=2)
    # top-2 frames' worth (4 tokens) among candidates: scores 8 (f3), 7 (f1), 6 (f4), 5 (f4)
    assert layer.frames[: layer.valid].tolist() == [0, 0, 1, 3, 4, 4, 6, 6, 7, 7]


def test_reuse_cap_is_respected(tiny_model, tiny_text):
    cap = 2
    policy = ParticipativeCompressionPolicy(ParticipativeCompressionConfig(reuse_cap=cap))
    _rollout(tiny_model, tiny_text, policy, 90)
    uses = {}
    for h in policy.history:
        if h.layer == 0:
            for f in h.selected_frames.unique().tolist():
                uses[f] = uses.get(f, 0) + 1
    assert max(uses.values()) <= cap
    assert any(v == cap for v in uses.values())


def test_reuse_cap_changes_selection(tiny_model, tiny_text):
    a = _rollout(tiny_model, tiny_text, ParticipativeCompressionPolicy(), 60).latents
    b = _rollout(tiny_model, tiny_text, ParticipativeCompressionPolicy(ParticipativeCompressionConfig(reuse_cap=1)), 60)
    assert not torch.equal(a, b.latents)


def test_unified_topc_positions_are_contiguous(tiny_model, tiny_text):
    cfg = ParticipativeCompressionConfig(unify_topc_rope=True, sink_placement="paper")
    policy = ParticipativeCompressionPolicy(cfg)
    snaps, _ = _attach_recorder(policy)
    _rollout(tiny_model, tiny_text, policy, 27)
    _, positions = snaps[7]  # right after the first compression (chunk 7)
    by_frame = positions[::TPF]
    assert torch.equal(by_frame, torch.arange(by_frame[0], by_frame[0] + 16))
    assert int(by_frame[-1]) == 23


def test_memory_constant_over_240_frames(tiny_model, tiny_text):
    policy = ParticipativeCompressionPolicy()
    _, sizes = _attach_recorder(policy)
    result = _rollout(tiny_model, tiny_text, policy, 240)
    assert len(set(sizes)) == 1 and sizes[0] == result.kv_cache_bytes
    # frames attended by the chunk's last passes: 16 right after a compression, 19 on the chunk after
    assert [c.attended_frames for c in result.chunks][6:11] == [21, 16, 19, 16, 19]


@pytest.mark.parametrize("bad", [dict(sink_frames=10, recent_frames=7), dict(query_source="all"), dict(reuse_cap=0)])
def test_bad_pc_config(bad):
    with pytest.raises(ValueError):
        ParticipativeCompressionConfig(**bad)


# ------------------------------------------------------------------------------- Rolling Forcing's sink
def _rolling(model, text, sink_frames, frames=45):
    from deepforcing.policies.rolling_forcing_sink import RollingForcingSinkConfig, RollingForcingSinkPolicy
    from deepforcing.samplers.rolling import RollingSampler

    stream = NoiseStream("policy-test", 0)
    policy = RollingForcingSinkPolicy(RollingForcingSinkConfig(sink_frames=sink_frames))
    noise = stream.initial((1, frames, 16, 8, 8))
    return RollingSampler().sample(model, text, policy, noise, stream), policy


@pytest.mark.parametrize("sink", [1, 3, 4, 6])
def test_rolling_forcing_sink_sweep(tiny_model, tiny_text, sink):
    """Any sink that fits the attention span with a whole window works (issue 13: sink 6 used to crash)."""
    out, policy = _rolling(tiny_model, tiny_text, sink)
    assert torch.isfinite(out.latents).all()
    windows = [p for p in policy.history if not p.is_context_pass and p.window >= 5]
    for p in windows:  # committed frames before window w >= 5: chunks 0 .. w-5, capped at the 24-frame cache
        committed = min(3 * (p.window - 4), 24)
        assert p.sink_frames == min(sink, committed)
        assert p.sink_frames + p.working_frames + (min(p.window, 14) - (p.window - 4) + 1) * 3 <= 21
        assert p.sink_start + p.sink_frames + p.working_frames == 3 * (p.window - 4)  # contiguous before the window
    assert max(c.attended_frames for c in out.chunks) <= 21


def test_rolling_forcing_sink_too_long_for_the_window_is_a_user_error(tiny_model, tiny_text):
    from deepforcing.errors import UserError

    with pytest.raises(UserError, match="sink_frames <= 6"):
        _rolling(tiny_model, tiny_text, 7)
    with pytest.raises(ValueError, match="sink_frames < attention_frames"):  # the config itself refuses it
        _rolling(tiny_model, tiny_text, 21)
    from deepforcing import methods

    with pytest.raises(UserError, match="sink_frames < attention_frames"):  # as a method override: a UserError
        methods.get("rolling-forcing").with_overrides(sink_frames=21)


def test_existing_method_hashes_survive_the_rename():
    """Renaming Rolling Forcing's policy must not orphan a unit: its preset hashes as before the rename."""
    from deepforcing import methods

    pinned = {  # measured before the rename (commit 11558d2)
        "rolling-forcing": "80a73b6d9c33",
        "self-forcing": "039560aec0f0",
        "deep-forcing": "4202bb11981b",
        "deep-forcing-ds": "f76b415db4ef",
        "self-forcing-full": "3f1c204e0aae",
        "sink-longlive": "908ea523edf2",
        "sink-rolling": "bfb2bfb53a31",
    }
    assert {name: methods.get(name).config_hash for name in pinned} == pinned
    assert methods.get("rolling-forcing").policy == "rolling-forcing-sink"


def test_a_preset_with_the_old_rolling_forcing_sink_name_gets_a_clear_error():
    from deepforcing.errors import UserError
    from deepforcing.methods import _build

    old = {"name": "mine", "sampler": "rolling", "policy": "rolling-sink", "policy_config": {"sink_frames": 3}}
    with pytest.raises(UserError, match="policy: rolling-forcing-sink"):
        _build(old, "mine.yaml")
    assert (
        _build({**old, "policy": "rolling-forcing-sink"}, "mine.yaml").config_hash
        == _build({**old, "policy": "rolling-forcing-sink", "policy_config": {}}, "x").config_hash
    )


def test_rolling_sink_cache_timeline(tiny_model, tiny_text):
    """The cache after chunks 6, 7, 8 and 14 is the one docs/methods.md draws (frames @ positions)."""
    from deepforcing.policies.rolling_sink import RollingSinkPolicy

    policy = RollingSinkPolicy()
    snapshots, sizes = _attach_recorder(policy)
    _rollout(tiny_model, tiny_text, policy, 45)

    def table(chunk):
        frames, positions = snapshots[chunk]
        return list(zip(frames[::TPF].tolist(), positions[::TPF].tolist(), strict=True))

    assert table(6) == [(f, f) for f in range(21)]
    assert table(7) == [(f, f) for f in range(3, 18)] + [(17, 18), (16, 19), (15, 20)] + [(f, f) for f in (21, 22, 23)]
    assert table(8)[-9:] == [(17, 18), (16, 19), (15, 20), (14, 21), (13, 22), (12, 23), (24, 24), (25, 25), (26, 26)]
    assert table(14) == [(17 - p % 18 if p < 36 else p % 18, p) for p in range(24, 42)] + [(f, f) for f in (42, 43, 44)]
    assert len(set(sizes)) == 1  # constant memory (cache + source bank)

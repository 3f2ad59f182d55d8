import math

import pytest
import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.model.rope import RotaryEmbedding, rope_pair_split

#: Temporal positions the rotation is pinned at: the start, both sides of Wan's 1024-row table, and the last
#: latent frame of an hour of video at Wan's 4 latent frames per second.
FAR_POSITIONS = [0, 1023, 1024, 14399]


def _wan_params(positions, dim):
    """Wan's ``rope_params`` rows for arbitrary positions: polar(1, p · θ^(-2k/dim)) in float64."""
    inv = 1.0 / torch.pow(10000, torch.arange(0, dim, 2).to(torch.float64).div(dim))
    ang = torch.outer(torch.as_tensor(positions), inv)
    return torch.polar(torch.ones_like(ang), ang)


def reference_rope(x, frame_positions, h, w, head_dim):
    """Wan's ``rope_apply`` written out: one complex128 table over all pairs, one multiply, cast back."""
    c = head_dim // 2
    ct, ch, cw = c - 2 * (c // 3), c // 3, c // 3
    f = len(frame_positions)
    ft, fh, fw = _wan_params(frame_positions, 2 * ct), _wan_params(range(h), 2 * ch), _wan_params(range(w), 2 * cw)
    table = torch.cat(
        [
            ft.view(f, 1, 1, -1).expand(f, h, w, -1),
            fh.view(1, h, 1, -1).expand(f, h, w, -1),
            fw.view(1, 1, w, -1).expand(f, h, w, -1),
        ],
        dim=-1,
    ).reshape(f * h * w, 1, -1)
    b, L, n, d = x.shape
    xc = torch.view_as_complex(x.to(torch.float64).reshape(b, L, n, -1, 2))
    return torch.view_as_real(xc * table).flatten(3).type_as(x)


def math_rope(x, frame_positions, h, w, head_dim):
    """The same rotation from the formula with Python's math module (independent of torch's kernels), float64."""
    pt, ph, pw = rope_pair_split(head_dim)
    out = torch.empty(x.shape, dtype=torch.float64)
    xd = x.to(torch.float64)
    token = 0
    for p in frame_positions:
        for i in range(h):
            for j in range(w):
                angles = [p * (1.0 / 10000 ** (2 * k / (2 * pt))) for k in range(pt)]
                angles += [i * (1.0 / 10000 ** (2 * k / (2 * ph))) for k in range(ph)]
                angles += [j * (1.0 / 10000 ** (2 * k / (2 * pw))) for k in range(pw)]
                cos = torch.tensor([math.cos(a) for a in angles], dtype=torch.float64)
                sin = torch.tensor([math.sin(a) for a in angles], dtype=torch.float64)
                a, b = xd[:, token, :, 0::2], xd[:, token, :, 1::2]
                out[:, token, :, 0::2] = a * cos - b * sin
                out[:, token, :, 1::2] = a * sin + b * cos
                token += 1
    return out


def test_pair_split_matches_wan():
    assert rope_pair_split(128) == (22, 21, 21)
    assert rope_pair_split(32) == (6, 5, 5)
    assert sum(rope_pair_split(96)) == 48


def test_full_rotation_is_bitwise_wans_formula():
    torch.manual_seed(0)
    rope = RotaryEmbedding(32)
    x = torch.randn(2, 3 * 4 * 5, 2, 32)
    ours = rope.apply(x, torch.arange(7, 10), 4, 5)
    assert torch.equal(ours, reference_rope(x, [7, 8, 9], 4, 5, 32))
    ours_bf16 = rope.apply(x.bfloat16(), torch.arange(7, 10), 4, 5)
    assert torch.equal(ours_bf16, reference_rope(x.bfloat16(), [7, 8, 9], 4, 5, 32))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_rotation_at_far_positions_is_the_float64_formula(dtype):
    """Memoised phase tables (grown past 1024 positions) give Wan's float64 formula bit for bit."""
    torch.manual_seed(3)
    rope = RotaryEmbedding(128)  # the real head dim: 22 temporal pairs
    h, w = 2, 3
    x = torch.randn(1, len(FAR_POSITIONS) * h * w, 2, 128).to(dtype)
    ours = rope.apply(x, torch.tensor(FAR_POSITIONS), h, w)
    assert torch.equal(ours, reference_rope(x, FAR_POSITIONS, h, w, 128))
    # and frame by frame, each position on its own (a table lookup does not depend on its neighbours)
    for f, p in enumerate(FAR_POSITIONS):
        one = slice(f * h * w, (f + 1) * h * w)
        assert torch.equal(rope.apply(x[:, one], torch.tensor([p]), h, w), ours[:, one])
    # Against the formula evaluated with Python's math module: equal up to the last bits of float64 (cos/sin
    # of libm vs torch, fused multiply-adds), i.e. far below float32's resolution even at position 14,399.
    exact = math_rope(x, FAR_POSITIONS, h, w, 128)
    if dtype == torch.float64:
        torch.testing.assert_close(ours, exact, rtol=0, atol=1e-13)
    else:
        torch.testing.assert_close(ours, exact.to(dtype), rtol=0, atol=0)


def test_temporal_phase_table_entries_equal_polar_of_the_position():
    rope = RotaryEmbedding(128)
    table = rope.temporal_phases(torch.tensor(FAR_POSITIONS))  # grows the memoised table to 15 x 1024 rows
    for row, p in zip(table, FAR_POSITIONS, strict=True):
        alone = torch.polar(torch.ones(rope.pairs_t, dtype=torch.float64), p * rope.inv_t)
        assert torch.equal(torch.view_as_real(row), torch.view_as_real(alone))
    negative = rope.temporal_phases(torch.tensor([-5, 3]))  # grows the table below 0
    assert torch.equal(negative, _wan_params([-5, 3], 44))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_keys_moved_in_time_equal_the_formula_at_the_new_position(dtype):
    """A key written at one position and re-positioned (Deep Sink) reads back as if encoded there directly."""
    torch.manual_seed(4)
    rope = RotaryEmbedding(128)
    h, w, tpf = 2, 3, 6
    kv = KVCache(1, 1, 4 * tpf, 2, 128, tpf, rope, dtype, "cpu")
    layer = kv.layers[0]
    keys = torch.randn(1, 4 * tpf, 2, 128).to(dtype)
    for c, p in enumerate(FAR_POSITIONS):
        kv.begin_chunk(ChunkState(c, c, 1, torch.tensor([p])))
        q = torch.zeros(1, tpf, 2, 128, dtype=dtype)
        chunk = keys[:, c * tpf : (c + 1) * tpf]
        rotated, _ = kv.update(0, q, chunk, chunk, rope.phases([p], h, w, "cpu"))
        assert torch.equal(rotated[:, -tpf:], reference_rope(chunk, [p], h, w, 128))
        kv.end_chunk()
    moved = [14399, 0, 1023, 1024]
    layer.set_positions(0, torch.tensor(moved).repeat_interleave(tpf))
    layer.refresh(rope)
    for c, p in enumerate(moved):
        chunk = keys[:, c * tpf : (c + 1) * tpf]
        assert torch.equal(layer.k_rot[:, c * tpf : (c + 1) * tpf], reference_rope(chunk, [p], h, w, 128))


def test_rotating_by_delta_equals_encoding_at_shifted_position():
    torch.manual_seed(1)
    rope = RotaryEmbedding(128)
    k = torch.randn(1, 16, 12, 128, dtype=torch.float64)
    p = torch.full((16,), 5)
    at_p = rope.apply_temporal(k, p)
    delta = 37
    phase = rope.temporal_phases(torch.tensor([delta]))  # exp(i w delta)
    t = rope.temporal_channels
    shifted = torch.view_as_real(
        torch.view_as_complex(at_p[..., :t].reshape(1, 16, 12, -1, 2)) * phase.view(1, 1, 1, -1)
    )
    shifted = torch.cat([shifted.flatten(3), at_p[..., t:]], dim=-1)
    torch.testing.assert_close(shifted, rope.apply_temporal(k, p + delta), rtol=0, atol=1e-12)
    # spatial channels are untouched by a temporal move
    assert torch.equal(rope.apply_temporal(k, p + delta)[..., t:], k[..., t:])


def test_relative_positions_only_matter_for_attention_logits():
    torch.manual_seed(2)
    rope = RotaryEmbedding(64)
    q = torch.randn(1, 1, 1, 64, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 64, dtype=torch.float64)

    def logit(pq, pk):
        return (rope.apply_temporal(q, torch.tensor([pq])) * rope.apply_temporal(k, torch.tensor([pk]))).sum()

    torch.testing.assert_close(logit(30, 20), logit(1010, 1000), rtol=0, atol=1e-10)
    assert not torch.allclose(logit(30, 20), logit(30, 21))


def test_positions_past_the_1024_table_are_exact_against_the_float64_formula():
    """Phases come from integer positions, not a 1024-row table: exact at 1,050 and at 14,400 (one hour)."""
    import math

    rope = RotaryEmbedding(128)
    positions = torch.tensor([0, 1023, 1024, 1049, 1050, 8191, 8192, 14399, 14400])
    phases = rope.temporal_phases(positions)  # complex128 [9, 22]
    dim = 2 * rope.pairs_t
    expected = torch.tensor(
        [
            [complex(math.cos(p * 10000 ** (-2 * i / dim)), math.sin(p * 10000 ** (-2 * i / dim))) for i in range(22)]
            for p in positions.tolist()
        ],
        dtype=torch.complex128,
    )
    assert (phases - expected).abs().max() < 1e-9
    # and a key rotated at p attends like one rotated at p - 14,000 would to a query moved alike (relative only)
    torch.manual_seed(3)
    q, k = torch.randn(2, 1, 1, 1, 128, dtype=torch.float64)

    def logit(pq, pk):
        return (rope.apply_temporal(q, torch.tensor([pq])) * rope.apply_temporal(k, torch.tensor([pk]))).sum()

    torch.testing.assert_close(logit(14400, 14390), logit(400, 390), rtol=0, atol=1e-9)

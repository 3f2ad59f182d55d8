import torch

from deepforcing.model.rope import RotaryEmbedding, rope_pair_split


def reference_rope(x, num_frames, h, w, start_frame, head_dim):
    """Direct single-stage construction (Wan's formula): one complex128 table over all pairs."""
    c = head_dim // 2
    ct, ch, cw = c - 2 * (c // 3), c // 3, c // 3

    def params(n, dim):
        inv = 1.0 / torch.pow(10000, torch.arange(0, dim, 2).to(torch.float64).div(dim))
        ang = torch.outer(torch.arange(n), inv)
        return torch.polar(torch.ones_like(ang), ang)

    ft, fh, fw = params(1024, 2 * ct), params(1024, 2 * ch), params(1024, 2 * cw)
    table = torch.cat(
        [
            ft[start_frame : start_frame + num_frames].view(num_frames, 1, 1, -1).expand(num_frames, h, w, -1),
            fh[:h].view(1, h, 1, -1).expand(num_frames, h, w, -1),
            fw[:w].view(1, 1, w, -1).expand(num_frames, h, w, -1),
        ],
        dim=-1,
    ).reshape(num_frames * h * w, 1, -1)
    b, L, n, d = x.shape
    xc = torch.view_as_complex(x.to(torch.float64).reshape(b, L, n, -1, 2))
    return torch.view_as_real(xc * table).flatten(3).type_as(x)


def test_pair_split_matches_wan():
    assert rope_pair_split(128) == (22, 21, 21)
    assert rope_pair_split(32) == (6, 5, 5)
    assert sum(rope_pair_split(96)) == 48


def test_two_stage_rotation_is_bitwise_the_single_stage_one():
    torch.manual_seed(0)
    rope = RotaryEmbedding(32)
    x = torch.randn(2, 3 * 4 * 5, 2, 32)
    ours = rope.apply(x, torch.arange(7, 10), 4, 5)
    assert torch.equal(ours, reference_rope(x, 3, 4, 5, 7, 32))
    ours_bf16 = rope.apply(x.bfloat16(), torch.arange(7, 10), 4, 5)
    assert torch.equal(ours_bf16, reference_rope(x.bfloat16(), 3, 4, 5, 7, 32))


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

import pytest
import torch

from deepforcing.cache import ChunkState, KVCache
from deepforcing.errors import UserError
from deepforcing.model.checkpoint import load_weights, read_state_dict, save_self_forcing_checkpoint
from deepforcing.model.config import TINY, WAN21_T2V_1_3B
from deepforcing.model.wan import CausalWanModel


def test_forward_shapes(tiny_model, tiny_text):
    x = torch.randn(1, 3, 16, 8, 8)
    out = tiny_model(x, torch.full((1, 3), 1000.0), tiny_text)
    assert out.shape == (1, 3, 16, 8, 8)
    assert torch.isfinite(out).all() and out.abs().max() > 0


def test_per_frame_timesteps_change_only_their_frame_modulation(tiny_model, tiny_text):
    x = torch.randn(1, 3, 16, 8, 8)
    a = tiny_model(x, torch.tensor([[1000.0, 1000.0, 1000.0]]), tiny_text)
    b = tiny_model(x, torch.tensor([[1000.0, 1000.0, 500.0]]), tiny_text)
    assert not torch.allclose(a, b)


def test_cached_first_chunk_equals_uncached_forward(tiny_model, tiny_text):
    cfg = tiny_model.cfg
    x = torch.randn(1, 3, 16, 8, 8)
    t = torch.full((1, 3), 937.5)
    kv = KVCache(cfg.num_layers, 1, 21 * 16, cfg.num_heads, cfg.head_dim, 16, tiny_model.rope, torch.float32, "cpu")
    kv.begin_chunk(ChunkState(0, 0, 3, torch.arange(3)))
    cached = tiny_model(x, t, tiny_text, kv)
    plain = tiny_model(x, t, tiny_text)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-6)


def test_real_preset_parameter_names_and_count():
    with torch.device("meta"):
        model = CausalWanModel(WAN21_T2V_1_3B)
    keys = set(model.state_dict())
    for k in (
        "patch_embedding.weight",
        "text_embedding.0.weight",
        "text_embedding.2.bias",
        "time_embedding.0.weight",
        "time_projection.1.weight",
        "blocks.0.self_attn.q.weight",
        "blocks.0.self_attn.norm_q.weight",
        "blocks.29.cross_attn.norm_k.weight",
        "blocks.0.norm3.weight",
        "blocks.0.norm3.bias",
        "blocks.0.ffn.0.weight",
        "blocks.0.ffn.2.bias",
        "blocks.0.modulation",
        "head.head.weight",
        "head.modulation",
    ):
        assert k in keys, k
    assert not any(k.startswith(("blocks.0.norm1", "blocks.0.norm2.")) for k in keys)  # non-affine norms
    n = sum(p.numel() for p in model.parameters())
    assert 1.40e9 < n < 1.45e9  # Wan2.1-T2V-1.3B has about 1.42 B parameters


def test_self_forcing_checkpoint_layout_loads_strictly(tmp_path, tiny_model):
    path = tmp_path / "self_forcing_dmd.pt"
    save_self_forcing_checkpoint(tiny_model, path)
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["generator_ema"]
    assert all(k.startswith("model.") for k in raw["generator_ema"])
    fresh = CausalWanModel(TINY)
    load_weights(fresh, read_state_dict(path))
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_fsdp_prefixes_and_safetensors(tmp_path, tiny_model):
    from safetensors.torch import save_file

    sd = {f"model._fsdp_wrapped_module.{k}": v.clone() for k, v in tiny_model.state_dict().items()}
    torch.save({"generator": sd}, tmp_path / "rf.pt")
    load_weights(CausalWanModel(TINY), read_state_dict(tmp_path / "rf.pt"))
    (tmp_path / "wan").mkdir()
    save_file(
        {k: v.contiguous() for k, v in tiny_model.state_dict().items()},
        tmp_path / "wan" / "diffusion_pytorch_model.safetensors",
    )
    load_weights(CausalWanModel(TINY), read_state_dict(tmp_path / "wan"))


def test_wrong_keys_are_named(tmp_path, tiny_model):
    sd = {f"model.{k}": v for k, v in tiny_model.state_dict().items()}
    sd.pop("model.head.modulation")
    sd["model.blocks.0.extra.weight"] = torch.zeros(1)
    torch.save({"generator_ema": sd}, tmp_path / "bad.pt")
    with pytest.raises(UserError) as err:
        load_weights(CausalWanModel(TINY), read_state_dict(tmp_path / "bad.pt"))
    msg = str(err.value)
    assert "head.modulation" in msg and "blocks.0.extra.weight" in msg and "1 missing" in msg


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_state_dict(tmp_path / "nope.pt")


def test_block_causal_forward_equals_chunkwise_cached_forward(tiny_model, tiny_text):
    """The training view (one call, block-causal mask) equals chunk-by-chunk generation over a full cache."""
    cfg = tiny_model.cfg
    x = torch.randn(1, 9, 16, 8, 8)
    t = torch.rand(1, 9) * 1000
    masked = tiny_model(x, t, tiny_text, causal_chunk_frames=3)
    kv = KVCache(cfg.num_layers, 1, 9 * 16, cfg.num_heads, cfg.head_dim, 16, tiny_model.rope, torch.float32, "cpu")
    outs = []
    for c in range(3):
        kv.begin_chunk(ChunkState(c, 3 * c, 3, torch.arange(3 * c, 3 * c + 3)))
        outs.append(tiny_model(x[:, 3 * c : 3 * c + 3], t[:, 3 * c : 3 * c + 3], tiny_text, kv))
        kv.end_chunk()
    torch.testing.assert_close(masked, torch.cat(outs, dim=1), rtol=0, atol=1e-5)
    assert not torch.allclose(masked, tiny_model(x, t, tiny_text), atol=1e-3)  # the mask matters

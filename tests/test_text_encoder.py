import math

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.model import tiny_assets
from deepforcing.model.text_encoder import (
    WAN_T5_TO_HF,
    UMT5TextEncoder,
    clean_prompt,
    hf_umt5_to_wan,
    umt5_config_from_wan,
    wan_t5_to_hf,
)

PROMPTS = [
    "a red circle bouncing on a dark green background",
    "A stylish woman walks down a Tokyo street filled with warm glowing neon and animated city signage.",
    "cat",
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_text")
    tiny_assets.save_tiny_text_encoder(root, seed=0)
    pth = tiny_assets.save_tiny_wan_t5_pth(root / "original" / "models_t5_umt5-xxl-enc-bf16.pth", seed=0)
    tok = tiny_assets.save_tiny_tokenizer(root / "original" / "google" / "umt5-xxl")
    return {"root": root, "pth": pth, "tokenizer": tok}


@pytest.fixture(scope="module")
def encoder(assets):
    return UMT5TextEncoder.from_diffusers(assets["root"], text_len=16)


def test_clean_prompt_like_wan():
    assert clean_prompt("  a\tcat \n\n on   a mat  ") == "a cat on a mat"
    assert clean_prompt("Tom &amp;amp; Jerry") == "Tom & Jerry"  # html-unescaped twice
    assert clean_prompt("schÃ¶n") == "schön"  # ftfy repairs mojibake
    assert clean_prompt("\u00a0x\u2003y\u3000") == "x y"  # unicode whitespace collapses


def test_tiny_files_load_with_auto_classes(assets):
    from transformers import AutoConfig, AutoTokenizer

    assert (assets["root"] / "text_encoder" / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(assets["root"] / "text_encoder").model_type == "umt5"
    tok = AutoTokenizer.from_pretrained(assets["root"] / "tokenizer")
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok("a cat")["input_ids"][-1] == 1  # </s> appended


def test_tiny_assets_are_deterministic(assets, tmp_path):
    tiny_assets.save_tiny_text_encoder(tmp_path, seed=0)
    for rel in [
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        "text_encoder/model.safetensors",
    ]:
        assert (tmp_path / rel).read_bytes() == (assets["root"] / rel).read_bytes(), rel


def test_tokenize_pads_truncates_and_appends_eos(encoder):
    ids, mask = encoder.tokenize(["a  cat", "word " * 40])
    assert ids.shape == mask.shape == (2, 16)
    n = int(mask[0].sum())
    assert n >= 2 and ids[0, n - 1] == 1  # </s> appended
    assert (ids[0, n:] == 0).all() and (mask[0, n:] == 0).all()  # <pad> = 0 up to text_len
    assert mask[1].all() and ids[1, -1] == 1  # truncated to text_len, </s> kept last
    # whitespace cleaning happens before tokenisation
    ids2, _ = encoder.tokenize(["a cat"])
    assert torch.equal(ids2[0], ids[0])
    with pytest.raises(UserError, match="list"):
        encoder.encode("a cat")


def test_encode_shape_and_zero_padding(encoder):
    out = encoder.encode(PROMPTS)
    assert out.shape == (3, 16, 32) and out.dtype == torch.float32
    _, mask = encoder.tokenize(PROMPTS)
    for b in range(3):
        n = int(mask[b].sum())
        assert torch.count_nonzero(out[b, n:]) == 0  # exactly zero past the real length
        assert (out[b, :n].abs().sum(-1) > 0).all()
    # batch position does not change an embedding (padding is masked out of attention)
    alone = encoder.encode([PROMPTS[2]])
    torch.testing.assert_close(alone[0], out[2], rtol=1e-5, atol=1e-5)


def test_bf16_dtype(assets):
    enc = UMT5TextEncoder.from_diffusers(assets["root"], text_len=16, dtype=torch.bfloat16)
    out = enc.encode(PROMPTS[:1])
    assert out.dtype == torch.bfloat16 and out.shape == (1, 16, 32)


# ----------------------------------------------------------------------------------------------------------
# Original Wan T5 format
# ----------------------------------------------------------------------------------------------------------


def test_key_conversion_round_trip():
    model = tiny_assets.build_tiny_umt5(vocab_size=50, seed=1)
    hf = model.state_dict()
    wan = hf_umt5_to_wan(hf)
    assert "token_embedding.weight" in wan and "norm.weight" in wan
    assert "blocks.1.pos_embedding.embedding.weight" in wan and "blocks.0.ffn.gate.0.weight" in wan
    assert len(wan) == 2 + 2 * (len(WAN_T5_TO_HF) - 2)  # 2 layers
    back = wan_t5_to_hf(wan)
    assert set(back) == set(hf)
    for k in hf:
        assert torch.equal(back[k], hf[k]), k
    cfg = umt5_config_from_wan(wan)
    assert (cfg.vocab_size, cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.d_kv, cfg.d_ff) == (
        50,
        32,
        2,
        4,
        8,
        64,
    )
    with pytest.raises(UserError, match="unexpected keys"):
        wan_t5_to_hf({**wan, "decoder.blocks.0.norm1.weight": torch.ones(1)})


def _wan_t5_reference(sd, ids, mask, num_heads, num_buckets=32, max_dist=128, eps=1e-6):
    """Independent fp32 re-implementation of Wan's T5Encoder forward (wan/modules/t5.py), in Wan key names."""
    x = sd["token_embedding.weight"][ids]  # [B, L, D]
    b, seq, _ = x.shape
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps))

    rel = torch.arange(seq)[None, :] - torch.arange(seq)[:, None]  # key - query
    half = num_buckets // 2
    bucket = (rel > 0).long() * half
    dist = rel.abs()
    exact = half // 2
    large = exact + (torch.log(dist.float().clamp(min=1) / exact) / math.log(max_dist / exact) * (half - exact)).long()
    bucket = bucket + torch.where(dist < exact, dist, large.clamp(max=half - 1))  # [L, L]
    neg = torch.finfo(torch.float32).min
    for i in range(layers):
        p = f"blocks.{i}."
        bias = sd[p + "pos_embedding.embedding.weight"][bucket].permute(2, 0, 1)[None]  # [1, H, L, L]
        bias = bias.expand(b, -1, -1, -1).masked_fill(mask[:, None, None, :] == 0, neg)
        h = rms(x, sd[p + "norm1.weight"])
        q, k, v = (h @ sd[p + f"attn.{n}.weight"].T for n in "qkv")
        q, k, v = (t.view(b, seq, num_heads, -1) for t in (q, k, v))
        attn = torch.softmax(torch.einsum("binc,bjnc->bnij", q, k) + bias, dim=-1)  # no 1/sqrt(d) in T5
        o = torch.einsum("bnij,bjnc->binc", attn, v).reshape(b, seq, -1)
        x = x + o @ sd[p + "attn.o.weight"].T
        h = rms(x, sd[p + "norm2.weight"])
        gate = torch.nn.functional.gelu(h @ sd[p + "ffn.gate.0.weight"].T, approximate="tanh")
        x = x + ((h @ sd[p + "ffn.fc1.weight"].T) * gate) @ sd[p + "ffn.fc2.weight"].T
    return rms(x, sd["norm.weight"])


def test_from_original_matches_wan_reference_forward(assets):
    enc = UMT5TextEncoder.from_original(assets["pth"], assets["tokenizer"], text_len=16)
    assert enc.text_dim == 32
    wan_sd = {k: v.float() for k, v in torch.load(assets["pth"], weights_only=True).items()}
    assert all(v.dtype == torch.bfloat16 for v in torch.load(assets["pth"], weights_only=True).values())
    ids, mask = enc.tokenize(PROMPTS)
    ref = _wan_t5_reference(wan_sd, ids, mask, num_heads=4)
    ref = ref.masked_fill(mask[..., None] == 0, 0.0)
    out = enc.encode(PROMPTS)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)  # measured max |diff| 1.1e-6


def test_from_original_equals_diffusers_layout_with_same_weights(assets, encoder):
    orig = UMT5TextEncoder.from_original(assets["pth"], assets["tokenizer"], text_len=16)
    # the .pth holds the tiny weights rounded to bf16; round the diffusers-layout copy the same way
    rounded = UMT5TextEncoder.from_diffusers(assets["root"], text_len=16)
    with torch.no_grad():
        for p in rounded.model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    torch.testing.assert_close(orig.encode(PROMPTS), rounded.encode(PROMPTS), rtol=0, atol=0)
    assert orig.model.encoder.embed_tokens.weight is orig.model.shared.weight


def test_loader_errors(assets, tmp_path):
    with pytest.raises(UserError, match="config.json"):
        UMT5TextEncoder.from_diffusers(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        UMT5TextEncoder.from_original(tmp_path / "missing.pth", assets["tokenizer"])
    with pytest.raises(UserError, match="tokenizer directory"):
        UMT5TextEncoder.from_original(assets["pth"], tmp_path / "no_tokenizer")

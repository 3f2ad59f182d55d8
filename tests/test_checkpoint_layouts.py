"""Every generator checkpoint layout of the weights registry loads strictly from random weights written exactly so."""

import pytest
import torch

from deepforcing import weights
from deepforcing.errors import UserError
from deepforcing.model.checkpoint import load_weights, read_state_dict
from deepforcing.model.config import TINY
from deepforcing.model.wan import CausalWanModel


def _random_state(seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in CausalWanModel(TINY).state_dict().items()}


def _fsdp(state):
    """Names as FSDP-wrapped Self-Forcing wrappers save them: model._fsdp_wrapped_module.<key>."""
    return {f"model._fsdp_wrapped_module.{k}": v for k, v in state.items()}


def _load(path, key):
    model = CausalWanModel(TINY)
    load_weights(model, read_state_dict(path, weights.get(key).state_key), source=str(path))
    return model.state_dict()


def test_infinite_forcing_ema_layout_loads_the_ema(tmp_path):
    """ema_model.pt: {'generator', 'critic', 'generator_ema'}; Infinity-RoPE loads 'generator_ema' (--use_ema)."""
    ema, raw = _random_state(1), _random_state(2)
    path = tmp_path / "ema_model.pt"
    torch.save({"generator": _fsdp(raw), "critic": {"x": torch.zeros(1)}, "generator_ema": _fsdp(ema)}, path)
    loaded = _load(path, "infinite-forcing-ema")
    assert all(torch.equal(loaded[k], ema[k]) for k in ema)


def test_causal_forcing_layout_loads_the_raw_generator_not_the_ema(tmp_path):
    """chunkwise/causal_forcing.pt is loaded without --use_ema: the 'generator' sub-dict, even when an EMA exists."""
    raw, ema = _random_state(3), _random_state(4)
    path = tmp_path / "causal_forcing.pt"
    torch.save({"generator": {f"model.{k}": v for k, v in raw.items()}, "generator_ema": _fsdp(ema)}, path)
    loaded = _load(path, "causal-forcing")
    assert all(torch.equal(loaded[k], raw[k]) for k in raw)


def test_a_checkpoint_without_the_registered_sub_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "causal_forcing.pt"
    torch.save({"generator_ema": _fsdp(_random_state(5))}, path)
    with pytest.raises(UserError, match="no 'generator' state dict.*generator_ema"):
        _load(path, "causal-forcing")


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = _fsdp(_random_state(6))
    state.pop("model._fsdp_wrapped_module.head.modulation")
    state["model._fsdp_wrapped_module.extra.weight"] = torch.zeros(1)
    path = tmp_path / "ema_model.pt"
    torch.save({"generator_ema": state}, path)
    with pytest.raises(UserError, match=r"1 missing \(head.modulation\); 1 unexpected \(extra.weight\)"):
        _load(path, "infinite-forcing-ema")


def test_every_generator_checkpoint_entry_states_its_layout():
    for key in ("self-forcing-dmd", "infinite-forcing-ema", "causal-forcing"):
        entry = weights.get(key)
        assert entry.layout and entry.state_key in ("generator", "generator_ema")


# ---------------------------------------------------------------------------------------------- LongLive
def _longlive_files(tmp_path, rank=256, wrap=True, drop=None, extra=None):
    """longlive_base.pt ({'generator': model.<key>}) and lora.pt (PEFT state dict, maybe under 'generator_lora')."""
    from deepforcing.model.lora import BLOCK_LINEARS

    base = _random_state(7)
    torch.save({"generator": {f"model.{k}": v for k, v in base.items()}}, tmp_path / "longlive_base.pt")
    g = torch.Generator().manual_seed(8)
    lora = {}
    for i in range(TINY.num_layers):
        for name in BLOCK_LINEARS:
            w = base[f"blocks.{i}.{name}.weight"]
            lora[f"base_model.model.blocks.{i}.{name}.lora_A.weight"] = 0.01 * torch.randn(
                rank, w.shape[1], generator=g
            )
            lora[f"base_model.model.blocks.{i}.{name}.lora_B.weight"] = 0.01 * torch.randn(
                w.shape[0], rank, generator=g
            )
    if drop:
        lora.pop(drop)
    lora.update(extra or {})
    torch.save({"generator_lora": lora} if wrap else lora, tmp_path / "lora.pt")
    return base, lora


def _load_longlive(tmp_path, model=None):
    from deepforcing.model.checkpoint import load_generator

    entry = weights.get("longlive")
    model = model or CausalWanModel(TINY)
    load_generator(
        model, tmp_path / "longlive_base.pt", entry.state_key, (tmp_path / "lora.pt", entry.lora_rank, entry.lora_alpha)
    )
    return model


@pytest.mark.parametrize("wrap", [True, False])
def test_longlive_lora_is_merged_exactly_in_float32(tmp_path, wrap):
    base, lora = _longlive_files(tmp_path, wrap=wrap)
    merged = _load_longlive(tmp_path).state_dict()
    w = base["blocks.1.cross_attn.k.weight"]
    a = lora["base_model.model.blocks.1.cross_attn.k.lora_A.weight"]
    b = lora["base_model.model.blocks.1.cross_attn.k.lora_B.weight"]
    assert torch.equal(merged["blocks.1.cross_attn.k.weight"], w + (256 / 256) * (b @ a))
    assert torch.equal(merged["blocks.0.norm3.weight"], base["blocks.0.norm3.weight"])  # not adapted
    assert torch.equal(merged["patch_embedding.weight"], base["patch_embedding.weight"])


def test_merged_longlive_equals_the_adapted_model(tmp_path, monkeypatch):
    """Forward of the merged model = forward of base + LoRA branches (float64), to float32 rounding."""
    from deepforcing.model import wan
    from deepforcing.model.lora import read_lora

    base, _ = _longlive_files(tmp_path)
    merged = _load_longlive(tmp_path).double()
    adapted = CausalWanModel(TINY)
    adapted.load_state_dict(base)
    adapted = adapted.double()
    branches = {}  # id(linear) -> (A, B): the adapter branch added beside the frozen layer
    for module, (a, b) in read_lora(tmp_path / "lora.pt").items():
        linear = adapted.get_submodule(module)
        branches[id(linear)] = (a.double(), b.double())
        linear.register_forward_hook(lambda m, x, y: y + _branch(m, x[0]))  # layers called as modules

    def _branch(layer, x):
        a, b = branches[id(layer)]
        return (x @ a.T) @ b.T

    plain = wan._linear  # the block's inner layers are called as bare ops (no hooks): add the branch there

    def adapted_linear(layer, x):
        y = plain(layer, x)
        return y + _branch(layer, x) if id(layer) in branches else y

    g = torch.Generator().manual_seed(9)
    latents, context = torch.randn(1, 3, 16, 8, 8, generator=g).double(), torch.randn(1, 12, 32, generator=g).double()
    t = torch.full((1, 3), 937.5)
    with torch.no_grad():
        ours = merged(latents, t, merged.encode_text(context))
        monkeypatch.setattr(wan, "_linear", adapted_linear)
        ref = adapted(latents, t, adapted.encode_text(context))
    assert (ours - ref).abs().max() / ref.abs().max() < 1e-6  # merged weights rounded to float32 once


def test_longlive_lora_with_missing_or_unexpected_adapters_is_named(tmp_path):
    _longlive_files(tmp_path, drop="base_model.model.blocks.1.ffn.2.lora_B.weight")
    with pytest.raises(UserError, match="only one of lora_A / lora_B: blocks.1.ffn.2"):
        _load_longlive(tmp_path)
    extra = {
        "base_model.model.head.head.lora_A.weight": torch.zeros(256, 64),
        "base_model.model.head.head.lora_B.weight": torch.zeros(64, 256),
    }
    _longlive_files(tmp_path, extra=extra)
    with pytest.raises(UserError, match=r"1 unexpected \(e.g. head.head\)"):
        _load_longlive(tmp_path)
    _longlive_files(tmp_path, rank=8)
    with pytest.raises(UserError, match="wrong shape.*rank 256"):
        _load_longlive(tmp_path)


def test_merge_scales_by_alpha_over_rank():
    from deepforcing.model.lora import BLOCK_LINEARS, merge_lora

    state = _random_state(10)
    g = torch.Generator().manual_seed(11)
    lora = {}
    for i in range(TINY.num_layers):
        for name in BLOCK_LINEARS:
            w = state[f"blocks.{i}.{name}.weight"]
            lora[f"blocks.{i}.{name}"] = (
                torch.randn(4, w.shape[1], generator=g),
                torch.randn(w.shape[0], 4, generator=g),
            )
    merged = merge_lora(state, lora, rank=4, alpha=8.0, num_layers=TINY.num_layers)
    a, b = lora["blocks.0.self_attn.q"]
    assert torch.equal(merged["blocks.0.self_attn.q.weight"], state["blocks.0.self_attn.q.weight"] + 2.0 * (b @ a))

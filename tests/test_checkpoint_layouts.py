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
    with pytest.raises(UserError, match=r"1 missing \(e.g. head.modulation\); 1 unexpected \(e.g. extra.weight\)"):
        _load(path, "infinite-forcing-ema")


def test_every_generator_checkpoint_entry_states_its_layout():
    for key in ("self-forcing-dmd", "infinite-forcing-ema", "causal-forcing"):
        entry = weights.get(key)
        assert entry.layout and entry.state_key in ("generator", "generator_ema")

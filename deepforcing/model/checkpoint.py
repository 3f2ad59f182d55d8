"""Load causal-Wan generator weights from the official checkpoint formats, with strict key checking.

Supported files:

* Self-Forcing / Rolling Forcing / LongLive training checkpoints (``torch.save`` dicts such as
  ``self_forcing_dmd.pt``): the generator lives under ``generator_ema`` (preferred) or ``generator``, keys are
  prefixed ``model.`` and, for FSDP-trained ones, may contain ``_fsdp_wrapped_module.`` and friends.
* Original Wan2.1 weights: ``diffusion_pytorch_model.safetensors`` (or a sharded directory with an
  ``*.safetensors.index.json``), keys without prefix; ComfyUI-style ``model.diffusion_model.`` prefixes too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from deepforcing.errors import UserError

log = logging.getLogger(__name__)

#: Wrapper fragments that training frameworks insert into parameter names.
_WRAPPER_FRAGMENTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
#: Leading prefixes, tried in order (longest first).
_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.")
#: Preferred sub-dicts of a training checkpoint.
_CHECKPOINT_KEYS = ("generator_ema", "generator", "state_dict", "model")


def normalize_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper fragments and one leading prefix so keys match :class:`CausalWanModel`."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for fragment in _WRAPPER_FRAGMENTS:
            key = key.replace(fragment, "")
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out[key] = value
    return out


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device="cpu")


def read_state_dict(path: str | Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a generator state dict from any supported file or directory (keys normalised).

    Args:
        path: A ``.pt``/``.pth`` training checkpoint, a ``.safetensors`` file, or a directory holding
            ``diffusion_pytorch_model.safetensors`` or a sharded index.
        state_key: The sub-dict of a training checkpoint to load (``generator_ema`` / ``generator``); None =
            the first of :data:`_CHECKPOINT_KEYS` present. A checkpoint without it is an error.

    Returns:
        The state dict with keys named as in :class:`deepforcing.model.wan.CausalWanModel`.

    Raises:
        UserError: The path does not exist or holds no recognisable generator weights.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}", "check the path or run `deepforcing-eval weights list`")
    if path.is_dir():
        index = sorted(path.glob("*.safetensors.index.json"))
        if index:
            shards = sorted(set(json.loads(index[0].read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(_load_safetensors(path / shard))
        elif (path / "diffusion_pytorch_model.safetensors").exists():
            state = _load_safetensors(path / "diffusion_pytorch_model.safetensors")
        else:
            raise UserError(f"no generator weights in directory {path}", "expected diffusion_pytorch_model.safetensors")
    elif path.suffix == ".safetensors":
        state = _load_safetensors(path)
    else:
        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
            raise UserError(f"cannot read checkpoint {path}: {exc}", "is it a complete torch.save file?") from exc
        state = _pick_generator(raw, path, state_key)
    if any(k.startswith("condition_embedder.") or ".attn1." in k for k in state):
        raise UserError(
            f"{path} is in diffusers' WanTransformer3DModel naming",
            "use the original Wan2.1 file (Wan-AI/Wan2.1-T2V-1.3B) or a Self-Forcing checkpoint",
        )
    return normalize_keys(state)


def _pick_generator(raw: object, path: Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    if not isinstance(raw, dict):
        raise UserError(f"{path} does not contain a state dict (found {type(raw).__name__})")
    if state_key is not None:
        if not isinstance(raw.get(state_key), dict):
            raise UserError(
                f"{path} has no '{state_key}' state dict (its top-level keys: {sorted(map(str, raw))[:8]})",
                "is this the checkpoint the method names? (`deepforcing-eval weights list` shows each file's layout)",
            )
        log.info("using '%s' from %s", state_key, path.name)
        return raw[state_key]
    for key in _CHECKPOINT_KEYS:
        if key in raw and isinstance(raw[key], dict):
            log.info("using '%s' from %s", key, path.name)
            return raw[key]
    if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return raw
    raise UserError(
        f"{path} has no generator weights",
        f"expected one of {list(_CHECKPOINT_KEYS)} or a plain state dict; found keys {sorted(raw)[:6]}",
    )


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy weights into ``model`` with strict key and shape checking.

    Raises:
        UserError: Missing, unexpected or mis-shaped keys; the message names a few of each.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k].shape
    )
    if missing or unexpected or mis_shaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if mis_shaped:
            parts.append(f"{len(mis_shaped)} with wrong shape (e.g. {', '.join(mis_shaped[:2])})")
        raise UserError(
            f"{source} does not match the model: " + "; ".join(parts),
            "is --model the preset these weights were trained for?",
        )
    model.load_state_dict(state_dict, strict=True)


def load_generator(
    model: nn.Module,
    path: str | Path,
    state_key: str | None = None,
    lora: tuple[str | Path, int, float] | None = None,
) -> None:
    """Load a generator checkpoint into ``model`` strictly, merging a LoRA first when given.

    Args:
        model: The causal Wan model.
        path: The checkpoint (any layout :func:`read_state_dict` reads).
        state_key: Its sub-dict (``generator`` / ``generator_ema``), None for the default preference.
        lora: ``(LoRA file, rank, alpha)`` merged exactly (``deepforcing.model.lora``), e.g. LongLive's.

    Raises:
        UserError: Unreadable files, missing / unexpected keys or adapters, wrong shapes.
    """
    state = read_state_dict(path, state_key)
    if lora is not None:
        from deepforcing.model.lora import merge_lora, read_lora

        lora_path, rank, alpha = lora
        num_layers = len(getattr(model, "blocks", []))
        state = merge_lora(
            state, read_lora(lora_path), rank=rank, alpha=alpha, num_layers=num_layers, source=str(lora_path)
        )
    load_weights(model, state, source=str(path))


def save_self_forcing_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Write ``model`` in the official Self-Forcing layout: ``{"generator_ema": {"model.<key>": tensor}}``."""
    state = {f"model.{k}": v.detach().to(torch.float32).clone() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"generator_ema": state}, str(path))

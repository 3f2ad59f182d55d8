"""LoRA adapters merged into generator weights at load time (LongLive's ``lora.pt``), exactly.

LongLive (NVlabs/LongLive v1.0, ``utils/lora_utils.py``) wraps **every** ``nn.Linear`` inside each causal attention
block (self-attention q/k/v/o, cross-attention q/k/v/o, the two FFN layers) with a PEFT LoRA of rank 256, alpha 256,
and saves ``get_peft_model_state_dict`` of it (optionally under ``generator_lora``). A LoRA layer computes
``W x + (alpha / r) · B (A x)``; merging replaces ``W`` by ``W + (alpha / r) · B A``, computed in float32 and then cast
to the weight's dtype, so the merged model is the adapted one up to that single rounding.

Key layout read: ``[base_model.model.]<Wan key>.lora_A[.default].weight`` ``[r, in]`` and ``…lora_B….weight``
``[out, r]``, with ``_fsdp_wrapped_module.`` and a leading ``model.`` tolerated (FSDP-wrapped wrappers).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from deepforcing.errors import UserError

log = logging.getLogger(__name__)

_LORA_KEY = re.compile(r"^(?P<module>.+?)\.lora_(?P<which>[AB])(?:\.[A-Za-z0-9_]+)?\.weight$")
_PREFIXES = ("base_model.model.", "model.")
#: The linear layers LongLive adapts in each block (every nn.Linear of CausalWanAttentionBlock).
BLOCK_LINEARS = tuple(f"{a}.{p}" for a in ("self_attn", "cross_attn") for p in "qkvo") + ("ffn.0", "ffn.2")


def read_lora(path: str | Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read a PEFT LoRA state dict: adapted module name (our key without ``.weight``) -> (A [r, in], B [out, r]).

    Raises:
        UserError: Not a readable LoRA file, or a module with only one of its two matrices.
    """
    path = Path(path)
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UserError(f"cannot read LoRA file {path}: {exc}", "is it a complete torch.save file?") from exc
    if isinstance(raw, dict) and isinstance(raw.get("generator_lora"), dict):
        raw = raw["generator_lora"]
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path} holds no LoRA state dict")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    other = []
    for key, value in raw.items():
        key = key.replace("_fsdp_wrapped_module.", "")
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        match = _LORA_KEY.match(key)
        if match is None:
            other.append(key)
            continue
        parts.setdefault(match["module"], {})[match["which"]] = value
    if other:
        raise UserError(f"{path}: {len(other)} key(s) that are not LoRA matrices (e.g. {', '.join(sorted(other)[:3])})")
    half = sorted(m for m, ab in parts.items() if len(ab) != 2)
    if half:
        raise UserError(f"{path}: LoRA module(s) with only one of lora_A / lora_B: {', '.join(half[:3])}")
    return {m: (ab["A"], ab["B"]) for m, ab in parts.items()}


def merge_lora(
    state: dict[str, torch.Tensor],
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    rank: int,
    alpha: float,
    num_layers: int,
    source: str = "LoRA",
) -> dict[str, torch.Tensor]:
    """``W + (alpha / rank) · B A`` for every adapted linear layer, in float32, cast back to ``W``'s dtype.

    Strict: the adapted modules must be exactly :data:`BLOCK_LINEARS` of every block, each with ``A [rank, in]``
    and ``B [out, rank]`` matching its weight.

    Args:
        state: The base generator state dict (our key names).
        lora: From :func:`read_lora`.
        rank: LoRA rank r.
        alpha: LoRA alpha.
        num_layers: Transformer blocks of the model.
        source: For error messages.

    Returns:
        A new state dict with the merged weights (other tensors shared).

    Raises:
        UserError: Missing or unexpected adapted modules, or wrong shapes (named).
    """
    expected = {f"blocks.{i}.{name}" for i in range(num_layers) for name in BLOCK_LINEARS}
    missing = sorted(expected - set(lora))
    unexpected = sorted(set(lora) - expected)
    wrong = []
    for module in sorted(set(lora) & expected):
        a, b = lora[module]
        w = state.get(f"{module}.weight")
        if w is None:
            missing.append(f"{module}.weight (base)")
        elif a.shape != (rank, w.shape[1]) or b.shape != (w.shape[0], rank):
            wrong.append(f"{module}: A {tuple(a.shape)}, B {tuple(b.shape)} vs weight {tuple(w.shape)}, rank {rank}")
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} with wrong shape (e.g. {wrong[0]})")
        raise UserError(
            f"{source} does not match the model: " + "; ".join(parts),
            f"expected rank {rank} adapters on {', '.join(BLOCK_LINEARS)} of all {num_layers} blocks",
        )
    scale = alpha / rank
    out = dict(state)
    for module, (a, b) in lora.items():
        w = state[f"{module}.weight"]
        merged = w.to(torch.float32) + scale * (b.to(torch.float32) @ a.to(torch.float32))
        out[f"{module}.weight"] = merged.to(w.dtype)
    log.info("merged %d LoRA layers (rank %d, alpha %g) from %s", len(lora), rank, alpha, source)
    return out

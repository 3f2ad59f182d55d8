"""Load causal-Wan generator weights from the official checkpoint formats, with strict key checking.

Supported files:

* Self-Forcing / Rolling Forcing / LongLive training checkpoints (``torch.save`` dicts such as
  ``self_forcing_dmd.pt``): the generator lives under ``generator_ema`` (preferred) or ``generator``, keys are
  prefixed ``model.`` and, for FSDP-trained ones, may contain ``_fsdp_wrapped_module.`` and friends.
* Original Wan2.1 weights: ``diffusion_pytorch_model.safetensors`` (or a sharded directory with an
  ``*.safetensors.index.json``), keys without prefix; ComfyUI-style ``model.diffusion_model.`` prefixes too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepforcing import formats
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


def _not_loadable(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} is not a loadable checkpoint: {why}",
        "expected the generator's torch.save state dict (.pt/.pth) or its .safetensors file",
    )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        formats.safetensors_header(path)  # one clear line for a truncated or foreign file
        return load_file(str(path), device="cpu")
    except formats.FormatError as exc:
        raise _not_loadable(path, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - safetensors' own errors (SafetensorError, OSError)
        raise _not_loadable(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _unpickling_reason(exc: BaseException) -> str:
    """The one informative line of torch's ``weights_only`` refusal (or of any other load error)."""
    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, re.S)
    if m:
        reason = " ".join(m.group(1).split())
        reason = re.split(r"\. |\s+was not an allowed global", reason)[0]
        return f"it holds Python objects other than tensors ({reason}), which are not loaded for safety (weights_only)"
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"a truncated or corrupt torch file ({line})"


def _torch_load(path: Path, **kwargs) -> object:
    """``torch.load(weights_only=True)`` of a checked torch.save file; every failure is one line."""
    try:
        kind = formats.torch_archive(path)
    except formats.FormatError as exc:
        raise _not_loadable(path, str(exc)) from None
    if kind == "torchscript":
        raise _not_loadable(path, "a TorchScript archive (a compiled model), not a state dict")
    try:
        return torch.load(str(path), weights_only=True, **{"map_location": "cpu", **kwargs})
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise _not_loadable(path, _unpickling_reason(exc)) from None


def _read_raw(path: Path, meta: bool = False, state_key: str | None = None) -> dict[str, torch.Tensor]:
    """The generator's tensors (keys not yet normalised) from a file or directory; ``meta``: shapes only."""
    if path.is_dir():
        index = sorted(path.glob("*.safetensors.index.json"))
        if index:
            try:
                shards = sorted(set(formats.json_object(index[0])["weight_map"].values()))
            except (formats.FormatError, KeyError, AttributeError) as exc:
                raise UserError(f"{index[0]} is not a safetensors index ({exc})") from None
            missing = [s for s in shards if not (path / s).is_file()]
            if missing:
                raise UserError(f"{len(missing)} shard(s) listed in {index[0]} are missing: {', '.join(missing[:3])}")
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(_read_file(path / shard, meta))
            return state
        if (path / "diffusion_pytorch_model.safetensors").exists():
            return _read_file(path / "diffusion_pytorch_model.safetensors", meta)
        raise UserError(f"no generator weights in directory {path}", "expected diffusion_pytorch_model.safetensors")
    return _read_file(path, meta, state_key)


def _read_file(path: Path, meta: bool, state_key: str | None = None) -> dict[str, torch.Tensor]:
    kind = formats.sniff(path)
    if kind == "safetensors":
        if not meta:
            return _load_safetensors(path)
        try:
            header, _ = formats.safetensors_header(path)
        except formats.FormatError as exc:
            raise _not_loadable(path, str(exc)) from None
        return {k: torch.empty(v.shape, device="meta") for k, v in header.items()}
    if kind in ("zip", "torch-legacy", "pickle"):
        raw = _torch_load(path, map_location="meta") if meta else _torch_load(path)
        return _pick_generator(raw, path, state_key)
    if path.suffix == ".safetensors":
        raise _not_loadable(path, f"not a safetensors file ({formats.describe(path)})")
    raise _not_loadable(path, f"{formats.describe(path)}, neither a torch.save file nor a safetensors file")


def read_state_dict(path: str | Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a generator state dict from any supported file or directory (keys normalised).

    The format is recognised from the file's content (a ``.pt`` holding safetensors loads too). A file that is
    not a whole checkpoint (empty, truncated, another format, a zip that ``torch.save`` did not write, a pickle of
    Python objects) raises one line saying so and why.

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
    state = _read_raw(path, state_key=state_key)
    _reject_diffusers_names(state, path)
    return normalize_keys(state)


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the generator in a checkpoint, read from headers / the pickle only (no tensor data).

    Raises:
        UserError: As :func:`read_state_dict`.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    state = _read_raw(path, meta=True)
    _reject_diffusers_names(state, path)
    return {k: tuple(v.shape) for k, v in normalize_keys(state).items()}


def _reject_diffusers_names(state: dict[str, torch.Tensor], path: Path) -> None:
    if any(k.startswith("condition_embedder.") or ".attn1." in k for k in state):
        raise UserError(
            f"{path} is in diffusers' WanTransformer3DModel naming",
            "use the original Wan2.1 file (Wan-AI/Wan2.1-T2V-1.3B) or a Self-Forcing checkpoint",
        )


def _pick_generator(raw: object, path: Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    if not isinstance(raw, dict):
        raise _not_loadable(path, f"it holds a {type(raw).__name__}, not a state dict")
    if state_key is not None:
        if not isinstance(raw.get(state_key), dict):
            found = ", ".join(map(str, sorted(raw, key=str)[:8])) or "nothing"
            raise UserError(
                f"{path} has no '{state_key}' state dict (its top-level keys: {found})",
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
    found = ", ".join(map(str, sorted(raw, key=str)[:6])) or "nothing"
    expected = f"one of {', '.join(_CHECKPOINT_KEYS)} or a plain state dict"
    raise _not_loadable(path, f"no generator weights (expected {expected}; found {found})")


def group_keys(keys: list[str], limit: int = 3) -> str:
    """A compact list of parameter names: the block index folded (``blocks.*.ffn.0.weight ×30``), ``limit`` shown."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        pattern = re.sub(r"(?<=\.)\d+(?=\.)", "*", k, count=1)  # the block index
        groups.setdefault(pattern, []).append(k)
    shown = [f"{p} ×{len(ks)}" if len(ks) > 1 else ks[0] for p, ks in list(groups.items())[:limit]]
    more = len(groups) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class KeyMismatch:
    """How a state dict differs from a model's (empty lists: it matches).

    Attributes:
        missing: Keys the model has and the file lacks.
        unexpected: Keys the file has and the model lacks.
        mis_shaped: ``key (file shape) vs (model shape)``.
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mis_shaped: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mis_shaped)

    def summary(self) -> str:
        """``3 missing (…); 1 unexpected (…)`` with block indices folded."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({group_keys(list(self.missing))})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({group_keys(list(self.unexpected))})")
        if self.mis_shaped:
            parts.append(f"{len(self.mis_shaped)} with wrong shape (e.g. {', '.join(self.mis_shaped[:2])})")
        return "; ".join(parts)


def compare_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]]) -> KeyMismatch:
    """Keys and shapes of a state dict against a model's."""
    return KeyMismatch(
        missing=tuple(sorted(set(expected) - set(found))),
        unexpected=tuple(sorted(set(found) - set(expected))),
        mis_shaped=tuple(
            sorted(f"{k} {found[k]} vs {expected[k]}" for k in set(expected) & set(found) if found[k] != expected[k])
        ),
    )


def expected_shapes(preset: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of :class:`CausalWanModel` for a model preset (built on the meta device)."""
    from deepforcing.model.config import PRESETS
    from deepforcing.model.wan import CausalWanModel

    with torch.device("meta"):
        model = CausalWanModel(PRESETS[preset].wan)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_generator_file(path: str | Path, preset: str = "wan2.1-t2v-1.3b") -> list[str]:
    """Problems of a generator checkpoint against a model preset, from its headers only (``weights verify``).

    Returns:
        ``[]`` when every key and shape matches, else one line naming the missing / unexpected / mis-shaped keys.

    Raises:
        UserError: The file does not open as a checkpoint (``unreadable``).
    """
    mismatch = compare_shapes(read_shapes(path), expected_shapes(preset))
    return [mismatch.summary()] if mismatch else []


def check_wan_t2v_1_3b(path: str | Path) -> list[str]:
    """:func:`check_generator_file` against Wan2.1-T2V-1.3B (the registry's generator entries)."""
    return check_generator_file(path, "wan2.1-t2v-1.3b")


def check_wan_config_json(path: str | Path, preset: str = "wan2.1-t2v-1.3b") -> list[str]:
    """Problems of a Wan ``config.json`` against a preset's DiT shape (fields named as ``WanModel``'s arguments).

    Raises:
        UserError: Not a JSON object.
    """
    import dataclasses

    from deepforcing.model.config import PRESETS

    try:
        data = formats.json_object(path)
    except formats.FormatError as exc:
        raise UserError(f"{path}: {exc}") from None
    want = dataclasses.asdict(PRESETS[preset].wan)
    shared = [k for k in want if k in data and k not in ("patch_size",)]
    if not {"dim", "num_layers"} <= set(shared):
        return [f"not a Wan DiT config (no dim / num_layers; keys {', '.join(sorted(data)[:6])})"]
    wrong = [f"{k} {data[k]!r} (expected {want[k]!r})" for k in shared if data[k] != want[k]]
    return [f"describes another model than {preset}: " + ", ".join(wrong)] if wrong else []


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy weights into ``model`` with strict key and shape checking.

    Raises:
        UserError: Missing, unexpected or mis-shaped keys; the message names them compactly (block indices folded).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mismatch = compare_shapes({k: tuple(v.shape) for k, v in state_dict.items()}, expected)
    if mismatch:
        raise UserError(
            f"{source} does not match the model: {mismatch.summary()}",
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

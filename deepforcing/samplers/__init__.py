"""Samplers: HOW frames are denoised. Only samplers know about timesteps. Registry with lazy imports."""

from __future__ import annotations

import importlib
from typing import Any

from deepforcing.errors import UserError

#: name -> "module:SamplerClass:ConfigClass"
_REGISTRY: dict[str, str] = {
    "chunkwise": "deepforcing.samplers.chunkwise:ChunkwiseSampler:ChunkwiseConfig",
    "rolling": "deepforcing.samplers.rolling:RollingSampler:RollingConfig",
}


def available() -> list[str]:
    """Registered sampler names."""
    return sorted(_REGISTRY)


def _resolve(name: str) -> tuple[type, type]:
    if name not in _REGISTRY:
        raise UserError(f"unknown sampler '{name}'", f"choose one of: {', '.join(available())}")
    module, cls, cfg = _REGISTRY[name].split(":")
    mod = importlib.import_module(module)
    return getattr(mod, cls), getattr(mod, cfg)


def config_class(name: str) -> type:
    """The frozen config dataclass of sampler ``name``."""
    return _resolve(name)[1]


def build(name: str, cfg: Any = None) -> Any:
    """Instantiate sampler ``name`` with its config (default config if None)."""
    sampler_cls, cfg_cls = _resolve(name)
    return sampler_cls(cfg if cfg is not None else cfg_cls())

"""Cache policies: WHAT the KV cache keeps. Registry with lazy imports (one file per policy)."""

from __future__ import annotations

import importlib
from typing import Any

from deepforcing.errors import UserError

#: name -> "module:PolicyClass:ConfigClass"
_REGISTRY: dict[str, str] = {
    "full": "deepforcing.policies.full:FullCachePolicy:FullCacheConfig",
    "fifo": "deepforcing.policies.fifo:FifoPolicy:FifoConfig",
    "deep-sink": "deepforcing.policies.deep_sink:DeepSinkPolicy:DeepSinkConfig",
    "rolling-sink": "deepforcing.policies.rolling_sink:RollingSinkPolicy:RollingSinkConfig",
    "participative-compression": (
        "deepforcing.policies.participative_compression:ParticipativeCompressionPolicy:ParticipativeCompressionConfig"
    ),
}


def available() -> list[str]:
    """Registered policy names."""
    return sorted(_REGISTRY)


def _resolve(name: str) -> tuple[type, type]:
    if name not in _REGISTRY:
        raise UserError(f"unknown cache policy '{name}'", f"choose one of: {', '.join(available())}")
    module, cls, cfg = _REGISTRY[name].split(":")
    mod = importlib.import_module(module)
    return getattr(mod, cls), getattr(mod, cfg)


def config_class(name: str) -> type:
    """The frozen config dataclass of policy ``name``."""
    return _resolve(name)[1]


def build(name: str, cfg: Any = None) -> Any:
    """Instantiate policy ``name`` with its config (default config if None)."""
    policy_cls, cfg_cls = _resolve(name)
    return policy_cls(cfg if cfg is not None else cfg_cls())

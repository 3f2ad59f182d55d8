"""Cache policies: WHAT the KV cache keeps. Registry with lazy imports (one file per policy)."""

from __future__ import annotations

from deepforcing.registry import LazyRegistry

REGISTRY = LazyRegistry(
    "cache policy",
    {
        "full": "deepforcing.policies.full:FullCachePolicy:FullCacheConfig",
        "fifo": "deepforcing.policies.fifo:FifoPolicy:FifoConfig",
        "deep-sink": "deepforcing.policies.deep_sink:DeepSinkPolicy:DeepSinkConfig",
        "rolling-forcing-sink": (
            "deepforcing.policies.rolling_forcing_sink:RollingForcingSinkPolicy:RollingForcingSinkConfig"
        ),
        "participative-compression": (
            "deepforcing.policies.participative_compression:ParticipativeCompressionPolicy:"
            "ParticipativeCompressionConfig"
        ),
    },
)
available = REGISTRY.available
config_class = REGISTRY.config_class
build = REGISTRY.build

#: Policies renamed after units were hashed: current name -> the name their method presets hash with, so the
#: content hash of every existing unit (and its run folder) stays valid. ``rolling-forcing-sink`` was
#: ``rolling-sink`` until the Rolling Sink method took that name; the two configs have different fields, so
#: no preset of one can hash like a preset of the other.
HASH_NAMES: dict[str, str] = {"rolling-forcing-sink": "rolling-sink"}


def hash_name(name: str) -> str:
    """The policy name that enters method config hashes (its name when units were first hashed)."""
    return HASH_NAMES.get(name, name)

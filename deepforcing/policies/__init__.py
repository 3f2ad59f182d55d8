"""Cache policies: WHAT the KV cache keeps. Registry with lazy imports (one file per policy)."""

from __future__ import annotations

from deepforcing.registry import LazyRegistry

REGISTRY = LazyRegistry(
    "cache policy",
    {
        "full": "deepforcing.policies.full:FullCachePolicy:FullCacheConfig",
        "fifo": "deepforcing.policies.fifo:FifoPolicy:FifoConfig",
        "deep-sink": "deepforcing.policies.deep_sink:DeepSinkPolicy:DeepSinkConfig",
        "rolling-sink": "deepforcing.policies.rolling_sink:RollingSinkPolicy:RollingSinkConfig",
        "participative-compression": (
            "deepforcing.policies.participative_compression:ParticipativeCompressionPolicy:"
            "ParticipativeCompressionConfig"
        ),
    },
)
available = REGISTRY.available
config_class = REGISTRY.config_class
build = REGISTRY.build

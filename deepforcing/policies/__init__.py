"""Cache policies: WHAT the KV cache keeps. A registry with lazy imports (one file per policy).

Convention for a policy (and why): listing commands (``methods list``, ``suites list``) hash every method's
config and must not import torch (``tests/test_cli_startup.py``), so a policy lives in two places:

* its **frozen config dataclass** in :mod:`deepforcing.policies.configs` — standard library only, no torch, no
  ``deepforcing.cache``; validation in ``__post_init__`` raises ``ValueError``;
* its **implementation** in its own file ``deepforcing/policies/<name>.py`` (a
  :class:`~deepforcing.policies.base.CachePolicy` subclass), which imports its config from ``configs``;
* one entry below: ``"<registry-name>": ("deepforcing.policies.<file>:<Policy>", _CONFIGS + "<Config>")``.

A config's fields and their values are what a method's config hash covers (the class and module names are not),
so moving a config between modules never changes a hash; adding, renaming or re-defaulting a field does.
"""

from __future__ import annotations

from deepforcing.registry import LazyRegistry

_CONFIGS = "deepforcing.policies.configs:"

REGISTRY = LazyRegistry(
    "cache policy",
    {
        "full": ("deepforcing.policies.full:FullCachePolicy", _CONFIGS + "FullCacheConfig"),
        "fifo": ("deepforcing.policies.fifo:FifoPolicy", _CONFIGS + "FifoConfig"),
        "deep-sink": ("deepforcing.policies.deep_sink:DeepSinkPolicy", _CONFIGS + "DeepSinkConfig"),
        "rolling-sink": ("deepforcing.policies.rolling_sink:RollingSinkPolicy", _CONFIGS + "RollingSinkConfig"),
        "participative-compression": (
            "deepforcing.policies.participative_compression:ParticipativeCompressionPolicy",
            _CONFIGS + "ParticipativeCompressionConfig",
        ),
    },
)
available = REGISTRY.available
config_class = REGISTRY.config_class
build = REGISTRY.build

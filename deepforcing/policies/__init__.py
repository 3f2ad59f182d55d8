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
        "rolling-forcing-sink": (
            "deepforcing.policies.rolling_forcing_sink:RollingForcingSinkPolicy",
            _CONFIGS + "RollingForcingSinkConfig",
        ),
        "infinity-rope": ("deepforcing.policies.infinity_rope:InfinityRopePolicy", _CONFIGS + "InfinityRopeConfig"),
        "memrope": ("deepforcing.policies.memrope:MemRopePolicy", _CONFIGS + "MemRopeConfig"),
        "lol": ("deepforcing.policies.lol:LolPolicy", _CONFIGS + "LolConfig"),
        "participative-compression": (
            "deepforcing.policies.participative_compression:ParticipativeCompressionPolicy",
            _CONFIGS + "ParticipativeCompressionConfig",
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


#: Prompt-switch modes each policy defines (``deepforcing.samplers.switching``), readable without importing torch;
#: every policy class's ``switch_modes`` equals its entry (tests/test_switching.py checks it).
_DEFAULT_MODES = ("keep", "flush", "flush-paper", "recache")
SWITCH_MODES: dict[str, tuple[str, ...]] = {
    "full": _DEFAULT_MODES,
    "fifo": _DEFAULT_MODES,
    "deep-sink": _DEFAULT_MODES,
    "lol": _DEFAULT_MODES,
    "participative-compression": ("keep", "flush", "flush-paper"),
    "infinity-rope": ("keep", "flush", "flush-paper", "cut", "recache"),
    "rolling-sink": ("keep",),
    "rolling-forcing-sink": ("keep",),
    "memrope": ("keep",),
}


def switch_modes(name: str) -> tuple[str, ...]:
    """The prompt-switch modes policy ``name`` defines (no import of the policy module)."""
    return SWITCH_MODES.get(name) or REGISTRY.resolve(name)[0].switch_modes


#: Policy names that changed meaning: old name -> (new name of the old policy, config fields only the old one has).
#: A preset that uses the old name with the old policy's fields gets an error naming the new one.
MOVED: dict[str, tuple[str, frozenset[str]]] = {
    "rolling-sink": ("rolling-forcing-sink", frozenset({"sink_frames", "cache_frames", "attention_frames"})),
}

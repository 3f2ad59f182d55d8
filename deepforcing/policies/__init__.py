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
        "infinity-rope": "deepforcing.policies.infinity_rope:InfinityRopePolicy:InfinityRopeConfig",
        "memrope": "deepforcing.policies.memrope:MemRopePolicy:MemRopeConfig",
        "lol": "deepforcing.policies.lol:LolPolicy:LolConfig",
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

"""Named methods: sampler + cache policy + checkpoint + hyper-parameters, as frozen configs.

A resolved method is a frozen dataclass that serialises to JSON and hashes to a short id; that id is part of
every generation unit's key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from deepforcing import policies
from deepforcing.configs import config_hash, to_dict
from deepforcing.errors import UserError
from deepforcing.policies.fifo import FifoConfig
from deepforcing.policies.full import FullCacheConfig
from deepforcing.samplers.chunkwise import ChunkwiseConfig


@dataclass(frozen=True)
class MethodConfig:
    """One way of generating a long video with the shared engine.

    Attributes:
        name: Registry name.
        sampler: ``chunkwise`` (Self-Forcing loop).
        sampler_config: The sampler's settings.
        policy: Cache policy registry name.
        policy_config: The policy's frozen config.
        checkpoint: Weights-registry key of the generator checkpoint for the real model.
        description: One line for listings.
        source: Where the settings come from (paper section / released config).
    """

    name: str
    sampler: str
    sampler_config: ChunkwiseConfig
    policy: str
    policy_config: Any
    checkpoint: str
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the policy config is tagged with its policy name)."""
        return to_dict(self)

    @property
    def config_hash(self) -> str:
        """Short content hash of everything that can change the generated latents."""
        return config_hash(_HashView(self.sampler, self.sampler_config, self.policy, self.policy_config))


@dataclass(frozen=True)
class _HashView:
    sampler: str
    sampler_config: ChunkwiseConfig
    policy: str
    policy_config: Any


_METHODS: dict[str, MethodConfig] = {
    m.name: m
    for m in (
        MethodConfig(
            name="self-forcing",
            sampler="chunkwise",
            sampler_config=ChunkwiseConfig(),
            policy="fifo",
            policy_config=FifoConfig(window_frames=21, sink_frames=0),
            checkpoint="self-forcing-dmd",
            description="Self-Forcing DMD, 3-frame chunks, 4 steps, FIFO rolling KV window of 21 latent frames",
            source="Self-Forcing configs/self_forcing_dmd.yaml + model_kwargs.local_attn_size=21 (arXiv 2506.08009)",
        ),
        MethodConfig(
            name="self-forcing-full",
            sampler="chunkwise",
            sampler_config=ChunkwiseConfig(),
            policy="full",
            policy_config=FullCacheConfig(),
            checkpoint="self-forcing-dmd",
            description="Self-Forcing DMD with a full (never evicted) cache: the released 21-frame setting",
            source="Self-Forcing configs/self_forcing_dmd.yaml (local_attn_size=-1)",
        ),
    )
}


def available() -> list[str]:
    """Registered method names."""
    return sorted(_METHODS)


def get(name: str) -> MethodConfig:
    """Resolve a method name.

    Raises:
        UserError: Unknown name (with a close match and the list of choices).
    """
    if name not in _METHODS:
        close = difflib.get_close_matches(name, available(), n=1)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(available())}"
        raise UserError(f"unknown method '{name}'", hint)
    return _METHODS[name]


def build_policy(method: MethodConfig):
    """Instantiate the method's cache policy."""
    return policies.build(method.policy, method.policy_config)

"""Samplers: HOW frames are denoised. Only samplers know about timesteps. Registry with lazy imports."""

from __future__ import annotations

from deepforcing.registry import LazyRegistry

REGISTRY = LazyRegistry(
    "sampler",
    {
        "chunkwise": "deepforcing.samplers.chunkwise:ChunkwiseSampler:ChunkwiseConfig",
        "rolling": "deepforcing.samplers.rolling:RollingSampler:RollingConfig",
    },
)
available = REGISTRY.available
config_class = REGISTRY.config_class
build = REGISTRY.build

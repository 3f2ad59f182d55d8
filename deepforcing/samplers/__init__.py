"""Samplers: HOW frames are denoised. Only samplers know about timesteps. A registry with lazy imports.

Convention (the same as :mod:`deepforcing.policies`): a sampler's **frozen config dataclass** lives in
:mod:`deepforcing.samplers.configs` (no torch at import time: a method that needs torch imports it inside its
body), its **implementation** in its own module, and its entry below is
``"<name>": ("deepforcing.samplers.<file>:<Sampler>", _CONFIGS + "<Config>")``. Listing commands resolve only the
config classes and so never import torch (``tests/test_cli_startup.py``).
"""

from __future__ import annotations

from deepforcing.registry import LazyRegistry

_CONFIGS = "deepforcing.samplers.configs:"

REGISTRY = LazyRegistry(
    "sampler",
    {
        "chunkwise": ("deepforcing.samplers.chunkwise:ChunkwiseSampler", _CONFIGS + "ChunkwiseConfig"),
        "rolling": ("deepforcing.samplers.rolling:RollingSampler", _CONFIGS + "RollingConfig"),
    },
)
available = REGISTRY.available
config_class = REGISTRY.config_class
build = REGISTRY.build

"""Full cache: keep every frame (the trained-horizon setting of Self-Forcing, global attention)."""

from __future__ import annotations

from typing import ClassVar

from deepforcing.policies.base import CachePolicy
from deepforcing.policies.configs import FullCacheConfig


class FullCachePolicy(CachePolicy):
    """Never evicts; positions are absolute frame indices."""

    name: ClassVar[str] = "full"

    def __init__(self, cfg: FullCacheConfig | None = None):
        self.cfg = cfg or FullCacheConfig()

    def capacity_frames(self, total_frames: int, chunk_frames: int) -> int:
        """The whole video."""
        return total_frames

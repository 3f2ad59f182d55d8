"""The embedded default: tiny random-weight generator, text encoder and VAE, saved in the real file formats.

On first use the three components are written (deterministically, from fixed seeds) under the user cache
directory in exactly the formats of the official releases — a Self-Forcing ``generator_ema`` checkpoint, a
Diffusers-layout UMT5 text encoder + tokenizer, a Diffusers-layout Wan VAE — and are then loaded through the
same loaders as the real 1.3B model. Nothing here is a mock: only the sizes and the weights differ.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from deepforcing.model.checkpoint import save_self_forcing_checkpoint
from deepforcing.model.config import WanConfig
from deepforcing.model.wan import CausalWanModel

log = logging.getLogger(__name__)

#: Bump when the tiny assets change (their directory name includes it, so old caches are never reused).
TINY_ASSETS_VERSION = "1"
GENERATOR_SEED = 20251205
TEXT_ENCODER_SEED = 1
VAE_SEED = 2


def cache_root() -> Path:
    """``$DEEPFORCING_CACHE`` or ``~/.cache/deepforcing-eval``."""
    return Path(os.environ.get("DEEPFORCING_CACHE", Path.home() / ".cache" / "deepforcing-eval"))


def build_random_generator(cfg: WanConfig, seed: int) -> CausalWanModel:
    """A randomly initialised model; deterministic for a seed and independent of the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CausalWanModel(cfg).eval()


@dataclass(frozen=True)
class TinyAssets:
    """Paths of the tiny components (same layouts as the official files)."""

    checkpoint: Path
    text_encoder_dir: Path
    vae_dir: Path


def ensure_tiny_assets(cfg: WanConfig, root: Path | None = None) -> TinyAssets:
    """Write the tiny components once (atomically) and return their paths.

    Args:
        cfg: The tiny DiT config (``text_dim``/``text_len`` fix the text encoder's size).
        root: Directory for the assets (default: :func:`cache_root`).
    """
    base = (root or cache_root()) / f"tiny-v{TINY_ASSETS_VERSION}"
    assets = TinyAssets(
        base / "self_forcing_dmd.pt",
        base / "Wan2.1-T2V-tiny-Diffusers",
        base / "Wan2.1-T2V-tiny-Diffusers" / "vae",
    )
    if assets.checkpoint.exists() and (assets.vae_dir / "config.json").exists():
        return assets
    from deepforcing.model.tiny_assets import save_tiny_text_encoder, save_tiny_vae

    base.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=base.parent))
    try:
        save_self_forcing_checkpoint(build_random_generator(cfg, GENERATOR_SEED), staging / assets.checkpoint.name)
        diffusers_dir = staging / assets.text_encoder_dir.name
        save_tiny_text_encoder(diffusers_dir, seed=TEXT_ENCODER_SEED, text_len=cfg.text_len, d_model=cfg.text_dim)
        save_tiny_vae(diffusers_dir / "vae", seed=VAE_SEED)
        if base.exists():  # another process finished first
            return assets
        staging.rename(base)
        log.info("wrote tiny model assets to %s", base)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return assets

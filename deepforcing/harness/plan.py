"""The work plan: a suite expanded into generation units keyed by content, plus a GPU-time estimate.

A generation unit is everything that can change the generated video and nothing else (:class:`UnitKey`):
the method's config hash (sampler + policy settings, not its name), the weights id (content hashes of every
weight file the generator loads), the model preset, the prompt id and the sha256 of its text, the seed, the
number of latent frames, the dtype and :data:`deepforcing.ENGINE_VERSION`. Its short hash names its files.
Rank, world size, batch position and run order are not part of it, so any process can produce any unit and
two suites (or two methods with identical settings) share a video when their units agree.

The dtype is in the key (beyond the issue's list) because bf16 and fp32 runs give different videos; the prompt
text hash is in the key so that a reused id with an edited text can never pick up an old video.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from deepforcing import ENGINE_VERSION
from deepforcing.configs import to_dict
from deepforcing.errors import UserError
from deepforcing.harness.prompts import Prompt
from deepforcing.harness.suites import TEMPORAL_COMPRESSION, VIDEO_FPS, SuiteConfig, select_prompts

log = logging.getLogger(__name__)

#: Throughput on one H100 from the Deep Forcing paper (Tables 1 and 6, 60-s videos): generated frames per
#: second of sampling, decode excluded. Other methods use their family's number (marked as assumed).
PAPER_FPS: dict[str, float] = {"self-forcing": 15.78, "deep-forcing": 15.75, "rolling-forcing": 15.79}
PAPER_FPS_SOURCE = "Deep Forcing arXiv 2512.05081 Tables 1 and 6 (1x H100)"


def paper_fps(method: str) -> tuple[float, bool]:
    """Paper FPS for a method and whether it is the method's own number (False: its family's, assumed).

    Ablation variants of Deep Forcing use Deep Forcing's number; ``sink-*`` and ``self-forcing-*`` variants use
    Self-Forcing's (the same engine with another cache policy); anything else uses Deep Forcing's.
    """
    if method in PAPER_FPS:
        return PAPER_FPS[method], True
    for family in ("deep-forcing", "rolling-forcing", "self-forcing"):
        if method.startswith(family):
            return PAPER_FPS[family], False
    if method.startswith("sink-"):
        return PAPER_FPS["self-forcing"], False
    return PAPER_FPS["deep-forcing"], False


def pixel_frames(latent_frames: int, model: str | None = None) -> int:
    """Video frames decoded from ``latent_frames`` (Wan VAE: 1 + 4 (F - 1); the model preset's latent if given)."""
    if model is not None:
        from deepforcing.model.config import PRESETS

        if model in PRESETS:
            return PRESETS[model].pixel_frames(latent_frames)
    return 1 + TEMPORAL_COMPRESSION * (latent_frames - 1)


def video_fps(model: str | None = None) -> int:
    """Frame rate of the model preset's videos (16 for Wan)."""
    from deepforcing.model.config import PRESETS

    return PRESETS[model].fps if model in PRESETS else VIDEO_FPS


@dataclass(frozen=True)
class UnitKey:
    """Everything that determines one generated video.

    Attributes:
        method_config_hash: :attr:`deepforcing.methods.MethodConfig.config_hash`.
        weights_id: Content id of the generator's weight files (:func:`weights_identity`).
        model: Model preset.
        prompt_id: Stable prompt id (also fixes the noise, with the seed).
        prompt_sha256: sha256 of the prompt text.
        seed: Seed.
        num_latent_frames: Latent frames.
        dtype: Model dtype (``float32``, ``bfloat16`` …).
        engine_version: :data:`deepforcing.ENGINE_VERSION`.
        switch: Prompt-switch mode of a multi-prompt unit (the schedule itself is in ``prompt_sha256``); empty for
            one prompt, and then not part of the hash, so single-prompt keys are what they were before.
    """

    method_config_hash: str
    weights_id: str
    model: str
    prompt_id: str
    prompt_sha256: str
    seed: int
    num_latent_frames: int
    dtype: str
    engine_version: str = ENGINE_VERSION
    switch: str = ""

    @property
    def key(self) -> str:
        """16-hex-digit content hash; names the unit's directory."""
        data = to_dict(self)
        if not self.switch:
            data.pop("switch")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WorkItem:
    """One (method, prompt, seed) sample of a suite and the unit that produces its video.

    Attributes:
        method: Method name.
        prompt: The prompt.
        seed: Seed.
        unit: The content key of its video.
    """

    method: str
    prompt: Prompt
    seed: int
    unit: UnitKey


@dataclass(frozen=True)
class WeightsIdentity:
    """Content identity of a generator's weight files.

    Attributes:
        weights_id: ``<model>:<checkpoint key>@<12 hex digits>`` over the sha256 of every file.
        files: File name (relative to its component root) -> sha256.
    """

    weights_id: str
    files: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class WorkPlan:
    """A suite expanded into work.

    Attributes:
        suite: The validated suite.
        prompts: Its prompts, in order.
        items: Every (method, prompt, seed), method-major.
        dtype: Model dtype name.
        weights: Method name -> weights identity (None for a dry run without weights).
    """

    suite: SuiteConfig
    prompts: tuple[Prompt, ...]
    items: tuple[WorkItem, ...]
    dtype: str
    weights: dict[str, WeightsIdentity] | None = field(default=None, hash=False, compare=False)

    def units(self) -> list[WorkItem]:
        """One item per distinct unit key (the first item that needs it), in plan order."""
        seen: set[str] = set()
        out = []
        for item in self.items:
            if item.unit.key not in seen:
                seen.add(item.unit.key)
                out.append(item)
        return out

    def estimate_seconds(self, items: list[WorkItem] | None = None) -> dict[str, float]:
        """GPU seconds per method on one H100 from :data:`PAPER_FPS` (sampling only, decode excluded)."""
        out: dict[str, float] = {}
        for item in self.units() if items is None else items:
            fps, _ = paper_fps(item.method)
            out[item.method] = out.get(item.method, 0.0) + pixel_frames(item.unit.num_latent_frames) / fps
        return out


# --------------------------------------------------------------------------------------------- hashing
def _sha_cache_path() -> Path:
    from deepforcing.model.tiny import cache_root

    return cache_root() / "sha256-cache.json"


class NotHashedYet(Exception):
    """A weight file has no cached sha256 and hashing was not allowed (dry runs do not hash big files)."""


def sha256_cached(path: Path, cache: dict[str, list] | None = None, compute: bool = True) -> str:
    """sha256 of a file, remembered by (path, size, mtime) in ``cache`` so large weights are hashed once.

    Raises:
        NotHashedYet: If the file is not in the cache and ``compute`` is False.
    """
    st = path.stat()
    k = str(path.resolve())
    if cache is not None:
        hit = cache.get(k)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
    if not compute:
        raise NotHashedYet(str(path))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        cache[k] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def _load_sha_cache() -> dict[str, list]:
    try:
        return json.loads(_sha_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_sha_cache(cache: dict[str, list]) -> None:
    from deepforcing.harness.store import atomic_write_text

    try:
        atomic_write_text(_sha_cache_path(), json.dumps(cache, sort_keys=True))
    except (OSError, UserError) as exc:  # a cache: never fatal
        log.debug("could not save the sha256 cache: %s", exc)


def _generator_files(model: str, checkpoint_key: str, weights_dir: str | os.PathLike | None) -> dict[str, Path]:
    """Every weight file the generator of ``model`` loads for a method with ``checkpoint_key``.

    Raises:
        UserError: From the weights registry, naming the missing file and the command that fetches it.
    """
    from deepforcing import weights
    from deepforcing.model.config import PRESETS

    files: dict[str, Path] = {}
    if model == "toyworld":  # the weights ship with the package
        from deepforcing.toyworld.model import BUNDLE_FILES, SHIPPED_DIR

        for name in BUNDLE_FILES:
            path = SHIPPED_DIR / name
            if not path.is_file():
                raise UserError(
                    f"toy model file {path} is missing (it ships with deepforcing)",
                    "reinstall the package, or retrain: `deepforcing-eval toyworld train`",
                )
            files["toyworld/" + name] = path
        return files
    if model in ("tiny", "medium"):
        from deepforcing.model.tiny import ensure_tiny_assets

        tiny = ensure_tiny_assets(PRESETS["tiny"].wan)
        if model == "tiny":
            files["generator/" + tiny.checkpoint.name] = tiny.checkpoint
        root = tiny.text_encoder_dir
        for p in sorted(root.rglob("*")):
            if p.is_file():
                files["diffusers/" + str(p.relative_to(root))] = p
        return files
    from deepforcing.pipeline import DIFFUSERS_COMPONENTS

    files["generator/" + checkpoint_key] = weights.resolve(checkpoint_key, weights_dir)
    lora = weights.get(checkpoint_key).lora
    if lora:  # merged at load: part of the weights' identity
        files["generator/" + lora] = weights.resolve(lora, weights_dir)
    for key in weights.expand(DIFFUSERS_COMPONENTS):
        path = weights.resolve(key, weights_dir)
        files[key] = path
        if weights.get(key).index:
            index = json.loads(path.read_text())
            for shard in sorted(set(index["weight_map"].values())):
                files[f"{key}/{shard}"] = path.parent / shard
    return files


def weights_identity(
    model: str,
    checkpoint_key: str,
    weights_dir: str | os.PathLike | None = None,
    sha_cache: dict | None = None,
    compute: bool = True,
) -> WeightsIdentity:
    """Content identity of the generator's weight files (hashing each file once per machine).

    Raises:
        UserError: A missing file (from the weights registry).
        NotHashedYet: A file not hashed before, with ``compute=False``.
    """
    files = _generator_files(model, checkpoint_key, weights_dir)
    cache = sha_cache if sha_cache is not None else _load_sha_cache()
    shas = {}
    for name, path in sorted(files.items()):
        if not path.is_file():
            raise UserError(f"weight file {path} (for {name}) is missing")
        if path.stat().st_size > 1 << 30:
            log.info("hashing %s (%.1f GB, once per machine)", path.name, path.stat().st_size / 1e9)
        shas[name] = sha256_cached(path, cache, compute)
    if sha_cache is None:
        _save_sha_cache(cache)
    combined = hashlib.sha256(json.dumps(sorted(shas.items())).encode()).hexdigest()[:12]
    ckpt = {"medium": "random-seed0", "tiny": "tiny", "toyworld": "shipped"}.get(model, checkpoint_key)
    return WeightsIdentity(f"{model}:{ckpt}@{combined}", shas)


def check_generator_weights(suite: SuiteConfig, weights_dir: str | os.PathLike | None = None) -> None:
    """Report every missing generator weight file of a suite at once, before any compute.

    Raises:
        UserError: Listing each missing file with the registry's message (where it looked, how to get it).
    """
    from deepforcing import methods

    problems: list[str] = []
    seen: set[str] = set()
    for name in suite.methods:
        ckpt = methods.get(name).checkpoint
        if ckpt in seen:
            continue
        seen.add(ckpt)
        try:
            _generator_files(suite.model, ckpt, weights_dir)
        except UserError as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
    if problems:
        raise UserError(
            f"{len(problems)} generator weight problem(s) for suite '{suite.name}' (model {suite.model}); nothing "
            "was generated:\n  " + "\n  ".join(problems)
        )


# ------------------------------------------------------------------------------------------------ plan
def default_dtype(device: str) -> str:
    """bfloat16 on CUDA, float32 elsewhere (as :class:`deepforcing.pipeline.VideoGenerator`)."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def build_plan(
    suite: SuiteConfig,
    *,
    dtype: str,
    weights_dir: str | os.PathLike | None = None,
    resolve_weights: bool = True,
    hash_new_files: bool = True,
) -> WorkPlan:
    """Expand a suite into work items (method-major, then prompts, then seeds).

    Args:
        suite: A validated suite.
        dtype: Model dtype name (part of every unit key).
        weights_dir: Extra weights directory for the registry.
        resolve_weights: Hash the weight files for the unit keys. When False (a dry run without weights) the
            keys use a placeholder weights id and must not be used to look up videos.
        hash_new_files: Hash weight files that are not in the sha256 cache (False raises NotHashedYet).

    Returns:
        The plan.

    Raises:
        UserError: Missing weights (when ``resolve_weights``).
    """
    from deepforcing import methods

    prompts = select_prompts(suite)
    identities: dict[str, WeightsIdentity] = {}
    cache = _load_sha_cache() if resolve_weights else None
    by_ckpt: dict[str, WeightsIdentity] = {}
    for name in suite.methods:
        ckpt = methods.get(name).checkpoint
        if not resolve_weights:
            identities[name] = WeightsIdentity(f"{suite.model}:{ckpt}@unresolved")
        elif ckpt not in by_ckpt:
            by_ckpt[ckpt] = weights_identity(suite.model, ckpt, weights_dir, sha_cache=cache, compute=hash_new_files)
        identities.setdefault(name, by_ckpt.get(ckpt))
    if cache is not None:
        _save_sha_cache(cache)
    items = []
    for name in suite.methods:
        method = methods.get(name)
        for prompt in prompts:
            for seed in suite.seeds:
                multi = prompt.schedule is not None and len(prompt.schedule.segments) > 1
                unit = UnitKey(
                    method_config_hash=method.config_hash,
                    weights_id=identities[name].weights_id,
                    model=suite.model,
                    prompt_id=prompt.prompt_id,
                    prompt_sha256=prompt.sha256,
                    seed=seed,
                    num_latent_frames=suite.num_latent_frames,
                    dtype=dtype,
                    switch=method.switch if multi else "",
                )
                items.append(WorkItem(name, prompt, seed, unit))
    return WorkPlan(suite, tuple(prompts), tuple(items), dtype, identities if resolve_weights else None)


def video_seconds(latent_frames: int, model: str | None = None) -> float:
    """Seconds of video (Wan: at 16 fps; the model preset's latent and frame rate if given)."""
    return pixel_frames(latent_frames, model) / video_fps(model)

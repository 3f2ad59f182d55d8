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

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deepforcing import ENGINE_VERSION, model_kinds
from deepforcing.configs import config_hash, to_dict
from deepforcing.errors import UserError
from deepforcing.harness.imports import ImportedMethod, ImportedUnit
from deepforcing.harness.prompts import Prompt
from deepforcing.harness.suites import TEMPORAL_COMPRESSION, VIDEO_FPS, SuiteConfig, select_prompts
from deepforcing.weights import NotHashedYet, sha256_cached  # noqa: F401 - one sha256 cache, shared with `weights`
from deepforcing.weights import load_sha_cache as _load_sha_cache
from deepforcing.weights import save_sha_cache as _save_sha_cache

if TYPE_CHECKING:  # pragma: no cover
    from deepforcing.methods import MethodConfig

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
        return model_kinds.preset(model).pixel_frames(latent_frames)
    return 1 + TEMPORAL_COMPRESSION * (latent_frames - 1)


def video_fps(model: str | None = None) -> int:
    """Frame rate of the model preset's videos (16 for Wan)."""
    return model_kinds.preset(model).fps if model is not None else VIDEO_FPS


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
        if not self.switch:  # one prompt: the key of the units written before prompt switching existed
            data = to_dict(self)
            data.pop("switch")
            blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
            return hashlib.sha256(blob.encode()).hexdigest()[:16]
        return config_hash(self, length=16)


@dataclass(frozen=True)
class WorkItem:
    """One (method, prompt, seed) sample of a suite and the unit that produces its video.

    Attributes:
        method: Method name (as the suite lists it).
        prompt: The prompt.
        seed: Seed.
        unit: The content key of its video.
        method_config: The method as it runs on the suite's model (:meth:`ModelKind.resolve_method`), resolved
            once when the plan is built; ``unit.method_config_hash`` is its hash, and every file that describes
            the unit (``unit.json``, ``aggregate.json``) is written from it. An imported method's description for
            an imported video (:mod:`deepforcing.harness.imports`).
    """

    method: str
    prompt: Prompt
    seed: int
    unit: UnitKey | ImportedUnit
    method_config: MethodConfig | ImportedMethod = field(compare=False, hash=False, repr=False)

    @property
    def imported(self) -> bool:
        """True for a video imported from elsewhere (never generated here)."""
        return isinstance(self.unit, ImportedUnit)


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

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method with work in the plan, in report order: the suite's, then the imported ones."""
        present = {it.method for it in self.items}
        return tuple(m for m in dict.fromkeys([*self.suite.methods, *(it.method for it in self.items)]) if m in present)

    def generated_items(self) -> list[WorkItem]:
        """The items the engine generates (imported ones excluded)."""
        return [it for it in self.items if not it.imported]

    def with_imports(self, imports, *, drop_absent: bool = False, store=None) -> WorkPlan:
        """This plan plus the imported methods of a run (see :func:`deepforcing.harness.imports.load_imports`).

        Args:
            imports: ``[(ImportedMethod, [(prompt, index, unit), ...]), ...]``.
            drop_absent: Leave out generated items whose unit is not done in ``store`` (``score-videos`` scores
                what exists and generates nothing).
            store: The run store (with ``drop_absent``).
        """
        suite_names = set(self.suite.methods)
        items = list(self.items)
        if drop_absent:
            items = [it for it in items if store.done_record(it.unit) is not None]
        for method, entries in imports:
            if method.name in suite_names:
                raise UserError(
                    f"imported method '{method.name}' has the name of a method the suite generates",
                    "import it under another --name",
                )
            items += [WorkItem(method.name, prompt, seed, unit, method) for prompt, seed, unit in entries]
        return dataclasses.replace(self, items=tuple(items))

    def method_configs(self) -> dict[str, MethodConfig]:
        """Method name -> its resolved config (what ran), in suite order."""
        out: dict[str, MethodConfig] = {}
        for item in self.items:
            out.setdefault(item.method, item.method_config)
        return out

    def units(self, *, generated_only: bool = False) -> list[WorkItem]:
        """One item per distinct unit key (the first item that needs it), in plan order."""
        seen: set[str] = set()
        out = []
        for item in self.generated_items() if generated_only else self.items:
            if item.unit.key not in seen:
                seen.add(item.unit.key)
                out.append(item)
        return out

    def estimate_seconds(self, items: list[WorkItem] | None = None) -> dict[str, float]:
        """GPU seconds per method on one H100 from :data:`PAPER_FPS` (sampling only, decode excluded)."""
        out: dict[str, float] = {}
        for item in self.units(generated_only=True) if items is None else items:
            fps, _ = paper_fps(item.method)
            out[item.method] = out.get(item.method, 0.0) + pixel_frames(item.unit.num_latent_frames) / fps
        return out


# --------------------------------------------------------------------------------------------- hashing


def weights_identity(
    model: str,
    method: MethodConfig,
    weights_dir: str | os.PathLike | None = None,
    sha_cache: dict | None = None,
    compute: bool = True,
) -> WeightsIdentity:
    """Content identity of the generator's weight files for a resolved method (hashing each file once per machine).

    Raises:
        UserError: A missing file (from the model kind / weights registry).
        NotHashedYet: A file not hashed before, with ``compute=False``.
    """
    kind = model_kinds.get(model)
    files = kind.weight_files(method, weights_dir)
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
    return WeightsIdentity(f"{model}:{kind.weights_label(method)}@{combined}", shas)


def resolve_methods(suite: SuiteConfig) -> dict[str, MethodConfig]:
    """Each method of the suite as it runs on the suite's model (resolved once; see :class:`WorkItem`)."""
    from deepforcing import methods

    kind = model_kinds.get(suite.model)
    return {name: kind.resolve_method(methods.get(name)) for name in suite.methods}


def check_generator_weights(suite: SuiteConfig, weights_dir: str | os.PathLike | None = None) -> None:
    """Report every missing generator weight file of a suite at once, before any compute.

    Raises:
        UserError: Listing each missing file with the registry's message (where it looked, how to get it).
    """
    kind = model_kinds.get(suite.model)
    problems: list[str] = []
    for method in resolve_methods(suite).values():
        for exc in kind.missing_assets(method, weights_dir):
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
    prompts = select_prompts(suite)
    resolved = resolve_methods(suite)
    identities: dict[str, WeightsIdentity] = {}
    cache = _load_sha_cache() if resolve_weights else None
    by_ckpt: dict[str, WeightsIdentity] = {}
    for name, method in resolved.items():
        ckpt = method.checkpoint
        if not resolve_weights:
            identities[name] = WeightsIdentity(f"{suite.model}:{ckpt}@unresolved")
        elif ckpt not in by_ckpt:
            by_ckpt[ckpt] = weights_identity(suite.model, method, weights_dir, sha_cache=cache, compute=hash_new_files)
        identities.setdefault(name, by_ckpt.get(ckpt))
    if cache is not None:
        _save_sha_cache(cache)
    items = []
    for name, method in resolved.items():
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
                items.append(WorkItem(name, prompt, seed, unit, method))
    return WorkPlan(suite, tuple(prompts), tuple(items), dtype, identities if resolve_weights else None)


def video_seconds(latent_frames: int, model: str | None = None) -> float:
    """Seconds of video (Wan: at 16 fps; the model preset's latent and frame rate if given)."""
    return pixel_frames(latent_frames, model) / video_fps(model)

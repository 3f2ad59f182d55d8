"""Model kinds: every generator model the engine can run, each knowing its assets and how to build itself.

A :class:`ModelKind` is a registry entry: the model preset (DiT shape, latent size, frame rate), which files
identify its weights, how a method is adapted to it (:meth:`ModelKind.resolve_method`), and how its DiT, text
encoder and VAE are loaded (:meth:`ModelKind.load`, returning a :class:`LoadedModel` whose text encoder and VAE
load on first use). The pipeline, the harness and the CLI ask the registry and never branch on a model's name,
so a user adds a model by registering a kind::

    from deepforcing import model_kinds
    from deepforcing.model.config import ModelPreset, WanConfig

    kind = model_kinds.from_files("my-finetune", WanConfig.from_json("config.json"), latent_size=(60, 104),
                                  checkpoint="my_generator.safetensors", diffusers_root="Wan2.1-T2V-1.3B-Diffusers")
    model_kinds.register(kind)

Built in: ``wan2.1-t2v-1.3b`` (official weights from the weights registry), ``tiny`` (random tiny weights written
once in the official formats), ``medium`` (random DiT for CPU benchmarks) and ``toyworld`` (the toy model shipped
with the package, :mod:`deepforcing.toyworld.kind`). Importing this module imports no torch.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepforcing.errors import UserError
from deepforcing.model.config import PRESETS, ModelPreset, WanConfig

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from deepforcing.methods import MethodConfig
    from deepforcing.model.wan import CausalWanModel

#: Registry groups of the Diffusers-layout Wan2.1 components the real model needs besides the DiT checkpoint.
DIFFUSERS_COMPONENTS = (
    "wan2.1-t2v-1.3b-diffusers/text_encoder",
    "wan2.1-t2v-1.3b-diffusers/tokenizer",
    "wan2.1-t2v-1.3b-diffusers/vae",
)
#: The parts of a generator model.
PARTS = ("dit", "text_encoder", "vae")


class LoadedModel:
    """A model kind's components for one generator: the DiT now, text encoder and VAE on first use.

    Args:
        dit: The causal Wan DiT on its device and dtype, eval mode, no grad.
        checkpoint: The file the DiT was loaded from (None: random weights).
        text_encoder: Loads the text encoder (``encode(list[str]) -> context [B, Lt, text_dim]``).
        vae: Loads the VAE (``streaming_decoder()`` with ``decode(latents) -> frames``).
    """

    def __init__(
        self,
        dit: CausalWanModel,
        checkpoint: Path | None,
        text_encoder: Callable[[], Any],
        vae: Callable[[], Any],
    ):
        self.dit = dit
        self.checkpoint = checkpoint
        self._load_text_encoder = text_encoder
        self._load_vae = vae

    @functools.cached_property
    def text_encoder(self) -> Any:
        """The text encoder (loaded on first use)."""
        return self._load_text_encoder()

    @functools.cached_property
    def vae(self) -> Any:
        """The VAE (loaded on first use)."""
        return self._load_vae()

    def share(self, other: LoadedModel) -> None:
        """Reuse the text encoder and VAE that ``other`` already loaded (same kind and device)."""
        for name in ("text_encoder", "vae"):
            if name in other.__dict__:
                self.__dict__[name] = other.__dict__[name]

    def check_prompt(self, prompt: str) -> None:
        """Raise a UserError for a prompt this model cannot take (default: every prompt is fine)."""


class ModelKind:
    """One generator model: its preset, its assets and how it is built.

    Args:
        preset: DiT shape, latent size, frame rate and name.
        cpu_threads: Torch threads used on a CPU by default (1 for the small models, None: torch's choice).
        video_crf: x264 CRF of written videos (None: the encoder's default).
        companion_bytes: Bytes the text encoder and VAE keep on the device beside the DiT (memory estimates).
        video_size: (height, width) of written frames (default: the Wan VAE's 8x the latent size).
    """

    def __init__(
        self,
        preset: ModelPreset,
        *,
        cpu_threads: int | None = None,
        video_crf: int | None = None,
        companion_bytes: int = 0,
        video_size: tuple[int, int] | None = None,
    ):
        self.preset = preset
        self.cpu_threads = cpu_threads
        self.video_crf = video_crf
        self.companion_bytes = companion_bytes
        self.video_size = video_size or (8 * preset.latent_height, 8 * preset.latent_width)

    @property
    def name(self) -> str:
        """Registry name (the preset's)."""
        return self.preset.name

    @property
    def description(self) -> str:
        """One line for listings."""
        return self.preset.description

    def resolve_method(self, method: MethodConfig, checkpoint: str | os.PathLike | None = None) -> MethodConfig:
        """The method as it runs on this model with ``checkpoint`` (default: unchanged). Must be idempotent.

        A unit's config (and its hash) is the resolved method: what actually runs.
        """
        return method

    #: Where to find prompts the model reads (shown with :meth:`prompt_problems`).
    prompt_hint = ""

    def prompt_problems(self, prompts: list[str]) -> list[str]:
        """Why each prompt this model cannot read is refused (default: it reads every prompt)."""
        return []

    def weights_label(self, method: MethodConfig) -> str:
        """Short name of the weights a method runs with (part of the unit's weights id)."""
        return method.checkpoint

    def weight_files(self, method: MethodConfig, weights_dir: str | os.PathLike | None = None) -> dict[str, Path]:
        """Every file whose content identifies the generator's weights (name -> path).

        Raises:
            UserError: A file is missing (naming it and how to get it).
        """
        raise NotImplementedError

    def missing_assets(
        self,
        method: MethodConfig,
        weights_dir: str | os.PathLike | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        parts: tuple[str, ...] = PARTS,
    ) -> list[UserError]:
        """Problems with the files of ``parts`` (empty when all are present)."""
        return []

    def check_assets(
        self,
        method: MethodConfig,
        weights_dir: str | os.PathLike | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        parts: tuple[str, ...] = PARTS,
    ) -> None:
        """Fail before any compute if a file of ``parts`` is missing; one error lists every missing file.

        Raises:
            UserError: With the first problem in full and the command that fetches them all.
        """
        problems = self.missing_assets(method, weights_dir, checkpoint=checkpoint, parts=parts)
        if not problems:
            return
        if len(problems) == 1:
            raise problems[0]
        raise UserError(
            f"{len(problems)} weight file(s) missing for {self.name} / {method.name}: "
            + "; ".join(p.message for p in problems),
            problems[0].hint,
        )

    def load(
        self,
        method: MethodConfig,
        *,
        device: torch.device,
        dtype: torch.dtype,
        checkpoint: str | os.PathLike | None = None,
        weights_dir: str | os.PathLike | None = None,
    ) -> LoadedModel:
        """Load the DiT (``checkpoint`` overrides the method's) and prepare the other parts' loaders."""
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------- helpers
def _prepare_dit(dit: CausalWanModel, device: torch.device, dtype: torch.dtype) -> CausalWanModel:
    return dit.to(device, dtype).eval().requires_grad_(False)


def _dit_from_file(
    cfg: WanConfig, path: Path, state_key: str | None = None, lora: tuple[Path, int, float] | None = None
) -> CausalWanModel:
    from deepforcing.model.checkpoint import load_generator
    from deepforcing.model.wan import CausalWanModel

    model = CausalWanModel(cfg)
    load_generator(model, path, state_key, lora)
    return model


def _checkpoint_problem(checkpoint: str | os.PathLike) -> UserError | None:
    path = Path(checkpoint)
    if path.is_file():
        return None
    what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
    return UserError(f"checkpoint {path} {what}", "pass the generator's .pt / .safetensors file with --checkpoint")


def _umt5(root: Path, preset: ModelPreset, device, dtype):
    from deepforcing.model.text_encoder import UMT5TextEncoder

    return UMT5TextEncoder.from_diffusers(root, text_len=preset.wan.text_len, dtype=dtype, device=device)


def _wan_vae(vae_dir: Path, device, dtype):
    from deepforcing.model.vae import WanVAE

    return WanVAE.from_diffusers(vae_dir, dtype=dtype, device=device)


def _dir_files(prefix: str, root: Path) -> dict[str, Path]:
    return {f"{prefix}/{p.relative_to(root)}": p for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- built-ins
class WanCheckpointModel(ModelKind):
    """Wan2.1-T2V-1.3B from the weights registry.

    The generator checkpoint is the method's ``checkpoint`` key; the UMT5 text encoder and the Wan VAE are the
    Diffusers-layout components.
    """

    def weight_files(self, method, weights_dir=None):
        """See :meth:`ModelKind.weight_files`."""
        from deepforcing import weights

        files = {"generator/" + method.checkpoint: weights.resolve(method.checkpoint, weights_dir)}
        lora = weights.get(method.checkpoint).lora
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

    def missing_assets(self, method, weights_dir=None, *, checkpoint=None, parts=PARTS):
        """See :meth:`ModelKind.missing_assets`."""
        from deepforcing import weights

        keys: list[str] = []
        problems: list[UserError] = []
        if "dit" in parts:
            if checkpoint is None:
                keys.append(method.checkpoint)
                lora = weights.get(method.checkpoint).lora
                if lora:  # LongLive: base + LoRA merged at load
                    keys.append(lora)
            elif (bad := _checkpoint_problem(checkpoint)) is not None:
                problems.append(bad)
        if "text_encoder" in parts:
            keys += weights.expand(DIFFUSERS_COMPONENTS[:2])
        if "vae" in parts:
            keys += weights.expand(DIFFUSERS_COMPONENTS[2:])
        groups = []
        for key in keys:
            try:
                weights.resolve(key, weights_dir)
            except UserError as exc:
                problems.append(exc)
                group = key if key == method.checkpoint else key.rsplit("/", 1)[0]
                groups.append(group if group in DIFFUSERS_COMPONENTS or group == method.checkpoint else key)
        if groups:  # one command that fetches every missing file
            cmd = f"run `deepforcing-eval weights download {' '.join(dict.fromkeys(groups))}`"
            problems = [UserError(p.message, cmd) for p in problems]
        return problems

    def load(self, method, *, device, dtype, checkpoint=None, weights_dir=None):
        """See :meth:`ModelKind.load`."""
        from deepforcing import weights

        path = Path(checkpoint) if checkpoint is not None else weights.resolve(method.checkpoint, weights_dir)
        if (bad := _checkpoint_problem(path)) is not None:
            raise bad
        state_key = lora = None
        if checkpoint is None:  # the registry entry says which sub-dict to read and which LoRA to merge
            entry = weights.get(method.checkpoint)
            state_key = entry.state_key
            if entry.lora:  # merged exactly at load (LongLive)
                lora = (weights.resolve(entry.lora, weights_dir), entry.lora_rank, entry.lora_alpha)
        dit = _prepare_dit(_dit_from_file(self.preset.wan, path, state_key, lora), device, dtype)

        def text_encoder():
            self.check_assets(method, weights_dir, parts=("text_encoder",))
            key = "wan2.1-t2v-1.3b-diffusers/text_encoder/config.json"
            return _umt5(weights.resolve(key, weights_dir).parents[1], self.preset, device, dtype)

        def vae():
            self.check_assets(method, weights_dir, parts=("vae",))
            return _wan_vae(
                weights.resolve_dir("wan2.1-t2v-1.3b-diffusers/vae/config.json", weights_dir), device, dtype
            )

        return LoadedModel(dit, path, text_encoder, vae)


class TinyRandomModel(ModelKind):
    """The tiny model: random weights written once (under the user cache) in the official formats.

    Args:
        preset: The preset (``tiny``: the generator checkpoint is the tiny asset; ``medium``: a bigger random DiT
            built in memory from a fixed seed, with the tiny text encoder and VAE).
        random_dit: Build the DiT in memory (seed 0) instead of loading the tiny checkpoint.
    """

    def __init__(self, preset: ModelPreset, *, random_dit: bool = False):
        super().__init__(preset, cpu_threads=1)
        self.random_dit = random_dit

    @staticmethod
    def _assets():
        from deepforcing.model.tiny import ensure_tiny_assets

        return ensure_tiny_assets(PRESETS["tiny"].wan)

    def weights_label(self, method):
        """See :meth:`ModelKind.weights_label`."""
        return "random-seed0" if self.random_dit else "tiny"

    def weight_files(self, method, weights_dir=None):
        """See :meth:`ModelKind.weight_files`."""
        tiny = self._assets()
        files = {} if self.random_dit else {"generator/" + tiny.checkpoint.name: tiny.checkpoint}
        return {**files, **_dir_files("diffusers", tiny.text_encoder_dir)}

    def missing_assets(self, method, weights_dir=None, *, checkpoint=None, parts=PARTS):
        """See :meth:`ModelKind.missing_assets`."""
        bad = _checkpoint_problem(checkpoint) if checkpoint is not None and "dit" in parts else None
        return [bad] if bad is not None else []  # the tiny files are written on first use

    def load(self, method, *, device, dtype, checkpoint=None, weights_dir=None):
        """See :meth:`ModelKind.load`."""
        if checkpoint is not None:
            path: Path | None = Path(checkpoint)
            if (bad := _checkpoint_problem(path)) is not None:
                raise bad
            dit = _dit_from_file(self.preset.wan, path)
        elif self.random_dit:
            from deepforcing.model.tiny import build_random_generator

            path, dit = None, build_random_generator(self.preset.wan, seed=0)
        else:
            path = self._assets().checkpoint
            dit = _dit_from_file(self.preset.wan, path)
        return LoadedModel(
            _prepare_dit(dit, device, dtype),
            path,
            lambda: _umt5(self._assets().text_encoder_dir, self.preset, device, dtype),
            lambda: _wan_vae(self._assets().vae_dir, device, dtype),
        )


class FilesModel(ModelKind):
    """A Wan-architecture model from explicit files (a fine-tune, a converted checkpoint, a smaller config).

    Args:
        preset: Name, DiT shape and latent size.
        checkpoint: Generator checkpoint (Self-Forcing ``.pt`` layouts or a safetensors state dict).
        diffusers_root: Diffusers-layout pipeline root holding ``text_encoder/``, ``tokenizer/`` and ``vae/``
            (optional: needed only to encode prompts and to decode videos).
        cpu_threads: Default torch threads on a CPU.
        companion_bytes: Device bytes of its text encoder and VAE (memory estimates).
    """

    def __init__(
        self,
        preset: ModelPreset,
        checkpoint: str | os.PathLike,
        diffusers_root: str | os.PathLike | None = None,
        *,
        cpu_threads: int | None = None,
        companion_bytes: int = 0,
    ):
        super().__init__(preset, cpu_threads=cpu_threads, companion_bytes=companion_bytes)
        self.checkpoint = Path(checkpoint)
        self.diffusers_root = Path(diffusers_root) if diffusers_root is not None else None

    def weights_label(self, method):
        """See :meth:`ModelKind.weights_label`."""
        return self.checkpoint.name

    def weight_files(self, method, weights_dir=None):
        """See :meth:`ModelKind.weight_files`."""
        problems = self.missing_assets(method, weights_dir)
        if problems:
            raise problems[0]
        return {"generator/" + self.checkpoint.name: self.checkpoint, **_dir_files("diffusers", self.diffusers_root)}

    def missing_assets(self, method, weights_dir=None, *, checkpoint=None, parts=PARTS):
        """See :meth:`ModelKind.missing_assets`."""
        problems = []
        if "dit" in parts and (bad := _checkpoint_problem(checkpoint or self.checkpoint)) is not None:
            problems.append(bad)
        for part in ("text_encoder", "vae"):
            if part not in parts:
                continue
            if self.diffusers_root is None:
                problems.append(
                    UserError(
                        f"model '{self.name}' has no {part.replace('_', ' ')}",
                        "give diffusers_root (a Diffusers pipeline folder), or pass context= / output=None",
                    )
                )
            elif not (self.diffusers_root / part / "config.json").is_file():
                problems.append(UserError(f"{self.diffusers_root / part / 'config.json'} not found"))
        return problems

    def load(self, method, *, device, dtype, checkpoint=None, weights_dir=None):
        """See :meth:`ModelKind.load`."""
        self.check_assets(method, checkpoint=checkpoint, parts=("dit",))
        path = Path(checkpoint) if checkpoint is not None else self.checkpoint

        def text_encoder():
            self.check_assets(method, parts=("text_encoder",))
            return _umt5(self.diffusers_root, self.preset, device, dtype)

        def vae():
            self.check_assets(method, parts=("vae",))
            return _wan_vae(self.diffusers_root / "vae", device, dtype)

        return LoadedModel(_prepare_dit(_dit_from_file(self.preset.wan, path), device, dtype), path, text_encoder, vae)


def from_files(
    name: str,
    wan: WanConfig,
    *,
    latent_size: tuple[int, int],
    checkpoint: str | os.PathLike,
    diffusers_root: str | os.PathLike | None = None,
    fps: int = 16,
    frames_per_latent: int = 4,
    description: str = "",
) -> FilesModel:
    """A model kind for a Wan-architecture checkpoint on disk (register it, or pass it to ``VideoGenerator``).

    Args:
        name: Registry name.
        wan: DiT shape (e.g. :meth:`WanConfig.from_json` of the model's ``config.json``).
        latent_size: Latent (height, width): pixels / 8 for the Wan VAE.
        checkpoint: Generator checkpoint file.
        diffusers_root: Diffusers pipeline root with ``text_encoder/``, ``tokenizer/``, ``vae/`` (optional).
        fps: Frame rate of decoded videos.
        frames_per_latent: Video frames per latent frame after the first (Wan VAE: 4).
        description: One line for listings.
    """
    preset = ModelPreset(
        name, wan, latent_size[0], latent_size[1], description or f"{name} from {checkpoint}", frames_per_latent, fps
    )
    return FilesModel(preset, checkpoint, diffusers_root)


# ------------------------------------------------------------------------------------------- registry
_BUILTIN: dict[str, str | Callable[[], ModelKind]] = {
    # umT5-XXL encoder (~11.4 GB in bf16) and the Wan VAE (~0.5 GB in fp32) beside the DiT.
    "wan2.1-t2v-1.3b": lambda: WanCheckpointModel(PRESETS["wan2.1-t2v-1.3b"], companion_bytes=11_910_000_000),
    "tiny": lambda: TinyRandomModel(PRESETS["tiny"]),
    "medium": lambda: TinyRandomModel(PRESETS["medium"], random_dit=True),
    "toyworld": "deepforcing.toyworld.kind:ToyWorldModel",
}
_registry: dict[str, ModelKind] = {}


def register(kind: ModelKind, *, replace: bool = False) -> ModelKind:
    """Add a model kind under its preset name.

    Raises:
        UserError: The name is taken (unless ``replace``).
    """
    if not replace and (kind.name in _registry or kind.name in _BUILTIN):
        raise UserError(f"model '{kind.name}' is already registered", "pick another name or pass replace=True")
    _registry[kind.name] = kind
    return kind


def available() -> list[str]:
    """Registered model names, sorted."""
    return sorted({*_BUILTIN, *_registry})


def preset(name: str) -> ModelPreset:
    """The preset of a registered model without building its kind (no imports beyond the registry)."""
    if name in _registry:
        return _registry[name].preset
    if name in PRESETS:
        return PRESETS[name]
    return get(name).preset


def get(name: str | ModelKind) -> ModelKind:
    """Resolve a model name (a kind is returned as is).

    Raises:
        UserError: Unknown name (with a close match and the choices).
    """
    if isinstance(name, ModelKind):
        return name
    if name not in _registry:
        factory = _BUILTIN.get(name)
        if factory is None:
            close = difflib.get_close_matches(str(name), available(), n=1)
            hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(available())}"
            raise UserError(f"unknown model '{name}'", hint)
        if isinstance(factory, str):
            module, cls = factory.split(":")
            factory = getattr(importlib.import_module(module), cls)
        _registry[name] = factory()
    return _registry[name]

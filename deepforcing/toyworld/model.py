"""The toy-world generator bundle: causal Wan DiT + caption embedding + vocabulary + model card, on disk and loaded.

Files of a bundle directory (the shipped one is ``deepforcing/toyworld/weights/``):

* ``generator.safetensors`` — the DiT in original Wan parameter names (loaded strictly through
  ``deepforcing.model.checkpoint``), stored as float16, loaded as float32;
* ``text_encoder.safetensors`` — ``token_embedding.weight`` and ``position_embedding`` of the caption embedding;
* ``vocab.json`` — the caption vocabulary (index 0 = padding);
* ``autoencoder.safetensors`` — the toy autoencoder (the model's "VAE", :mod:`deepforcing.toyworld.autoencoder`),
  float32, with its latent normalisation; its shape is in the card's ``latent``;
* ``card.json`` — machine-readable model card: model preset, world and training configs, the sampling
  settings the model is meant to be used with, and what the training run did (steps, time, final loss);
* ``MODEL_CARD.md`` — the same, for people.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepforcing.errors import UserError
from deepforcing.methods import MethodConfig
from deepforcing.model.checkpoint import load_weights, read_state_dict
from deepforcing.model.config import PRESETS, ModelPreset
from deepforcing.model.wan import CausalWanModel
from deepforcing.toyworld.autoencoder import ToyAutoencoder
from deepforcing.toyworld.kind import BUNDLE_FILES, SHIPPED_DIR
from deepforcing.toyworld.text import ToyTextEncoder, default_vocab

log = logging.getLogger(__name__)

PRESET_NAME = "toyworld"
GENERATOR_FILE, TEXT_FILE, VOCAB_FILE, CARD_FILE, AUTOENCODER_FILE = BUNDLE_FILES


@dataclass(frozen=True)
class ToySampling:
    """How the toy student is sampled with the chunk-wise engine (recorded in the bundle's card).

    The student is distilled for the chunk-wise settings of the ``self-forcing`` method preset (Self-Forcing's
    DMD sampler: 4 warped steps, shift 5, fresh re-noising), so every chunk-wise method runs on it with its own
    preset unchanged; the defaults are those settings.

    Attributes:
        denoising_steps: Nominal timesteps, warped onto the shifted schedule.
        shift: Schedule shift.
        warp: Warp the nominal steps (as Self-Forcing).
        renoise: ``fresh`` (a fresh Gaussian draw between steps, as Self-Forcing) or ``predicted``.
    """

    denoising_steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    warp: bool = True
    renoise: str = "fresh"


def toy_preset() -> ModelPreset:
    """The ``toyworld`` model preset."""
    return PRESETS[PRESET_NAME]


def toy_method(method: MethodConfig, sampling: ToySampling) -> MethodConfig:
    """The same method with the toy model's sampler settings (policy, chunking and context timestep kept).

    The rolling sampler holds one chunk per step in its window, so for it only ``shift`` and ``warp`` are
    replaced (the toy model was not trained for rolling-window denoising; results are for curiosity).
    """
    cfg = method.sampler_config
    if method.sampler == "rolling":
        new = dataclasses.replace(cfg, shift=sampling.shift, warp=sampling.warp)
    else:
        new = dataclasses.replace(
            cfg,
            denoising_steps=tuple(sampling.denoising_steps),
            shift=sampling.shift,
            warp=sampling.warp,
            renoise=sampling.renoise,
        )
    return dataclasses.replace(method, sampler_config=new, checkpoint="toyworld")


@dataclass
class ToyModel:
    """A loaded toy generator.

    Attributes:
        dit: The causal Wan DiT (``toyworld`` preset), eval mode, no grad.
        text_encoder: The caption embedding.
        autoencoder: The latent space (frames ↔ latents).
        card: The bundle's ``card.json`` contents.
        sampling: Sampler settings the model is used with.
        path: The bundle folder it was loaded from.
        generator_path: The DiT weights file (``path/generator.safetensors`` unless another file was given).
    """

    dit: CausalWanModel
    text_encoder: ToyTextEncoder
    autoencoder: ToyAutoencoder
    card: dict[str, Any]
    sampling: ToySampling
    path: Path
    generator_path: Path | None = None

    @torch.no_grad()
    def context(self, captions: list[str]) -> torch.Tensor:
        """Text context [B, text_len, text_dim] for ``dit.encode_text``."""
        return self.text_encoder.encode(captions).to(self.dit.dtype)


def new_text_encoder(preset: ModelPreset | None = None) -> ToyTextEncoder:
    """A freshly initialised caption embedding for the preset's text size."""
    cfg = (preset or toy_preset()).wan
    return ToyTextEncoder(default_vocab(), cfg.text_dim, cfg.text_len)


def save_bundle(
    directory: str | Path,
    dit: CausalWanModel,
    text_encoder: ToyTextEncoder,
    autoencoder: ToyAutoencoder,
    card: dict[str, Any],
) -> Path:
    """Write a bundle (DiT and captions as float16, autoencoder as float32, vocabulary, card); returns the folder."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in dit.state_dict().items()}
    save_file(half, str(directory / GENERATOR_FILE), metadata={"format": "pt", "preset": PRESET_NAME})
    text = {k: v.detach().to(torch.float16).contiguous() for k, v in text_encoder.state_dict().items()}
    save_file(text, str(directory / TEXT_FILE), metadata={"format": "pt"})
    ae = {k: v.detach().to(torch.float32).contiguous() for k, v in autoencoder.state_dict().items()}
    save_file(ae, str(directory / AUTOENCODER_FILE), metadata={"format": "pt"})
    (directory / VOCAB_FILE).write_text(json.dumps(list(text_encoder.vocab), indent=1) + "\n")
    (directory / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return directory


def locate_bundle(path: str | Path | None = None) -> tuple[Path, Path]:
    """The bundle folder and the DiT weights file for a ``--checkpoint`` / ``--weights`` argument.

    Accepted: a bundle folder; any file of a bundle (``generator.safetensors``, ``card.json`` …); or a DiT weights
    file under another name (e.g. a copy or a fine-tune), whose folder supplies the caption encoder, vocabulary
    and card.

    Returns:
        ``(bundle folder, generator weights file)``.

    Raises:
        UserError: The path does not exist.
    """
    p = Path(path) if path is not None else SHIPPED_DIR
    if p.is_dir():
        return p, p / GENERATOR_FILE
    if p.is_file():
        return p.parent, p if p.name not in BUNDLE_FILES else p.parent / GENERATOR_FILE
    raise UserError(
        f"toy model {p} not found",
        "give a toy bundle folder or its generator.safetensors (default: the shipped weights)",
    )


def load_toy_model(directory: str | Path | None = None, device: str | torch.device = "cpu") -> ToyModel:
    """Load a toy bundle (default: the shipped weights) with strict key and shape checks.

    Args:
        directory: A bundle folder, a file of one, or the DiT weights file itself (see :func:`locate_bundle`).
        device: Where the model goes.

    Raises:
        UserError: A file is missing, or the weights / vocabulary do not match the ``toyworld`` preset.
    """
    directory, generator = locate_bundle(directory)
    for name in BUNDLE_FILES:
        path = generator if name == GENERATOR_FILE else directory / name
        if not path.is_file():
            raise UserError(
                f"toy model file {path} is missing"
                + (f" (the weights {generator.name} take the other bundle files from their folder)"
                   if generator.name != GENERATOR_FILE else ""),
                "train one with `deepforcing-eval toyworld train --out DIR` or use the shipped weights",
            )  # fmt: skip
    preset = toy_preset()
    card = json.loads((directory / CARD_FILE).read_text())
    if card.get("preset") != PRESET_NAME or card.get("wan") != json.loads(json.dumps(dataclasses.asdict(preset.wan))):
        raise UserError(
            f"{directory / CARD_FILE} describes a different model than the '{PRESET_NAME}' preset",
            "retrain with this version of deepforcing (`deepforcing-eval toyworld train`)",
        )
    vocab = json.loads((directory / VOCAB_FILE).read_text())
    if tuple(vocab) != default_vocab():
        raise UserError(f"{directory / VOCAB_FILE} does not match this version's caption vocabulary")
    dit = CausalWanModel(preset.wan)
    load_weights(dit, read_state_dict(generator), source=str(generator))
    text = new_text_encoder(preset)
    load_weights(text, read_state_dict(directory / TEXT_FILE), source=str(directory / TEXT_FILE))
    shape = card.get("latent", {})
    if shape.get("kind") != "autoencoder" or shape.get("channels") != preset.wan.in_dim:
        raise UserError(
            f"{directory / CARD_FILE} describes a latent this version cannot decode ({shape.get('kind')})",
            "retrain with this version of deepforcing (`deepforcing-eval toyworld train`)",
        )
    autoencoder = ToyAutoencoder(shape["channels"], shape["width"])
    load_weights(autoencoder, read_state_dict(directory / AUTOENCODER_FILE), source=str(directory / AUTOENCODER_FILE))
    sampling = ToySampling(**{k: tuple(v) if isinstance(v, list) else v for k, v in card["sampling"].items()})
    dit = dit.to(device).eval().requires_grad_(False)
    text = text.to(device).eval().requires_grad_(False)
    autoencoder = autoencoder.to(device).eval().requires_grad_(False)
    return ToyModel(dit, text, autoencoder, card, sampling, directory, generator)

"""The toy model as a model kind (``toyworld``): the engine's own generator runs it like any other model.

``VideoGenerator("toyworld", method)`` (and so ``deepforcing-eval generate --model toyworld`` and the smoke suite)
runs the toy model through the same chunk loop, cache policies, noise streams and mp4 writer as the real model.
Only the components differ:

* the DiT and its caption embedding come from a toy bundle (default: the shipped ``weights/``; ``--checkpoint``
  takes a bundle folder, any file in it, or a DiT weights file under another name whose folder holds the rest);
* the "text encoder" is the caption embedding (captions must parse in the toy grammar);
* the "VAE" is the bundle's toy autoencoder, decoded frame by frame (one latent frame = one video frame) and
  upscaled 4× with nearest neighbour to 128×128 px, because H.264's 4:2:0 chroma would smear 32×32 colours;
* the method keeps its cache policy and chunking and takes the sampler settings of the bundle's card
  (:meth:`ToyWorldModel.resolve_method`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepforcing.errors import UserError
from deepforcing.model.config import PRESETS
from deepforcing.model_kinds import LoadedModel, ModelKind

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from deepforcing.model.text_encoder import PromptTokens
    from deepforcing.toyworld.autoencoder import ToyAutoencoder
    from deepforcing.toyworld.model import ToyModel

#: The shipped bundle (``deepforcing/toyworld/weights``).
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
#: Files that make a bundle (their content identifies the weights of a toy run).
BUNDLE_FILES = (
    "generator.safetensors",
    "text_encoder.safetensors",
    "vocab.json",
    "card.json",
    "autoencoder.safetensors",
)
#: Nearest-neighbour upscale of written frames (32×32 → 128×128).
VIDEO_SCALE = 4


def bundle_dir(checkpoint: str | Path | None = None) -> Path:
    """The bundle folder of ``checkpoint`` (a bundle folder or a file in one; default: the shipped bundle)."""
    if checkpoint is None:
        return SHIPPED_DIR
    path = Path(checkpoint)
    return path.parent if path.is_file() else path


class ToyCodec:
    """The toy autoencoder seen through the VAE interface the generator uses (``streaming_decoder``).

    Args:
        autoencoder: The bundle's :class:`~deepforcing.toyworld.autoencoder.ToyAutoencoder`.
        scale: Nearest-neighbour upscale of the decoded frames.
    """

    def __init__(self, autoencoder: ToyAutoencoder, scale: int = VIDEO_SCALE):
        self.autoencoder = autoencoder
        self.scale = scale

    def streaming_decoder(self) -> ToyCodec:
        """The latent has no temporal context: every chunk decodes on its own."""
        return self

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, C, 8, 8] -> frames [B, T, 3, 32·s, 32·s] in [-1, 1] (quantised to uint8 levels)."""
        import torch
        import torch.nn.functional as F

        frames = self.autoencoder.decode(latents.float().cpu())  # uint8 [B, T, 32, 32, 3]
        x = frames.movedim(-1, -3).to(torch.float32) / 127.5 - 1.0  # [B, T, 3, 32, 32]
        b, t = x.shape[:2]
        x = F.interpolate(x.reshape(b * t, *x.shape[2:]), scale_factor=self.scale, mode="nearest")
        return x.reshape(b, t, *x.shape[1:])


class _CaptionEncoder:
    """The caption embedding with the text-encoder interface (``encode(prompts)`` -> context)."""

    def __init__(self, toy: ToyModel):
        self.toy = toy

    def count_tokens(self, prompt: str) -> PromptTokens:
        """The caption's phrase tokens against the encoder's slots (a caption that does not fit is refused).

        Raises:
            UserError: The prompt is not a caption of the toy grammar.
        """
        from deepforcing.model.text_encoder import PromptTokens
        from deepforcing.toyworld.text import caption_phrases
        from deepforcing.toyworld.world import parse_caption

        filled = sum(1 for words in caption_phrases(parse_caption(prompt)) if words)
        return PromptTokens(filled, self.toy.text_encoder.text_len)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        from deepforcing.toyworld.world import parse_caption

        for p in prompts:
            parse_caption(p)  # one clear error for a prompt outside the toy grammar
        return self.toy.context(prompts)


class _LoadedToy(LoadedModel):
    def check_prompt(self, prompt: str) -> None:
        from deepforcing.toyworld.world import parse_caption

        parse_caption(prompt)


class ToyWorldModel(ModelKind):
    """The ``toyworld`` model kind.

    Args:
        toy: An already loaded toy model to run instead of loading a bundle (training evaluation, experiments).
    """

    def __init__(self, toy: ToyModel | None = None):
        # Near-lossless x264: the oracle reads colours; 32x32 frames are written 4x upscaled.
        super().__init__(PRESETS["toyworld"], cpu_threads=1, video_crf=12, video_size=(32 * VIDEO_SCALE,) * 2)
        self.toy = toy

    def _card(self, checkpoint: str | Path | None) -> dict[str, Any]:
        if self.toy is not None and checkpoint is None:
            return self.toy.card
        path = bundle_dir(checkpoint) / "card.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise UserError(
                f"toy model file {path} is missing",
                "train one with `deepforcing-eval toyworld train --out DIR` or use the shipped weights",
            ) from exc

    def resolve_method(self, method, checkpoint: str | Path | None = None):
        """The method with the bundle card's sampler settings (policy, chunking and context timestep kept)."""
        from deepforcing.toyworld.model import ToySampling, toy_method

        sampling = self._card(checkpoint)["sampling"]
        return toy_method(
            method, ToySampling(**{k: tuple(v) if isinstance(v, list) else v for k, v in sampling.items()})
        )

    prompt_hint = "the toyworld prompt set holds captions it reads (`deepforcing-eval toyworld captions`)"

    def prompt_problems(self, prompts):
        """Prompts outside the toy grammar (the caption embedding cannot read them)."""
        from deepforcing.toyworld.world import parse_caption

        problems = []
        for text in prompts:
            try:
                parse_caption(text)
            except UserError as exc:
                problems.append(exc.message)
        return problems

    def weights_label(self, method):
        """See :meth:`ModelKind.weights_label`."""
        return "shipped" if self.toy is None else "in-memory"

    def weight_files(self, method, weights_dir=None):
        """See :meth:`ModelKind.weight_files`."""
        if self.toy is not None:
            raise UserError("an in-memory toy model has no weight files to identify it", "save it as a bundle first")
        problems = self.missing_assets(method)
        if problems:
            raise problems[0]
        return {"toyworld/" + name: SHIPPED_DIR / name for name in BUNDLE_FILES}

    def missing_assets(self, method, weights_dir=None, *, checkpoint=None, parts=("dit",)):
        """See :meth:`ModelKind.missing_assets`."""
        if self.toy is not None and checkpoint is None:
            return []
        folder = bundle_dir(checkpoint)
        if checkpoint is not None and not Path(checkpoint).exists():
            return [
                UserError(
                    f"toy model {checkpoint} not found",
                    "give a toy bundle folder or its generator.safetensors (default: the shipped weights)",
                )
            ]
        hint = (
            "reinstall the package, or retrain: `deepforcing-eval toyworld train`"
            if checkpoint is None
            else "give a bundle written by `deepforcing-eval toyworld train --out DIR` (the folder or a file in it)"
        )
        own_weights = (
            checkpoint is not None and Path(checkpoint).is_file() and Path(checkpoint).name not in BUNDLE_FILES
        )
        return [
            UserError(f"toy model file {folder / name} is missing", hint)
            for name in BUNDLE_FILES
            if not (folder / name).is_file() and not (own_weights and name == BUNDLE_FILES[0])
        ]

    def load(self, method, *, device, dtype, checkpoint=None, weights_dir=None):
        """See :meth:`ModelKind.load`."""
        from deepforcing.toyworld.model import load_toy_model

        self.check_assets(method, checkpoint=checkpoint)
        preloaded = self.toy is not None and checkpoint is None
        toy = self.toy if preloaded else load_toy_model(checkpoint, device)  # a bundle folder or a file of one
        dit = toy.dit.to(device, dtype).eval().requires_grad_(False)
        weights = toy.generator_path or Path(toy.path) / BUNDLE_FILES[0]
        return _LoadedToy(dit, weights, lambda: _CaptionEncoder(toy), lambda: ToyCodec(toy.autoencoder))

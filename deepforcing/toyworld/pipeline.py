"""The toy model behind the engine's own :class:`~deepforcing.pipeline.VideoGenerator` interface.

:class:`ToyVideoGenerator` is what ``deepforcing.pipeline.create_generator("toyworld", method)`` returns, so the
harness (``--suite smoke``) and ``deepforcing-eval generate --model toyworld`` run the toy model through the same
chunk loop, cache policies, noise streams and mp4 writer as the real model. Only the components differ:

* the DiT and its caption embedding come from a toy bundle (default: the shipped ``weights/``);
* the "text encoder" is the caption embedding (captions must parse in the toy grammar);
* the "VAE" is the exact pixel-unshuffle latent, decoded frame by frame (one latent frame = one video frame) and
  upscaled 4× with nearest neighbour to 128×128 px, because H.264's 4:2:0 chroma would smear 32×32 colours;
* the method keeps its cache policy and chunking and takes the sampler settings of the bundle's card
  (:func:`deepforcing.toyworld.model.toy_method`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from deepforcing import methods
from deepforcing.errors import UserError
from deepforcing.model.text_encoder import PromptTokens
from deepforcing.model.wan import CausalWanModel
from deepforcing.pipeline import GenerationResult, VideoGenerator
from deepforcing.toyworld import latent
from deepforcing.toyworld.model import GENERATOR_FILE, ToyModel, load_toy_model, locate_bundle, toy_method
from deepforcing.toyworld.world import caption_words, parse_caption

#: Nearest-neighbour upscale of written frames (32×32 → 128×128).
VIDEO_SCALE = 4


class ToyCodec:
    """The pixel-unshuffle latent seen through the VAE interface the generator uses (``streaming_decoder``)."""

    def __init__(self, scale: int = VIDEO_SCALE):
        self.scale = scale

    def streaming_decoder(self) -> ToyCodec:
        """The latent has no temporal context: every chunk decodes on its own."""
        return self

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, T, 48, 8, 8] -> frames [B, T, 3, 32·s, 32·s] in [-1, 1] (quantised to uint8 levels)."""
        frames = latent.decode(latents.float().cpu())  # uint8 [B, T, 32, 32, 3]
        x = frames.movedim(-1, -3).to(torch.float32) / 127.5 - 1.0  # [B, T, 3, 32, 32]
        b, t = x.shape[:2]
        x = F.interpolate(x.reshape(b * t, *x.shape[2:]), scale_factor=self.scale, mode="nearest")
        return x.reshape(b, t, *x.shape[1:])


class _CaptionEncoder:
    """The caption embedding with the text-encoder interface (``encode(prompts)`` -> context)."""

    def __init__(self, toy: ToyModel):
        self.toy = toy

    def count_tokens(self, prompt: str) -> PromptTokens:
        """The caption's words against the embedding's length (longer captions are refused, never cut)."""
        return PromptTokens(len(caption_words(prompt)), self.toy.text_encoder.text_len)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        for p in prompts:
            parse_caption(p)  # one clear error for a prompt outside the toy grammar
        return self.toy.context(prompts)


class ToyVideoGenerator(VideoGenerator):
    """A :class:`VideoGenerator` for the ``toyworld`` preset.

    Args:
        model: Must be ``toyworld``.
        method: Method name; its sampler settings are replaced by the bundle's.
        device: ``cpu`` / ``cuda``.
        dtype: Model dtype (default float32; the toy model is small).
        checkpoint: A toy bundle folder, or its weights file (default: the shipped weights).
        weights_dir: Unused (the toy weights are part of the package).
        share_from: Unused (the caption embedding is part of the bundle).
        toy: An already loaded toy model to use instead of loading ``checkpoint``.
    """

    #: Near-lossless encoding: the oracle segments colours of the decoded video.
    video_crf = 12

    def __init__(
        self,
        model: str = "toyworld",
        method: str = "self-forcing",
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        checkpoint: str | Path | None = None,
        weights_dir: str | Path | None = None,
        share_from: VideoGenerator | None = None,
        toy: ToyModel | None = None,
    ):
        self._preloaded = toy
        if model != "toyworld":
            raise UserError(f"ToyVideoGenerator runs the 'toyworld' preset, not '{model}'")
        super().__init__(
            model,
            method,
            device=device or "cpu",
            dtype=dtype or torch.float32,
            checkpoint=checkpoint,
            weights_dir=weights_dir,
        )
        self.method = toy_method(methods.get(method), self.toy.sampling)
        self.sampler = methods.build_sampler(self.method)
        self._text_encoder = _CaptionEncoder(self.toy)
        self._vae = ToyCodec()

    def _locate_assets(self, checkpoint: str | Path | None) -> dict[str, Path]:
        if self._preloaded is not None:
            bundle, generator = self._preloaded.path, self._preloaded.generator_path
            generator = generator or bundle / GENERATOR_FILE
        else:  # a bundle folder, or the weights file itself (its folder holds the rest of the bundle)
            bundle, generator = locate_bundle(checkpoint)
        return {"checkpoint": generator, "bundle": bundle}

    def _load_model(self) -> CausalWanModel:
        self.toy = self._preloaded or load_toy_model(self._assets["checkpoint"], device=self.device)
        return self.toy.dit.to(self.device, self.dtype)

    def generate(self, prompt: str, **kwargs) -> GenerationResult:
        """Generate one toy video (see :meth:`VideoGenerator.generate`); the prompt must be a toy caption."""
        if prompt and prompt.strip():
            parse_caption(prompt)
        return super().generate(prompt, **kwargs)

"""Generate toy-world videos with any named method on the toy model (the hook the smoke suite calls).

:func:`generate_toy_video` runs the engine's own sampler and cache policy for a method (with the toy model's
sampler settings, :func:`deepforcing.toyworld.model.toy_method`) from a caption and ``(prompt_id, seed)``
noise, and returns uint8 frames; :func:`generate_and_score` also runs the oracle on fixed segments.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepforcing import methods
from deepforcing.toyworld.model import ToyModel, load_toy_model

log = logging.getLogger(__name__)

#: Trained horizon of the shipped toy model in latent (= video) frames.
TRAINED_HORIZON = 21


@dataclass
class ToyVideo:
    """A generated toy video.

    Attributes:
        frames: uint8 [T, 32, 32, 3] RGB (T latent frames = T video frames).
        caption: The prompt.
        method: Method name.
        seed: Noise seed.
        prompt_id: Prompt id the noise was drawn for.
        seconds: Sampling wall time.
        extra: Method config hash and other facts.
    """

    frames: torch.Tensor
    caption: str
    method: str
    seed: int
    prompt_id: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def generate_toy_video(
    caption: str,
    method: str = "self-forcing",
    *,
    num_frames: int = 10 * TRAINED_HORIZON,
    seed: int = 0,
    prompt_id: str | None = None,
    model: ToyModel | None = None,
    sampling_override: dict[str, Any] | None = None,
) -> ToyVideo:
    """Generate one toy video with a named method.

    Args:
        caption: A caption of the toy grammar.
        method: Any registered method (its cache policy and chunking are used; steps/shift from the toy card).
        num_frames: Frames to generate, a multiple of the method's chunk size.
        seed: Noise seed; with ``prompt_id`` it fixes all noise (same noise for every method).
        prompt_id: Stable prompt id (default: the caption).
        model: A loaded toy model (default: the shipped weights).
        sampling_override: Replace sampler fields (e.g. ``{"denoising_steps": (1000, 500)}``) for experiments.

    Returns:
        The frames and what produced them.
    """
    import dataclasses

    from deepforcing.pipeline import VideoGenerator
    from deepforcing.toyworld.kind import ToyWorldModel

    toy = model or load_toy_model()
    gen = VideoGenerator(ToyWorldModel(toy), method, device="cpu")
    if sampling_override:
        gen.method = dataclasses.replace(
            gen.method, sampler_config=dataclasses.replace(gen.method.sampler_config, **sampling_override)
        )
        gen.sampler = methods.build_sampler(gen.method)
    result = gen.generate(caption, num_latent_frames=num_frames, seed=seed, prompt_id=prompt_id or caption)
    frames = toy.autoencoder.decode(result.latents[0])  # [T, 32, 32, 3]
    return ToyVideo(
        frames,
        caption,
        method,
        seed,
        prompt_id or caption,
        result.sampling_seconds,
        {"method_hash": gen.method.config_hash},
    )


def write_preview(frames: torch.Tensor, path: str | Path, scale: int = 4, fps: int = 16) -> Path:
    """Write frames as an mp4, upscaled ``scale``× with nearest neighbour (32×32 is below what H.264 keeps).

    Args:
        frames: uint8 [T, H, W, 3].
        path: Destination ``.mp4``.
        scale: Integer upscale.
        fps: Frame rate of the file.
    """
    from deepforcing.video_io import Mp4Writer

    big = frames.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(path, fps=fps) as writer:
        writer.write(big)
    return path


def generate_and_score(
    caption: str,
    method: str = "self-forcing",
    *,
    num_frames: int = 10 * TRAINED_HORIZON,
    seed: int = 0,
    prompt_id: str | None = None,
    model: ToyModel | None = None,
    segment_frames: int = TRAINED_HORIZON,
) -> tuple[ToyVideo, list[dict[str, float]]]:
    """Generate a toy video with ``method`` and score it with the oracle in segments of the trained horizon.

    Returns:
        The video and one oracle row per segment (see :func:`deepforcing.toyworld.oracle.score_video`).
    """
    from deepforcing.toyworld.oracle import score_video

    video = generate_toy_video(caption, method, num_frames=num_frames, seed=seed, prompt_id=prompt_id, model=model)
    return video, score_video(video.frames, caption, segment_frames=segment_frames)

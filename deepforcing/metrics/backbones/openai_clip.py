"""OpenAI CLIP image encoders from the original ``ViT-B-32.pt`` / ``ViT-L-14.pt`` files, via ``open_clip``.

The OpenAI files are TorchScript archives (fp16 weights); ``clip.load`` turns them into a state dict and
rebuilds an eager model. Here the state dict is read the same way (``torch.jit.load(...).state_dict()``; a
plain ``torch.save``-d state dict also works) and the eager model is built by ``open_clip``'s
``build_model_from_openai_state_dict`` (QuickGELU, architecture inferred from the tensors), then cast to
float32, as ``clip.load`` does on CPU. ``openai-clip`` itself is not needed (it breaks on setuptools ≥ 70).

The transformers are switched to sequence-first ``(L, N, D)``, the layout of OpenAI's own code: attention then
takes the same path as ``clip``'s model (in-projection as one ``addmm``, SDPA), which on CPU gives bit-identical
image features and is faster than ``open_clip``'s batch-first fast path (``benchmarks/bench_metrics.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

logger = logging.getLogger(__name__)


def read_openai_clip_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an OpenAI CLIP checkpoint (TorchScript archive or plain state dict) into a state dict.

    Raises:
        UserError: If the file is missing or neither format.
    """
    p = require_file(path, "OpenAI CLIP")
    try:
        return dict(torch.jit.load(str(p), map_location="cpu").state_dict())
    except RuntimeError:
        logger.debug("%s is not a TorchScript archive; reading it as a state dict", p)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure here means "not a CLIP checkpoint"
        raise UserError(f"{p} is neither a TorchScript CLIP archive nor a state dict: {err}") from err
    if not isinstance(state, dict) or "visual.conv1.weight" not in state:
        raise UserError(f"{p} does not look like an OpenAI CLIP checkpoint (no visual.conv1.weight)")
    return state


def load_openai_clip(path: str | Path) -> torch.nn.Module:
    """Build an eager float32 CLIP model (``encode_image`` / ``encode_text``) from an OpenAI checkpoint.

    Args:
        path: ``ViT-B-32.pt``, ``ViT-L-14.pt`` (or any OpenAI-format CLIP checkpoint).

    Returns:
        The ``open_clip`` CLIP model in eval mode, on CPU, float32.

    Raises:
        UserError: If the file is missing or malformed, or ``open_clip_torch`` is not installed.
    """
    state = read_openai_clip_state_dict(path)
    try:
        from open_clip.model import build_model_from_openai_state_dict
    except ImportError as err:
        raise UserError(
            "open_clip_torch is required for CLIP-based metrics", "pip install 'deepforcing-eval[metrics]'"
        ) from err
    model = build_model_from_openai_state_dict(state, quick_gelu=True, cast_dtype=None)
    for transformer in (model.visual.transformer, model.transformer):
        transformer.batch_first = False  # (L, N, D) inside, as OpenAI's code; inputs and outputs unchanged
        for block in transformer.resblocks:
            block.attn.batch_first = False
    return model.float().eval()

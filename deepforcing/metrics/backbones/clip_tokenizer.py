"""The OpenAI CLIP BPE tokenizer (``bpe_simple_vocab_16e6.txt.gz``), via ``open_clip``'s ``SimpleTokenizer``.

VBench's ViCLIP tokenizer and OpenAI's ``clip.tokenize`` use the same merges file (VBench downloads it from
openai/CLIP; ``open_clip`` ships the identical file, sha256 checked here), the same cleaning (ftfy, double HTML
unescape, whitespace collapse, lower case), the same pre-tokenising pattern and the same truncation (the first
``context_length`` ids, the last replaced by end-of-text). Only the names of the two special tokens differ
(``<|startoftext|>`` vs ``<start_of_text>``; ids 49406 / 49407 in both), which matters only for prompts that
spell them out literally.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from deepforcing.errors import UserError
from deepforcing.metrics.backbones._io import require_file

#: sha256 of OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (the file VBench downloads for ViCLIP; open_clip ships it).
BPE_VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_clip_bpe_tokenizer(bpe_path: str | Path | None = None, context_length: int = 32) -> Any:
    """The OpenAI CLIP BPE tokenizer (``open_clip``'s ``SimpleTokenizer``) for a given context length.

    Args:
        bpe_path: ``bpe_simple_vocab_16e6.txt.gz``; ``None`` uses the copy shipped inside ``open_clip``.
        context_length: Tokens per text (ViCLIP: 32; OpenAI CLIP: 77). Longer texts are truncated with the
            last kept token replaced by end-of-text, as VBench's ViCLIP tokenizer does.

    Returns:
        A callable ``tokenizer(texts) -> (N, context_length)`` int64 tensor.

    Raises:
        UserError: If ``open_clip`` is missing, or the vocabulary file is missing or not the OpenAI file.
    """
    try:
        from open_clip.tokenizer import SimpleTokenizer, default_bpe
    except ImportError as err:
        raise UserError(
            "open_clip_torch is required for the CLIP BPE tokenizer", "pip install 'deepforcing-eval[metrics]'"
        ) from err
    p = require_file(default_bpe() if bpe_path is None else bpe_path, "CLIP BPE vocabulary")
    digest = _sha256(p)
    if digest != BPE_VOCAB_SHA256:
        raise UserError(
            f"{p} is not OpenAI's bpe_simple_vocab_16e6.txt.gz (sha256 {digest[:12]}…, expected "
            f"{BPE_VOCAB_SHA256[:12]}…)",
            "use the file shipped with open_clip or openai/CLIP",
        )
    return SimpleTokenizer(str(p), context_length=context_length)


def tokenize(tokenizer: Any, texts: list[str], context_length: int) -> torch.Tensor:
    """Tokenise ``texts`` to ``(N, context_length)`` int64 ids (truncating long texts)."""
    out = tokenizer(texts, context_length=context_length)
    if out.shape != (len(texts), context_length):
        raise RuntimeError(f"tokenizer returned {tuple(out.shape)}, expected {(len(texts), context_length)}")
    return out


@torch.inference_mode()
def normalized_text_features(
    model: Any, tokenizer: Any, prompt: str, context_length: int, device: torch.device
) -> torch.Tensor:
    """L2-normalised text embedding of one prompt by a CLIP-style ``model.encode_text`` → ``(D,)`` float32, CPU.

    Args:
        model: Has ``encode_text(tokens (1, L) int64) -> (1, D)`` (OpenAI CLIP, ViCLIP).
        tokenizer: From :func:`load_clip_bpe_tokenizer`.
        prompt: The text.
        context_length: Token length ``L`` (longer prompts are truncated).
        device: The model's device.
    """
    tokens = tokenize(tokenizer, [prompt], context_length)  # (1, L)
    emb = model.encode_text(tokens.to(device)).float()  # (1, D)
    return torch.nn.functional.normalize(emb, dim=-1)[0].cpu()


class PromptFeatures:
    """:func:`normalized_text_features` of a fixed model, cached per prompt (a long video's clips share one)."""

    def __init__(self, model: Any, tokenizer: Any, context_length: int, device: torch.device):
        self.model, self.tokenizer = model, tokenizer
        self.context_length, self.device = context_length, device
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, prompt: str) -> torch.Tensor:
        """The ``(D,)`` float32 CPU embedding of ``prompt``."""
        if prompt not in self._cache:
            self._cache[prompt] = normalized_text_features(
                self.model, self.tokenizer, prompt, self.context_length, self.device
            )
        return self._cache[prompt]

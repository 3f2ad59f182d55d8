"""Text conditioning of the toy model: one learned embedding per caption *phrase*.

A caption is parsed with the toy grammar (:func:`~deepforcing.toyworld.world.parse_caption`) into phrases, and
each phrase becomes one text token: the sum of the learned embeddings of its words plus a learned embedding of
its slot. The slots are fixed:

====  =========================================================================
slot  phrase (words summed into the token)
====  =========================================================================
0–2   shape ``k`` in drawing order: its colour and kind
3     the background (left colour of a gradient): its colour words
4     the right colour of a gradient: its colour words and ``gradient``
5     the camera pan: ``pans`` and the direction
6     the lighting change: ``light pulses``
====  =========================================================================

Absent phrases are padding (zero rows, as the Wan text encoder pads). The result ``[B, 7, text_dim]`` is what
:meth:`deepforcing.model.wan.CausalWanModel.encode_text` expects.

Why phrases and not words: the first encoder embedded each word with an absolute position, and nothing mixed
words before the DiT's cross-attention, which then had to bind "red" to "circle" by their positions in the caption
(a two-shape caption puts the second shape's words at varying offsets). The phrase token does that binding, as a
contextual encoder (the real model's UMT5) does. The vocabulary is stored next to the
weights (``vocab.json``) and checked on load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepforcing.errors import UserError
from deepforcing.toyworld.world import CAPTION_WORDS, CaptionSpec, parse_caption

#: Index 0 is padding; words start at 1.
PAD = "<pad>"
#: Text tokens (phrase slots) per caption.
TEXT_SLOTS = 7
#: Most words one phrase sums (the right colour of a gradient: two colour words and ``gradient``).
PHRASE_WORDS = 3
_SHAPE_SLOTS = 3


def default_vocab() -> tuple[str, ...]:
    """The vocabulary of the caption grammar: padding first, then :data:`CAPTION_WORDS` in order."""
    return (PAD, *CAPTION_WORDS)


def caption_phrases(spec: CaptionSpec) -> list[list[str]]:
    """The words of each phrase slot of a caption spec (an empty list for an absent phrase).

    Raises:
        UserError: More shapes than the encoder has slots.
    """
    if len(spec.shapes) > _SHAPE_SLOTS:
        raise UserError(f"the toy text encoder has {_SHAPE_SLOTS} shape slots, the caption has {len(spec.shapes)}")
    slots: list[list[str]] = [[] for _ in range(TEXT_SLOTS)]
    for k, shape in enumerate(spec.shapes):
        slots[k] = [shape.colour, shape.kind]
    slots[3] = spec.background.split()
    if spec.background_to is not None:
        slots[4] = [*spec.background_to.split(), "gradient"]
    if spec.pan is not None:
        slots[5] = ["pans", spec.pan]
    if spec.lighting:
        slots[6] = ["light", "pulses"]
    return slots


class ToyTextEncoder(nn.Module):
    """Learned phrase embedding of toy captions.

    Args:
        vocab: Words, index 0 = padding.
        text_dim: Embedding size (the DiT's ``text_dim``).
        text_len: Text tokens (the DiT's ``text_len``); must be :data:`TEXT_SLOTS`.
    """

    def __init__(self, vocab: Sequence[str], text_dim: int, text_len: int):
        super().__init__()
        if not vocab or vocab[0] != PAD:
            raise ValueError(f"vocab must start with {PAD!r}")
        if text_len != TEXT_SLOTS:
            raise ValueError(f"the toy text encoder makes {TEXT_SLOTS} tokens, the preset asks for {text_len}")
        self.vocab = tuple(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.text_len = text_len
        self.token_embedding = nn.Embedding(len(self.vocab), text_dim, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.zeros(text_len, text_dim))  # one row per slot
        nn.init.normal_(self.token_embedding.weight, std=1.0)
        with torch.no_grad():
            self.token_embedding.weight[0].zero_()
        nn.init.normal_(self.position_embedding, std=0.5)

    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions to word indices per phrase slot, padded with 0: long [B, text_len, PHRASE_WORDS].

        An empty caption (the unconditional input of classifier-free guidance) is all padding.

        Raises:
            UserError: A caption outside the toy grammar (names the first problem).
        """
        ids = torch.zeros(len(captions), self.text_len, PHRASE_WORDS, dtype=torch.long)
        for b, caption in enumerate(captions):
            if not caption.strip():
                continue
            for s, words in enumerate(caption_phrases(parse_caption(caption))):
                ids[b, s, : len(words)] = torch.tensor([self.index[w] for w in words], dtype=torch.long)
        return ids

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Word indices [B, Lt, PHRASE_WORDS] -> embeddings [B, Lt, text_dim] (zero rows at absent phrases)."""
        present = (ids != 0).any(dim=-1, keepdim=True)  # [B, Lt, 1]
        x = self.token_embedding(ids).sum(dim=2) + self.position_embedding[: ids.shape[1]]
        return x * present.to(x.dtype)

    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> [B, text_len, text_dim] context for ``CausalWanModel.encode_text``."""
        return self(self.tokenize(captions).to(self.token_embedding.weight.device))

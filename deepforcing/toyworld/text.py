"""Text conditioning of the toy model: a learned embedding of the caption vocabulary.

A caption is split into words (commas dropped); each word becomes its vocabulary index and is embedded with a
learned token table plus a learned position table. The result ``[B, Lt, text_dim]`` is what
:meth:`deepforcing.model.wan.CausalWanModel.encode_text` expects (rows past the caption are zero, as the Wan
text encoder pads). The vocabulary is stored next to the weights (``vocab.json``) and checked on load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepforcing.errors import UserError
from deepforcing.toyworld.world import CAPTION_WORDS, caption_words

#: Index 0 is padding; words start at 1.
PAD = "<pad>"


def default_vocab() -> tuple[str, ...]:
    """The vocabulary of the caption grammar: padding first, then :data:`CAPTION_WORDS` in order."""
    return (PAD, *CAPTION_WORDS)


class ToyTextEncoder(nn.Module):
    """Learned word + position embedding of toy captions.

    Args:
        vocab: Words, index 0 = padding.
        text_dim: Embedding size (the DiT's ``text_dim``).
        text_len: Maximum caption length in words (the DiT's ``text_len``).
    """

    def __init__(self, vocab: Sequence[str], text_dim: int, text_len: int):
        super().__init__()
        if not vocab or vocab[0] != PAD:
            raise ValueError(f"vocab must start with {PAD!r}")
        self.vocab = tuple(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.text_len = text_len
        self.token_embedding = nn.Embedding(len(self.vocab), text_dim)
        self.position_embedding = nn.Parameter(torch.zeros(text_len, text_dim))
        nn.init.normal_(self.token_embedding.weight, std=1.0)
        nn.init.normal_(self.position_embedding, std=0.1)

    def tokenize(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions to word indices, padded with 0: long [B, text_len].

        Raises:
            UserError: A word outside the vocabulary, or a caption longer than ``text_len`` words.
        """
        ids = torch.zeros(len(captions), self.text_len, dtype=torch.long)
        for b, caption in enumerate(captions):
            words = caption_words(caption)
            unknown = [w for w in words if w not in self.index]
            if unknown:
                raise UserError(
                    f"the toy model does not know the word(s) {unknown}",
                    f"toy captions use only: {', '.join(self.vocab[1:])}",
                )
            if not words or len(words) > self.text_len:
                raise UserError(f"toy caption must have 1..{self.text_len} words, got {len(words)}")
            ids[b, : len(words)] = torch.tensor([self.index[w] for w in words])
        return ids

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Word indices [B, Lt] -> embeddings [B, Lt, text_dim] (zero rows at padding)."""
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        return x * (ids != 0).unsqueeze(-1).to(x.dtype)

    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> [B, text_len, text_dim] context for ``CausalWanModel.encode_text``."""
        return self(self.tokenize(captions).to(self.token_embedding.weight.device))

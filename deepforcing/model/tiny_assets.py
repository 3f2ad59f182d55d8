"""Tiny random-weight text encoder and VAE, written in the *real* file formats.

They exercise the same loaders as the real weights (no mocks): a Diffusers-layout ``vae/`` directory and
``text_encoder/`` + ``tokenizer/`` directories, and (for the original-format loaders) ``.pth`` state dicts
with Wan's own key names. Everything is deterministic in ``seed`` and built offline:

* VAE: ``AutoencoderKLWan`` with ``base_dim=8`` (real: 96) but the real block layout, so 8x spatial / 4x
  temporal compression and 16 latent channels are kept.
* Text encoder: ``UMT5EncoderModel`` with ``d_model=32`` (``text_dim``), 2 layers, 4 heads; through
  :class:`~deepforcing.model.text_encoder.UMT5TextEncoder` with ``text_len=16`` it outputs ``[B, 16, 32]``.
* Tokenizer: a ``tokenizers`` Unigram model (SentencePiece-style ``▁`` word boundaries, ``<pad>=0``,
  ``</s>=1``, ``<unk>=2``, ``</s>`` appended) saved as ``tokenizer.json`` with a ``T5Tokenizer`` config, like
  ``google/umt5-xxl``, so ``AutoTokenizer.from_pretrained(dir)`` loads it. Its vocabulary is the most frequent
  words of the MovieGen prompt list plus every character seen there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import Counter
from pathlib import Path

import torch

from deepforcing.errors import UserError

logger = logging.getLogger(__name__)

#: Architecture of the tiny VAE (real Wan2.1 layout, narrow channels).
TINY_VAE_CONFIG = {
    "base_dim": 8,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
}

TINY_TEXT_LEN = 16
TINY_TEXT_DIM = 32


def _seeded_init_(module: torch.nn.Module, seed: int, embedding_std: float = 1.0) -> None:
    """Overwrite every parameter from a private generator, deterministic in ``seed``.

    Matrices / conv kernels get N(0, 1/fan_in) (activations keep their scale), norm gains 1 + N(0, 0.1^2),
    biases N(0, 0.05^2), embedding tables N(0, embedding_std^2). Every tensor is distinct, so a wrong key
    mapping between tensors of equal shape changes the outputs.
    """
    gen = torch.Generator().manual_seed(seed)
    embeddings = {name + ".weight" for name, m in module.named_modules() if isinstance(m, torch.nn.Embedding)}
    with torch.no_grad():
        for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name in embeddings:
                p.copy_(embedding_std * noise)
            elif name.endswith("gamma") or name.endswith("layer_norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif p.ndim >= 2:
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.05 * noise)


# ------------------------------------------------------------------------------------------------------
# VAE
# ------------------------------------------------------------------------------------------------------


def build_tiny_vae(seed: int = 0):
    """Build the tiny random ``AutoencoderKLWan`` in memory.

    Args:
        seed: Weight seed.

    Returns:
        A diffusers ``AutoencoderKLWan`` in fp32, eval mode.
    """
    from diffusers import AutoencoderKLWan

    from deepforcing.model.vae import WAN21_LATENTS_MEAN, WAN21_LATENTS_STD

    vae = AutoencoderKLWan(
        **TINY_VAE_CONFIG, latents_mean=list(WAN21_LATENTS_MEAN), latents_std=list(WAN21_LATENTS_STD)
    )
    _seeded_init_(vae, seed)
    return vae.eval()


def save_tiny_vae(directory: str | os.PathLike, seed: int = 0) -> Path:
    """Write a Diffusers-layout VAE directory (``config.json`` + ``diffusion_pytorch_model.safetensors``).

    Args:
        directory: The ``vae`` directory to create (parents are created).
        seed: Weight seed.

    Returns:
        The directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    build_tiny_vae(seed).save_pretrained(str(d), safe_serialization=True)
    logger.info("wrote tiny VAE to %s", d)
    return d


def save_tiny_wan_vae_pth(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write the tiny VAE as an original-format ``Wan2.1_VAE.pth`` (plain state dict, Wan's key names).

    Args:
        path: Output ``.pth`` file (parents are created).
        seed: Weight seed (same weights as :func:`save_tiny_vae` with that seed).

    Returns:
        The file path.
    """
    from deepforcing.model.vae import diffusers_vae_to_wan

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    vae = build_tiny_vae(seed)
    sd = diffusers_vae_to_wan(vae.state_dict(), num_res_blocks=TINY_VAE_CONFIG["num_res_blocks"])
    torch.save({k: v.contiguous() for k, v in sd.items()}, p)
    return p


# ------------------------------------------------------------------------------------------------------
# Text encoder + tokenizer
# ------------------------------------------------------------------------------------------------------


def _default_corpus() -> str:
    """The in-repo MovieGen prompt list: the tiny tokenizer must be identical on every machine."""
    path = Path(__file__).resolve().parents[2] / "prompts" / "moviegen" / "MovieGenVideoBench.txt"
    if not path.is_file():
        raise UserError(f"tiny tokenizer corpus not found: {path}", "run from a checkout of deepforcing-eval")
    return path.read_text(encoding="utf-8")


def build_tiny_vocab(corpus: str | None = None, max_words: int = 8000) -> list[tuple[str, float]]:
    """Deterministic Unigram vocabulary: specials, the most frequent words, then every character.

    Words are runs of letters/digits (punctuation is left to the single-character pieces), kept with their
    case like umT5's SentencePiece model.

    Args:
        corpus: Text to count words in (default: the MovieGen prompt list, or a built-in fallback).
        max_words: How many whole words to keep.

    Returns:
        ``(piece, log-probability score)`` list with ``<pad>``, ``</s>``, ``<unk>`` at ids 0, 1, 2.
    """
    text = corpus if corpus is not None else _default_corpus()
    words = Counter(re.findall(r"[^\W_]+", text))
    top = sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:max_words]
    total = sum(words.values())
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    seen = {p for p, _ in vocab}
    for w, n in top:
        piece = "▁" + w
        if piece not in seen:
            vocab.append((piece, math.log(n / total)))
            seen.add(piece)
    floor = math.log(1.0 / total) - 5.0  # characters are a last resort, below every word
    for ch in sorted(set(text) - set(" \t\r\n")):
        for piece in ("▁" + ch, ch):
            if piece not in seen:
                vocab.append((piece, floor))
                seen.add(piece)
    return vocab


def build_tiny_tokenizer(corpus: str | None = None, max_words: int = 8000):
    """Build the tiny umT5-style ``tokenizers.Tokenizer`` (the object stored as ``tokenizer.json``).

    Same pipeline as umT5's fast tokenizer minus the SentencePiece normaliser: whitespace split, ``▁`` word
    prefix (Metaspace), Unigram model with ``<unk>`` id 2, and ``</s>`` (id 1) appended by the post-processor.

    Args:
        corpus: See :func:`build_tiny_vocab`.
        max_words: See :func:`build_tiny_vocab`.

    Returns:
        The ``tokenizers.Tokenizer``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tok = Tokenizer(Unigram(build_tiny_vocab(corpus, max_words), unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    tok.add_special_tokens([AddedToken(t, special=True) for t in ("<pad>", "</s>", "<unk>")])
    return tok


def save_tiny_tokenizer(directory: str | os.PathLike, text_len: int = TINY_TEXT_LEN) -> Path:
    """Write the tiny tokenizer directory in the umT5 layout (``tokenizer.json`` + configs).

    ``tokenizer_config.json`` names ``T5Tokenizer`` (as ``google/umt5-xxl`` does), so ``AutoTokenizer`` loads
    it from ``tokenizer.json`` with any transformers version that has a fast T5 tokenizer (no
    ``spiece.model``).
    This is also the stand-in for Wan's ``google/umt5-xxl/`` directory.

    Args:
        directory: Output directory (created).
        text_len: Recorded as ``model_max_length``.

    Returns:
        The directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    build_tiny_tokenizer().save(str(d / "tokenizer.json"))
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    config = {
        "tokenizer_class": "T5Tokenizer",
        **special,
        "extra_ids": 0,
        "additional_special_tokens": [],
        "model_max_length": text_len,
    }
    (d / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (d / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return d


def tiny_vocab_size() -> int:
    """Vocabulary size of the tiny tokenizer (= the tiny encoder's ``vocab_size``)."""
    return len(build_tiny_vocab())


def tiny_umt5_config(vocab_size: int, d_model: int = TINY_TEXT_DIM):
    """The tiny ``UMT5Config`` (2 layers, 4 heads, gated-GELU, 32 buckets / max distance 128 as umT5-XXL)."""
    from transformers import UMT5Config

    return UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // 4,
        d_ff=2 * d_model,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        architectures=["UMT5EncoderModel"],
    )


def build_tiny_umt5(vocab_size: int, seed: int = 0, d_model: int = TINY_TEXT_DIM):
    """Build the tiny random ``UMT5EncoderModel`` in memory (fp32, eval)."""
    from transformers import UMT5EncoderModel

    model = UMT5EncoderModel(tiny_umt5_config(vocab_size, d_model))
    _seeded_init_(model, seed)
    return model.eval()


def save_tiny_text_encoder(
    directory: str | os.PathLike, seed: int = 0, text_len: int = TINY_TEXT_LEN, d_model: int = TINY_TEXT_DIM
) -> Path:
    """Write Diffusers-layout ``text_encoder/`` (config + safetensors) and ``tokenizer/`` directories.

    Args:
        directory: Pipeline root; ``<directory>/text_encoder`` and ``<directory>/tokenizer`` are created.
        seed: Weight seed.
        text_len: Tokenizer ``model_max_length`` (recorded; :class:`UMT5TextEncoder` takes ``text_len``
            itself).
        d_model: Hidden size = ``text_dim`` of the encoder output.

    Returns:
        The pipeline root directory.
    """
    root = Path(directory)
    save_tiny_tokenizer(root / "tokenizer", text_len)
    vocab_size = tiny_vocab_size()
    model = build_tiny_umt5(vocab_size, seed, d_model)
    model.save_pretrained(str(root / "text_encoder"), safe_serialization=True)
    logger.info("wrote tiny text encoder (vocab %d, d_model %d) to %s", vocab_size, d_model, root)
    return root


def save_tiny_wan_t5_pth(path: str | os.PathLike, seed: int = 0, d_model: int = TINY_TEXT_DIM) -> Path:
    """Write the tiny encoder as an original-format ``models_t5_umt5-xxl-enc-bf16.pth`` (Wan's T5 key names).

    The tokenizer for it is saved by :func:`save_tiny_tokenizer` (real Wan: ``google/umt5-xxl/`` directory).
    Tensors are stored in bfloat16 like the real file.

    Args:
        path: Output ``.pth`` file (parents are created).
        seed: Weight seed (same weights as :func:`save_tiny_text_encoder` with that seed, before the bf16
            cast).
        d_model: Hidden size.

    Returns:
        The file path.
    """
    from deepforcing.model.text_encoder import hf_umt5_to_wan

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    model = build_tiny_umt5(tiny_vocab_size(), seed, d_model)
    sd = hf_umt5_to_wan(model.state_dict())
    torch.save({k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}, p)
    return p


def save_tiny_assets(directory: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Write every tiny asset under one root (Diffusers layout plus the original-format files).

    Layout::

        <dir>/vae/                       Diffusers AutoencoderKLWan
        <dir>/text_encoder/, tokenizer/  Diffusers UMT5EncoderModel + tokenizer
        <dir>/original/Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/

    Args:
        directory: Root directory.
        seed: Weight seed.

    Returns:
        Paths by role: ``vae_dir``, ``text_encoder_dir``, ``tokenizer_dir``, ``wan_vae_pth``, ``wan_t5_pth``,
        ``wan_tokenizer_dir``.
    """
    root = Path(directory)
    save_tiny_vae(root / "vae", seed)
    save_tiny_text_encoder(root, seed)
    out = {
        "vae_dir": root / "vae",
        "text_encoder_dir": root / "text_encoder",
        "tokenizer_dir": root / "tokenizer",
        "wan_vae_pth": save_tiny_wan_vae_pth(root / "original" / "Wan2.1_VAE.pth", seed),
        "wan_t5_pth": save_tiny_wan_t5_pth(root / "original" / "models_t5_umt5-xxl-enc-bf16.pth", seed),
        "wan_tokenizer_dir": save_tiny_tokenizer(root / "original" / "google" / "umt5-xxl"),
    }
    (root / "TINY_ASSETS.json").write_text(json.dumps({"seed": seed, **{k: str(v) for k, v in out.items()}}, indent=1))
    return out

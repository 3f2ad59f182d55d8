"""umT5 text encoder as used by Wan2.1 / Self-Forcing, on transformers' ``UMT5EncoderModel``.

Two on-disk formats load into the same transformers model:

* Diffusers layout (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``): ``text_encoder/`` (config + safetensors) and
  ``tokenizer/``.
* Original Wan files: ``models_t5_umt5-xxl-enc-bf16.pth`` (a state dict with Wan's own T5 module names, see
  :data:`WAN_T5_TO_HF`) plus the ``google/umt5-xxl`` tokenizer directory. The architecture is read from the
  tensor shapes, so a tiny checkpoint loads with the same code.

Tokenisation follows Wan's ``HuggingfaceTokenizer(clean='whitespace')``: ``ftfy.fix_text``, HTML-unescape
twice, strip, collapse whitespace runs to one space; then pad to ``text_len`` with truncation and special
tokens (umT5 appends ``</s>``). A truncated prompt is reported (:class:`PromptTokens`, a warning once per
prompt), never cut silently. The encoder output rows past each prompt's real length (its attention-mask
length) are set to exactly 0, as Self-Forcing's ``WanTextEncoder`` does.

Supported transformers: 4.46 (pyproject floor) to 5.x; tested with 5.23.0. We use ``UMT5EncoderModel``,
``UMT5Config`` and ``AutoTokenizer`` only.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from deepforcing.errors import UserError

logger = logging.getLogger(__name__)

#: Real Wan2.1 values.
WAN_TEXT_LEN = 512
WAN_TEXT_DIM = 4096

#: Wan T5 encoder parameter names (``wan/modules/t5.py::T5Encoder``) -> transformers ``UMT5EncoderModel``
#: names. ``{i}`` is the block index. Wan's FFN computes ``fc2(fc1(x) * gelu_tanh(gate(x)))``; transformers'
#: gated FFN computes ``wo(gelu_new(wi_0(x)) * wi_1(x))``, hence gate -> wi_0 and fc1 -> wi_1. Each Wan block
#: owns its relative-position table (``shared_pos=False``), as each UMT5 layer does.
WAN_T5_TO_HF: dict[str, str] = {
    "token_embedding.weight": "shared.weight",
    "norm.weight": "encoder.final_layer_norm.weight",
    "blocks.{i}.norm1.weight": "encoder.block.{i}.layer.0.layer_norm.weight",
    "blocks.{i}.attn.q.weight": "encoder.block.{i}.layer.0.SelfAttention.q.weight",
    "blocks.{i}.attn.k.weight": "encoder.block.{i}.layer.0.SelfAttention.k.weight",
    "blocks.{i}.attn.v.weight": "encoder.block.{i}.layer.0.SelfAttention.v.weight",
    "blocks.{i}.attn.o.weight": "encoder.block.{i}.layer.0.SelfAttention.o.weight",
    "blocks.{i}.pos_embedding.embedding.weight": (
        "encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight"
    ),
    "blocks.{i}.norm2.weight": "encoder.block.{i}.layer.1.layer_norm.weight",
    "blocks.{i}.ffn.gate.0.weight": "encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight",
    "blocks.{i}.ffn.fc1.weight": "encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight",
    "blocks.{i}.ffn.fc2.weight": "encoder.block.{i}.layer.1.DenseReluDense.wo.weight",
}

_WAN_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")
_HF_BLOCK_RE = re.compile(r"^encoder\.block\.(\d+)\.(.+)$")
_WAN_BLOCK_MAP = {k.split(".", 2)[2]: v.split(".", 3)[3] for k, v in WAN_T5_TO_HF.items() if "{i}" in k}
_HF_BLOCK_MAP = {v: k for k, v in _WAN_BLOCK_MAP.items()}
_WAN_TOP = {k: v for k, v in WAN_T5_TO_HF.items() if "{i}" not in k}
_HF_TOP = {v: k for k, v in _WAN_TOP.items()}


def wan_t5_to_hf(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Wan T5 *encoder* state dict to transformers ``UMT5EncoderModel`` names.

    Args:
        state_dict: Wan names (``token_embedding.weight``, ``blocks.{i}...``, ``norm.weight``).

    Returns:
        transformers names; ``encoder.embed_tokens.weight`` is added as the same tensor as ``shared.weight``.

    Raises:
        UserError: On a key this mapping does not know (e.g. a full encoder-decoder or a shared-position T5).
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key in _WAN_TOP:
            out[_WAN_TOP[key]] = value
            continue
        m = _WAN_BLOCK_RE.match(key)
        if m and m.group(2) in _WAN_BLOCK_MAP:
            out[f"encoder.block.{m.group(1)}.{_WAN_BLOCK_MAP[m.group(2)]}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(
            f"unexpected keys in a Wan T5 encoder checkpoint ({len(unknown)}): {unknown[:5]}",
            hint="expected models_t5_umt5-xxl-enc-bf16.pth (encoder only, one position table per block)",
        )
    if "shared.weight" in out:
        out["encoder.embed_tokens.weight"] = out["shared.weight"]
    return out


def hf_umt5_to_wan(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`wan_t5_to_hf` (used to write tiny original-format checkpoints).

    Args:
        state_dict: ``UMT5EncoderModel.state_dict()``.

    Returns:
        Wan T5 encoder names (the tied ``encoder.embed_tokens.weight`` is dropped).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "encoder.embed_tokens.weight":
            continue
        if key in _HF_TOP:
            out[_HF_TOP[key]] = value
            continue
        m = _HF_BLOCK_RE.match(key)
        if not (m and m.group(2) in _HF_BLOCK_MAP):
            raise ValueError(f"unexpected UMT5 encoder key {key!r}")
        out[f"blocks.{m.group(1)}.{_HF_BLOCK_MAP[m.group(2)]}"] = value
    return out


def check_wan_t5_file(path: str | os.PathLike) -> list[str]:
    """Problems of Wan's T5 encoder file, from its pickle only (``weights verify``).

    Names that do not map onto ``UMT5EncoderModel``, or blocks with missing tensors.

    Raises:
        UserError: The file does not open as a torch state dict.
    """
    from deepforcing import formats

    path = Path(path)
    try:
        formats.torch_archive(path)
        sd = torch.load(path, map_location="meta", weights_only=True)
    except formats.FormatError as exc:
        raise UserError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: the file is unreadable
        raise UserError(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(sd, dict):
        return [f"holds a {type(sd).__name__}, not a state dict"]
    try:
        wan_t5_to_hf(sd)
    except UserError as exc:
        return [exc.message]
    blocks: dict[int, set[str]] = {}
    for key in sd:
        if m := _WAN_BLOCK_RE.match(key):
            blocks.setdefault(int(m.group(1)), set()).add(m.group(2))
    problems = [f"missing {k}" for k in _WAN_TOP if k not in sd]
    for i in range(max(blocks, default=-1) + 1):
        lack = sorted(set(_WAN_BLOCK_MAP) - blocks.get(i, set()))
        if lack:
            problems.append(f"block {i} lacks {', '.join(lack[:3])}")
    if not blocks:
        problems.append("no encoder blocks")
    return problems[:1] + ([f"and {len(problems) - 1} more"] if len(problems) > 1 else [])


def check_umt5_config_json(path: str | os.PathLike) -> list[str]:
    """Problems of the diffusers text-encoder ``config.json``: must be umT5 with Wan's 4096-wide output.

    Raises:
        UserError: Not a JSON object.
    """
    from deepforcing import formats

    try:
        data = formats.json_object(path)
    except formats.FormatError as exc:
        raise UserError(f"{path}: {exc}") from None
    problems = []
    if data.get("model_type") != "umt5":
        problems.append(f"model_type {data.get('model_type')!r}, expected 'umt5'")
    if data.get("d_model") != WAN_TEXT_DIM:
        problems.append(f"d_model {data.get('d_model')!r}, expected {WAN_TEXT_DIM}")
    return ["; ".join(problems)] if problems else []


def umt5_config_from_wan(state_dict: dict[str, torch.Tensor]):
    """Infer the ``UMT5Config`` of a Wan T5 encoder checkpoint from its tensor shapes.

    Wan's ``T5RelativeEmbedding`` uses ``max_dist=128`` and its ``GELU`` is the tanh approximation
    (transformers' ``gelu_new``, selected by ``feed_forward_proj='gated-gelu'``); dropout is irrelevant at
    inference.

    Args:
        state_dict: Wan names.

    Returns:
        A ``transformers.UMT5Config``.
    """
    from transformers import UMT5Config

    try:
        vocab, dim = state_dict["token_embedding.weight"].shape
        layers = 1 + max(int(m.group(1)) for k in state_dict if (m := _WAN_BLOCK_RE.match(k)))
        buckets, heads = state_dict["blocks.0.pos_embedding.embedding.weight"].shape
        dim_attn = state_dict["blocks.0.attn.q.weight"].shape[0]
        dim_ffn = state_dict["blocks.0.ffn.fc1.weight"].shape[0]
    except (KeyError, ValueError) as e:
        raise UserError(f"not a Wan T5 encoder state dict (missing {e})") from e
    return UMT5Config(
        vocab_size=int(vocab),
        d_model=int(dim),
        d_kv=int(dim_attn) // int(heads),
        d_ff=int(dim_ffn),
        num_layers=int(layers),
        num_decoder_layers=int(layers),
        num_heads=int(heads),
        relative_attention_num_buckets=int(buckets),
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        architectures=["UMT5EncoderModel"],
    )


# ------------------------------------------------------------------------------------------------------
# How much of a prompt the encoder reads
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTokens:
    """A prompt's length in the text encoder's tokens against what the encoder reads.

    Attributes:
        count: Tokens of the whole (cleaned) prompt, special tokens included.
        limit: Tokens the encoder reads (``text_len``); the rest is cut off.
    """

    count: int
    limit: int

    @property
    def truncated(self) -> bool:
        """True when part of the prompt is cut off (and has no effect on the video)."""
        return self.count > self.limit

    def to_dict(self) -> dict[str, int | bool]:
        """``{"count", "limit", "truncated"}`` for result files."""
        return {"count": self.count, "limit": self.limit, "truncated": self.truncated}


_WARNED: set[tuple[str, int]] = set()


def warn_if_truncated(prompt: str, tokens: PromptTokens, unit: str = "tokens") -> bool:
    """Log one warning per (prompt, limit) in this process when the prompt is longer than the encoder reads.

    Returns:
        Whether the prompt is truncated.
    """
    if not tokens.truncated:
        return False
    key = (hashlib.sha256(prompt.encode()).hexdigest(), tokens.limit)
    if key not in _WARNED:
        _WARNED.add(key)
        head = " ".join(prompt.split())[:60]
        logger.warning(
            "prompt '%s…' (%d characters) is %d %s long; the text encoder reads only the first %d, so the last %d "
            "have no effect on the video",
            head,
            len(prompt),
            tokens.count,
            unit,
            tokens.limit,
            tokens.count - tokens.limit,
        )
    return True


# ------------------------------------------------------------------------------------------------------
# Text cleaning (Wan: basic_clean + whitespace_clean)
# ------------------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")


def clean_prompt(text: str) -> str:
    """Clean a prompt exactly as Wan's tokenizer wrapper with ``clean='whitespace'``.

    ``ftfy.fix_text`` -> ``html.unescape`` twice -> strip -> every whitespace run becomes one space -> strip.
    """
    import ftfy

    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _WS.sub(" ", text).strip()


def _dtype_kwarg() -> str:
    """Transformers >= 4.56 calls the load dtype ``dtype``; older versions ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class UMT5TextEncoder:
    """Tokenise and encode prompts into Wan's text context ``[B, text_len, text_dim]``.

    Args:
        model: A transformers ``UMT5EncoderModel``.
        tokenizer: Its tokenizer (``AutoTokenizer`` of umT5, or the tiny one).
        text_len: Padded/truncated token length (512 for Wan).
        dtype: Compute dtype (``torch.float32`` on CPU, ``torch.bfloat16`` on CUDA).
        device: Compute device.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        text_len: int = WAN_TEXT_LEN,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        if text_len <= 0:
            raise UserError(f"text_len must be positive, got {text_len}")
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.text_len = int(text_len)
        self.dtype = dtype
        self.device = torch.device(device)
        self.text_dim = int(model.config.d_model)

    # ---------------------------------------------------------------- loading
    @staticmethod
    def _load_tokenizer(tokenizer_dir: Path):
        from transformers import AutoTokenizer

        if not tokenizer_dir.is_dir():
            raise UserError(
                f"tokenizer directory {tokenizer_dir} does not exist",
                hint="download the umT5 tokenizer (`deepforcing-eval weights download "
                "wan2.1-t2v-1.3b-diffusers/tokenizer`)",
            )
        try:
            return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot load the tokenizer from {tokenizer_dir}: {e}") from e

    @classmethod
    def from_diffusers(
        cls,
        root: str | os.PathLike,
        text_len: int = WAN_TEXT_LEN,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        text_encoder_dir: str | os.PathLike | None = None,
        tokenizer_dir: str | os.PathLike | None = None,
    ) -> UMT5TextEncoder:
        """Load from a Diffusers-layout pipeline root (``<root>/text_encoder``, ``<root>/tokenizer``).

        Args:
            root: Pipeline root directory.
            text_len: Token length (512 real, 16 tiny).
            dtype: Compute dtype (the weights are loaded directly in it).
            device: Compute device.
            text_encoder_dir: Override for ``<root>/text_encoder``.
            tokenizer_dir: Override for ``<root>/tokenizer``.

        Returns:
            The encoder.

        Raises:
            UserError: If a directory is missing or does not load.
        """
        from transformers import UMT5EncoderModel

        root = Path(root)
        te = Path(text_encoder_dir) if text_encoder_dir else root / "text_encoder"
        tk = Path(tokenizer_dir) if tokenizer_dir else root / "tokenizer"
        if not (te / "config.json").is_file():
            raise UserError(
                f"no text encoder config.json in {te}",
                hint="run `deepforcing-eval weights download wan2.1-t2v-1.3b-diffusers/text_encoder`",
            )
        tokenizer = cls._load_tokenizer(tk)
        try:
            model = UMT5EncoderModel.from_pretrained(str(te), local_files_only=True, **{_dtype_kwarg(): dtype})
        except (OSError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot load UMT5EncoderModel from {te}: {e}") from e
        logger.info("loaded umT5 encoder (d_model %d) from %s", model.config.d_model, te)
        return cls(model, tokenizer, text_len=text_len, dtype=dtype, device=device)

    @classmethod
    def from_original(
        cls,
        pth_path: str | os.PathLike,
        tokenizer_dir: str | os.PathLike,
        text_len: int = WAN_TEXT_LEN,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> UMT5TextEncoder:
        """Load Wan's ``models_t5_umt5-xxl-enc-bf16.pth`` (converted to UMT5 names) and its tokenizer.

        The model is built on the meta device and the (memory-mapped) checkpoint tensors are assigned, so no
        random initialisation of 5.7 B parameters happens; then it is cast to ``dtype``.

        Args:
            pth_path: The Wan T5 encoder state dict.
            tokenizer_dir: The ``google/umt5-xxl`` tokenizer directory.
            text_len: Token length.
            dtype: Compute dtype.
            device: Compute device.

        Returns:
            The encoder.

        Raises:
            UserError: On missing files, unknown keys or shape mismatches.
        """
        from transformers import UMT5EncoderModel

        path = Path(pth_path)
        if not path.is_file():
            raise UserError(
                f"Wan T5 checkpoint {path} does not exist",
                hint="run `deepforcing-eval weights download wan2.1-t2v-1.3b/t5`",
            )
        tokenizer = cls._load_tokenizer(Path(tokenizer_dir))
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        config = umt5_config_from_wan(sd)
        hf_sd = wan_t5_to_hf(sd)
        with torch.device("meta"):
            model = UMT5EncoderModel(config)
        try:
            model.load_state_dict(hf_sd, strict=True, assign=True)
        except RuntimeError as e:
            raise UserError(f"{path} does not match the inferred UMT5 config: {e}") from e
        model.encoder.embed_tokens = model.shared  # keep the tie after assign=True
        logger.info("loaded Wan T5 encoder (%d layers, d_model %d) from %s", config.num_layers, config.d_model, path)
        return cls(model, tokenizer, text_len=text_len, dtype=dtype, device=device)

    # ---------------------------------------------------------------- encoding
    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean and tokenise prompts as Wan does.

        Args:
            prompts: B prompts.

        Returns:
            ``(input_ids [B, text_len] int64, attention_mask [B, text_len] int64)`` on CPU.
        """
        if isinstance(prompts, str):
            raise UserError("encode()/tokenize() take a list of prompts, not a single string")
        cleaned = [clean_prompt(p) for p in prompts]
        batch = self.tokenizer(
            cleaned,
            padding="max_length",
            truncation=True,
            max_length=self.text_len,
            add_special_tokens=True,
            return_tensors="pt",
        )
        return batch["input_ids"], batch["attention_mask"]

    def count_tokens(self, prompt: str) -> PromptTokens:
        """The cleaned prompt's length in tokens (``</s>`` included) against ``text_len``."""
        ids = self.tokenizer(clean_prompt(prompt), add_special_tokens=True, truncation=False, verbose=False)
        return PromptTokens(len(ids["input_ids"]), self.text_len)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Encode prompts into the DiT's text context.

        A prompt longer than ``text_len`` tokens is truncated, as Wan does; a warning (once per prompt) gives
        its token count and the limit (:meth:`count_tokens`).

        Args:
            prompts: B prompts.

        Returns:
            ``[B, text_len, text_dim]`` in ``self.dtype`` on ``self.device``; row ``j`` of prompt ``b`` is
            exactly 0 for ``j >= `` its token count (tokens incl. ``</s>``).
        """
        if not isinstance(prompts, str):
            for p in prompts:
                warn_if_truncated(p, self.count_tokens(p))
        ids, mask = self.tokenize(prompts)  # [B, L], [B, L]
        ids, mask = ids.to(self.device), mask.to(self.device)
        out = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, L, D]
        return out.to(self.dtype).masked_fill(mask.unsqueeze(-1) == 0, 0.0)  # padding rows exactly 0

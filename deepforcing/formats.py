"""Cheap checks of weight-file formats: what a file is and whether it is whole, from headers only.

Used by the checkpoint loader (one clear line instead of a library's traceback) and by ``weights verify`` (a
fake or truncated file is not "ok"). Nothing here reads tensor data or imports torch:

* **safetensors** — 8-byte little-endian header length, a JSON header naming every tensor's dtype, shape and
  byte range; the file must hold exactly the bytes the header promises;
* **torch** — ``torch.save`` writes a zip archive with ``<name>/data.pkl`` (``.pt``/``.pth`` since PyTorch 1.6);
  older files are a pickle stream that starts with protocol 2 and torch's magic number; a TorchScript archive is
  a zip with ``constants.pkl`` / ``code/`` beside ``data.pkl``;
* **json** — parses, and is an object;
* **sentencepiece** — a serialised ``ModelProto`` (protobuf) that the ``sentencepiece`` library loads.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: Bytes of a safetensors dtype.
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
#: First bytes of a legacy (pre-zip) ``torch.save`` file: pickle protocol 2, then the magic number as a long.
_LEGACY_TORCH_PREFIX = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_MAX_HEADER = 100 * 2**20


class FormatError(ValueError):
    """The file is not (a whole file) in the expected format; the message says why, in one line."""


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as a header describes it."""

    dtype: str
    shape: tuple[int, ...]


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def sniff(path: str | os.PathLike) -> str:
    """What a file looks like from its first bytes.

    Returns:
        ``empty``, ``zip``, ``torch-legacy``, ``pickle``, ``safetensors``, ``json``, ``text`` or ``unknown``.
    """
    path = Path(path)
    head = _head(path, 64)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(_LEGACY_TORCH_PREFIX):
        return "torch-legacy"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= _MAX_HEADER and head[8:9] == b"{":
            return "safetensors"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "json"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def describe(path: str | os.PathLike) -> str:
    """A few words on what the file is (for error messages)."""
    kind = sniff(path)
    size = Path(path).stat().st_size
    words = {
        "empty": "an empty file",
        "zip": "a zip archive",
        "torch-legacy": "a legacy torch.save file",
        "pickle": "a Python pickle",
        "safetensors": "a safetensors file",
        "json": "a JSON file",
        "text": "a text file",
        "unknown": f"{size} bytes of unknown binary data (starting {_head(Path(path), 4).hex(' ')})",
    }
    return words[kind]


def safetensors_header(path: str | os.PathLike) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read and check a safetensors header (no tensor data is read).

    Returns:
        (tensor name -> dtype and shape, the ``__metadata__`` strings).

    Raises:
        FormatError: Not a safetensors file, a header that does not parse, byte ranges that do not match the
            shapes, or a file shorter / longer than the header says (truncated or padded).
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise FormatError(f"not a safetensors file: only {len(raw)} bytes")
        (n,) = struct.unpack("<Q", raw)
        if n > min(size - 8, _MAX_HEADER):
            raise FormatError(
                f"not a safetensors file ({describe(path)}): the first 8 bytes announce a {n}-byte header "
                f"in a {size}-byte file"
            )
        text = f.read(n)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"not a safetensors file: its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError("not a safetensors file: its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    end = 0
    for name, info in header.items():
        try:
            dtype, shape, (start, stop) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"safetensors header entry {name!r} lacks dtype / shape / data_offsets") from None
        nbytes = SAFETENSORS_DTYPE_BYTES.get(dtype)
        count = 1
        for d in shape:
            count *= d
        if nbytes is not None and stop - start != count * nbytes:
            raise FormatError(f"safetensors tensor {name!r}: byte range {start}-{stop} does not hold {dtype}{shape}")
        tensors[name] = TensorInfo(dtype, shape)
        end = max(end, int(stop))
    data = size - 8 - n
    if data < end:
        raise FormatError(
            f"truncated: the safetensors header describes {end} bytes of tensor data, the file holds {data}"
        )
    if data > end:
        raise FormatError(f"{data - end} unexpected bytes after the tensor data (the header describes {end} bytes)")
    return tensors, dict(meta)


def torch_archive(path: str | os.PathLike) -> str:
    """Check that a file is a whole ``torch.save`` file (zip or legacy) without reading tensors.

    Returns:
        ``zip``, ``torchscript`` or ``legacy``.

    Raises:
        FormatError: Empty, truncated / corrupt zip, a zip that is no torch file, or neither zip nor pickle.
    """
    path = Path(path)
    kind = sniff(path)
    if kind == "torch-legacy":
        return "legacy"
    if kind != "zip":
        raise FormatError(f"not a PyTorch checkpoint: {describe(path)}, neither a torch.save zip nor a pickle")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(f"a truncated or corrupt zip archive ({exc})") from None
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        listed = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
        raise FormatError(f"a zip archive but not a torch.save file (no data.pkl; it holds {listed or 'nothing'})")
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return "torchscript"
    return "zip"


def json_object(path: str | os.PathLike) -> dict:
    """Parse a JSON file that must hold an object.

    Raises:
        FormatError: Not JSON, or not an object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"not JSON ({describe(path)}: {exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"JSON but not an object (a {type(data).__name__})")
    return data


def sentencepiece_model(path: str | os.PathLike) -> int:
    """Load a sentencepiece model; returns its vocabulary size.

    Raises:
        FormatError: The library cannot load it.
    """
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - a transformers dependency here
        if not Path(path).stat().st_size:
            raise FormatError("an empty file") from None
        return -1
    proc = sentencepiece.SentencePieceProcessor()
    try:
        proc.Load(str(path))
    except (OSError, RuntimeError) as exc:
        raise FormatError(f"not a sentencepiece model ({describe(path)}: {str(exc).splitlines()[0]})") from None
    return int(proc.GetPieceSize())

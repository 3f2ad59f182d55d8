"""One registry of every weight file the harness needs, with offline-safe lookup, verify and download.

Every file is a :class:`WeightFile` (a Hugging Face Hub ``repo_id`` + ``filename``). :func:`resolve` finds a
file on disk without touching the network, looking in this order:

1. an explicit ``weights_dir`` argument, else the ``DEEPFORCING_WEIGHTS_DIR`` environment variable, with the
   layout ``<dir>/<repo_id>/<filename>`` (this is also what ``download(..., dest=dir)`` writes);
2. the Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``), through
   ``huggingface_hub.try_to_load_from_cache``.

A missing file raises one :class:`~deepforcing.errors.UserError` that names the file, every place looked in,
and the command that fetches it (``deepforcing-eval weights download <key>``).

Other engineers add their own entries (metric backbones) with :func:`register`; groups of keys (for example a
whole model) are added with :func:`register_group`.

Importing this module imports neither torch nor ``huggingface_hub`` (both are imported lazily).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deepforcing.errors import UserError

logger = logging.getLogger(__name__)

#: Environment variable naming a local weights directory (layout ``<dir>/<repo_id>/<filename>``).
WEIGHTS_DIR_ENV = "DEEPFORCING_WEIGHTS_DIR"

_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class WeightFile:
    """One file on the Hugging Face Hub that some part of the harness loads.

    Attributes:
        key: Stable short name used on the command line (``deepforcing-eval weights download <key>``).
        repo_id: Hub repository, ``owner/name``.
        filename: Path of the file inside the repository (may contain ``/``).
        revision: Commit hash / branch / tag to pin, or ``None`` for the default branch.
        size_bytes: Exact size when known from a trustworthy source, else ``None``.
        sha256: Hex digest when known from a trustworthy source, else ``None``.
        purpose: What loads the file and why.
        license_note: Licence information, or where to check it.
        index: ``True`` when the file is a ``*.safetensors.index.json``; the shards it lists belong to this
            entry (they are verified and downloaded with it).
        url: For a file published at a plain URL instead of the Hub: the URL. ``repo_id`` / ``filename`` then
            only give its place under the weights directory (``<dir>/<repo_id>/<filename>``), and it is fetched
            with :func:`download_url` (never looked up in the Hugging Face cache).
        archive_member: With ``url``: the URL is a zip archive and the file is this member of it (``size_bytes``
            and ``sha256`` describe the member).
        layout: For a checkpoint: how its tensors are laid out (container, sub-dict, key prefixes), as written by
            the code that saved it.
        state_key: For a training checkpoint: the sub-dict the reference loads (``generator_ema`` with
            ``--use_ema``, ``generator`` without); None = the reader's default preference.
        lora: For a generator checkpoint: the key of a LoRA file merged into it at load time
            (``deepforcing.model.lora``), with ``lora_rank`` and ``lora_alpha``.
        lora_rank: LoRA rank r.
        lora_alpha: LoRA alpha (the update is scaled by alpha / r).
        format: How :func:`verify` opens the file (``safetensors``, ``safetensors-index``, ``torch``, ``json``,
            ``tokenizer-json``, ``sentencepiece``); None: inferred from the file name (see :func:`file_format`).
        check: ``"module:function"`` of a content check, called as ``function(path) -> list[str]`` (problems,
            e.g. missing / unexpected keys of a generator) after the format check; imported only by
            :func:`verify`, so registering it costs nothing.
    """

    key: str
    repo_id: str
    filename: str
    revision: str | None
    size_bytes: int | None
    sha256: str | None
    purpose: str
    license_note: str
    index: bool = False
    url: str | None = None
    archive_member: str | None = None
    layout: str = ""
    state_key: str | None = None
    lora: str | None = None
    lora_rank: int | None = None
    lora_alpha: float | None = None
    format: str | None = None
    check: str | None = None


_REGISTRY: dict[str, WeightFile] = {}
_GROUPS: dict[str, tuple[str, ...]] = {}


def register(entry: WeightFile, *, replace: bool = False) -> WeightFile:
    """Add a file to the registry.

    Args:
        entry: The file description.
        replace: Allow overwriting an existing entry with the same key (otherwise a clash is an error).

    Returns:
        The registered entry (handy as a module-level constant).

    Raises:
        ValueError: If the key already exists with a different description and ``replace`` is False.
    """
    old = _REGISTRY.get(entry.key)
    if old is not None and old != entry and not replace:
        raise ValueError(f"weight key {entry.key!r} is already registered as {old}")
    if entry.key in _GROUPS:
        raise ValueError(f"weight key {entry.key!r} clashes with a group of the same name")
    _REGISTRY[entry.key] = entry
    return entry


def register_group(name: str, keys: Iterable[str]) -> None:
    """Name a set of keys so that ``download <name>`` / ``verify <name>`` act on all of them.

    Args:
        name: Group name (must not clash with a file key).
        keys: Registered file keys.

    Raises:
        ValueError: On an unknown key or a name clash.
    """
    keys = tuple(keys)
    unknown = [k for k in keys if k not in _REGISTRY]
    if unknown:
        raise ValueError(f"group {name!r} names unregistered keys: {unknown}")
    if name in _REGISTRY:
        raise ValueError(f"group name {name!r} clashes with a file key")
    _GROUPS[name] = keys


def entries() -> list[WeightFile]:
    """All registered files, sorted by key."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def groups() -> dict[str, tuple[str, ...]]:
    """All registered groups (name -> file keys)."""
    return dict(_GROUPS)


def get(key: str) -> WeightFile:
    """Look up one registered file.

    Args:
        key: A file key.

    Returns:
        The entry.

    Raises:
        UserError: If the key is unknown (the message lists the known keys).
    """
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UserError(
            f"unknown weight key {key!r}",
            hint=f"known keys: {', '.join(sorted(_REGISTRY))}; groups: {', '.join(sorted(_GROUPS))}",
        ) from None


def expand(keys: str | Iterable[str]) -> list[str]:
    """Expand group names into file keys (order kept, duplicates dropped).

    Args:
        keys: One key/group name or several.

    Returns:
        File keys.

    Raises:
        UserError: On an unknown name.
    """
    if isinstance(keys, str):
        keys = [keys]
    out: list[str] = []
    for k in keys:
        for fk in _GROUPS.get(k, (k,)):
            get(fk)
            if fk not in out:
                out.append(fk)
    return out


# ------------------------------------------------------------------------------------------------------
# Where to look
# ------------------------------------------------------------------------------------------------------


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value (read now)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return True
    return False


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache directory, read from the environment at call time.

    Mirrors huggingface_hub's rules: ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``,
    else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _weights_dir(weights_dir: str | os.PathLike | None) -> Path | None:
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else None


def _local_path(base: Path, entry: WeightFile) -> Path:
    return base / entry.repo_id / entry.filename


def default_weights_dir() -> Path:
    """Where plain-URL files go without ``--weights-dir`` / ``$DEEPFORCING_WEIGHTS_DIR``: ``<cache>/weights``.

    ``<cache>`` is ``$DEEPFORCING_CACHE`` or ``~/.cache/deepforcing-eval`` (the metric weights root of the
    harness, :func:`deepforcing.harness.scoring.metric_weights_root`).
    """
    cache = os.environ.get("DEEPFORCING_CACHE") or str(Path.home() / ".cache" / "deepforcing-eval")
    return Path(cache).expanduser() / "weights"


def _find(entry: WeightFile, weights_dir: str | os.PathLike | None) -> tuple[Path | None, list[str]]:
    """Return (path or None, human-readable list of places looked in)."""
    looked: list[str] = []
    if entry.url is not None:
        p = _local_path(_weights_dir(weights_dir) or default_weights_dir(), entry)
        looked.append(str(p))
        return (p if p.is_file() else None), looked
    base = _weights_dir(weights_dir)
    if base is not None:
        p = _local_path(base, entry)
        looked.append(str(p))
        if p.is_file():
            return p, looked
    else:
        looked.append(f"no weights dir (argument --weights-dir / env {WEIGHTS_DIR_ENV} unset)")

    cache = hf_cache_dir()
    rev = f"@{entry.revision}" if entry.revision else ""
    looked.append(f"Hugging Face cache {cache} ({entry.repo_id}{rev}/{entry.filename})")
    if cache.is_dir():
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(
            repo_id=entry.repo_id, filename=entry.filename, cache_dir=cache, revision=entry.revision
        )
        if isinstance(hit, str) and Path(hit).is_file():
            return Path(hit), looked
    return None, looked


def download_command(key: str) -> str:
    """The shell command that fetches ``key``."""
    return f"deepforcing-eval weights download {key}"


def resolve(key: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """Find a registered file on disk. Never touches the network.

    Args:
        key: A file key (see :func:`entries`).
        weights_dir: Explicit weights directory (layout ``<dir>/<repo_id>/<filename>``); defaults to
            ``$DEEPFORCING_WEIGHTS_DIR``.

    Returns:
        Absolute path of the file.

    Raises:
        UserError: If the file is not found; the message names the file, every place looked in and the
            command that downloads it.
    """
    entry = get(key)
    path, looked = _find(entry, weights_dir)
    if path is not None:
        logger.debug("weights %s -> %s", key, path)
        return path
    raise UserError(
        f"weight file {entry.repo_id}/{entry.filename} (key {key!r}, {entry.purpose}) not found; looked in: "
        + "; ".join(looked),
        hint=f"run `{download_command(key)}` (with `--dest DIR` and {WEIGHTS_DIR_ENV}=DIR to keep it outside "
        "the Hugging Face cache), or put the file at <weights dir>/<repo_id>/<filename>",
    )


def resolve_dir(key: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """The directory that holds a resolved file (for loaders that take a component directory).

    Args:
        key: A file key.
        weights_dir: See :func:`resolve`.

    Returns:
        ``resolve(key).parent``.
    """
    return resolve(key, weights_dir).parent


# ------------------------------------------------------------------------------------------------------
# Verify
# ------------------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _index_shards(index_path: Path) -> list[str]:
    try:
        data = json.loads(index_path.read_text())
        return sorted(set(data["weight_map"].values()))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read safetensors index {index_path}: {e}") from e


class NotHashedYet(Exception):
    """A file has no cached sha256 and hashing was not allowed (dry runs do not hash big files)."""


def cache_dir() -> Path:
    """``$DEEPFORCING_CACHE`` or ``~/.cache/deepforcing-eval`` (read now)."""
    return Path(os.environ.get("DEEPFORCING_CACHE") or Path.home() / ".cache" / "deepforcing-eval").expanduser()


def _sha_cache_path() -> Path:
    return cache_dir() / "sha256-cache.json"


def sha256_cached(path: Path, cache: dict[str, list] | None = None, compute: bool = True) -> str:
    """sha256 of a file, remembered by (path, size, mtime) in ``cache`` so large weights are hashed once.

    Raises:
        NotHashedYet: If the file is not in the cache and ``compute`` is False.
    """
    st = path.stat()
    k = str(path.resolve())
    if cache is not None:
        hit = cache.get(k)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
    if not compute:
        raise NotHashedYet(str(path))
    digest = sha256_file(path)
    if cache is not None:
        cache[k] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def load_sha_cache() -> dict[str, list]:
    """The machine's sha256 cache (path -> [size, mtime_ns, sha256]); empty if absent or unreadable."""
    try:
        return json.loads(_sha_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def save_sha_cache(cache: dict[str, list]) -> None:
    """Write the sha256 cache atomically (a cache: failures are only logged)."""
    path = _sha_cache_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:
        logger.debug("could not save the sha256 cache: %s", exc)
        tmp.unlink(missing_ok=True)


def file_format(entry: WeightFile) -> str | None:
    """The format :func:`verify` checks a file in: ``entry.format``, else from the name (None: not checked)."""
    if entry.format is not None:
        return entry.format
    name = entry.filename.lower()
    if name.endswith(".safetensors.index.json"):
        return "safetensors-index"
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith("tokenizer.json"):
        return "tokenizer-json"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".pt", ".pth", ".ckpt")):
        return "torch"
    if name.endswith(".model"):
        return "sentencepiece"
    return None


#: States of a verified file, in the order they are checked.
STATES = ("missing", "wrong size", "unreadable", "missing shards", "unexpected keys", "wrong sha256", "ok")


class _Bad(Exception):
    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _check_format(path: Path, fmt: str | None) -> None:
    """Open ``path`` in its format (headers only). Raises _Bad('unreadable')."""
    from deepforcing import formats

    try:
        if fmt == "safetensors":
            formats.safetensors_header(path)
        elif fmt == "torch":
            formats.torch_archive(path)
        elif fmt in ("json", "safetensors-index"):
            data = formats.json_object(path)
            if fmt == "safetensors-index" and not isinstance(data.get("weight_map"), dict):
                raise formats.FormatError("a JSON object without a 'weight_map'")
        elif fmt == "tokenizer-json":
            data = formats.json_object(path)
            if not isinstance(data.get("model"), dict) or "type" not in data["model"]:
                raise formats.FormatError("JSON but not a tokenizers file (no model.type)")
        elif fmt == "sentencepiece":
            formats.sentencepiece_model(path)
    except formats.FormatError as exc:
        raise _Bad("unreadable", str(exc)) from None
    except OSError as exc:
        raise _Bad("unreadable", f"cannot read it ({exc.strerror or exc})") from None


def _check_index(path: Path) -> list[str]:
    """Shards of a safetensors index: present, whole, and holding exactly the tensors the index maps."""
    from deepforcing import formats

    weight_map = formats.json_object(path)["weight_map"]
    shards = sorted(set(weight_map.values()))
    missing = [sh for sh in shards if not (path.parent / sh).is_file()]
    if missing:
        raise _Bad("missing shards", f"{len(missing)} of {len(shards)} shards missing: {', '.join(missing[:3])}")
    problems = []
    for shard in shards:
        try:
            names = set(formats.safetensors_header(path.parent / shard)[0])
        except formats.FormatError as exc:
            raise _Bad("unreadable", f"shard {shard}: {exc}") from None
        wanted = {k for k, v in weight_map.items() if v == shard}
        if names != wanted:
            lack, extra = sorted(wanted - names), sorted(names - wanted)
            problems.append(
                f"{shard}: "
                + "; ".join(
                    p
                    for p in (
                        f"{len(lack)} tensors of the index missing (e.g. {', '.join(lack[:2])})" if lack else "",
                        f"{len(extra)} tensors not in the index (e.g. {', '.join(extra[:2])})" if extra else "",
                    )
                    if p
                )
            )
    return problems


def _run_check(spec: str, path: Path) -> list[str]:
    import importlib

    module, _, name = spec.partition(":")
    try:
        return list(getattr(importlib.import_module(module), name)(path))
    except UserError as exc:
        raise _Bad("unreadable", exc.message) from None


def verify(
    keys: str | Iterable[str] | None = None,
    weights_dir: str | os.PathLike | None = None,
    check_sha256: bool = True,
) -> list[dict]:
    """Check that registered files are present, whole and what they claim to be. Never touches the network.

    Per file, in order (the first failing check names the state): present (``missing``); the registered size
    (``wrong size``); opens in its format from its header — safetensors header and byte ranges, a whole
    ``torch.save`` zip, JSON, a tokenizer, a sentencepiece model (``unreadable``); an index's shards are present
    (``missing shards``) and hold exactly the tensors it maps, and the entry's content check passes, e.g. the
    generator's keys and shapes against the model preset (``unexpected keys``); the registered sha256
    (``wrong sha256``, hashed once per file version thanks to a cache keyed by path, size and mtime). Big files
    are never read whole except to hash them, and only entries with a registered sha256 are hashed.

    Args:
        keys: Keys or group names; ``None`` means every registered file.
        weights_dir: See :func:`resolve`.
        check_sha256: Hash files whose sha256 is registered.

    Returns:
        One dict per file key: ``key``, ``repo_id``, ``filename``, ``status`` (one of :data:`STATES`),
        ``detail`` (why, one line; empty when ok), ``format``, ``present`` (bool), ``path`` (str or None),
        ``size`` (bytes or None), ``size_ok`` / ``sha256_ok`` (bool, or None when nothing is registered to
        compare with or not checked), ``missing_shards`` (list, for index entries) and ``ok``.
    """
    rows = []
    cache = load_sha_cache() if check_sha256 else None
    hashed = False
    for key in expand(keys) if keys is not None else sorted(_REGISTRY):
        entry = _REGISTRY[key]
        path, looked = _find(entry, weights_dir)
        fmt = file_format(entry)
        row: dict = {
            "key": key,
            "repo_id": entry.repo_id,
            "filename": entry.filename,
            "status": "ok",
            "detail": "",
            "format": fmt,
            "present": path is not None,
            "path": str(path) if path else None,
            "size": None,
            "size_ok": None,
            "sha256_ok": None,
            "missing_shards": [],
        }
        try:
            if path is None:
                raise _Bad("missing", "looked in: " + "; ".join(looked))
            row["size"] = path.stat().st_size
            if entry.size_bytes is not None:
                row["size_ok"] = row["size"] == entry.size_bytes
                if not row["size_ok"]:
                    raise _Bad("wrong size", f"{row['size']} bytes, expected {entry.size_bytes}")
            _check_format(path, fmt)
            problems = []
            if entry.index or fmt == "safetensors-index":
                try:
                    problems += _check_index(path)
                except _Bad as bad:
                    if bad.status == "missing shards":
                        shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
                        row["missing_shards"] = [sh for sh in shards if not (path.parent / sh).is_file()]
                    raise
            if entry.check is not None:
                problems += _run_check(entry.check, path)
            if problems:
                raise _Bad("unexpected keys", "; ".join(problems))
            if entry.sha256 is not None and check_sha256:
                hashed = True
                row["sha256_ok"] = sha256_cached(path, cache) == entry.sha256.lower()
                if not row["sha256_ok"]:
                    raise _Bad("wrong sha256", f"the file's sha256 differs from the registered {entry.sha256[:12]}…")
        except _Bad as bad:
            row["status"], row["detail"] = bad.status, bad.detail
        row["ok"] = row["status"] == "ok"
        rows.append(row)
    if hashed and cache is not None:
        save_sha_cache(cache)
    return rows


# ------------------------------------------------------------------------------------------------------
# Download
# ------------------------------------------------------------------------------------------------------


def download(keys: str | Iterable[str], dest: str | os.PathLike | None = None) -> list[Path]:
    """Download files: Hub files with ``huggingface_hub.hf_hub_download``, plain-URL files with :func:`download_url`.

    Args:
        keys: Keys or group names.
        dest: Target weights directory (files land at ``<dest>/<repo_id>/<filename>``, which :func:`resolve`
            finds with ``weights_dir=dest`` or ``DEEPFORCING_WEIGHTS_DIR=dest``); ``None`` means the Hugging
            Face cache for Hub files and ``$DEEPFORCING_WEIGHTS_DIR`` or :func:`default_weights_dir` for
            plain-URL files.

    Returns:
        Local paths of the downloaded files (index entries: the index file; its shards land beside it).

    Raises:
        UserError: When ``HF_HUB_OFFLINE`` is set (nothing is attempted), when a download fails, or when a
            downloaded file does not match its registered size / sha256.
    """
    file_keys = expand(keys)
    if is_offline():
        raise UserError(
            f"cannot download {', '.join(file_keys)}: HF_HUB_OFFLINE is set, so no network access is tried",
            hint="unset HF_HUB_OFFLINE (or download on a machine with network access and copy the files "
            f"into <weights dir>/<repo_id>/<filename>, then set {WEIGHTS_DIR_ENV})",
        )

    def fetch(entry: WeightFile, filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        kwargs = {"repo_id": entry.repo_id, "filename": filename, "revision": entry.revision}
        if dest is not None:
            kwargs["local_dir"] = str(Path(dest).expanduser() / entry.repo_id)
        logger.info("downloading %s/%s", entry.repo_id, filename)
        try:
            return Path(hf_hub_download(**kwargs))
        except Exception as e:  # noqa: BLE001 - any hub/network failure becomes one clear error
            raise UserError(
                f"download of {entry.repo_id}/{filename} failed: {type(e).__name__}: {e}",
                hint="check network access and, for gated repos, `huggingface-cli login`",
            ) from e

    out = []
    for key in file_keys:
        entry = _REGISTRY[key]
        if entry.url is not None:
            target = _local_path(_weights_dir(dest) or default_weights_dir(), entry)
            out.append(_download_url_entry(entry, target))
            continue
        path = fetch(entry, entry.filename)
        if entry.size_bytes is not None and path.stat().st_size != entry.size_bytes:
            raise UserError(f"{path} has {path.stat().st_size} bytes, expected {entry.size_bytes}")
        if entry.sha256 is not None and sha256_file(path) != entry.sha256.lower():
            raise UserError(f"{path} does not match its registered sha256 {entry.sha256}")
        if entry.index:
            folder = entry.filename.rsplit("/", 1)[0] + "/" if "/" in entry.filename else ""
            for shard in _index_shards(path):
                fetch(entry, folder + shard)
        out.append(path)
    return out


def download_url(
    url: str,
    path: str | os.PathLike,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    chunk: int = 1 << 20,
) -> Path:
    """Fetch a plain URL to ``path``: streamed to ``<path>.part``, checked, then renamed into place.

    An interrupted download leaves ``<path>.part``; the next call resumes it with an HTTP ``Range`` request
    (and starts over when the server ignores the range). A complete file that fails the size / sha256 check is
    deleted, so a wrong file never lands at ``path``.

    Args:
        url: ``http(s)://`` (or ``file://``) URL.
        path: Destination file.
        sha256: Expected hex digest, when known.
        size: Expected size in bytes, when known.
        timeout: Socket timeout in seconds.
        chunk: Read size.

    Returns:
        ``path``.

    Raises:
        UserError: When offline (``HF_HUB_OFFLINE``), on a network / HTTP error (naming the URL; a partial file
            is kept for resuming), or on a size / sha256 mismatch (nothing is left behind).
    """
    import urllib.error
    import urllib.request

    dest = Path(path).expanduser()
    if is_offline():
        raise UserError(f"cannot download {url}: HF_HUB_OFFLINE is set, so no network access is tried")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "deepforcing-eval"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    logger.info("downloading %s -> %s%s", url, dest, f" (resuming at {have} B)" if have else "")

    def hash_part() -> None:
        with open(part, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)

    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resumed = have > 0 and getattr(resp, "status", 200) == 206
            if resumed:
                hash_part()
            with open(part, "ab" if resumed else "wb") as f:
                while block := resp.read(chunk):
                    digest.update(block)
                    f.write(block)
    except urllib.error.HTTPError as err:
        if not (have and err.code == 416):  # 416: the partial file is already complete
            raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}", "check the URL") from err
        hash_part()
    except (urllib.error.URLError, OSError) as err:
        raise UserError(
            f"download of {url} failed: {type(err).__name__}: {err}",
            hint="check network access (the partial file is kept and resumed next time), or download it "
            f"elsewhere and place it at {dest}",
        ) from err
    got_size, got_sha = part.stat().st_size, digest.hexdigest()
    problem = None
    if size is not None and got_size != size:
        problem = f"has {got_size} bytes, expected {size}"
    elif sha256 is not None and got_sha != sha256.lower():
        problem = f"has sha256 {got_sha}, expected {sha256.lower()}"
    if problem:
        part.unlink()
        raise UserError(f"download of {url} {problem}; the file was deleted", hint="retry, or check the URL")
    os.replace(part, dest)
    return dest


def _download_url_entry(entry: WeightFile, target: Path) -> Path:
    """Download a plain-URL entry (extracting its archive member if it has one); skip an intact file."""
    if target.is_file() and (entry.sha256 is None or sha256_file(target) == entry.sha256.lower()):
        logger.info("%s already present at %s", entry.key, target)
        return target
    if entry.archive_member is None:
        return download_url(entry.url, target, entry.sha256, entry.size_bytes)
    import zipfile

    archive = download_url(entry.url, target.with_name(target.name + ".zip"))
    part = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(entry.archive_member) as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as err:
        part.unlink(missing_ok=True)
        raise UserError(f"{entry.url} has no member {entry.archive_member!r}: {err}") from err
    finally:
        archive.unlink(missing_ok=True)
    if entry.sha256 is not None and sha256_file(part) != entry.sha256.lower():
        part.unlink()
        raise UserError(f"{entry.archive_member} in {entry.url} does not match its registered sha256")
    os.replace(part, target)
    return target


# ------------------------------------------------------------------------------------------------------
# The generator's files
# ------------------------------------------------------------------------------------------------------

_WAN = "Wan-AI/Wan2.1-T2V-1.3B"
_WAN_DIFFUSERS = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
_WAN_LICENSE = "Wan2.1 model weights: Apache-2.0 per the Wan-AI model card (check before redistribution)"
_UMT5_LICENSE = "google/umt5-xxl tokenizer/encoder: Apache-2.0 per Google's model card (check before redistribution)"
_UNKNOWN_LICENSE = "licence not recorded in our reference material; read the Hub model card before redistribution"

SELF_FORCING_DMD = register(
    WeightFile(
        key="self-forcing-dmd",
        repo_id="gdhe17/Self-Forcing",
        filename="checkpoints/self_forcing_dmd.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Self-Forcing DMD causal Wan2.1-T2V-1.3B generator (torch.save dict; use 'generator_ema')",
        license_note=_UNKNOWN_LICENSE,
        layout="torch.save dict {'generator', 'critic', 'generator_ema'}; each a state dict of the Self-Forcing "
        "wrapper: keys 'model.<Wan key>' (e.g. model.blocks.0.self_attn.q.weight)",
        state_key="generator_ema",
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)
INFINITE_FORCING_EMA = register(
    WeightFile(
        key="infinite-forcing-ema",
        repo_id="SOTAMak1r/Infinite-Forcing",
        filename="ema_model.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Infinite-Forcing: Self-Forcing retrained with a 1-frame V-sink and RoPE applied after the cache "
        "read; the default checkpoint of Infinity-RoPE's code (setup_env.sh, inference.sh --use_ema)",
        license_note=_UNKNOWN_LICENSE,
        layout="torch.save dict with 'generator_ema' (EMA_FSDP shadow: float32, names of the wrapper's "
        "named_parameters(): 'model.<Wan key>', FSDP may insert '_fsdp_wrapped_module.'), as written by "
        "Infinite-Forcing trainer/distillation.py save() (which also stores 'generator' and 'critic')",
        state_key="generator_ema",
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)
CAUSAL_FORCING = register(
    WeightFile(
        key="causal-forcing",
        repo_id="zhuhz22/Causal-Forcing",
        filename="chunkwise/causal_forcing.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Causal Forcing chunk-wise 4-step DMD generator (arXiv 2602.02214); an alternative base for the "
        "Self-Forcing family, loaded WITHOUT EMA as Rolling Sink's and Infinity-RoPE's scripts do",
        license_note=_UNKNOWN_LICENSE,
        layout="torch.save dict; 'generator' = the wrapper's state dict, keys 'model.<Wan key>' or "
        "'model._fsdp_wrapped_module.<Wan key>' (thu-ml/Causal-Forcing inference.py strips the latter)",
        state_key="generator",
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)
ROLLING_FORCING_DMD = register(
    WeightFile(
        key="rolling-forcing-dmd",
        repo_id="TencentARC/RollingForcing",
        filename="checkpoints/rolling_forcing_dmd.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Rolling Forcing DMD causal Wan2.1-T2V-1.3B generator (torch.save dict)",
        license_note=_UNKNOWN_LICENSE,
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)

_LONGLIVE = "Efficient-Large-Model/LongLive"
_LONGLIVE_LICENSE = "LongLive weights: CC-BY-NC 4.0 per its README (non-commercial); code Apache-2.0"
_LONGLIVE_BASE_LAYOUT = (
    "torch.save dict; 'generator' (loaded with use_ema: false) = the wrapper's state dict, keys 'model.<Wan key>' "
    "(NVlabs/LongLive v1.0 interactive_inference.py)"
)
LONGLIVE_LORA = register(
    WeightFile(
        key="longlive-lora",
        repo_id=_LONGLIVE,
        filename="models/lora.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="LongLive's streaming-long-tuning LoRA (rank 256, alpha 256) over every Linear of each causal "
        "attention block; merged into longlive_base.pt at load",
        license_note=_LONGLIVE_LICENSE,
        layout="torch.save of peft.get_peft_model_state_dict: optionally under 'generator_lora'; keys "
        "'base_model.model.<Wan key>.lora_A.weight' [256, in] and '.lora_B.weight' [out, 256] for "
        "blocks.{i}.self_attn.{q,k,v,o}, cross_attn.{q,k,v,o}, ffn.{0,2} (utils/lora_utils.py)",
    )
)
LONGLIVE = register(
    WeightFile(
        key="longlive",
        repo_id=_LONGLIVE,
        filename="models/longlive_base.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="LongLive-1.3B generator as released: longlive_base.pt with lora.pt merged (exactly, float32 then "
        "cast) at load; the model card is Efficient-Large-Model/LongLive-1.3B, the files download as "
        "Efficient-Large-Model/LongLive models/",
        license_note=_LONGLIVE_LICENSE,
        layout=_LONGLIVE_BASE_LAYOUT,
        state_key="generator",
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
        lora="longlive-lora",
        lora_rank=256,
        lora_alpha=256.0,
    )
)
LONGLIVE_BASE = register(
    WeightFile(
        key="longlive-base",
        repo_id=_LONGLIVE,
        filename="models/longlive_base.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="LongLive's base checkpoint alone ('LongLive w/o LoRA': the short-window + frame-sink DMD "
        "initialisation, Rolling Sink's 5-s-trained baseline)",
        license_note=_LONGLIVE_LICENSE,
        layout=_LONGLIVE_BASE_LAYOUT,
        state_key="generator",
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)

# Original Wan2.1 release layout (what Self-Forcing / Rolling Forcing load).
WAN_VAE = register(
    WeightFile(
        key="wan2.1-t2v-1.3b/vae",
        repo_id=_WAN,
        filename="Wan2.1_VAE.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Wan2.1 VAE, original key layout (converted with diffusers' convert_wan_vae_to_diffusers)",
        license_note=_WAN_LICENSE,
    )
)
WAN_T5 = register(
    WeightFile(
        key="wan2.1-t2v-1.3b/t5",
        repo_id=_WAN,
        filename="models_t5_umt5-xxl-enc-bf16.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="umT5-XXL text encoder (bf16), Wan's own T5 key names (converted to transformers UMT5 names)",
        license_note=_WAN_LICENSE,
        check="deepforcing.model.text_encoder:check_wan_t5_file",
    )
)
_WAN_TOKENIZER_FILES = ("special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json")
for _f in _WAN_TOKENIZER_FILES:
    register(
        WeightFile(
            key=f"wan2.1-t2v-1.3b/tokenizer/{_f}",
            repo_id=_WAN,
            filename=f"google/umt5-xxl/{_f}",
            revision=None,
            size_bytes=None,
            sha256=None,
            purpose="google/umt5-xxl tokenizer shipped inside the Wan2.1 repo",
            license_note=_UMT5_LICENSE,
        )
    )
WAN_DIT = register(
    WeightFile(
        key="wan2.1-t2v-1.3b/dit",
        repo_id=_WAN,
        filename="diffusion_pytorch_model.safetensors",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="bidirectional Wan2.1-T2V-1.3B DiT (initialisation; the forcing checkpoints overwrite it)",
        license_note=_WAN_LICENSE,
        check="deepforcing.model.checkpoint:check_wan_t2v_1_3b",
    )
)
WAN_DIT_CONFIG = register(
    WeightFile(
        key="wan2.1-t2v-1.3b/config",
        repo_id=_WAN,
        filename="config.json",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="Wan2.1-T2V-1.3B DiT config",
        license_note=_WAN_LICENSE,
        check="deepforcing.model.checkpoint:check_wan_config_json",
    )
)

# Diffusers layout.
for _f in ("config.json", "diffusion_pytorch_model.safetensors"):
    register(
        WeightFile(
            key=f"wan2.1-t2v-1.3b-diffusers/vae/{_f}",
            repo_id=_WAN_DIFFUSERS,
            filename=f"vae/{_f}",
            revision=None,
            size_bytes=None,
            sha256=None,
            purpose="Wan2.1 VAE, diffusers AutoencoderKLWan layout",
            license_note=_WAN_LICENSE,
        )
    )
register(
    WeightFile(
        key="wan2.1-t2v-1.3b-diffusers/text_encoder/config.json",
        repo_id=_WAN_DIFFUSERS,
        filename="text_encoder/config.json",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="umT5-XXL encoder config (transformers UMT5EncoderModel)",
        license_note=_UMT5_LICENSE,
        check="deepforcing.model.text_encoder:check_umt5_config_json",
    )
)
register(
    WeightFile(
        key="wan2.1-t2v-1.3b-diffusers/text_encoder/model.safetensors.index.json",
        repo_id=_WAN_DIFFUSERS,
        filename="text_encoder/model.safetensors.index.json",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="umT5-XXL encoder weights (sharded safetensors; the shards listed in the index come with it)",
        license_note=_UMT5_LICENSE,
        index=True,
    )
)
for _f in _WAN_TOKENIZER_FILES:
    register(
        WeightFile(
            key=f"wan2.1-t2v-1.3b-diffusers/tokenizer/{_f}",
            repo_id=_WAN_DIFFUSERS,
            filename=f"tokenizer/{_f}",
            revision=None,
            size_bytes=None,
            sha256=None,
            purpose="umT5-XXL tokenizer (diffusers layout)",
            license_note=_UMT5_LICENSE,
        )
    )

register_group("wan2.1-t2v-1.3b", [k for k in _REGISTRY if k.startswith("wan2.1-t2v-1.3b/")])
register_group("wan2.1-t2v-1.3b/tokenizer", [f"wan2.1-t2v-1.3b/tokenizer/{f}" for f in _WAN_TOKENIZER_FILES])
register_group("wan2.1-t2v-1.3b-diffusers", [k for k in _REGISTRY if k.startswith("wan2.1-t2v-1.3b-diffusers/")])
register_group(
    "wan2.1-t2v-1.3b-diffusers/vae", [k for k in _REGISTRY if k.startswith("wan2.1-t2v-1.3b-diffusers/vae/")]
)
register_group(
    "wan2.1-t2v-1.3b-diffusers/text_encoder",
    [k for k in _REGISTRY if k.startswith("wan2.1-t2v-1.3b-diffusers/text_encoder/")],
)
register_group(
    "wan2.1-t2v-1.3b-diffusers/tokenizer",
    [k for k in _REGISTRY if k.startswith("wan2.1-t2v-1.3b-diffusers/tokenizer/")],
)
del _f

# ------------------------------------------------------------------------------------------------------
# Metric backbones hosted on the Hugging Face Hub (deepforcing.metrics). deepforcing/metrics/weights.py lists
# every metric file (Hub or plain URL) with its place under the metric weights root and checks them offline.
# ------------------------------------------------------------------------------------------------------

_METRIC_FILES = (
    WeightFile(
        key="metrics/musiq-spaq",
        repo_id="chaofengc/IQA-PyTorch-Weights",
        filename="musiq_spaq_ckpt-358bb6af.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="MUSIQ trained on SPAQ (pyiqa state dict) for VBench imaging_quality; repo per pyiqa 0.1.16's "
        "get_url_from_name, the same file name VBench downloads from IQA-PyTorch's v0.1-weights release",
        license_note=_UNKNOWN_LICENSE,
    ),
    WeightFile(
        key="metrics/amt-s",
        repo_id="lalala125/AMT",
        filename="amt-s.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="AMT-S frame interpolation for VBench motion_smoothness (URL VBench 0.1.5 downloads)",
        license_note=_UNKNOWN_LICENSE,
    ),
    WeightFile(
        key="metrics/viclip",
        repo_id="OpenGVLab/VBench_Used_Models",
        filename="ViClip-InternVid-10M-FLT.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="ViCLIP ViT-L (InternVid-10M-FLT) for VBench overall_consistency (URL VBench 0.1.5 downloads)",
        license_note=_UNKNOWN_LICENSE,
    ),
)
# Metric backbones published at plain URLs (the same files as deepforcing/metrics/weights.py lists, same
# places: <weights dir>/metrics/<...> = the harness' metric weights root / relpath). Downloaded with urllib.
_OPENAI_CLIP = "https://openaipublic.azureedge.net/clip/models/"
_METRIC_URL_FILES = (
    WeightFile(
        key="metrics/dino-vitb16",
        repo_id="metrics",
        filename="dino/dino_vitbase16_pretrain.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="DINO ViT-B/16 for VBench subject_consistency",
        license_note="facebookresearch/dino: Apache-2.0 (check the repository before redistribution)",
        url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
    ),
    WeightFile(
        key="metrics/openai-clip-vit-b32",
        repo_id="metrics",
        filename="clip/ViT-B-32.pt",
        revision=None,
        size_bytes=None,
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        purpose="OpenAI CLIP ViT-B/32 (TorchScript) for VBench background_consistency",
        license_note="openai/CLIP: MIT (check the repository before redistribution)",
        url=_OPENAI_CLIP + "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    ),
    WeightFile(
        key="metrics/openai-clip-vit-l14",
        repo_id="metrics",
        filename="clip/ViT-L-14.pt",
        revision=None,
        size_bytes=None,
        sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        purpose="OpenAI CLIP ViT-L/14 (TorchScript) for aesthetic_quality and laion_improved_aesthetic",
        license_note="openai/CLIP: MIT (check the repository before redistribution)",
        url=_OPENAI_CLIP + "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    ),
    WeightFile(
        key="metrics/laion-aesthetic-v1-l14",
        repo_id="metrics",
        filename="aesthetic/sa_0_4_vit_l_14_linear.pth",
        revision=None,
        size_bytes=4071,
        sha256="2cd4e60f4f24ae3bcd57b847b13c1f3ba27edc28cc1a7f9ce74ee9f421243cba",
        purpose="LAION aesthetic predictor v1 linear head for VBench aesthetic_quality",
        license_note="LAION-AI/aesthetic-predictor: MIT (check the repository before redistribution)",
        url="https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
    ),
    WeightFile(
        key="metrics/laion-improved-l14",
        repo_id="metrics",
        filename="aesthetic/sac+logos+ava1-l14-linearMSE.pth",
        revision=None,
        size_bytes=3714759,
        sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0",
        purpose="LAION improved aesthetic predictor MLP for laion_improved_aesthetic",
        license_note="christophschuhmann/improved-aesthetic-predictor: Apache-2.0 (check before redistribution)",
        url="https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
        "sac+logos+ava1-l14-linearMSE.pth",
    ),
    WeightFile(
        key="metrics/raft-things",
        repo_id="metrics",
        filename="raft/raft-things.pth",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="RAFT (raft-things) for VBench dynamic_degree and the temporal_flickering static filter",
        license_note="princeton-vl/RAFT: BSD-3-Clause (check the repository before redistribution)",
        url="https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip",
        archive_member="models/raft-things.pth",
    ),
    WeightFile(
        key="metrics/i3d-styleganv",
        repo_id="metrics",
        filename="i3d/i3d_torchscript.pt",
        revision=None,
        size_bytes=None,
        sha256=None,
        purpose="StyleGAN-V TorchScript port of the tf-hub I3D (Kinetics-400) for FVD",
        license_note=_UNKNOWN_LICENSE,
        url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    ),
)
for _entry in (*_METRIC_FILES, *_METRIC_URL_FILES):
    register(_entry)
register_group("metrics", [e.key for e in (*_METRIC_FILES, *_METRIC_URL_FILES)])
del _entry

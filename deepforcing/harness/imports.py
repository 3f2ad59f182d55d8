"""Videos made elsewhere as units of a run: find them, give each its prompt, copy it in, score it like any unit.

A folder of videos becomes one or more **imported methods** of a run (``<out>/<suite>/<run-id>/``). Layouts, detected
in this order and reported:

* ``mapping`` — ``--prompts FILE`` is a CSV or JSONL with a ``path`` column (relative to the folder, or absolute),
  ``prompt``, and optionally ``seed``, ``prompt_id``, ``method`` (several methods in one file) and ``segments``
  (a multi-prompt video: a JSON list of ``{"prompt", "start_s", "end_s"}``).
* ``methods`` — the folder holds one sub-folder per method, each in VBench's naming (``--name`` prefixes them).
* ``vbench`` — VBench's naming: ``<prompt>-<index>.<ext>`` (the prompt as the file name, as VBench and VBench-Long
  expect from submitters; ``<prompt>.<ext>`` is index 0). ``--prompts FILE`` may give the full texts of prompts cut
  in the name (a text file with one prompt per line, VBench's ``{video path: prompt}`` JSON, or a prompt JSONL).

Each file is a unit keyed by the sha256 of its bytes, its prompt and its index (:class:`ImportedUnit`): scoring
reuses the scores of a file seen before, a changed file is a new unit (the old one is kept), and the copy in the run
(``units/<key>/video<ext>``, byte for byte) is scored by the same code as a generated video. What the file is
(container, codec, fps, size, frames) is recorded in its ``unit.json`` and in ``index.csv``.

Prompts are matched to the suite's prompts by their text (or by VBench's 180-character cut), so an imported method
shares prompt ids — and paired comparisons — with the methods the engine generated in the same run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepforcing.configs import config_hash
from deepforcing.errors import UserError
from deepforcing.harness.prompts import Prompt, text_sha256

log = logging.getLogger(__name__)

#: File suffixes picked up from a folder (any container PyAV reads; VBench takes .mp4 and .gif).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")
#: VBench-2.0 and VBench-Long submissions cut long prompts to this many characters in file names.
VBENCH_NAME_CHARS = 180
_INDEX = re.compile(r"^(?P<prompt>.*)-(?P<index>\d+)$")


@dataclass(frozen=True)
class ImportedUnit:
    """Everything that determines an imported video's scores (the counterpart of a generated unit's key).

    Attributes:
        video_sha256: sha256 of the file's bytes.
        prompt_id: Prompt id (the suite's, when the text matches one of its prompts).
        prompt_sha256: sha256 of the prompt text.
        seed: Sample index (VBench's ``-<index>``; the seed column of a mapping).
        segments: Multi-prompt videos: ``((prompt, start_s, end_s), ...)``.
    """

    video_sha256: str
    prompt_id: str
    prompt_sha256: str
    seed: int
    segments: tuple[tuple[str, float, float], ...] = ()

    #: Imported videos were not generated here: no frames to plan, no method settings.
    num_latent_frames = None
    method_config_hash = "imported"

    @property
    def key(self) -> str:
        """16-hex-digit content hash; names the unit's folder."""
        return config_hash(self, length=16)


@dataclass(frozen=True)
class ImportedMethod:
    """A method whose videos were imported (stands where a generated method's config stands).

    Attributes:
        name: Method name in the run.
        source: The folder (or mapping file) the videos came from.
        layout: ``vbench``, ``methods`` or ``mapping``.
        role: ``method`` (scored with every metric) or ``reference`` (real videos, scored with FVD alone: the set
            every method's set-level FVD is measured against).
    """

    name: str
    source: str
    layout: str
    role: str = "method"

    sampler_config = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"imported": True, "source": self.source, "layout": self.layout, "role": self.role}

    @property
    def config_hash(self) -> str:
        """``imported``: the videos, not settings, identify an imported method's units."""
        return "imported"


@dataclass(frozen=True)
class VideoFile:
    """One file to import.

    Attributes:
        path: The file.
        prompt: Its prompt.
        seed: Its sample index.
        segments: Multi-prompt segments (empty for one prompt).
    """

    path: Path
    prompt: Prompt
    seed: int
    segments: tuple[tuple[str, float, float], ...] = ()


@dataclass
class ImportSet:
    """The files of one imported method.

    Attributes:
        method: The method.
        files: Its files.
    """

    method: ImportedMethod
    files: list[VideoFile] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- discovery
def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _prompt_for(text: str, suite_prompts: list[Prompt], origin: str) -> Prompt:
    """The suite's prompt with this text (also when the text is VBench's 180-character cut of it), else a new one."""
    for p in suite_prompts:
        if p.text == text or (len(text) == VBENCH_NAME_CHARS and p.text[:VBENCH_NAME_CHARS] == text):
            return p
    sha = text_sha256(text)
    return Prompt(f"p-{sha[:12]}", text, sha, origin)


def _read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or JSONL file (UserError naming the file and line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise UserError(f"{path}:{i}: not JSON ({exc})") from exc
    return rows


def _prompt_texts(path: Path) -> list[str]:
    """Full prompt texts from a prompt list: lines, VBench's ``{path: prompt}`` JSON, or a JSONL with ``text``."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return list(data.values())
        return [d.get("prompt_en") or d.get("prompt") or d.get("text") for d in data if isinstance(d, dict)]
    if path.suffix.lower() == ".jsonl":
        return [r.get("text") or r.get("prompt") for r in _read_table(path)]
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _is_mapping(path: Path) -> bool:
    if path.suffix.lower() not in (".csv", ".jsonl"):
        return False
    rows = _read_table(path)
    return bool(rows) and "path" in rows[0]


def _segments(value: Any, where: str, problems: list[str]) -> tuple[tuple[str, float, float], ...]:
    if value in (None, "", []):
        return ()
    try:
        items = json.loads(value) if isinstance(value, str) else value
        return tuple((str(s["prompt"]), float(s["start_s"]), float(s["end_s"])) for s in items)
    except (ValueError, TypeError, KeyError) as exc:
        problems.append(f"{where}: segments must be a list of {{prompt, start_s, end_s}} ({exc})")
        return ()


def discover(
    folder: str | Path,
    name: str | None,
    *,
    prompts_file: str | Path | None = None,
    suite_prompts: list[Prompt] | None = None,
) -> tuple[str, list[ImportSet]]:
    """Find the videos of a folder, their prompts and indices, and the method(s) they belong to.

    Args:
        folder: The folder.
        name: Method name (the ``vbench`` and ``mapping`` layouts; in the ``methods`` layout the sub-folders name
            the methods, prefixed with ``<name>-`` when a name is given).
        prompts_file: A mapping file, or a list of full prompt texts for VBench names.
        suite_prompts: The suite's prompts, to share their ids.

    Returns:
        The layout and one set per method.

    Raises:
        UserError: One message for every problem found, before any file is copied: no folder, no videos, files
            without a prompt, two files for the same prompt and index, a malformed mapping.
    """
    folder = Path(folder)
    suite_prompts = suite_prompts or []
    if not folder.is_dir():
        raise UserError(f"video folder not found: {folder}", "give the folder that holds the videos")
    mapping = Path(prompts_file) if prompts_file is not None and _is_mapping(Path(prompts_file)) else None
    problems: list[str] = []
    if mapping is not None:
        layout, sets = "mapping", _from_mapping(folder, mapping, name, suite_prompts, problems)
    else:
        full = _prompt_texts(Path(prompts_file)) if prompts_file is not None else []
        subfolders = [d for d in sorted(folder.iterdir()) if d.is_dir() and _videos(d)]
        if not _videos(folder) and subfolders:
            layout = "methods"
            names = {d: f"{name}-{d.name}" if name else d.name for d in subfolders}  # --name prefixes folder names
            sets = [_from_names(d, names[d], layout, full, suite_prompts, problems) for d in subfolders]
        else:
            if not name:
                problems.append("--name is needed: the folder holds the videos of one method")
            layout, sets = "vbench", [_from_names(folder, name or "imported", "vbench", full, suite_prompts, problems)]
    if not any(s.files for s in sets) and not problems:
        problems.append(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    for s in sets:
        seen: dict[tuple[str, int], list[str]] = defaultdict(list)
        for f in s.files:
            seen[(f.prompt.prompt_id, f.seed)].append(f.path.name)
        for (pid, seed), files in seen.items():
            if len(files) > 1:
                problems.append(
                    f"{s.method.name}: {len(files)} files for prompt {pid} index {seed}: {', '.join(files)}"
                )
    if problems:
        raise UserError(
            f"cannot import {folder} ({len(problems)} problem(s); nothing was copied):\n  " + "\n  ".join(problems)
        )
    return layout, sets


def _from_names(
    folder: Path,
    method: str,
    layout: str,
    full_texts: list[str],
    suite_prompts: list[Prompt],
    problems: list[str],
) -> ImportSet:
    """VBench naming: the prompt is the file name without its ``-<index>`` (cut names resolved from full texts)."""
    out = ImportSet(ImportedMethod(method, str(folder.resolve()), layout))
    for path in _videos(folder):
        m = _INDEX.match(path.stem)
        text, seed = (m["prompt"], int(m["index"])) if m else (path.stem, 0)
        if not text.strip():
            problems.append(f"{path.name}: no prompt in the file name (VBench naming is <prompt>-<index>{path.suffix})")
            continue
        longer = [t for t in full_texts if t != text and t[:VBENCH_NAME_CHARS] == text]
        if len(longer) == 1:
            text = longer[0]
        out.files.append(VideoFile(path, _prompt_for(text, suite_prompts, f"{folder.name}/{path.name}"), seed))
    return out


def _from_mapping(
    folder: Path, mapping: Path, name: str | None, suite_prompts: list[Prompt], problems: list[str]
) -> list[ImportSet]:
    """A CSV / JSONL of ``path, prompt[, seed][, prompt_id][, method][, segments]``."""
    sets: dict[str, ImportSet] = {}
    listed: set[Path] = set()
    for i, row in enumerate(_read_table(mapping), 2 if mapping.suffix.lower() == ".csv" else 1):
        where = f"{mapping.name}:{i}"
        raw = str(row.get("path") or "").strip()
        path = Path(raw) if Path(raw).is_absolute() else folder / raw
        if not raw or not path.is_file():
            problems.append(f"{where}: video {raw or '(empty path)'} not found")
            continue
        listed.add(path.resolve())
        text = str(row.get("prompt") or "").strip()
        if not text:
            problems.append(f"{where}: {path.name} has no prompt")
            continue
        try:
            seed = int(row.get("seed") or 0)
        except ValueError:
            problems.append(f"{where}: seed must be an integer, got {row.get('seed')!r}")
            continue
        method = str(row.get("method") or name or "").strip()
        if not method:
            problems.append(f"{where}: no method (give --name or a method column)")
            continue
        prompt = _prompt_for(text, suite_prompts, where)
        if row.get("prompt_id"):
            prompt = dataclasses.replace(prompt, prompt_id=str(row["prompt_id"]))
        segments = _segments(row.get("segments"), where, problems)
        entry = sets.setdefault(method, ImportSet(ImportedMethod(method, str(mapping.resolve()), "mapping")))
        entry.files.append(VideoFile(path, prompt, seed, segments))
    unlisted = [p.name for p in _videos(folder) if p.resolve() not in listed]
    if unlisted:
        problems.append(f"{len(unlisted)} video(s) in {folder} have no row in {mapping.name}: {', '.join(unlisted)}")
    return list(sets.values())


# ------------------------------------------------------------------------------------------------- probing
def probe(path: str | Path) -> dict[str, Any]:
    """What a video file is: container, codec, fps, size, frames and duration (recorded with every import).

    Raises:
        UserError: Not a video PyAV can open.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{Path(path).name} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = stream.frames or None
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            return {
                "container": container.format.name,
                "codec": stream.codec_context.name,
                "fps": float(rate) if rate else None,
                "width": stream.width,
                "height": stream.height,
                "frames": frames,
                "duration_s": duration,
            }
    except (av.error.FFmpegError, OSError) as exc:
        raise UserError(f"cannot open video {Path(path).name}: {exc}") from exc


# ----------------------------------------------------------------------------------------------- copying in
def import_set(store, s: ImportSet) -> list[dict[str, Any]]:
    """Copy one method's files into the run as units (a file seen before is reused) and write its manifest.

    Args:
        store: The run store.
        s: The files of one method.

    Returns:
        The method's items (prompt, index, unit key, file, protocol); also written to ``imports/<method>.json``.
    """
    from deepforcing.harness.provenance import now
    from deepforcing.harness.store import SCHEMA_VERSION, atomic_write_json, sha256_file

    items = []
    for f in s.files:
        sha = sha256_file(f.path)
        unit = ImportedUnit(sha, f.prompt.prompt_id, f.prompt.sha256, f.seed, f.segments)
        key = unit.key
        row = store.done_record(unit)
        if row is None:
            try:
                protocol = probe(f.path)
            except UserError as exc:  # still imported: scoring counts it as a failed unit, with this reason
                protocol = {"error": exc.message}
            video = store.unit_dir(key) / f"video{f.path.suffix.lower()}"
            video.parent.mkdir(parents=True, exist_ok=True)
            tmp = video.parent / f".{video.name}.import.tmp"
            shutil.copyfile(f.path, tmp)
            tmp.replace(video)
            row = {
                "unit_key": key,
                "unit": dataclasses.asdict(unit),
                "method": s.method.name,
                "method_config": {"config_hash": s.method.config_hash, **s.method.to_dict()},
                "imported_from": str(f.path.resolve()),
                "prompt": {"prompt_id": f.prompt.prompt_id, "text": f.prompt.text, "origin": f.prompt.origin},
                "segments": [{"prompt": p, "start_s": a, "end_s": b} for p, a, b in f.segments] or None,
                "video": video.name,
                "video_sha256": sha,
                "video_bytes": video.stat().st_size,
                "protocol": protocol,
                "imported_at": now(),
            }
            store.write_record(key, row)
        items.append(
            {
                "prompt_id": f.prompt.prompt_id,
                "text": f.prompt.text,
                "origin": f.prompt.origin,
                "seed": f.seed,
                "segments": [list(seg) for seg in f.segments],
                "unit": dataclasses.asdict(unit),
                "file": str(f.path.resolve()),
                "protocol": row.get("protocol"),
            }
        )
    atomic_write_json(
        store.imports_dir / f"{s.method.name}.json",
        {"record": "import", "schema_version": SCHEMA_VERSION, "method": s.method.name, "layout": s.method.layout,
         "source": s.method.source, "role": s.method.role, "items": items},
    )  # fmt: skip
    return items


def load_imports(store) -> list[tuple[ImportedMethod, list[tuple[Prompt, int, ImportedUnit]]]]:
    """Every imported method of a run with its (prompt, index, unit) items, in name order.

    Raises:
        UserError: A manifest that cannot be read (naming it).
    """
    out = []
    folder = store.imports_dir
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            method = ImportedMethod(doc["method"], doc["source"], doc["layout"], doc.get("role", "method"))
            items = []
            for it in doc["items"]:
                unit = it["unit"]
                segments = tuple(tuple(s) for s in unit.get("segments") or ())
                prompt = Prompt(it["prompt_id"], it["text"], unit["prompt_sha256"], it.get("origin", ""))
                items.append((prompt, int(it["seed"]), ImportedUnit(**{**unit, "segments": segments})))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read the import manifest {path}: {exc}", "import the folder again") from exc
        out.append((method, items))
    return out

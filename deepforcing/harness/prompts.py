"""Prompt sets with stable ids (``prompts/sets.yaml``) and prompt selection for suites.

A prompt set is one file plus an id scheme. ``lines`` sets take the id from the 1-based line number
(``mgbx-0007``), so the file is pinned by its sha256; ``jsonl`` sets carry explicit ids. Every prompt also has
a ``sha256`` of its text, which is part of a generation unit's key: a changed text can never reuse a video.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepforcing.errors import UserError
from deepforcing.paths import project_root

#: Ids are used in file names and JSON keys: keep them to a safe alphabet.
PROMPT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Prompt:
    """One prompt.

    Attributes:
        prompt_id: Stable id (file names, unit keys and noise derive from it).
        text: The prompt text given to the text encoder.
        sha256: Hex sha256 of ``text`` (UTF-8); for a prompt schedule, of its segments.
        origin: Where it came from, ``<set>:<line>``.
        schedule: A multi-prompt schedule (``deepforcing.prompt_schedule.PromptSchedule``); ``text`` then joins
            its prompts with `` | `` for display.
    """

    prompt_id: str
    text: str
    sha256: str
    origin: str
    schedule: Any = None


@dataclass(frozen=True)
class PromptSetSpec:
    """A registered prompt set (one entry of ``prompts/sets.yaml``).

    Attributes:
        name: Set name used in suites.
        file: Path relative to ``prompts/`` (or absolute).
        format: ``lines`` or ``jsonl``.
        id_format: For ``lines``: ``str.format`` pattern with ``{line}``.
        sha256: Expected sha256 of the file (required for ``lines`` sets).
        description: One line.
        source: Provenance file.
    """

    name: str
    file: str
    format: str
    id_format: str | None = None
    sha256: str | None = None
    description: str = ""
    source: str = ""


def prompts_dir() -> Path:
    """``prompts/`` of the project."""
    return project_root() / "prompts"


def text_sha256(text: str) -> str:
    """Hex sha256 of a prompt's UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def registered_sets() -> dict[str, PromptSetSpec]:
    """Every set in ``prompts/sets.yaml``."""
    path = prompts_dir() / "sets.yaml"
    if not path.is_file():
        raise UserError(f"prompt set registry not found: {path}", "run from a checkout or set DEEPFORCING_HOME")
    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for name, entry in (data.get("sets") or {}).items():
        try:
            out[name] = PromptSetSpec(name=name, **entry)
        except TypeError as exc:
            raise UserError(f"{path}: prompt set '{name}': {exc}") from exc
    return out


def available_sets() -> list[str]:
    """Names of the registered prompt sets."""
    return sorted(registered_sets())


def unknown_set_error(name: str) -> UserError:
    """The error for an unregistered set name (close match + choices)."""
    close = difflib.get_close_matches(name, available_sets(), n=1)
    hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(available_sets())}"
    return UserError(f"unknown prompt set '{name}'", hint)


def load_set(name: str) -> list[Prompt]:
    """Load a registered set, in file order.

    Raises:
        UserError: Unknown set, missing file, changed file (sha256 mismatch) or bad ids.
    """
    spec = registered_sets().get(name)
    if spec is None:
        raise unknown_set_error(name)
    return _load_spec(spec)


@functools.cache
def _load_spec(spec: PromptSetSpec) -> list[Prompt]:
    path = Path(spec.file)
    if not path.is_absolute():
        path = prompts_dir() / path
    if not path.is_file():
        raise UserError(f"prompt set '{spec.name}': file not found: {path}")
    if spec.sha256 and _file_sha256(path) != spec.sha256:
        raise UserError(
            f"prompt set '{spec.name}': {path} does not match its pinned sha256 {spec.sha256[:12]}…",
            "line-number ids would silently point at other prompts; restore the file or register a new set",
        )
    if spec.format == "lines":
        if not spec.id_format or "{line" not in spec.id_format:
            raise UserError(f"prompt set '{spec.name}': a 'lines' set needs an id_format with {{line}}")
        if not spec.sha256:
            raise UserError(f"prompt set '{spec.name}': a 'lines' set must pin its file with sha256")
        prompts = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            text = line.strip()
            if not text:
                raise UserError(f"{path}:{i}: empty prompt line")
            prompts.append(Prompt(spec.id_format.format(line=i), text, text_sha256(text), f"{spec.name}:{i}"))
        _check_ids(prompts, str(path))
        return prompts
    if spec.format == "jsonl":
        return load_jsonl(path, spec.name)
    raise UserError(f"prompt set '{spec.name}': unknown format '{spec.format}'", "choose one of: lines, jsonl")


def load_jsonl(path: str | Path, name: str | None = None) -> list[Prompt]:
    """Load a JSONL prompt file (``{"prompt_id": ..., "prompt": ...}`` per line).

    Raises:
        UserError: Unreadable file, a bad line (with its line number), or duplicate ids.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"prompt file not found: {path}")
    label = name or path.stem
    prompts = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pid, text = str(row["prompt_id"]), str(row["prompt"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f'{path}:{i}: expected {{"prompt_id": ..., "prompt": ...}} ({exc})') from exc
        if not text:
            raise UserError(f"{path}:{i}: empty prompt for id '{pid}'")
        prompts.append(Prompt(pid, text, text_sha256(text), f"{label}:{i}"))
    if not prompts:
        raise UserError(f"{path}: no prompts")
    _check_ids(prompts, str(path))
    return prompts


def _check_ids(prompts: list[Prompt], where: str) -> None:
    seen: dict[str, Prompt] = {}
    for p in prompts:
        if not PROMPT_ID_RE.match(p.prompt_id):
            raise UserError(
                f"{where}: prompt id '{p.prompt_id}' ({p.origin}) is not a safe id",
                f"use 1-64 characters from [A-Za-z0-9._-], starting with a letter or digit ({PROMPT_ID_RE.pattern})",
            )
        other = seen.get(p.prompt_id.lower())
        if other is not None:
            raise UserError(
                f"{where}: duplicate prompt id '{p.prompt_id}' ({other.origin} and {p.origin}; ids must be unique "
                "even ignoring case)"
            )
        seen[p.prompt_id.lower()] = p

"""Suites: the evaluation protocol as versioned data (``eval/suites/*.yaml``), validated before any compute.

A suite names a model preset, a prompt selection, methods, seeds, a video length, metrics and drift summaries.
It resolves to a frozen :class:`SuiteConfig` whose content hash is written into every result file. Loading
collects every problem of the file (unknown method / metric / prompt set, duplicate prompt ids, lengths that are
not whole chunks, …) and raises one :class:`~deepforcing.errors.UserError` that names the YAML line of each and
the valid choices. Command-line overrides go through the same validation; their problems name the flag.

Schema (see ``eval/suites/README.md`` for the full description)::

    name: smoke                 # the file name is the suite name (a different value only warns)
    version: 1                  # bump whenever the protocol changes
    description: one line
    model: tiny                 # model preset
    prompts: {set: moviegen, first: 2}      # or {set: ..., ids: [...]}, or {file: path.jsonl, ...}
    methods: [self-forcing, deep-forcing]
    seeds: [0]
    length: {latent_frames: 42}             # or {seconds: 60}: seconds x 16 fps / 4 latent frames
    metrics: [image_stats]                  # registered metric names (deepforcing.metrics)
    drift: [image_stats]                    # metrics whose per-clip series get drift summaries
    clip_seconds: 2                         # VBench-Long clip length
    allow_short: false                      # score a video shorter than one clip as a single clip
    fvd_window_s: 5                         # temporal FVD (metric ``fvd``): first vs last window of each video
    scene_split: false                      # split at scene cuts first (VBench-Long --use_semantic_splitting)
    clip_protocol: decode-once              # or vbench-long-exact: re-encode every clip and average all clips,
                                            #   as VBench-Long does (for numbers beside published ones)
    metric_options:                         # optional, per metric (see METRIC_OPTIONS); part of the hash
      temporal_flickering: {static_filter: true}
    prompt_schedule: {file: prompts/multi-prompt/schedules.yaml}   # instead of prompts: multi-prompt videos
    switch: [keep, flush, cut, recache]     # with prompt_schedule: run every method x mode it defines

An alias file holds only ``alias: <suite>`` (plus an optional description).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deepforcing.configs import to_dict
from deepforcing.errors import UserError
from deepforcing.harness.prompts import (
    Prompt,
    available_sets,
    load_jsonl,
    load_set,
    registered_sets,
    unknown_set_error,
)
from deepforcing.harness.yaml_lines import KeyPath, load_with_lines
from deepforcing.paths import project_root

log = logging.getLogger(__name__)

#: Output frame rate and VAE temporal compression of Wan2.1 (also in ``deepforcing.pipeline``, which imports
#: torch; repeated here so that validation and dry runs stay light).
VIDEO_FPS = 16
TEMPORAL_COMPRESSION = 4

_FIELDS = {
    "name",
    "version",
    "description",
    "model",
    "prompts",
    "methods",
    "seeds",
    "length",
    "metrics",
    "drift",
    "clip_seconds",
    "allow_short",
    "fvd_window_s",
    "metric_options",
    "scene_split",
    "prompt_schedule",
    "switch",
    "clip_protocol",
}
_REQUIRED = ("version", "model", "prompts", "methods", "seeds", "length", "metrics")

#: Options a suite may set per metric (``metric_options``): option -> ``bool``, ``"weight"`` (a number >= 0),
#: ``"seconds"`` (a number > 0), ``"seconds-list"`` (increasing numbers > 0) or a tuple of allowed strings. They become
#: fields of the metric's config (``deepforcing.harness.scoring``).
METRIC_OPTIONS: dict[str, dict[str, Any]] = {
    "temporal_flickering": {"static_filter": bool, "static_filter_early_exit": bool},
    "dynamic_degree": {"early_exit": bool},
    "subject_consistency": {"slow_fast": bool, "w_inclip": "weight", "w_clip2clip": "weight"},
    "background_consistency": {"slow_fast": bool, "w_inclip": "weight", "w_clip2clip": "weight"},
    "laion_improved_aesthetic": {"preprocess": ("pil", "vbench")},
    "long_horizon_coherence": {"stride_s": "seconds", "gaps_s": "seconds-list"},
    "switch_latency": {"search_s": "seconds"},
    "transition_smoothness": {"window_s": "seconds"},
}


def suites_dir() -> Path:
    """``eval/suites/`` of the project."""
    return project_root() / "eval" / "suites"


@dataclass(frozen=True)
class PromptSelection:
    """Which prompts a suite uses.

    Attributes:
        set: Registered prompt set name (or None with ``file``).
        file: A JSONL prompt file (relative to the project root) instead of a registered set.
        first: Take the first N prompts of the set (None: all, unless ``ids``).
        ids: Take exactly these ids, in this order.
    """

    set: str | None = None
    file: str | None = None
    first: int | None = None
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SuiteConfig:
    """A resolved, validated suite.

    Attributes:
        name: Suite name (= file stem; a copied file is its own suite under its new name).
        version: Protocol version (bumped whenever what the suite measures changes).
        description: One line.
        model: Model preset name.
        prompts: The prompt selection.
        methods: Method names, in report order.
        seeds: Seeds; every (prompt, seed) is one sample.
        num_latent_frames: Latent frames per video (whole chunks of every method).
        metrics: Registered metric names.
        drift: Metrics whose per-clip series get drift summaries.
        clip_seconds: Clip length of the VBench-Long splitter.
        allow_short: Score a video shorter than one clip as a single clip.
        fvd_window_s: Temporal FVD window: clips of the first ``fvd_window_s`` seconds of every video are the
            reference, clips of the last ``fvd_window_s`` seconds are compared with them.
        limit: Keep only the first N selected prompts (``--limit``), None for all.
        overrides: Command-line overrides applied, as ``flag -> value`` (part of the hash).
        metric_options: Per-metric options (:data:`METRIC_OPTIONS`), sorted, as ``(metric, ((option, value),
            ...))``.
        clip_protocol: ``decode-once`` (default: frames decoded once, clips averaged per video, then videos) or
            ``vbench-long-exact`` (every clip re-encoded as VBench-Long writes it, and the plain mean over all clips
            of all videos; :class:`deepforcing.metrics.clips.ClipProtocol`); metric ids carry it.
        scene_split: Split every video at its scene cuts (PySceneDetect, VBench-Long's defaults) before the
            fixed-length clip split (:func:`deepforcing.metrics.clips.split_scene_clips`).
        prompt_schedule: A file of named prompt schedules (``deepforcing.prompt_schedule``), relative to the
            project root, used instead of ``prompts``: every schedule is one multi-prompt "prompt" of the suite.
        switches: The switch modes the suite compares; ``methods`` then holds every ``<method>+<mode>`` whose
            policy defines the mode (the suite file lists the base methods).
    """

    name: str
    version: int
    description: str
    model: str
    prompts: PromptSelection
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    num_latent_frames: int
    metrics: tuple[str, ...]
    drift: tuple[str, ...] = ()
    clip_seconds: float = 2.0
    allow_short: bool = False
    fvd_window_s: float = 5.0
    limit: int | None = None
    overrides: tuple[tuple[str, str], ...] = field(default=())
    metric_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    scene_split: bool = False
    prompt_schedule: str | None = None
    switches: tuple[str, ...] = ()
    clip_protocol: str = "decode-once"

    @property
    def config_hash(self) -> str:
        """Short content hash of the protocol (the description is excluded).

        ``metric_options``, ``scene_split`` and ``clip_protocol`` enter the hash only when set, so the hashes of
        suites that do not use them are the same as before these fields existed.
        """
        data = to_dict(replace(self, description=""))
        if not self.metric_options:
            data.pop("metric_options")
        if not self.scene_split:
            data.pop("scene_split")
        for key in ("prompt_schedule", "switches"):
            if not data[key]:
                data.pop(key)
        if self.clip_protocol == "decode-once":
            data.pop("clip_protocol")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def options_for(self, metric: str) -> dict[str, Any]:
        """The ``metric_options`` of one metric (empty if none)."""
        return dict(dict(self.metric_options).get(metric, ()))

    @property
    def seconds(self) -> float:
        """Nominal video length: latent frames x 4 / 16 fps."""
        return self.num_latent_frames * TEMPORAL_COMPRESSION / VIDEO_FPS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with ``config_hash``)."""
        return {**to_dict(self), "config_hash": self.config_hash}


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides of a suite (None: keep the suite's value).

    Attributes:
        methods: ``--methods``.
        metrics: ``--metrics``.
        seeds: ``--seeds``.
        limit: ``--limit`` (first N prompts).
        seconds: ``--duration`` in seconds.
        latent_frames: ``--num-latent-frames``.
        model: ``--model``.
    """

    methods: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    limit: int | None = None
    seconds: float | None = None
    latent_frames: int | None = None
    model: str | None = None


# ------------------------------------------------------------------------------------------------- listing
def available_suites() -> list[str]:
    """Names of the suites in ``eval/suites/`` (aliases included)."""
    return sorted(p.stem for p in suites_dir().glob("*.yaml"))


def suite_path(name: str) -> Path:
    """Path of suite ``name`` (a name from :func:`available_suites` or a path to a YAML file)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        p = Path(name)
        if not p.is_file():
            raise UserError(f"suite file not found: {p}")
        return p
    p = suites_dir() / f"{name}.yaml"
    if not p.is_file():
        choices = available_suites()
        close = difflib.get_close_matches(name, choices, n=1)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(choices)}"
        raise UserError(f"unknown suite '{name}'", hint)
    return p


# ---------------------------------------------------------------------------------------------- validation
class _Problems:
    """Collects validation problems with their location, then raises them as one error."""

    def __init__(self, path: Path, lines: dict[KeyPath, int], flags: dict[KeyPath, str]):
        self.path, self.lines, self.flags = path, lines, flags
        self.items: list[str] = []

    def where(self, key: KeyPath) -> str:
        prefixes = (key, *(key[:i] for i in range(len(key) - 1, -1, -1)))
        for k in prefixes:
            if k in self.flags:
                return self.flags[k]
        for k in prefixes:
            if k in self.lines:
                return f"{_display(self.path)}:{self.lines[k]}"
        return _display(self.path)

    def add(self, key: KeyPath, message: str, hint: str | None = None) -> None:
        self.items.append(f"{self.where(key)}: {message}" + (f" — {hint}" if hint else ""))

    def raise_if_any(self, suite: str) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise UserError(f"suite '{suite}' is invalid: {self.items[0]}")
        raise UserError(f"suite '{suite}' is invalid ({len(self.items)} problems):\n  " + "\n  ".join(self.items))


def _display(path: Path) -> str:
    """``path`` relative to the project root when it lies inside it."""
    try:
        return str(path.resolve().relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def _choices(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(valid)}"


def _as_list(value: Any) -> list[Any] | None:
    if isinstance(value, list | tuple):
        return list(value)
    return None


def _whole_chunks_hint(frames: float, chunk: int) -> str:
    lo = chunk * max(1, math.floor(frames / chunk))
    hi = chunk * math.ceil(frames / chunk)
    sec = TEMPORAL_COMPRESSION / VIDEO_FPS
    options = sorted({lo, hi})
    return "nearest whole-chunk lengths: " + " or ".join(f"{f * sec:g} s = {f} latent frames" for f in options)


def load_suite(name: str, overrides: Overrides | None = None, *, check_prompts: bool = True) -> SuiteConfig:
    """Load, resolve aliases, apply overrides and validate a suite.

    Args:
        name: Suite name (``eval/suites/<name>.yaml``) or a path to a suite file.
        overrides: Command-line overrides.
        check_prompts: Also check that the model can read every prompt's text (the toy model's grammar; this
            loads the model kind's code). Listings skip it.

    Returns:
        The validated suite.

    Raises:
        UserError: One error listing every problem, each with its YAML line (or flag) and the valid choices.
    """
    path = suite_path(name)
    data, lines = load_with_lines(path)
    seen = [path.stem]
    while "alias" in data:
        extra = set(data) - {"alias", "description"}
        if extra:
            raise UserError(f"{path}:{lines[()]}: an alias file holds only 'alias' and 'description', not {extra}")
        target = str(data["alias"])
        if target in seen:
            raise UserError(f"{path}:{lines[('alias',)]}: alias cycle {' -> '.join([*seen, target])}")
        seen.append(target)
        try:
            path = suite_path(target)
        except UserError as exc:
            raise UserError(f"{path}:{lines[('alias',)]}: {exc.message}", exc.hint) from exc
        data, lines = load_with_lines(path)
    return _validate(path, data, lines, overrides or Overrides(), check_prompts)


def _validate(
    path: Path, data: dict[str, Any], lines: dict[KeyPath, int], ov: Overrides, check_prompts: bool = True
) -> SuiteConfig:
    from deepforcing import methods as methods_registry
    from deepforcing import model_kinds
    from deepforcing.metrics import available_metrics

    flags: dict[KeyPath, str] = {}
    applied: list[tuple[str, str]] = []

    def override(key: KeyPath, flag: str, value: Any, shown: str) -> None:
        target = data
        for k in key[:-1]:
            if not isinstance(target.get(k), dict):
                target[k] = {}
            target = target[k]
        target[key[-1]] = value
        flags[key] = flag
        applied.append((flag, shown))

    if ov.methods is not None:
        override(("methods",), "--methods", list(ov.methods), ",".join(ov.methods))
    if ov.metrics is not None:
        override(("metrics",), "--metrics", list(ov.metrics), ",".join(ov.metrics))
        data["drift"] = [d for d in data.get("drift") or [] if d in ov.metrics]
    if ov.seeds is not None:
        override(("seeds",), "--seeds", list(ov.seeds), ",".join(map(str, ov.seeds)))
    if ov.model is not None:
        override(("model",), "--model", ov.model, ov.model)
    if ov.seconds is not None or ov.latent_frames is not None:
        data["length"] = {}
        if ov.seconds is not None:
            override(("length", "seconds"), "--duration", ov.seconds, f"{ov.seconds:g}")
        if ov.latent_frames is not None:
            override(("length", "latent_frames"), "--num-latent-frames", ov.latent_frames, str(ov.latent_frames))
        flags[("length",)] = flags.get(("length", "seconds")) or flags[("length", "latent_frames")]
    if ov.limit is not None:
        flags[("limit",)] = "--limit"
        applied.append(("--limit", str(ov.limit)))

    problems = _Problems(path, lines, flags)
    unknown = sorted(set(data) - _FIELDS)
    for key in unknown:
        problems.add((key,), f"unknown field '{key}'", f"valid fields: {', '.join(sorted(_FIELDS))}")
    scheduled = "prompt_schedule" in data
    if scheduled:
        if "prompts" in data:
            problems.add(("prompts",), "give either prompts or prompt_schedule, not both")
        data.setdefault("prompts", {})
        data.setdefault("length", {"latent_frames": 0})  # from the schedules, below
    for key in _REQUIRED:  # reported with every other problem of the file, not alone
        if key not in data:
            problems.add((), f"missing required field '{key}'")

    # The file name is the suite's name (`--suite NAME` finds it by that name, its runs go to <out>/NAME/):
    # a copy under another name is another suite, whatever its `name:` field says.
    name = path.stem
    if "name" in data and str(data["name"]) != name:
        log.warning(
            "%s: name '%s' differs from the file name; the suite is called '%s' (its runs go to <out>/%s/)",
            problems.where(("name",)),
            data["name"],
            name,
            name,
        )
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.add(("version",), f"version must be a positive integer, got {version!r}")

    model = str(data.get("model", ""))
    if "model" in data and model not in model_kinds.available():
        problems.add(("model",), f"unknown model '{model}'", _choices(model, model_kinds.available()))

    # ---- methods
    method_names = _as_list(data.get("methods"))
    resolved_methods = []
    if not method_names:  # `methods: []` is a scoring-only suite (its runs hold imported videos)
        if "methods" in data and not isinstance(data["methods"], list):
            problems.add(("methods",), "methods must be a list of method names ([] for imported videos only)")
        method_names = []
    valid_methods = methods_registry.available()
    for i, m in enumerate(method_names):
        if m not in valid_methods:
            problems.add(("methods", i), f"unknown method '{m}'", _choices(str(m), valid_methods))
        else:
            resolved_methods.append(methods_registry.get(m))
    for i, m in enumerate(method_names):
        if method_names.index(m) != i:
            problems.add(("methods", i), f"method '{m}' is listed twice")

    # ---- seeds
    seeds = _as_list(data.get("seeds"))
    if not seeds:
        if "seeds" in data:
            problems.add(("seeds",), "seeds must be a non-empty list of integers")
        seeds = []
    for i, s in enumerate(seeds):
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            problems.add(("seeds", i), f"seed must be a non-negative integer, got {s!r}")
        elif seeds.index(s) != i:
            problems.add(("seeds", i), f"seed {s} is listed twice")

    # ---- length
    length = data.get("length")
    frames = 0
    length_keys = {"seconds", "latent_frames"}
    if "length" not in data:
        pass
    elif not isinstance(length, dict) or len(set(length) & length_keys) != 1 or set(length) - length_keys:
        problems.add(("length",), "length must be {seconds: S} or {latent_frames: F}")
    elif scheduled and length == {"latent_frames": 0}:
        pass  # the schedules' length
    elif "latent_frames" in length:
        f = length["latent_frames"]
        if not isinstance(f, int) or isinstance(f, bool) or f <= 0:
            problems.add(("length", "latent_frames"), f"latent_frames must be a positive integer, got {f!r}")
        else:
            frames = f
    else:
        s = length["seconds"]
        if not isinstance(s, int | float) or isinstance(s, bool) or not s > 0 or not math.isfinite(s):
            problems.add(("length", "seconds"), f"seconds must be positive and finite, got {s!r}")
        else:
            exact = s * VIDEO_FPS / TEMPORAL_COMPRESSION
            if exact != int(exact):
                problems.add(
                    ("length", "seconds"),
                    f"{s:g} s is {exact:g} latent frames, not a whole number",
                    _whole_chunks_hint(exact, 3),
                )
            else:
                frames = int(exact)
    if frames:
        key = ("length", "latent_frames") if "latent_frames" in length else ("length", "seconds")
        by_chunk: dict[int, list[str]] = {}
        for m in resolved_methods:
            by_chunk.setdefault(m.sampler_config.chunk_frames, []).append(m.name)
        for chunk, names in sorted(by_chunk.items()):
            if frames % chunk:
                problems.add(
                    key,
                    f"{frames * TEMPORAL_COMPRESSION / VIDEO_FPS:g} s = {frames} latent frames is not a whole number "
                    f"of {chunk}-frame chunks (methods {', '.join(names)})",
                    _whole_chunks_hint(frames, chunk),
                )
        for m in resolved_methods:  # what would otherwise fail unit by unit, after other units were generated
            need = _min_frames(m)
            if frames < need:
                problems.add(key, f"method '{m.name}' needs at least {need} latent frames, got {frames}")

    # ---- metrics and drift
    valid_metrics = available_metrics()
    metric_names = _as_list(data.get("metrics", []))
    if metric_names is None:
        problems.add(("metrics",), "metrics must be a list of metric names")
        metric_names = []
    for i, m in enumerate(metric_names):
        if m not in valid_metrics:
            problems.add(("metrics", i), f"unknown metric '{m}'", _choices(str(m), valid_metrics))
        elif metric_names.index(m) != i:
            problems.add(("metrics", i), f"metric '{m}' is listed twice")
        elif m == "fvd" and frames:
            window = data.get("fvd_window_s", 5.0)
            seconds = (1 + TEMPORAL_COMPRESSION * (frames - 1)) / VIDEO_FPS
            if isinstance(window, int | float) and not isinstance(window, bool) and seconds < 2 * window:
                problems.add(
                    ("metrics", i),
                    f"temporal FVD compares the first and last {window:g} s, but the videos are {seconds:.2f} s",
                    f"use videos of at least {2 * window:g} s or a shorter fvd_window_s",
                )
    drift = _as_list(data.get("drift") or [])
    if drift is None:
        problems.add(("drift",), "drift must be a list of metric names")
        drift = []
    for i, d in enumerate(drift):
        if d not in metric_names:
            problems.add(("drift", i), f"drift of '{d}' needs '{d}' in metrics", f"metrics are: {metric_names}")

    metric_options = _validate_metric_options(data.get("metric_options"), metric_names, problems)

    clip_seconds = data.get("clip_seconds", 2.0)
    if not isinstance(clip_seconds, int | float) or isinstance(clip_seconds, bool) or clip_seconds <= 0:
        problems.add(("clip_seconds",), f"clip_seconds must be positive, got {clip_seconds!r}")
    elif (VIDEO_FPS * clip_seconds) != int(VIDEO_FPS * clip_seconds):
        problems.add(("clip_seconds",), f"clip_seconds x {VIDEO_FPS} fps must be a whole number of frames")
    fvd_window = data.get("fvd_window_s", 5.0)
    if not isinstance(fvd_window, int | float) or isinstance(fvd_window, bool) or fvd_window <= 0:
        problems.add(("fvd_window_s",), f"fvd_window_s must be positive seconds, got {fvd_window!r}")
    elif "fvd" in (data.get("drift") or []):
        problems.add(("drift",), "temporal FVD is a set-level number; it has no per-clip series to drift")
    allow_short = data.get("allow_short", False)
    if not isinstance(allow_short, bool):
        problems.add(("allow_short",), f"allow_short must be true or false, got {allow_short!r}")
    scene_split = data.get("scene_split", False)
    if not isinstance(scene_split, bool):
        problems.add(("scene_split",), f"scene_split must be true or false, got {scene_split!r}")
    clip_protocol = data.get("clip_protocol", "decode-once")
    if clip_protocol not in ("decode-once", "vbench-long-exact"):
        problems.add(("clip_protocol",), f"unknown clip_protocol {clip_protocol!r}", "decode-once or vbench-long-exact")

    # ---- prompt schedules and switch modes
    schedule_file, switches = None, ()
    if scheduled:
        schedule_file, switches, method_names, frames = _validate_schedules(
            data, resolved_methods, method_names, frames, problems
        )

    # ---- prompts
    if scheduled:
        selection, prompt_list = PromptSelection(), None
    else:
        selection, prompt_list = _validate_prompts(data["prompts"], problems) if "prompts" in data else (None, None)
        if prompt_list and check_prompts and model in model_kinds.available():
            _validate_prompt_texts(model, prompt_list[: ov.limit] if ov.limit else prompt_list, problems)
    if ov.limit is not None:
        if ov.limit < 1:
            problems.add(("limit",), f"must be >= 1, got {ov.limit}")
        elif prompt_list is not None and ov.limit > len(prompt_list):
            problems.add(("limit",), f"{ov.limit} is more than the suite's {len(prompt_list)} prompts")

    problems.raise_if_any(path.stem)
    return SuiteConfig(
        name=name,
        version=int(version),
        description=str(data.get("description", "")),
        model=model,
        prompts=selection,
        methods=tuple(method_names),
        seeds=tuple(int(s) for s in seeds),
        num_latent_frames=frames,
        metrics=tuple(metric_names),
        drift=tuple(drift),
        clip_seconds=float(clip_seconds),
        allow_short=allow_short,
        fvd_window_s=float(fvd_window) if isinstance(fvd_window, int | float) else 5.0,
        limit=ov.limit,
        overrides=tuple(applied),
        metric_options=metric_options,
        scene_split=scene_split,
        prompt_schedule=schedule_file,
        switches=switches,
        clip_protocol=str(clip_protocol),
    )


def _validate_schedules(
    data: dict[str, Any], methods: list[Any], method_names: list[Any], frames: int, problems: _Problems
) -> tuple[str | None, tuple[str, ...], list[str], int]:
    """Check ``prompt_schedule`` and ``switch``; expand the methods by mode; the videos' common length."""
    from deepforcing.policies import switch_modes
    from deepforcing.prompt_schedule import SWITCH_MODES, load_schedules

    spec = data["prompt_schedule"]
    key: KeyPath = ("prompt_schedule",)
    if not isinstance(spec, dict) or set(spec) != {"file"}:
        problems.add(key, "prompt_schedule must be {file: path/to/schedules.yaml}")
        return None, (), method_names, frames
    file = str(spec["file"])
    raw_switch = data.get("switch", [])
    switches = [raw_switch] if isinstance(raw_switch, str) else _as_list(raw_switch)
    if switches is None:
        problems.add(("switch",), "switch must be a mode or a list of modes")
        switches = []
    for i, mode in enumerate(switches):
        if mode not in SWITCH_MODES:
            problems.add(("switch", i), f"unknown switch mode '{mode}'", _choices(str(mode), list(SWITCH_MODES)))
    expanded = list(method_names)
    if switches:
        expanded = []
        for m in methods:
            modes = switch_modes(m.policy)
            runnable = [s for s in switches if s in modes]
            if not runnable:
                problems.add(
                    ("methods",), f"method '{m.name}' defines none of the modes {switches} (it defines {modes})"
                )
            expanded += [f"{m.name}+{s}" for s in runnable]
    path = Path(file) if Path(file).is_absolute() else project_root() / file
    try:
        schedules = load_schedules(path)
    except UserError as exc:
        problems.add((*key, "file"), str(exc))
        return file, tuple(switches), expanded, frames
    totals = set()
    for m in methods:
        for sched in schedules:
            found = sched.problems(m.sampler_config.chunk_frames, switches[0] if switches else m.switch)
            for problem in found:
                problems.add((*key, "file"), f"schedule '{sched.schedule_id}': {problem}")
            if not found:
                totals.add(sched.resolve(m.sampler_config.chunk_frames, m.switch)[-1].end_frame)
    if len(totals) > 1:
        problems.add(
            (*key, "file"), f"the schedules last {sorted(totals)} latent frames; a suite's videos share one length"
        )
    elif totals:
        (total,) = totals
        if frames and frames != total:
            problems.add(("length",), f"length is {frames} latent frames but the schedules last {total}")
        frames = total
    ids = [s.schedule_id for s in schedules]
    for i, sid in enumerate(ids):
        if ids.index(sid) != i:
            problems.add((*key, "file"), f"schedule id '{sid}' is used twice")
    return file, tuple(switches), expanded, frames


def _min_frames(method) -> int:
    """Fewest latent frames a method can generate: one chunk, or Rolling Forcing's first full window."""
    cfg = method.sampler_config
    return cfg.chunk_frames * (len(cfg.denoising_steps) if method.sampler == "rolling" else 1)


def _validate_prompt_texts(model: str, prompts: list[Prompt], problems: _Problems) -> None:
    """Name every prompt the model cannot read (e.g. the toy model's caption grammar), as one problem."""
    from deepforcing import model_kinds

    kind = model_kinds.get(model)
    bad = [f"{p.prompt_id} ({why})" for p in prompts for why in kind.prompt_problems([p.text])]
    if bad:
        problems.add(
            ("prompts",),
            f"{len(bad)} of {len(prompts)} prompts cannot be read by the {model} model: "
            + "; ".join(bad[:3])
            + (" …" if len(bad) > 3 else ""),
            (kind.prompt_hint + "; or choose " if kind.prompt_hint else "choose ")
            + f"prompts the {model} model reads, or another --model",
        )


def _validate_metric_options(
    spec: Any, metric_names: list[Any], problems: _Problems
) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """Check ``metric_options`` against :data:`METRIC_OPTIONS`; return it sorted (empty when absent)."""
    if spec is None:
        return ()
    if not isinstance(spec, dict):
        problems.add(("metric_options",), "metric_options must map metric names to {option: value}")
        return ()
    out = []
    for metric, options in spec.items():
        key: KeyPath = ("metric_options", metric)
        allowed = METRIC_OPTIONS.get(metric)
        if metric not in metric_names:
            problems.add(key, f"options for '{metric}' need '{metric}' in metrics", f"metrics are: {metric_names}")
            continue
        if allowed is None:
            hint = f"metrics with options: {', '.join(METRIC_OPTIONS)}"
            problems.add(key, f"metric '{metric}' takes no options", hint)
            continue
        if not isinstance(options, dict):
            problems.add(key, f"options of '{metric}' must be a mapping like {{{next(iter(allowed))}: ...}}")
            continue
        for name, value in options.items():
            kind = allowed.get(name)
            where = (*key, name)
            if kind is None:
                problems.add(where, f"unknown option '{name}' of '{metric}'", _choices(str(name), sorted(allowed)))
            elif kind is bool and not isinstance(value, bool):
                problems.add(where, f"{metric}.{name} must be true or false, got {value!r}")
            elif kind == "weight" and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                problems.add(where, f"{metric}.{name} must be a number >= 0, got {value!r}")
            elif kind == "seconds" and not _positive(value):
                problems.add(where, f"{metric}.{name} must be a number of seconds > 0, got {value!r}")
            elif kind == "seconds-list" and not (
                isinstance(value, list) and value and all(map(_positive, value)) and value == sorted(set(value))
            ):
                problems.add(where, f"{metric}.{name} must be a list of increasing seconds > 0, got {value!r}")
            elif isinstance(kind, tuple) and value not in kind:
                problems.add(where, f"{metric}.{name} must be one of {', '.join(kind)}, got {value!r}")
        frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        out.append((metric, tuple(sorted(frozen.items()))))
    return tuple(sorted(out))


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _validate_prompts(spec: Any, problems: _Problems) -> tuple[PromptSelection, list[Prompt] | None]:
    key: KeyPath = ("prompts",)
    if not isinstance(spec, dict):
        problems.add(key, "prompts must be a mapping like {set: moviegen-extended, first: 128}")
        return PromptSelection(), None
    extra = set(spec) - {"set", "file", "first", "ids"}
    if extra:
        problems.add(key, f"unknown prompts field(s) {sorted(extra)}", "valid fields: set, file, first, ids")
    if ("set" in spec) == ("file" in spec):
        problems.add(key, "prompts needs exactly one of 'set' (a registered set) or 'file' (a JSONL file)")
        return PromptSelection(), None
    if "first" in spec and "ids" in spec:
        problems.add(key, "give either 'first' or 'ids', not both")
    prompts: list[Prompt] | None = None
    set_name = spec.get("set")
    file = spec.get("file")
    try:
        if set_name is not None:
            if set_name not in registered_sets():
                err = unknown_set_error(str(set_name))
                problems.add((*key, "set"), err.message, f"choose one of: {', '.join(available_sets())}")
            else:
                prompts = load_set(str(set_name))
        else:
            fpath = Path(str(file))
            prompts = load_jsonl(fpath if fpath.is_absolute() else project_root() / fpath)
    except UserError as exc:
        problems.add((*key, "set" if set_name is not None else "file"), str(exc))
    first = spec.get("first")
    if first is not None and (not isinstance(first, int) or isinstance(first, bool) or first < 1):
        problems.add((*key, "first"), f"first must be a positive integer, got {first!r}")
        first = None
    elif first is not None and prompts is not None and first > len(prompts):
        problems.add((*key, "first"), f"first: {first} but the set has only {len(prompts)} prompts")
    ids = spec.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not ids:
            problems.add((*key, "ids"), "ids must be a non-empty list of prompt ids")
            ids = None
        else:
            known = {p.prompt_id for p in prompts} if prompts is not None else None
            seen: dict[str, int] = {}
            for i, pid in enumerate(ids):
                pid = str(pid)
                if pid.lower() in seen:
                    problems.add(
                        (*key, "ids", i),
                        f"duplicate prompt id '{pid}' (also item {seen[pid.lower()] + 1}; ids are compared ignoring "
                        "case)",
                    )
                seen.setdefault(pid.lower(), i)
                if known is not None and pid not in known:
                    order = [p.prompt_id for p in prompts]
                    close = difflib.get_close_matches(pid, order, n=1)
                    problems.add(
                        (*key, "ids", i),
                        f"unknown prompt id '{pid}'",
                        (f"did you mean '{close[0]}'? " if close else "")
                        + f"this set's ids are {order[0]} … {order[-1]} ({len(order)} prompts)",
                    )
    selection = PromptSelection(
        set=str(set_name) if set_name is not None else None,
        file=str(file) if file is not None else None,
        first=first,
        ids=tuple(str(i) for i in ids) if ids else None,
    )
    if prompts is None:
        return selection, None
    if ids:
        by_id = {p.prompt_id: p for p in prompts}
        return selection, [by_id[i] for i in selection.ids if i in by_id]
    return selection, prompts[:first] if first else prompts


def select_prompts(suite: SuiteConfig) -> list[Prompt]:
    """The suite's prompts, in order, after ``--limit`` (for a schedule suite: one per schedule)."""
    if suite.prompt_schedule is not None:
        from deepforcing.prompt_schedule import load_schedules

        path = Path(suite.prompt_schedule)
        schedules = load_schedules(path if path.is_absolute() else project_root() / path)
        prompts = [
            Prompt(s.schedule_id, " | ".join(seg.prompt for seg in s.segments), s.sha256, s.origin, schedule=s)
            for s in schedules
        ]
        return prompts[: suite.limit] if suite.limit else prompts
    sel = suite.prompts
    if sel.set is not None:
        prompts = load_set(sel.set)
    else:
        fpath = Path(sel.file)
        prompts = load_jsonl(fpath if fpath.is_absolute() else project_root() / fpath)
    if sel.ids:
        by_id = {p.prompt_id: p for p in prompts}
        prompts = [by_id[i] for i in sel.ids]
    elif sel.first:
        prompts = prompts[: sel.first]
    return prompts[: suite.limit] if suite.limit else prompts

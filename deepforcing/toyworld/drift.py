"""Drift study on the toy model: several methods × prompts × seeds, oracle numbers per segment, 95% CIs.

For each prompt (the caption of a held-out scene seed) and noise seed, every method generates ``num_frames``
frames from the same initial noise (``NoiseStream(prompt_id, seed)``; re-noising draws follow the same stream, so
methods see identical noise until their caches differ). Each video is scored by the oracle in segments of the
trained horizon (21 frames). The ground-truth render of the prompt's scene is scored the same way, as the
reference level of every oracle number.

Summary per method and oracle number: the mean over the first segment (inside the trained horizon), the mean
over the last ``late_segments`` segments, their difference (drift), and the paired difference of the late value
to the reference method (``self-forcing``). Confidence intervals are 95% Student-t intervals over prompts (seeds
are averaged within a prompt first, so the unit of replication is the prompt).

Rows go to ``rows.jsonl`` as they are produced (one per video and segment), so an interrupted study resumes
where it stopped; ``summary.json`` and ``summary.md`` are written at the end.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError

log = logging.getLogger(__name__)

#: Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (larger df: 1.96).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
GROUND_TRUTH = "ground-truth"
#: The paired differences are taken to this method (the FIFO baseline); ``all`` puts it first.
REFERENCE_METHOD = "self-forcing"


def preset_methods() -> list[str]:
    """Every method defined by its own preset file in ``baselines/methods``: what ``--methods all`` runs.

    The ablation grids are left out; :data:`REFERENCE_METHOD` comes first, the rest in name order.
    """
    import yaml

    from deepforcing.paths import baselines_dir

    names = []
    for path in sorted((baselines_dir() / "methods").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if "grids" not in data:
            names.append(data.get("name", path.stem))
    return sorted(names, key=lambda n: (n != REFERENCE_METHOD, n))


def parse_methods(spec: str) -> tuple[str, ...]:
    """A comma-separated method list, or ``all`` (:func:`preset_methods`).

    Raises:
        UserError: An empty list or a repeated name.
    """
    names = preset_methods() if spec.strip() == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    if not names or len(set(names)) != len(names):
        raise UserError(f"--methods needs distinct method names or 'all', got {spec!r}")
    return tuple(names)


@dataclass(frozen=True)
class DriftStudy:
    """What a drift study generates.

    Attributes:
        methods: Method names; the first is the reference of the paired differences.
        prompts: Number of prompts (captions of scene seeds ``prompt_seed_base + i``).
        seeds: Noise seeds per prompt.
        num_frames: Frames per video (10× the trained horizon by default).
        segment_frames: Frames per oracle segment (the trained horizon).
        late_segments: Segments at the end averaged as the "late" value.
        prompt_seed_base: First scene seed of the prompts (held out from training seeds).
    """

    methods: tuple[str, ...] = ("self-forcing", "deep-forcing", "deep-forcing-ds", "sink-longlive")
    prompts: int = 6
    seeds: int = 2
    num_frames: int = 210
    segment_frames: int = 21
    late_segments: int = 3
    prompt_seed_base: int = 2 * 10**12

    def __post_init__(self) -> None:
        if not self.methods or self.prompts < 1 or self.seeds < 1:
            raise UserError("a drift study needs at least one method, prompt and seed")
        if self.num_frames < self.segment_frames * (1 + self.late_segments):
            raise UserError(
                f"{self.num_frames} frames leave no late segments",
                f"use at least {self.segment_frames * (1 + self.late_segments)} frames",
            )


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t interval (NaN half-width for fewer than two finite values)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return math.nan, math.nan
    m = statistics.fmean(v)
    if len(v) < 2:
        return m, math.nan
    t = _T975[len(v) - 2] if len(v) - 1 <= len(_T975) else 1.96
    return m, t * statistics.stdev(v) / math.sqrt(len(v))


def prompt_id(index: int) -> str:
    """Prompt id of the study's ``index``-th prompt.

    It is the id of the same caption in the ``toyworld`` prompt set (line ``index + 1``), so a study video and the
    smoke suite's video of that prompt, method and seed share their noise.
    """
    return f"toy-{index + 1:03d}"


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read a study's ``summary.json``.

    Raises:
        UserError: The file is missing or is not a drift-study summary.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot read the drift study {path}: {exc}", "pass the summary.json of `toyworld drift`"
        ) from exc
    if not isinstance(data, dict) or not {"study", "table"} <= set(data):
        raise UserError(f"{path} is not a drift-study summary (no 'study' / 'table')", "pass its summary.json")
    return data


def findings_tables(summary: dict[str, Any]) -> tuple[str, list[tuple[str, Any]], list[str]]:
    """A study summary as report tables: one per oracle number, methods as rows, mean ± 95% CI cells.

    Returns:
        An introduction line, ``(title, Table)`` pairs, and notes.
    """
    from deepforcing.report import table as T
    from deepforcing.toyworld.oracle import HIGHER_IS_BETTER, SEGMENT_METRICS

    study = summary["study"]
    methods = [m for m in summary["table"] if m != GROUND_TRUTH]
    reference = study["methods"][0]
    n_seg = math.ceil(study["num_frames"] / study["segment_frames"])
    intro = (
        f"Oracle numbers of {study['prompts']} held-out captions x {study['seeds']} noise seed(s), "
        f"{study['num_frames']} frames ({n_seg} segments of the trained horizon, {study['segment_frames']} frames); "
        f"early = segment 1 (inside the trained horizon), late = the last {study['late_segments']} segments. "
        f"Cells: mean ± half-width of the 95% Student-t interval over prompts (seeds averaged first); "
        f"'{GROUND_TRUTH}' is the renderer's own video of the caption's scene."
    )
    diff_key = f"late_minus_{reference}"
    cols = (
        T.Column("method", "method", kind="label"),
        T.Column("early", "early"),
        T.Column("late", "late"),
        T.Column("drift", "drift (late − early)"),
        T.Column(diff_key, f"late − {reference} (paired)"),
    )
    tables = []
    for metric in SEGMENT_METRICS:
        hib = HIGHER_IS_BETTER[metric]
        direction = None if hib is None else ("higher" if hib else "lower")
        rows = []
        for method in (GROUND_TRUTH, *methods):
            v = summary["table"][method][metric]
            cells = [T.text(method)]
            for key in ("early", "late", "drift", diff_key):
                m, h = v[key]
                shown = (
                    "–"
                    if m is None or not math.isfinite(m)
                    else (f"{m:.3f} ± {h:.3f}" if h is not None and math.isfinite(h) else f"{m:.3f}")
                )
                cells.append(
                    T.Cell(
                        value=m,
                        display=shown,
                        direction=direction if key in ("early", "late") else None,
                        n=v["prompts"][0],
                    )
                )
            rows.append(tuple(cells))
        tables.append((metric, T.Table(f"findings-{metric}", metric, cols, tuple(rows), best=None)))
    secs = summary.get("seconds_per_video") or {}
    notes = ["seconds per video: " + ", ".join(f"{m} {s:.1f}" for m, s in secs.items() if s == s)]
    return intro, tables, notes


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_study(
    study: DriftStudy,
    out: str | Path,
    *,
    weights: str | Path | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> dict[str, Any]:
    """Generate, score and summarise (resumes from ``out/rows.jsonl``); returns the summary.

    Args:
        study: What to generate.
        out: Directory of ``rows.jsonl``, ``summary.json`` and ``summary.md``.
        weights: Toy bundle folder or weights file (default: the shipped weights).
        progress: Show a progress bar.
        jobs: Worker processes, one torch thread each (1: in this process). Every video is generated from its own
            noise stream, so the rows do not depend on ``jobs``; they are written as they finish and sorted
            before summarising.
    """
    from deepforcing import methods as registry

    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    for m in study.methods:
        registry.get(m)  # unknown names fail before any compute
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    rows = _read_rows(rows_path)
    done = {(r["method"], r["prompt"], r["seed"]) for r in rows}
    units = [
        (method, p, s)
        for p in range(study.prompts)
        for s in range(study.seeds)
        for method in (GROUND_TRUTH, *study.methods)
        if not (method == GROUND_TRUTH and s > 0)
    ]
    todo = [u for u in units if u not in done]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with (
        Progress(
            TextColumn("[bold]drift study"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeRemainingColumn(),
            disable=not progress,
        ) as bar,
        rows_path.open("a") as fh,
    ):
        task = bar.add_task("videos", total=len(todo), unit="")

        def record(unit: tuple[str, int, int], new_rows: list[dict[str, Any]]) -> None:
            rows.extend(new_rows)
            fh.write("".join(json.dumps(r) + "\n" for r in new_rows))
            fh.flush()
            bar.update(task, advance=1, unit=f"{unit[0]} prompt {unit[1]} seed {unit[2]}")

        if not todo:
            pass  # finished study: summarise its rows without loading the model
        elif jobs == 1 or len(todo) == 1:
            _init_worker(weights, None)
            for unit in todo:
                record(unit, _unit_rows(study, unit))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(weights, 1)) as pool:
                futures = {pool.submit(_unit_rows, study, unit): unit for unit in todo}
                try:
                    for fut in as_completed(futures):
                        record(futures[fut], fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    rows.sort(key=lambda r: (r["method"], r["prompt"], r["seed"], r["segment"]))
    summary = summarise(rows, study)
    (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=1))
    (out / "summary.md").write_text(summary["markdown"])
    return summary


#: The toy model of this process (loaded once per worker by :func:`_init_worker`).
_WORKER: dict[str, Any] = {}


def _init_worker(weights: str | Path | None, threads: int | None) -> None:
    from deepforcing.toyworld.model import load_toy_model

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    _WORKER["model"] = load_toy_model(weights)


def _unit_rows(study: DriftStudy, unit: tuple[str, int, int]) -> list[dict[str, Any]]:
    """Generate (or render) one video of the study and score it: one row per oracle segment."""
    from deepforcing.toyworld.generate import generate_toy_video
    from deepforcing.toyworld.oracle import score_video
    from deepforcing.toyworld.world import sample_scene

    method, p, s = unit
    scene = sample_scene(study.prompt_seed_base + p)
    t0 = time.perf_counter()
    if method == GROUND_TRUTH:
        frames = scene.render(study.num_frames)
    else:
        frames = generate_toy_video(
            scene.caption, method, num_frames=study.num_frames, seed=s, prompt_id=prompt_id(p), model=_WORKER["model"]
        ).frames
    seconds = time.perf_counter() - t0
    return [
        {"method": method, "prompt": p, "seed": s, "caption": scene.caption, "seconds": seconds, **seg}
        for seg in score_video(frames, scene.caption, segment_frames=study.segment_frames)
    ]


def _per_prompt(rows: list[dict[str, Any]], method: str, metric: str, segs: set[int]) -> dict[int, float]:
    """Prompt -> mean of ``metric`` over seeds and the given segments (undefined values left out)."""
    acc: dict[int, list[float]] = {}
    for r in rows:
        if r["method"] == method and r["segment"] in segs and math.isfinite(r[metric]):
            acc.setdefault(r["prompt"], []).append(r[metric])
    return {p: statistics.fmean(v) for p, v in acc.items()}


def summarise(rows: list[dict[str, Any]], study: DriftStudy) -> dict[str, Any]:
    """Per method and oracle number: early / late / drift / paired difference to the reference, with 95% CIs."""
    from deepforcing.toyworld.oracle import SEGMENT_METRICS

    n_seg = math.ceil(study.num_frames / study.segment_frames)
    late = set(range(n_seg - study.late_segments, n_seg))
    reference = study.methods[0]

    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for method in (GROUND_TRUTH, *study.methods):
        table[method] = {}
        for metric in SEGMENT_METRICS:
            early = _per_prompt(rows, method, metric, {0})
            lat = _per_prompt(rows, method, metric, late)
            ref = _per_prompt(rows, reference, metric, late)
            common = sorted(set(early) & set(lat))
            paired = sorted(set(lat) & set(ref))
            table[method][metric] = {
                "early": list(mean_ci([early[p] for p in common])),
                "late": list(mean_ci([lat[p] for p in common])),
                "drift": list(mean_ci([lat[p] - early[p] for p in common])),
                f"late_minus_{reference}": list(mean_ci([lat[p] - ref[p] for p in paired])),
                "prompts": [len(common)],
            }
    seconds = {
        m: statistics.fmean([r["seconds"] for r in rows if r["method"] == m and r["segment"] == 0] or [math.nan])
        for m in table
    }
    by_shapes = _by_shapes(rows, [GROUND_TRUTH, *study.methods], late)
    md = _markdown(table, study, reference, seconds, by_shapes)
    return {
        "kind": "toyworld-drift-study",
        "study": study.__dict__,
        "table": table,
        "by_shapes": by_shapes,
        "seconds_per_video": seconds,
        "markdown": md,
    }


#: Oracle numbers broken down by the caption's shape count (a mean over one- and two-shape captions can hide
#: opposite errors: a shape flickering between partial components moves its centroid, which reads as motion).
BY_SHAPES_METRICS = ("presence", "motion")


def _by_shapes(rows: list[dict[str, Any]], methods: list[str], late: set[int]) -> dict[str, Any]:
    """Method -> metric -> shape count -> {"early", "late": [mean, 95% half-width] over prompts, "prompts"}."""
    from deepforcing.toyworld.world import parse_caption

    counts = {r["prompt"]: len(parse_caption(r["caption"]).shapes) for r in rows}
    out: dict[str, Any] = {}
    for method in methods:
        out[method] = {}
        for metric in BY_SHAPES_METRICS:
            out[method][metric] = {}
            for k in sorted(set(counts.values())):
                cells = {}
                for name, segs in (("early", {0}), ("late", late)):
                    means = [v for p, v in _per_prompt(rows, method, metric, segs).items() if counts[p] == k]
                    cells[name] = list(mean_ci(means))
                    cells[f"{name}_prompts"] = len(means)
                out[method][metric][str(k)] = cells
    return out


def _shapes_markdown(by_shapes: dict[str, Any]) -> list[str]:
    lines = ["**by the caption's shape count** (mean ± 95% t-interval over the prompts with that count)", ""]
    for metric in BY_SHAPES_METRICS:
        ks = sorted({k for m in by_shapes.values() for k in m[metric]})
        lines += [
            f"| {metric} | "
            + " | ".join(f"{k} shape{'' if k == '1' else 's'}, {seg}" for k in ks for seg in ("early", "late"))
            + " |",
            "|---|" + "---|---|" * len(ks),
        ]
        for method, by_metric in by_shapes.items():
            cells = [by_metric[metric].get(k, {}) for k in ks]
            lines.append(
                f"| {method} | "
                + " | ".join(
                    f"{_fmt(c.get('early', [math.nan, math.nan]))} | {_fmt(c.get('late', [math.nan, math.nan]))}"
                    for c in cells
                )
                + " |"
            )
        lines.append("")
    return lines


def _fmt(mc: list[float]) -> str:
    m, h = mc
    if not math.isfinite(m):
        return "–"
    return f"{m:.3f} ± {h:.3f}" if math.isfinite(h) else f"{m:.3f}"


def _markdown(
    table: dict[str, Any],
    study: DriftStudy,
    reference: str,
    seconds: dict[str, float],
    by_shapes: dict[str, Any],
) -> str:
    from deepforcing.toyworld.oracle import SEGMENT_METRICS

    n_seg = math.ceil(study.num_frames / study.segment_frames)
    lines = [
        f"Toy-world drift: {study.prompts} prompts × {study.seeds} seeds, {study.num_frames} frames "
        f"({n_seg} segments of {study.segment_frames}); early = segment 0, late = last {study.late_segments} "
        f"segments; mean ± 95% t-interval over prompts.",
        "",
    ]
    for metric in SEGMENT_METRICS:
        lines += [
            f"**{metric}**",
            "",
            f"| method | early | late | drift (late − early) | late − {reference} (paired) |",
            "|---|---|---|---|---|",
        ]
        for method, by_metric in table.items():
            v = by_metric[metric]
            lines.append(
                f"| {method} | {_fmt(v['early'])} | {_fmt(v['late'])} | {_fmt(v['drift'])} | "
                f"{_fmt(v[f'late_minus_{reference}'])} |"
            )
        lines.append("")
    lines += _shapes_markdown(by_shapes)
    lines.append("seconds per video: " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))
    return "\n".join(lines) + "\n"

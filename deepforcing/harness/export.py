"""A run's videos and numbers in VBench's layouts, so they can be taken to VBench (or its leaderboard scripts).

``export RUN --layout vbench DIR`` writes, per method, ``DIR/<method>/<prompt[:180]>-<index>.mp4`` (VBench's and
VBench-Long's submission naming; the index counts the prompt's seeds in order), ``DIR/<method>/mapping.csv``
(``path, prompt, seed, prompt_id``: the full prompts and seeds, for ``score-videos --prompts``) and
``DIR/<method>_eval_results.json`` in VBench's results layout ``{dimension: [score, [{video_path, video_results},
...]]}`` with the run's per-video values of every VBench dimension it scored.

Only files are read (``index.csv``, ``results/aggregate.json``, ``results/videos.jsonl``); videos are copied byte
for byte, so scoring an export gives the run's scores exactly.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from deepforcing.errors import UserError
from deepforcing.files import atomic_write_json, atomic_write_text, read_jsonl
from deepforcing.harness.imports import VBENCH_NAME_CHARS

log = logging.getLogger(__name__)

LAYOUTS = ("vbench",)


def vbench_name(prompt: str, index: int, suffix: str = ".mp4") -> str:
    """VBench's submission file name of a prompt's ``index``-th video (the prompt cut at 180 characters)."""
    return f"{prompt[:VBENCH_NAME_CHARS].replace('/', '_')}-{index}{suffix}"


def _index_rows(run: Path) -> list[dict[str, str]]:
    path = run / "index.csv"
    if not path.is_file():
        raise UserError(f"{run} has no index.csv", "give a run folder <out>/<suite>/<run-id> written by this version")
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def export_vbench(run: str | Path, dest: str | Path, methods: list[str] | None = None) -> dict[str, Any]:
    """Write a run's videos (and VBench results) in VBench's layout.

    Args:
        run: The run folder.
        dest: Output folder (created; files of the same names are replaced).
        methods: Only these methods (default: every method with videos).

    Returns:
        What was written: method -> ``{"videos": n, "folder": ..., "results": ...}``.

    Raises:
        UserError: Not a run, an unknown method, or nothing to export.
    """
    run, dest = Path(run), Path(dest)
    rows = [r for r in _index_rows(run) if r.get("video")]
    known = list(dict.fromkeys(r["method"] for r in rows))
    unknown = sorted(set(methods or []) - set(known))
    if unknown:
        raise UserError(f"no videos of method(s) {', '.join(unknown)} in {run}", f"methods there: {', '.join(known)}")
    chosen = methods or known
    if not chosen:
        raise UserError(f"{run} has no videos to export")
    per_video = _per_video_values(run)
    out: dict[str, Any] = {}
    for method in chosen:
        items = [r for r in rows if r["method"] == method]
        seeds: dict[str, list[int]] = defaultdict(list)
        for r in items:
            seeds[r["prompt_id"]].append(int(r["seed"]))
        folder = dest / method
        folder.mkdir(parents=True, exist_ok=True)
        mapping, paths = [], {}
        for r in items:
            index = sorted(seeds[r["prompt_id"]]).index(int(r["seed"]))
            src = run / r["video"]
            target = folder / vbench_name(r["prompt"], index, src.suffix)
            shutil.copyfile(src, target)
            paths[r["unit_key"]] = target
            mapping.append({"path": target.name, "prompt": r["prompt"], "seed": r["seed"], "prompt_id": r["prompt_id"]})
        atomic_write_text(folder / "mapping.csv", _mapping_csv(mapping))
        results = _vbench_results(per_video.get(method, {}), paths, _aggregate_values(run, method))
        results_path = dest / f"{method}_eval_results.json"
        atomic_write_json(results_path, results)
        out[method] = {"videos": len(items), "folder": str(folder), "results": str(results_path)}
        log.info("exported %d video(s) of %s to %s", len(items), method, folder)
    return out


def _mapping_csv(rows: list[dict[str, Any]]) -> str:
    """The mapping file ``score-videos --prompts`` reads (full prompts, seeds and prompt ids)."""
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["path", "prompt", "seed", "prompt_id"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _per_video_values(run: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Method -> VBench dimension -> unit key -> per-video value (``results/videos.jsonl``)."""
    path = run / "results" / "videos.jsonl"
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    if not path.is_file():
        return out
    for row in read_jsonl(path)[1]:
        dim = _dimension(row.get("metric", "")) if row.get("record") == "video" else None
        if dim is not None and row.get("value") is not None:
            out[row["method"]][dim][row["unit_key"]] = row["value"]
    return out


def _aggregate_values(run: Path, method: str) -> dict[str, float]:
    path = run / "results" / "aggregate.json"
    if not path.is_file():
        return {}
    results = json.loads(path.read_text(encoding="utf-8")).get("results", {}).get(method, {})
    return {
        d: r["value"] for k, r in results.items() if (d := _dimension(k)) is not None and r.get("value") is not None
    }


def _dimension(metric_id: str) -> str | None:
    """VBench's dimension name of one of our metric ids (``vbench.subject_consistency@...``), else None."""
    name = metric_id.split("@")[0]
    if "[" in metric_id or not name.startswith("vbench."):
        return None
    return name.removeprefix("vbench.")


def _vbench_results(
    per_video: dict[str, dict[str, float]], paths: dict[str, Path], suite_values: dict[str, float]
) -> dict[str, list[Any]]:
    """``{dimension: [score, [{"video_path", "video_results"}, ...]]}`` as VBench writes ``*_eval_results.json``."""
    out = {}
    for dim in sorted(set(per_video) | set(suite_values)):
        videos = [
            {"video_path": str(paths[key]), "video_results": value}
            for key, value in sorted(per_video.get(dim, {}).items())
            if key in paths
        ]
        out[dim] = [suite_values.get(dim), videos]
    return out

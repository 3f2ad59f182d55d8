"""Helpers of the report tests (imported by the tests as ``report_helpers``).

* ``FIXTURE_RUN`` — the result files of a real smoke run (no mp4s), committed: golden snapshots and HTML tests
  that need no generation.
* :func:`make_run` — write a synthetic run (aggregate only) with chosen results, for precise table tests.
* ``smoke_run`` (session) — a real smoke run generated once per session through the CLI (about a minute on
  2 cores); ``DEEPFORCING_SMOKE_RUN=<run dir>`` reuses an existing one instead.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_RUN = Path(__file__).with_name("fixtures") / "smoke-tiny"
GOLDEN = Path(__file__).with_name("golden")


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: this checkout first on the path, offline, one thread (any width)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``python -m deepforcing.cli ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "deepforcing.cli", *args],
        cwd=ROOT,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_run(
    root: Path,
    results: dict[str, dict[str, tuple]],
    *,
    suite: str = "synthetic",
    run_id: str = "tiny",
    model: str = "wan2.1-t2v-1.3b",
    device: str = "NVIDIA H100 80GB HBM3",
    latent_frames: int = 120,
    timings: dict[str, dict] | None = None,
    config_hashes: dict[str, str] | None = None,
    paired: dict[str, dict] | None = None,
) -> Path:
    """Write ``root/<suite>/<run_id>/results/aggregate.json`` with the given results.

    Args:
        root: Output root.
        results: method -> metric key -> (value, higher_is_better, n_videos[, ci]) where ``ci`` is the entry's
            ``ci`` dict (``deepforcing.stats.CIResult.to_dict()``).
        suite: Suite name.
        run_id: Run id.
        model: Model preset in the suite config.
        device: Device name in the provenance (the published speed numbers are compared on H100 only).
        latent_frames: Video length in latent frames.
        timings: method -> timings dict.
        config_hashes: method -> config hash.
        paired: ``aggregate.json`` ``paired`` (``"<a> vs <b>"`` -> key -> paired result); with it, or with any
            ``ci``, the aggregate gets the harness's ``statistics`` block.

    Returns:
        The run directory.
    """
    run = root / suite / run_id
    (run / "results").mkdir(parents=True)
    methods = list(results)
    agg = {
        "record": "aggregate",
        "schema_version": 1,
        "suite": suite,
        "suite_version": 1,
        "suite_hash": "0123456789ab",
        "run_id": run_id,
        "provenance": {"device": {"name": device, "device": "cuda"}, "git": {"commit": "abc", "dirty": False}},
        "suite_config": {
            "name": suite,
            "version": 1,
            "model": model,
            "methods": methods,
            "seeds": [0],
            "num_latent_frames": latent_frames,
            "clip_seconds": 2.0,
            "prompts": {"set": "moviegen", "first": 2},
            "metrics": [],
            "drift": [],
            "allow_short": False,
            "limit": None,
        },
        "prompts": {"count": 2, "sha256": "f" * 64, "ids": ["mgb-0001", "mgb-0002"]},
        "methods": {
            m: {"config_hash": (config_hashes or {}).get(m, f"hash-{m}"), "config": {"policy": "fifo"}} for m in methods
        },
        "results": {
            m: {
                k: {
                    "value": spec[0],
                    "higher_is_better": spec[1],
                    "n_videos": spec[2],
                    "n_clips": 5 * spec[2],
                    "metric": k.split("@")[0],
                    **({"ci": spec[3]} if len(spec) > 3 else {}),
                }
                for k, spec in metrics.items()
            }
            for m, metrics in results.items()
        },
        "n_samples": {m: {"expected": 2, "generated": 2, "scored": 2, "failed": 0, "missing": 0} for m in methods},
        "problems": [],
        "timings": timings or {},
    }
    if paired is not None or any(len(spec) > 3 for metrics in results.values() for spec in metrics.values()):
        agg["statistics"] = {
            "interval": "95% bootstrap over prompts (videos of a prompt kept together), percentile method",
            "confidence_level": 0.95,
            "n_resamples": 10000,
            "seed": 0,
            "method": "percentile",
        }
        agg["paired"] = paired or {}
    (run / "results" / "aggregate.json").write_text(json.dumps(agg, indent=2))
    return run


def make_stats_run(
    root: Path,
    videos: dict[str, dict[str, dict[tuple[str, int], float]]],
    higher_is_better: dict[str, bool | None],
    **kw,
) -> Path:
    """A synthetic run whose intervals and paired comparisons are computed by :mod:`deepforcing.stats`.

    As the harness does: per result, the value is the mean over videos, ``ci`` is the prompt bootstrap of the
    per-video values (seeds of a prompt kept together) and ``paired`` compares every later method with every
    earlier one on the same (prompt, seed).

    Args:
        root: Output root.
        videos: method -> result key -> {(prompt id, seed): per-video value}.
        higher_is_better: result key -> direction.
        **kw: Passed to :func:`make_run`.
    """
    from deepforcing import stats

    def obs(values: dict[tuple[str, int], float]) -> list:
        return [stats.Observation(p, v, str(seed)) for (p, seed), v in sorted(values.items())]

    results = {
        m: {
            k: (sum(v.values()) / len(v), higher_is_better[k], len(v), stats.bootstrap_ci(obs(v)).to_dict())
            for k, v in per_key.items()
        }
        for m, per_key in videos.items()
    }
    methods = list(videos)
    paired: dict[str, dict] = {}
    for i, a in enumerate(methods):
        for b in methods[:i]:
            pair = {}
            for k in sorted(set(videos[a]) & set(videos[b])):
                r = stats.paired_comparison(obs(videos[a][k]), obs(videos[b][k]))
                pair[k] = {**r.to_dict(), "higher_is_better": higher_is_better[k]}
            if pair:
                paired[f"{a} vs {b}"] = pair
    return make_run(root, results, paired=paired, **kw)

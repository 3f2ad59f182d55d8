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
) -> Path:
    """Write ``root/<suite>/<run_id>/results/aggregate.json`` with the given results.

    Args:
        root: Output root.
        results: method -> metric key -> (value, higher_is_better, n_videos).
        suite: Suite name.
        run_id: Run id.
        model: Model preset in the suite config.
        device: Device name in the provenance (the published speed numbers are compared on H100 only).
        latent_frames: Video length in latent frames.
        timings: method -> timings dict.
        config_hashes: method -> config hash.

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
                k: {"value": v, "higher_is_better": hib, "n_videos": n, "n_clips": 5 * n, "metric": k.split("@")[0]}
                for k, (v, hib, n) in metrics.items()
            }
            for m, metrics in results.items()
        },
        "n_samples": {m: {"expected": 2, "generated": 2, "scored": 2, "failed": 0, "missing": 0} for m in methods},
        "problems": [],
        "timings": timings or {},
    }
    (run / "results" / "aggregate.json").write_text(json.dumps(agg, indent=2))
    return run

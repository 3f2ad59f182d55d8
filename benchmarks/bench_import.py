"""Scoring throughput of an imported folder beside the generated-run path (they should be equal: same code).

One tiny run is generated (smoke-tiny: N prompts x self-forcing on the tiny random model, CPU) and exported in
VBench's layout, and the export is imported into a run of its own; then, per metric and round, the generated run is
rescored (``score --force``) and the imported one too (``score-videos --force``), alternating, each timed in CPU
seconds of this process (both score the same N videos). The first import (copy, probe, score) is timed apart.

    nice -n 10 python benchmarks/bench_import.py --prompts 4 --rounds 3 --metrics image_stats,temporal_flickering
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--latent-frames", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metrics", default="image_stats,temporal_flickering")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()

    import torch

    from deepforcing.cli import main as cli

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    from deepforcing.paths import project_root

    spec = (project_root() / "eval" / "suites" / "smoke-tiny.yaml").read_text()
    (tmp / "bench-import.yaml").write_text(
        spec.replace("name: smoke-tiny", "name: bench-import").replace("first: 2", f"first: {args.prompts}")
    )
    suite = ["--suite", str(tmp / "bench-import.yaml"), "--methods", "self-forcing",
             "--num-latent-frames", str(args.latent_frames)]  # fmt: skip
    out = ["--out", str(tmp / "runs"), "--no-report", "--allow-failures", "-q"]
    assert cli([*suite, *out]) == 0
    run = tmp / "runs" / "bench-import" / "tiny"
    assert cli(["-q", "export", str(run), str(tmp / "vb")]) == 0
    folder = str(tmp / "vb" / "self-forcing")
    imported = ["score-videos", folder, "--name", "imported", *suite, "--run-id", "imported-only"]  # its own run
    first_import = _cpu(lambda: cli([*imported, *out]))

    rows = []
    for metric in args.metrics.split(","):
        gen, imp = [], []
        for _ in range(args.rounds):
            gen.append(_cpu(lambda m=metric: cli(["score", *suite, "--metrics", m, "--force", *out])))
            imp.append(_cpu(lambda m=metric: cli([*imported, "--metrics", m, "--force", *out])))
        g, i = statistics.median(gen), statistics.median(imp)
        rows.append(
            {
                "metric": metric,
                "videos": args.prompts,
                "generated_s": g,
                "imported_s": i,
                "generated_videos_per_min": 60 * args.prompts / g,
                "imported_videos_per_min": 60 * args.prompts / i,
                "ratio_imported_over_generated": i / g,
            }
        )
    frames = 1 + 4 * (args.latent_frames - 1)
    print(
        f"{args.prompts} videos of {frames} frames (64x64, 16 fps) per path; CPU s per command, median of "
        f"{args.rounds}; first import (copy + probe + score with the suite's metrics): {first_import:.2f} s"
    )
    print("| metric | score --force s | score-videos --force s | videos/min generated | videos/min imported | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['metric']} | {r['generated_s']:.2f} | {r['imported_s']:.2f} | "
            f"{r['generated_videos_per_min']:.0f} | {r['imported_videos_per_min']:.0f} | "
            f"{r['ratio_imported_over_generated']:.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"first_import_s": first_import, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Per-chunk time of every method relative to Self-Forcing on the same config, in one run (CPU).

The paper reports Deep Forcing at 15.75 FPS vs Self-Forcing's 15.78 on an H100 (≤ 1 % overhead); the target for the
newer policies (issue 15) is a ratio ≤ 1.02 on the same config. Time is the **CPU time of this single-threaded
process** (``time.process_time``), which other jobs on the machine barely disturb (wall time on a shared 2-core
machine varied by 2x); methods are interleaved round-robin over several rounds and the figure is the median over
rounds of each method's CPU time per generated latent frame, divided by Self-Forcing's. Also prints the attention
length per chunk over time.

``--lockstep`` (what the published table uses) runs each method **paired with Self-Forcing**: the two videos are
generated at the same time in two threads, one chunk each in turn, and each is timed by its own thread's CPU time
(``time.thread_time``), so both see the same machine load chunk by chunk; the figure is the median over rounds of
the ratio of the two per-latent-frame CPU times.

    python benchmarks/bench_methods.py [--config medium] [--frames 60] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import torch
from presets import BENCHMARKED_METHODS  # benchmarks/ is on sys.path when a script in it runs

from deepforcing.methods import build_policy, build_sampler, get
from deepforcing.model.config import PRESETS
from deepforcing.model.tiny import build_random_generator
from deepforcing.noise import NoiseStream

METHODS = BENCHMARKED_METHODS


def run_once(model, text, preset, method: str, frames: int) -> tuple[float, list[float]]:
    cfg = get(method)
    stream = NoiseStream("bench", 0)
    noise = stream.initial((1, frames, preset.wan.in_dim, preset.latent_height, preset.latent_width))
    t0 = time.process_time()
    result = build_sampler(cfg).sample(model, text, build_policy(cfg), noise, stream)
    per_frame = (time.process_time() - t0) / frames  # chunks and rolling windows differ in count: per latent frame
    return per_frame, [c.attended_frames for c in result.chunks]


def paired(model, text, preset, method: str, frames: int) -> float:
    """CPU time per latent frame of ``method`` over Self-Forcing's, the two generated in lockstep (see module docs)."""
    turns = {"self-forcing": threading.Semaphore(1), method: threading.Semaphore(0)}
    done = dict.fromkeys(turns, False)
    other = {"self-forcing": method, method: "self-forcing"}
    cpu: dict[str, float] = {}

    def worker(name: str, key: str) -> None:
        cfg = get(name)
        stream = NoiseStream("bench", 0)
        noise = stream.initial((1, frames, preset.wan.in_dim, preset.latent_height, preset.latent_width))
        policy = build_policy(cfg)
        inner = policy.after_chunk

        def after_chunk(kv, chunk):  # hand over to the other video after each chunk
            inner(kv, chunk)
            turns[other[key]].release()
            if not done[other[key]]:
                turns[key].acquire()

        policy.after_chunk = after_chunk
        turns[key].acquire()
        t0 = time.thread_time()
        build_sampler(cfg).sample(model, text, policy, noise, stream)
        cpu[key] = (time.thread_time() - t0) / frames
        done[key] = True
        turns[other[key]].release()

    threads = [threading.Thread(target=worker, args=(n, n)) for n in turns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return cpu[method] / cpu["self-forcing"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="medium", choices=sorted(PRESETS))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--lockstep", action="store_true", help="pair every method with Self-Forcing chunk by chunk")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.config]
    model = build_random_generator(preset.wan, seed=0)
    text = model.encode_text(torch.randn(1, preset.wan.text_len, preset.wan.text_dim))
    per_frame: dict[str, list[float]] = {m: [] for m in args.methods}
    attention: dict[str, list[float]] = {}
    run_once(model, text, preset, "self-forcing", 9)  # warm-up
    if args.lockstep:
        ratios = {m: [] for m in args.methods if m != "self-forcing"}
        for _ in range(args.rounds):
            for method in ratios:
                ratios[method].append(paired(model, text, preset, method, args.frames))
        rows = []
        for method, values in ratios.items():
            med = statistics.median(values)
            rows.append({"method": method, "ratio_vs_self_forcing_lockstep": med, "rounds": values})
            print(f"{method:18s} x{med:.3f} vs self-forcing (lockstep; rounds {', '.join(f'{v:.3f}' for v in values)})")
        if args.json:
            args.json.write_text(json.dumps({"rows": rows, "frames": args.frames, "config": args.config}, indent=2))
        return
    for _ in range(args.rounds):
        for method in args.methods:
            pf, att = run_once(model, text, preset, method, args.frames)
            per_frame[method].append(pf)
            attention[method] = att
    base = statistics.median(per_frame["self-forcing"])
    rows = []
    for method in args.methods:
        med = statistics.median(per_frame[method])
        rows.append({"method": method, "ms_per_latent_frame": 1000 * med, "ratio_vs_self_forcing": med / base})
        spread = (max(per_frame[method]) - min(per_frame[method])) / med
        print(
            f"{method:18s} {1000 * med:9.2f} ms CPU/latent frame   x{med / base:.3f} vs self-forcing  "
            f"(spread {spread:.1%})"
        )
    print("attention length (frames) per chunk / window:")
    for method in args.methods:
        print(f"  {method:18s} {' '.join(f'{a:g}' for a in attention[method])}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "attention": attention}, indent=2))


if __name__ == "__main__":
    main()

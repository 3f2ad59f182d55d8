"""Per-chunk latency and memory versus video length, on CPU (random weights; timing, not quality).

For each model config and video length it runs the Self-Forcing chunk loop (FIFO window of 21 latent frames)
and reports: mean per-chunk latency before and after the window fills, the steady-state latency relative to
the shortest video with at least three full-window chunks, the spread over steady-state chunks, the
KV-cache bytes (constant by construction) and the process RSS growth over the rollout next to the bytes of
output latents written in that time (the only thing that should grow). Per-chunk time is the CPU time of
this single-threaded process between consecutive chunk callbacks (``time.process_time``), which other jobs on
the machine barely disturb; wall time is in the JSON rows.

    python benchmarks/bench_chunk_latency.py [--configs tiny medium] [--lengths 21 60 120 240] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from deepforcing.methods import build_policy, get
from deepforcing.model.config import PRESETS
from deepforcing.model.tiny import build_random_generator
from deepforcing.noise import NoiseStream
from deepforcing.samplers.chunkwise import ChunkwiseSampler


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def run(preset_name: str, frames: int, method: str) -> dict:
    preset = PRESETS[preset_name]
    model = build_random_generator(preset.wan, seed=0)
    text = model.encode_text(torch.randn(1, preset.wan.text_len, preset.wan.text_dim))
    cfg = get(method)
    stream = NoiseStream("bench", 0)
    noise = stream.initial((1, frames, preset.wan.in_dim, preset.latent_height, preset.latent_width))
    rss, cpu = [], [time.process_time()]

    def on_chunk(index: int, latents: torch.Tensor) -> None:
        cpu.append(time.process_time())
        rss.append(rss_bytes())

    t0 = time.perf_counter()
    result = ChunkwiseSampler(cfg.sampler_config).sample(model, text, build_policy(cfg), noise, stream, on_chunk)
    wall = time.perf_counter() - t0
    secs = [b - a for a, b in zip(cpu, cpu[1:], strict=False)]
    full = [s for s, c in zip(secs, result.chunks, strict=True) if c.attended_frames >= 21]
    return {
        "config": preset_name,
        "tokens_per_frame": preset.tokens_per_frame,
        "latent_frames": frames,
        "chunks": len(secs),
        "chunk_ms_mean_all": 1000 * statistics.fmean(secs),
        "window_full_chunks": len(full),
        "chunk_ms_mean_window_full": 1000 * statistics.fmean(full) if full else None,
        "chunk_ms_cv_window_full": statistics.pstdev(full) / statistics.fmean(full) if len(full) > 1 else None,
        "kv_cache_bytes": result.kv_cache_bytes,
        # The output latents are written chunk by chunk into one preallocated tensor, so its pages become resident
        # as the video grows (O(F) by nature); what must stay flat is everything else.
        "rss_growth_bytes_after_chunk_8": (rss[-1] - rss[min(7, len(rss) - 1)]) if rss else None,
        "output_latent_bytes_after_chunk_8": max(0, len(rss) - 8) * noise[0, :3].numel() * 4,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "medium"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[21, 60, 120, 240])
    parser.add_argument("--method", default="self-forcing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        run(name, 6, args.method)  # warm-up (allocator, kernels)
        ref = None
        for frames in args.lengths:
            row = run(name, frames, args.method)
            steady = row["chunk_ms_mean_window_full"]
            if steady is not None and ref is None and row["window_full_chunks"] >= 3:
                ref = steady  # first length with a few chunks at a full window
            row["steady_vs_first_full"] = steady / ref if steady and ref else None
            rows.append(row)
            print(
                f"{name:7s} F={frames:4d} chunks={row['chunks']:3d} "
                f"chunk={row['chunk_ms_mean_all']:8.2f} ms  window-full={steady or float('nan'):8.2f} ms "
                f"(x{row['steady_vs_first_full'] or float('nan'):.3f}, cv {row['chunk_ms_cv_window_full'] or 0:.3f})  "
                f"KV={row['kv_cache_bytes'] / 2**20:7.3f} MiB  "
                f"RSS growth={row['rss_growth_bytes_after_chunk_8'] / 2**20:+.2f} MiB "
                f"(output latents {row['output_latent_bytes_after_chunk_8'] / 2**20:.2f} MiB)"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""One hour of video (14,400 latent frames at 16 fps) with the tiny model, for every bounded-cache method.

For each method it records, over the whole hour: the CPU time of every chunk (rolling windows for Rolling Forcing;
the CPU time of the generating thread, ``time.thread_time``, with torch on one thread) and its wall time; and, every
``--every`` chunks, the KV memory (``KVCache.memory_bytes`` plus the policy's own buffers), the tokens the cache
holds, this process's resident memory (``VmRSS``) and its peak (``VmHWM``). Summary per method: median per-chunk CPU
time in minute 1 (latent frames 0-239) and minute 60 (14,160-14,399) and their ratio, KV bytes and RSS at the end of
minute 1 and on entering minute 60 (before the lockstep video below allocates its own buffers). On a loaded shared
machine CPU time per chunk still drifts by ±10 % over an hour, so minute 60 is also compared with the first minute
of a fresh video generated **in lockstep** with it (one chunk each, in turn, in a second thread: :class:`Lockstep`),
which sees the same machine load. The noise and output latents of the whole video are allocated (and touched) before
the first chunk — their size is printed — so memory that grows during the run would be a leak.

Every method runs in its own process (so resident memory is that method's alone); its result is written to ``--out``
as soon as it finishes, and a rerun skips methods already there (resume). An SVG chart of per-chunk time over the
hour is written beside it.

    nice -n 10 python benchmarks/bench_one_hour.py [--frames 14400] [--out benchmarks/results/one_hour.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from deepforcing.methods import build_policy, build_sampler, get
from deepforcing.model.config import PRESETS
from deepforcing.model.tiny import build_random_generator
from deepforcing.noise import NoiseStream

METHODS = ["self-forcing", "deep-forcing", "rolling-forcing", "rolling-sink", "infinity-rope"]
MINUTE = 240  # latent frames per minute (16 fps / 4)


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class Lockstep:
    """Runs a second video's chunks in turn with the first's: while the hour's last minute is generated, a fresh
    video's first minute (same method, model and settings) runs in another thread, one chunk each in alternation, so
    both are timed under the same machine load. Each chunk's CPU time is its own thread's (``time.thread_time``).
    """

    def __init__(self):
        self.turn_a = threading.Semaphore(0)
        self.turn_b = threading.Semaphore(0)
        self.b_done = False
        self.a_done = False
        self.thread: threading.Thread | None = None

    def start_b(self, target) -> None:
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def a_finished_chunk(self) -> None:
        """Hand over to B and wait for one B chunk (unless B is done)."""
        if self.thread is None or self.b_done:
            return
        self.turn_b.release()
        self.turn_a.acquire()

    def b_finished_chunk(self) -> None:
        """Hand over to A and wait for one A chunk (unless A is done)."""
        self.turn_a.release()
        if not self.a_done:
            self.turn_b.acquire()


def timed_policy(cfg, sink: list, hook=None):
    """The method's policy whose after_chunk appends each chunk's thread CPU time to ``sink``."""
    policy = build_policy(cfg)
    inner = policy.after_chunk
    state = {"t": None}

    def after_chunk(kv, chunk):
        inner(kv, chunk)
        now = time.thread_time()
        sink.append(now - state["t"])
        state["t"] = now
        if hook is not None:
            hook(kv, chunk, len(sink) - 1)

    policy.after_chunk = after_chunk
    policy.start_clock = lambda: state.__setitem__("t", time.thread_time())
    return policy


def run(method: str, frames: int, every: int) -> dict:
    cfg = get(method)
    preset = PRESETS["tiny"]
    model = build_random_generator(preset.wan, seed=0)
    text = model.encode_text(torch.randn(1, preset.wan.text_len, preset.wan.text_dim))
    shape = (1, frames, preset.wan.in_dim, preset.latent_height, preset.latent_width)
    stream = NoiseStream("one-hour", 0)
    noise = stream.initial(shape)
    samples, cpu, cpu_b = [], [], []
    lock = Lockstep()

    def second_video():  # minute 1 of a fresh video, in lockstep with the hour's minute 60
        lock.turn_b.acquire()
        b_stream = NoiseStream("one-hour-minute-1", 0)
        b_policy = timed_policy(cfg, cpu_b, lambda kv, chunk, i: lock.b_finished_chunk())
        b_policy.start_clock()
        b_noise = b_stream.initial((1, MINUTE, *shape[2:]))
        build_sampler(cfg).sample(model, text, b_policy, b_noise, b_stream)
        lock.b_done = True
        lock.turn_a.release()

    def sample_memory(kv, chunk, i):
        edge = chunk.start_frame < MINUTE or chunk.start_frame >= frames - MINUTE  # minutes 1 and 60: densely
        if i % every == 0 or (edge and i % 10 == 0):
            samples.append(
                {
                    "chunk": i,
                    "start_frame": chunk.start_frame,
                    "kv_bytes": kv.memory_bytes() + policy.memory_bytes(),
                    "cache_tokens": kv.layers[0].valid,
                    "rss": _status("VmRSS"),
                    "hwm": _status("VmHWM"),
                }
            )
        if chunk.start_frame + chunk.num_frames >= frames - MINUTE:  # the next chunk is in minute 60
            if lock.thread is None:
                lock.start_b(second_video)
            lock.a_finished_chunk()

    policy = timed_policy(cfg, cpu, sample_memory)
    latent_bytes = noise.numel() * noise.element_size() * (3 if cfg.sampler == "rolling" else 2)
    policy.start_clock()
    t0 = time.perf_counter()
    result = build_sampler(cfg).sample(model, text, policy, noise, stream)
    wall = time.perf_counter() - t0
    lock.a_done = True
    lock.turn_b.release()
    if lock.thread is not None:
        lock.thread.join()
    n = cfg.sampler_config.chunk_frames
    per_minute = MINUTE // n
    med1, med60 = statistics.median(cpu[:per_minute]), statistics.median(cpu[-per_minute:])
    med1_lockstep = statistics.median(cpu_b[:per_minute])
    minutes = [statistics.median(cpu[i : i + per_minute]) for i in range(0, len(cpu) - per_minute + 1, per_minute)]
    wall_chunks = [c.seconds for c in result.chunks]
    s1 = [s for s in samples if s["start_frame"] < MINUTE][-1]  # end of minute 1 (the cache is full by then)
    # memory entering minute 60 (the lockstep video's own buffers are allocated after this point)
    s60 = [s for s in samples if s["start_frame"] < frames - MINUTE][-1]
    return {
        "method": method,
        "frames": frames,
        "chunks": len(cpu),
        "latent_bytes_allocated_up_front": latent_bytes,
        "cpu_ms_median_minute1": 1000 * med1,
        "cpu_ms_median_minute60": 1000 * med60,
        "ratio_minute60_vs_1": med60 / med1,
        "cpu_ms_median_minute1_in_lockstep_with_minute60": 1000 * med1_lockstep,
        "ratio_minute60_vs_1_lockstep": med60 / med1_lockstep,
        "cpu_ms_median_per_minute": [round(1000 * m, 3) for m in minutes],
        "wall_ms_median_minute1": 1000 * statistics.median(wall_chunks[:per_minute]),
        "wall_ms_median_minute60": 1000 * statistics.median(wall_chunks[-per_minute:]),
        "kv_bytes_minute1": s1["kv_bytes"],
        "kv_bytes_minute60": s60["kv_bytes"],
        "kv_bytes_reported": result.kv_cache_bytes,
        "cache_tokens_minute60": s60["cache_tokens"],
        "rss_minute1": s1["rss"],
        "rss_minute60": s60["rss"],
        "peak_rss_minute1": s1["hwm"],
        "peak_rss_minute60": s60["hwm"],
        "wall_seconds": wall,
        "series": {"cpu_ms": [round(1000 * c, 3) for c in cpu], "samples": samples},
    }


def svg_chart(results: dict[str, dict], path: Path) -> None:
    """Per-chunk CPU time (median of 40 chunks) and KV memory over the hour, one line per method."""
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    w, h, pad = 720, 360, 56
    top_h = (h - 3 * pad // 2) * 0.62
    lines, legend = [], []
    ymax = max(statistics.median(r["series"]["cpu_ms"]) for r in results.values()) * 1.6 if results else 1
    for j, (name, r) in enumerate(results.items()):
        cpu = r["series"]["cpu_ms"]
        k = 40
        pts = []
        for i in range(0, len(cpu), k):
            x = pad + (w - 2 * pad) * (i / max(1, len(cpu) - 1))
            y = pad + top_h * (1 - min(1.0, statistics.median(cpu[i : i + k]) / ymax))
            pts.append(f"{x:.1f},{y:.1f}")
        lines.append(f'<polyline fill="none" stroke="{colors[j % 6]}" stroke-width="1.5" points="{" ".join(pts)}"/>')
        legend.append(
            f'<text x="{pad + 8 + 130 * j}" y="{h - 8}" fill="{colors[j % 6]}" font-size="11">{name}: '
            f"{r['kv_bytes_minute60'] / 2**20:.2f} MiB KV</text>"
        )
    axes = (
        f'<line x1="{pad}" y1="{pad + top_h}" x2="{w - pad}" y2="{pad + top_h}" stroke="#444"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{pad + top_h}" stroke="#444"/>'
        f'<text x="{pad}" y="{pad - 10}" font-size="12">per-chunk CPU time (ms, median of 40 chunks), tiny model, '
        f"one hour = 14,400 latent frames</text>"
        f'<text x="{pad - 6}" y="{pad + 4}" font-size="10" text-anchor="end">{ymax:.0f}</text>'
        f'<text x="{pad - 6}" y="{pad + top_h}" font-size="10" text-anchor="end">0</text>'
        f'<text x="{pad}" y="{pad + top_h + 16}" font-size="10">minute 1</text>'
        f'<text x="{w - pad}" y="{pad + top_h + 16}" font-size="10" text-anchor="end">minute 60</text>'
    )
    body = axes + "".join(lines) + "".join(legend)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>{body}</svg>\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=14400)
    parser.add_argument("--every", type=int, default=100, help="sample memory every N chunks")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/one_hour.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for method in args.methods:
        if method in results and results[method]["frames"] == args.frames:
            print(f"{method}: done before (resume)")
            continue
        if not args.child:  # one process per method
            cmd = [sys.executable, __file__, "--child", "--frames", str(args.frames), "--every", str(args.every)]
            subprocess.run([*cmd, "--methods", method, "--out", str(args.out)], check=True)
            results = json.loads(args.out.read_text())
            continue
        r = run(method, args.frames, args.every)
        results[method] = r
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results))
        tmp.replace(args.out)  # checkpoint after every method
        print(
            f"{method:16s} CPU/chunk {r['cpu_ms_median_minute1']:.2f} -> {r['cpu_ms_median_minute60']:.2f} ms "
            f"(x{r['ratio_minute60_vs_1']:.3f}; a fresh minute 1 in lockstep with minute 60: "
            f"{r['cpu_ms_median_minute1_in_lockstep_with_minute60']:.2f} ms, "
            f"x{r['ratio_minute60_vs_1_lockstep']:.3f}); "
            f"KV {r['kv_bytes_minute1']} -> {r['kv_bytes_minute60']} B; "
            f"RSS {r['rss_minute1'] / 2**20:.1f} -> {r['rss_minute60'] / 2**20:.1f} MiB; "
            f"peak {r['peak_rss_minute1'] / 2**20:.1f} -> {r['peak_rss_minute60'] / 2**20:.1f} MiB; "
            f"{r['wall_seconds']:.0f} s",
            flush=True,
        )
    if not args.child:
        svg_chart({m: results[m] for m in args.methods if m in results}, args.out.with_suffix(".svg"))


if __name__ == "__main__":
    main()

"""Operations and CPU time per chunk of every method, this checkout against a baseline checkout, in one run.

The fixed cost of few-step causal generation is many small operations per chunk (on a GPU: kernel launches).
For each model config and method this script counts them with ``torch.profiler`` on one profiled run and
times unprofiled runs (CPU time of one single-threaded process, ``time.process_time``; the median over
rounds). With ``--baseline DIR`` (a checkout of the unchanged code, e.g. ``git worktree add /tmp/base main``)
every measurement is made by two worker processes, one importing ``deepforcing`` from this checkout and one
from ``DIR``, their runs interleaved round-robin, so that the ratios compare like with like on a shared
machine. The two sides' output latents are compared (max |Δ|) and their KV-cache bytes and peak RSS reported.

Counts (all per output chunk of ``chunk_frames`` latent frames, i.e. a run's total / (frames / 3)):

* ``ops`` — every ATen operator call the profiler records, nested calls included (``aten::to`` and the
  ``aten::copy_`` it makes count twice);
* ``calls`` — top-level ATen calls only (what the Python code dispatches);
* ``kernels`` — leaf calls that compute or copy data (views, reshapes, allocations and no-op casts excluded),
  plus the compiled path's fused kernels: a proxy for kernel launches on a GPU;
* ``copies`` — ``aten::copy_`` calls.

``--compile`` adds a third side: this checkout with the compiled DiT path (``--compile`` of ``generate``).

    python benchmarks/bench_ops.py --baseline /tmp/base [--configs tiny medium] [--rounds 5] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from presets import BENCHMARKED_METHODS  # benchmarks/ is on sys.path when a script in it runs

ROOT = Path(__file__).resolve().parents[1]
METHODS = BENCHMARKED_METHODS
#: Latent frames per run: long enough for every cache to fill and roll (the window is 21 frames).
DEFAULT_FRAMES = {"tiny": 48, "medium": 30}

#: Leaf ATen calls that launch no compute kernel (metadata, views, allocations, no-op casts).
NON_KERNEL = {
    "aten::" + name
    for name in (
        "as_strided view _reshape_alias reshape slice select transpose t unsqueeze squeeze expand expand_as permute "
        "unflatten flatten narrow alias view_as_real view_as_complex detach detach_ lift_fresh empty empty_strided "
        "empty_like resize_ unfold split chunk unbind _unsafe_view resolve_conj resolve_neg contiguous to type_as "
        "result_type size stride numel dim is_nonzero item _local_scalar_dense broadcast_tensors _has_compatible_"
        "shallow_copy_type set_ is_same_size"
    ).split()
}


# ----------------------------------------------------------------------------------------------------- worker


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def _peak_rss_bytes() -> int:
    line = next(s for s in Path("/proc/self/status").read_text().splitlines() if s.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


class Worker:
    """Runs generations on request inside a process whose ``deepforcing`` may be another checkout."""

    def __init__(self, config: str, threads: int, compiled: bool, dtype: str):
        import torch

        from deepforcing.model.config import PRESETS
        from deepforcing.model.tiny import build_random_generator

        torch.set_num_threads(threads)
        self.torch = torch
        self.preset = PRESETS[config]
        self.dtype = getattr(torch, dtype)
        self.model = build_random_generator(self.preset.wan, seed=0).to(self.dtype)
        if compiled:
            import torch._inductor.config

            from deepforcing.model.compiled import compile_model

            torch._inductor.config.cpp.enable_kernel_profile = True  # fused kernels appear in the profile
            if not compile_model(self.model):
                raise RuntimeError("--compile: torch.compile is unavailable here (see the log line above)")
        wan = self.preset.wan
        text_states = torch.randn(1, wan.text_len, wan.text_dim, generator=torch.Generator().manual_seed(0))
        self.text = self.model.encode_text(text_states)

    def generate(self, method: str, frames: int, on_chunk=None):
        from deepforcing.methods import build_policy, build_sampler, get
        from deepforcing.noise import NoiseStream

        cfg = get(method)
        stream = NoiseStream("bench", 0, dtype=self.dtype)
        p = self.preset
        noise = stream.initial((1, frames, p.wan.in_dim, p.latent_height, p.latent_width))
        return build_sampler(cfg).sample(self.model, self.text, build_policy(cfg), noise, stream, on_chunk)

    def handle(self, req: dict) -> dict:
        torch = self.torch
        method, frames, kind = req["method"], req["frames"], req["kind"]
        if kind == "time":
            t0 = time.process_time()
            result = self.generate(method, frames)
            return {"cpu_s": time.process_time() - t0, "chunks": len(result.chunks)}
        if kind == "profile":
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                self.generate(method, frames)
            events = prof.events()
            counts = Counter()
            for e in events:
                if "cpp_fused" in e.name or "triton_" in e.name:  # a compiled (fused) kernel
                    counts["kernels"] += 1
                if not e.name.startswith("aten::"):
                    continue
                counts["ops"] += 1
                counts["calls"] += e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")
                counts["kernels"] += not e.cpu_children and e.name not in NON_KERNEL
                counts["copies"] += e.name == "aten::copy_"
            return dict(counts)
        if kind == "memory":  # one run: output latents, KV-cache bytes, RSS per chunk, peak RSS above the start
            rss = []
            _reset_peak_rss()
            start = _rss_bytes()
            result = self.generate(method, frames, lambda index, latents: rss.append(_rss_bytes()))
            peak = _peak_rss_bytes() - start
            torch.save(result.latents, req["save"])
            return {
                "kv_cache_bytes": result.kv_cache_bytes,
                "rss_growth_bytes": rss[-1] - rss[min(7, len(rss) - 1)],
                "run_peak_rss_bytes": peak,
                "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            }
        raise ValueError(f"unknown request {req}")


def worker_main(config: str, threads: int, compiled: bool, dtype: str) -> None:
    worker = Worker(config, threads, compiled, dtype)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("kind") == "warmup":
            worker.generate(req["method"], req["frames"])
            print(json.dumps({}), flush=True)
        else:
            print(json.dumps(worker.handle(req)), flush=True)


# ------------------------------------------------------------------------------------------------ coordinator


class Side:
    """One worker process: a name, the checkout it imports from, and whether it compiles."""

    def __init__(self, name: str, root: Path, config: str, threads: int, dtype: str, compiled: bool = False):
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", "--configs", config]
        cmd += ["--threads", str(threads), "--dtype", dtype] + (["--compile"] if compiled else [])
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker '{self.name}' died (see its stderr above)")
        return json.loads(line)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(config: str, sides: list[Side], methods: list[str], frames: int, rounds: int, chunk_frames: int) -> list:
    import torch

    chunks = frames // chunk_frames
    rows = {
        (s.name, m): {"side": s.name, "config": config, "method": m, "frames": frames} for s in sides for m in methods
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench_ops_"))
    for m in methods:
        for s in sides:
            t0 = time.perf_counter()
            s.ask(kind="warmup", method=m, frames=frames)
            row = rows[(s.name, m)]
            row["warmup_wall_s"] = time.perf_counter() - t0  # the compiled side compiles here
            row.update(s.ask(kind="memory", method=m, frames=frames, save=str(tmp / f"{s.name}-{m}.pt")))
            row.update({k: v / chunks for k, v in s.ask(kind="profile", method=m, frames=frames).items()})
        base = torch.load(tmp / f"{sides[0].name}-{m}.pt")
        for s in sides:
            other = torch.load(tmp / f"{s.name}-{m}.pt")
            rows[(s.name, m)]["max_abs_diff_vs_" + sides[0].name] = float((other.float() - base.float()).abs().max())
    times = {key: [] for key in rows}
    for _ in range(rounds):
        for m in methods:
            for s in sides:
                times[(s.name, m)].append(s.ask(kind="time", method=m, frames=frames)["cpu_s"] / chunks)
    for key, row in rows.items():
        row["cpu_ms_per_chunk"] = 1000 * statistics.median(times[key])
        row["cpu_ms_per_chunk_all_rounds"] = [1000 * t for t in times[key]]
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return list(rows.values())


def table(rows: list[dict], base_side: str, side: str) -> str:
    """Markdown table: per config and method, base vs side (ops/chunk, calls, kernels, copies, CPU ms/chunk)."""
    by = {(r["side"], r["config"], r["method"]): r for r in rows}
    lines = [
        "| config | method | ops/chunk | calls/chunk | kernels/chunk | copy_/chunk | CPU ms/chunk | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(b, a, fmt):
        return f"{fmt.format(b)} → {fmt.format(a)} ({a / b:.2f}x)"

    for (name, config, method), a in by.items():
        if name != side:
            continue
        b = by[(base_side, config, method)]
        lines.append(
            f"| {config} | {method} | {cell(b['ops'], a['ops'], '{:.0f}')} | {cell(b['calls'], a['calls'], '{:.0f}')} "
            f"| {cell(b['kernels'], a['kernels'], '{:.0f}')} | {cell(b['copies'], a['copies'], '{:.0f}')} "
            f"| {cell(b['cpu_ms_per_chunk'], a['cpu_ms_per_chunk'], '{:.2f}')} "
            f"| {a['max_abs_diff_vs_' + base_side]:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="checkout of the code to compare against (its root)")
    parser.add_argument("--configs", nargs="+", default=["tiny", "medium"])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--frames", type=int, help="latent frames per run (default: tiny 48, medium 30)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--medium-rounds", type=int, default=3, help="rounds for configs other than tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also measure this checkout's compiled path")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="model and noise dtype")
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.configs[0], args.threads, args.compile, args.dtype)
        return
    rows = []
    for config in args.configs:
        sides = []
        if args.baseline:
            sides.append(Side("before", args.baseline.resolve(), config, args.threads, args.dtype))
        sides.append(Side("after", ROOT, config, args.threads, args.dtype))
        if args.compile:
            sides.append(Side("compiled", ROOT, config, args.threads, args.dtype, compiled=True))
        frames = args.frames or DEFAULT_FRAMES.get(config, 30)
        rounds = args.rounds if config == "tiny" else args.medium_rounds
        try:
            rows += measure(config, sides, args.methods, frames, rounds, chunk_frames=3)
            for row in rows:
                row["dtype"] = args.dtype
        finally:
            for s in sides:
                s.close()
        if args.json:  # checkpoint after every config
            args.json.write_text(json.dumps(rows, indent=1))
    base = "before" if args.baseline else "after"
    for side in ["after", "compiled"] if args.baseline else ["compiled"]:
        if any(r["side"] == side for r in rows):
            print(f"\n{base} → {side}\n" + table(rows, base, side))
    print("\nside      config  method           KV-cache bytes  run peak RSS MB  RSS growth after chunk 8 MB")
    for r in rows:
        print(
            f"{r['side']:9s} {r['config']:7s} {r['method']:16s} {r['kv_cache_bytes']:>14d} "
            f"{r['run_peak_rss_bytes'] / 2**20:16.2f} {r['rss_growth_bytes'] / 2**20:28.2f}"
        )


if __name__ == "__main__":
    main()

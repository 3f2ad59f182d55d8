"""Start-up cost of the listing commands: wall time and peak memory from process start to exit.

Each command runs as a fresh ``python -m deepforcing.cli …`` process (stdout to /dev/null, offline), the way a
user or a script runs it. Per command the figure is the median over ``--rounds`` of the wall time, the median
CPU time (user + system, steadier on a shared machine) and the largest peak RSS (``ru_maxrss`` of the child).
With ``--baseline DIR`` the same commands also run from another checkout (e.g. ``/work/main`` before a change),
interleaved round by round, and the ratios are printed. ``--check`` exits 1 when a command of this checkout
exceeds the targets (0.5 s wall, 150 MiB).

    python benchmarks/bench_cli_startup.py [--rounds 5] [--baseline DIR] [--check] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "methods list": ["methods", "list"],
    "suites list": ["suites", "list"],
    "weights list": ["weights", "list"],
    "help": ["--help"],
    "methods list --json": ["methods", "list", "--json"],
}

#: The issue's targets for a listing command (process start to exit).
TARGET_SECONDS = 0.5
TARGET_MIB = 150.0


class CommandFailed(RuntimeError):
    """The command exited non-zero (e.g. a flag the baseline checkout does not have)."""


def run_once(root: Path, argv: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one ``python -m deepforcing.cli ARGV`` run from ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env.update(PYTHONPATH=str(root), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepforcing.cli", *argv],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise CommandFailed(f"{root}: deepforcing-eval {' '.join(argv)} exited {proc.returncode}: {proc.stderr.read()}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def measure(roots: dict[str, Path], commands: dict[str, list[str]], rounds: int) -> dict[str, dict[str, dict]]:
    """Per root and command: median wall / CPU seconds and max peak MiB (None where a baseline lacks the command).

    Rounds are interleaved across roots and commands, so load on a shared machine hits both sides alike.
    """
    samples: dict[str, dict[str, list | None]] = {r: {c: [] for c in commands} for r in roots}
    for _ in range(rounds):
        for label, argv in commands.items():
            for name, root in roots.items():
                if samples[name][label] is None:
                    continue
                try:
                    samples[name][label].append(run_once(root, argv))
                except CommandFailed:
                    if name == "this":
                        raise
                    samples[name][label] = None
    return {
        name: {
            label: None
            if runs is None
            else {
                "wall_s": statistics.median(s[0] for s in runs),
                "cpu_s": statistics.median(s[1] for s in runs),
                "peak_mib": max(s[2] for s in runs),
            }
            for label, runs in per.items()
        }
        for name, per in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (e.g. main before a change)")
    parser.add_argument("--commands", nargs="+", choices=sorted(COMMANDS), default=list(COMMANDS))
    parser.add_argument("--check", action="store_true", help="exit 1 when a command exceeds 0.5 s or 150 MiB")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    roots = {"this": ROOT}
    if args.baseline:
        roots["baseline"] = args.baseline.resolve()
    commands = {c: COMMANDS[c] for c in args.commands}
    result = measure(roots, commands, args.rounds)
    head = "| command | wall s | CPU s | peak MiB |"
    if args.baseline:
        head += " baseline wall s | baseline CPU s | baseline peak MiB | wall ratio | memory ratio |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label in commands:
        t = result["this"][label]
        row = f"| `{' '.join(commands[label])}` | {t['wall_s']:.2f} | {t['cpu_s']:.2f} | {t['peak_mib']:.0f} |"
        if args.baseline and result["baseline"][label] is None:
            row += " - | - | - | - | - |"
        elif args.baseline:
            b = result["baseline"][label]
            row += (
                f" {b['wall_s']:.2f} | {b['cpu_s']:.2f} | {b['peak_mib']:.0f} | "
                f"{t['wall_s'] / b['wall_s']:.2f} | {t['peak_mib'] / b['peak_mib']:.2f} |"
            )
        print(row)
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, **result}, indent=2) + "\n")
    over = [label for label, t in result["this"].items() if t["wall_s"] > TARGET_SECONDS or t["peak_mib"] > TARGET_MIB]
    if args.check and over:
        print(f"over {TARGET_SECONDS} s or {TARGET_MIB:.0f} MiB: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

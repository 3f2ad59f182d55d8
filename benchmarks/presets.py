"""The method presets the speed benchmarks measure (standard library only: ``bench_ops.py`` imports it before torch).

One of each cache policy / sampler family, Self-Forcing first (the reference every ratio is taken against); the
ablation grids of ``baselines/methods/ablations.yaml`` are left out.
"""

BENCHMARKED_METHODS = [
    "self-forcing",
    "deep-forcing-ds",
    "deep-forcing",
    "sink-longlive",
    "sink-rolling",
    "rolling-forcing",
    "rolling-sink",
    "infinity-rope",
    "memrope",
    "lol-paper",
    "longlive",
]

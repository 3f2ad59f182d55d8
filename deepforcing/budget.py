"""Up-front resource estimate of one video (memory, disk, time), so that impossible requests are refused before compute.

:func:`estimate` answers "what will generating F latent frames of this method on this model cost?" from the
model shape and the method's cache policy alone (no weights are loaded, nothing is allocated):

* **KV cache** — the policy's :meth:`~deepforcing.policies.base.CachePolicy.capacity_frames` for the video,
  counted by allocating the engine's own :class:`~deepforcing.cache.KVCache` on the ``meta`` device (so the
  count follows the cache's real layout). Window methods (FIFO, sinks, Deep Forcing, Rolling Forcing) are
  *bounded*: the cache is the same size for any length. ``self-forcing-full`` (the ``full`` policy) grows with
  the video.
* **latents** — the whole video's noise and output latents are held on the device (the noise is drawn up front),
  plus a float32 copy of the result on the host.
* **weights** — the DiT's parameters in the model dtype, plus the text encoder and VAE of the real model
  (:data:`COMPANION_BYTES`).
* **activations** — one DiT pass over the largest pass of the sampler (a chunk, or Rolling Forcing's window):
  a rough upper bound of the FFN / projection buffers, plus the attention scores on CPU (CUDA's
  memory-efficient kernels do not materialise them).
* **disk** — the mp4, at :data:`MP4_BYTES_PER_PIXEL` (an upper bound: measured on random-noise frames).
* **time** — FLOPs of every DiT pass (projections, FFN, self- and cross-attention over the keys each chunk
  attends to) over an effective throughput (:data:`CUDA_FLOPS`, :data:`CPU_FLOPS_PER_THREAD`). Order of
  magnitude only; the basis is stated in :attr:`Estimate.seconds_basis`.

:func:`check` compares estimates with :class:`Limits` (free device memory, free host memory, free disk at the
output, :data:`DEFAULT_MAX_SECONDS` per video) and raises one :class:`~deepforcing.errors.UserError` that names
what does not fit, the estimate, the limit and the override (``--max-memory SIZE`` / ``--force-size``).
``deepforcing-eval generate`` and the harness's planning (``run --suite``) both call it.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deepforcing.errors import UserError

if TYPE_CHECKING:
    from deepforcing.methods import MethodConfig
    from deepforcing.model.config import ModelPreset
    from deepforcing.model_kinds import ModelKind

#: Upper bound of the mp4 size per decoded pixel (one RGB pixel of one frame): 0.34 bytes measured on the tiny
#: model's random-noise frames at x264 CRF 23 (``generate --model tiny --num-latent-frames 63``: 346,710 bytes
#: for 249 frames of 64x64); natural and toy videos are 3-30x smaller.
MP4_BYTES_PER_PIXEL = 0.35

#: Effective throughput of the engine on one H100 in bf16 (FLOP/s of :func:`estimate`'s FLOP count): calibrated
#: so that Self-Forcing (FIFO window 21) on Wan2.1-T2V-1.3B generates at the 15.78 FPS the Deep Forcing paper
#: measured for 60-s videos (arXiv 2512.05081 Table 1): 1.57e16 FLOPs for 240 latent frames = 957 frames in 60.6 s.
CUDA_FLOPS = 2.59e14

#: Effective CPU throughput per torch thread (FLOP/s), measured on this project's 2-core development machine with the
#: toy-world model (``generate --model toyworld --num-latent-frames 63``, one thread: 150 ms per chunk, i.e. the
#: 5.5e10 FLOPs of 21 chunks in 3.15 s). Bigger models use a CPU better, so this overestimates their time.
CPU_FLOPS_PER_THREAD = 1.7e10

#: Longest single video the checks accept without ``--force-size`` (7 days): longer is almost always a typo.
DEFAULT_MAX_SECONDS = 7 * 24 * 3600.0

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtp", start=1):  # k / kb = 10^3 ... ; ki / kib = 2^10 ...
    _UNITS.update({_p: 1000**_i, _p + "b": 1000**_i, _p + "i": 1024**_i, _p + "ib": 1024**_i})
del _i, _p


@dataclass(frozen=True)
class Estimate:
    """What one video costs.

    Attributes:
        model: Model preset name.
        method: Method name.
        num_latent_frames: Latent frames of the video.
        num_pixel_frames: Frames of the decoded video.
        device: ``cpu`` or ``cuda``.
        dtype: Model dtype name.
        weights_bytes: DiT parameters plus the text encoder and VAE on the device.
        kv_bytes: The preallocated KV cache (all layers, K, V and their token tables).
        kv_bounded: True when the cache size does not depend on the video length (window methods).
        latents_bytes: Latent buffers on the device (noise, output, their float32 copy).
        activations_bytes: One DiT pass over the sampler's largest pass (rough upper bound).
        host_bytes: Host memory of the result (float32 latents; on CPU also everything above).
        peak_bytes: Device peak: weights + KV + latents + activations.
        disk_bytes: The mp4 (0 when no video is written).
        seconds: Sampling time (decode excluded), order of magnitude.
        seconds_basis: How ``seconds`` was derived.
    """

    model: str
    method: str
    num_latent_frames: int
    num_pixel_frames: int
    device: str
    dtype: str
    weights_bytes: int
    kv_bytes: int
    kv_bounded: bool
    latents_bytes: int
    activations_bytes: int
    host_bytes: int
    peak_bytes: int
    disk_bytes: int
    seconds: float
    seconds_basis: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        from dataclasses import asdict

        return asdict(self)

    def describe(self) -> str:
        """One line: the memory split, disk and time."""
        kv = "constant in length" if self.kv_bounded else "grows with length"
        where = "GPU" if self.device == "cuda" else "RAM"
        return (
            f"{self.method} on {self.model}, {self.num_latent_frames} latent frames ({self.num_pixel_frames} video "
            f"frames): {where} peak {fmt_bytes(self.peak_bytes)} (weights {fmt_bytes(self.weights_bytes)}, KV cache "
            f"{fmt_bytes(self.kv_bytes)} {kv}, latents {fmt_bytes(self.latents_bytes)}, activations "
            f"{fmt_bytes(self.activations_bytes)}), mp4 <= {fmt_bytes(self.disk_bytes)}, about "
            f"{fmt_seconds(self.seconds)} of sampling"
        )


@dataclass(frozen=True)
class Limits:
    """What the machine can give a request (None: not checked).

    Attributes:
        memory_bytes: Device memory (CUDA: free memory of the device; CPU: available RAM).
        host_bytes: Available host RAM (checked separately on CUDA).
        disk_bytes: Free space where the videos go.
        seconds: Longest accepted sampling time of one video.
        memory_source: Where ``memory_bytes`` came from (``--max-memory``, ``free CUDA memory``, …).
        disk_path: The folder whose free space is ``disk_bytes``.
    """

    memory_bytes: int | None = None
    host_bytes: int | None = None
    disk_bytes: int | None = None
    seconds: float | None = DEFAULT_MAX_SECONDS
    memory_source: str = ""
    disk_path: str = ""


# ------------------------------------------------------------------------------------------------ formatting
def fmt_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} B"  # pragma: no cover


def fmt_seconds(s: float) -> str:
    """``42 s`` / ``3.5 min`` / ``2.0 h`` / ``9.1 days`` / ``3e+04 years``."""
    if not math.isfinite(s):
        return "forever"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 365 * 86400:
        return f"{s / 86400:.1f} days"
    return f"{s / (365 * 86400):.3g} years"


def parse_size(text: str) -> int:
    """``40GiB`` / ``80GB`` / ``512M`` / ``1e12`` -> bytes (decimal ``GB``, binary ``GiB``).

    Raises:
        UserError: Not a size.
    """
    m = _SIZE_RE.match(str(text))
    unit = (m.group(2) or "").lower() if m else ""
    if not m or unit not in _UNITS:
        raise UserError(f"'{text}' is not a size", "write it like 40GiB, 80GB or 512MiB")
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"size '{text}' must be positive")
    return int(value)


def check_positive_finite(value: float, what: str) -> float:
    """``value`` if it is a positive finite number, else a UserError naming ``what``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{what} must be positive and finite, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------- estimate
def _kind(model: str | ModelPreset | ModelKind) -> ModelKind:
    from deepforcing import model_kinds
    from deepforcing.model.config import ModelPreset

    if isinstance(model, ModelPreset):
        model = model.name
    return model_kinds.get(model)


@functools.lru_cache(maxsize=8)
def _param_count(preset: ModelPreset) -> int:
    import torch

    from deepforcing.model.wan import CausalWanModel

    with torch.device("meta"):
        model = CausalWanModel(preset.wan)
    return sum(p.numel() for p in model.parameters())


def _kv_bytes(preset: ModelPreset, method: MethodConfig, capacity_frames: int, dtype_name: str) -> int:
    """Bytes of the engine's KV cache for ``capacity_frames``, counted on the meta device (nothing allocated)."""
    import torch

    from deepforcing import methods
    from deepforcing.cache import KVCache

    cfg = preset.wan
    tpf = preset.tokens_per_frame
    dtype = getattr(torch, dtype_name)
    kv = KVCache(cfg.num_layers, 1, capacity_frames * tpf, cfg.num_heads, cfg.head_dim, tpf, None, dtype, "meta")
    policy = methods.build_policy(method)
    try:  # per-token columns a policy adds (e.g. Top-C reuse counts), and its own state (Rolling Sink's bank)
        policy.reset()
        policy.attach(kv)
        extra = policy.memory_bytes()
    except Exception:  # noqa: BLE001 - a policy that cannot attach to a meta cache: its columns are not counted
        extra = 0
    return int(kv.memory_bytes()) + int(extra)


def _pass_frames(method: MethodConfig) -> tuple[int, int, int]:
    """(frames of the largest pass, denoising passes per finished chunk, extra windows) of the sampler."""
    cfg = method.sampler_config
    n = cfg.chunk_frames
    steps = len(cfg.denoising_steps)
    if method.sampler == "rolling":
        return steps * n, 1, steps - 1
    return n, steps, 0


def _attended_sum(num_chunks: int, chunk: int, capacity_frames: int) -> float:
    """Σ over chunks of the frames each attends to: ``min(capacity, (c + 1)·chunk)`` (closed form)."""
    full = min(num_chunks, capacity_frames // chunk)
    return chunk * full * (full + 1) / 2 + (num_chunks - full) * capacity_frames


def _flops_per_token(preset: ModelPreset, keys: float) -> float:
    """FLOPs of one token through every block attending to ``keys`` cached tokens (+ the text)."""
    c = preset.wan
    per_layer = 12 * c.dim**2 + 4 * c.dim * c.ffn_dim + 4 * c.dim * (keys + c.text_len)
    return c.num_layers * per_layer


def _total_flops(preset: ModelPreset, method: MethodConfig, frames: int, capacity_frames: int) -> float:
    tpf = preset.tokens_per_frame
    n = method.sampler_config.chunk_frames
    chunks = math.ceil(frames / n)
    pass_frames, passes, extra_windows = _pass_frames(method)
    attended = _attended_sum(chunks, n, capacity_frames)  # frames attended, summed over chunks
    # Every finished chunk: `passes` denoising passes of `pass_frames` frames + one clean (context) pass of n frames.
    tokens_denoise = (chunks + extra_windows) * passes * pass_frames * tpf
    tokens_context = (chunks + extra_windows) * n * tpf
    mean_keys = tpf * attended / max(chunks, 1)
    return (tokens_denoise + tokens_context) * _flops_per_token(preset, mean_keys)


def estimate(
    model: str | ModelPreset,
    method: str | MethodConfig,
    num_latent_frames: int,
    device: str = "cpu",
    dtype: str | None = None,
    *,
    output: bool = True,
    threads: int | None = None,
) -> Estimate:
    """Estimate memory, disk and time of one video before anything is loaded.

    Args:
        model: Model preset (name or object).
        method: Method (name, preset path or config), resolved for the model (``ModelKind.resolve_method``).
        num_latent_frames: Latent frames (any positive integer; whole chunks are not required here).
        device: ``cpu`` or ``cuda`` (``cuda:1`` counts as ``cuda``).
        dtype: ``float32`` / ``bfloat16`` / ``float16`` (default: bf16 on CUDA, fp32 on CPU).
        output: Whether an mp4 is written (disk estimate).
        threads: CPU threads (default: torch's current setting).

    Returns:
        The estimate.

    Raises:
        UserError: Unknown model / method, or a frame count that is not a positive integer.
    """
    if isinstance(num_latent_frames, bool) or not isinstance(num_latent_frames, int) or num_latent_frames <= 0:
        raise UserError(f"the number of latent frames must be a positive integer, got {num_latent_frames!r}")
    from deepforcing import methods

    model_kind = _kind(model)
    preset = model_kind.preset
    cfg = model_kind.resolve_method(methods.resolve(method))
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    dtype = dtype or ("bfloat16" if kind == "cuda" else "float32")
    if dtype not in _DTYPE_BYTES:
        raise UserError(f"unknown dtype '{dtype}'", f"choose one of: {', '.join(_DTYPE_BYTES)}")
    size = _DTYPE_BYTES[dtype]
    frames = num_latent_frames
    pass_frames, _, _ = _pass_frames(cfg)

    from deepforcing import methods

    policy = methods.build_policy(cfg)
    try:
        capacity = policy.capacity_frames(frames, pass_frames)
        bounded = policy.capacity_frames(2 * frames + pass_frames, pass_frames) == policy.capacity_frames(
            4 * frames + pass_frames, pass_frames
        )
    except ValueError as exc:
        raise UserError(f"method '{cfg.name}' cannot run {frames} latent frames: {exc}") from exc
    kv = _kv_bytes(preset, cfg, capacity, dtype)

    elements = frames * preset.wan.in_dim * preset.latent_height * preset.latent_width  # one latent video
    buffers = 3 if cfg.sampler == "rolling" else 2  # noise + output (+ rolling's noisy copies)
    latents = elements * (buffers * size + 4)  # + the float32 copy made before the move to the host
    host_result = elements * 4

    weights = _param_count(preset) * size + model_kind.companion_bytes
    tokens = pass_frames * preset.tokens_per_frame
    keys = min(capacity, frames) * preset.tokens_per_frame
    c = preset.wan
    activations = tokens * (8 * c.dim + 2 * c.ffn_dim) * size
    if kind == "cpu":  # the math attention kernel materialises the scores
        activations += c.num_heads * tokens * keys * 4

    peak = weights + kv + latents + activations
    host = host_result + (peak if kind == "cpu" else 0)
    height, width = model_kind.video_size
    pixels = preset.pixel_frames(frames) * height * width
    disk = int(pixels * MP4_BYTES_PER_PIXEL) if output else 0

    flops = _total_flops(preset, cfg, frames, capacity)
    if kind == "cuda":
        rate, basis = CUDA_FLOPS, "H100 throughput calibrated on the paper's 15.78 FPS for Self-Forcing"
    else:
        import torch

        t = threads or torch.get_num_threads()
        rate, basis = CPU_FLOPS_PER_THREAD * t, f"{t} CPU thread(s) at {CPU_FLOPS_PER_THREAD:.2g} FLOP/s each"
    return Estimate(
        model=preset.name,
        method=cfg.name,
        num_latent_frames=frames,
        num_pixel_frames=preset.pixel_frames(frames),
        device=kind,
        dtype=dtype,
        weights_bytes=int(weights),
        kv_bytes=kv,
        kv_bounded=bounded,
        latents_bytes=int(latents),
        activations_bytes=int(activations),
        host_bytes=int(host),
        peak_bytes=int(peak),
        disk_bytes=disk,
        seconds=flops / rate,
        seconds_basis=f"{flops:.3g} FLOPs; {basis}",
    )


# --------------------------------------------------------------------------------------------------- limits
def available_ram() -> int | None:
    """Available host RAM in bytes (Linux ``MemAvailable``; else physical RAM; None if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def free_disk(path: str | os.PathLike) -> tuple[int | None, str]:
    """Free bytes on the file system that will hold ``path`` (its nearest existing ancestor)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free, str(p)
    except OSError:
        return None, str(p)


def limits_for(
    device: str,
    output_dir: str | os.PathLike | None = None,
    max_memory: int | None = None,
) -> Limits:
    """What ``device`` and the output folder can hold now.

    Args:
        device: ``cpu`` / ``cuda`` / ``cuda:N``.
        output_dir: Where videos are written (None: no disk check).
        max_memory: ``--max-memory`` in bytes: replaces the measured device memory.
    """
    host = available_ram()
    if max_memory is not None:
        memory, source = max_memory, "--max-memory"
    elif str(device).startswith("cuda"):
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(torch.device(device))
            memory, source = int(free), f"free memory of {torch.cuda.get_device_name(torch.device(device))}"
        except (RuntimeError, AssertionError):  # no CUDA here: nothing to compare with
            memory, source = None, "unknown"
    else:
        memory, source = host, "available RAM"
    disk, where = free_disk(output_dir) if output_dir is not None else (None, "")
    return Limits(
        memory_bytes=memory,
        host_bytes=host if str(device).startswith("cuda") else None,
        disk_bytes=disk,
        memory_source=source,
        disk_path=where,
    )


def check(estimates: list[Estimate], limits: Limits, *, videos: int = 1, what: str = "this request") -> None:
    """Refuse a request that cannot fit, with one message naming every limit it exceeds.

    Memory and time are per video (the largest estimate counts); disk is summed over ``videos`` videos of the
    largest mp4.

    Args:
        estimates: One estimate per distinct configuration (e.g. per method of a suite).
        limits: From :func:`limits_for`.
        videos: How many videos will be written (disk).
        what: Names the request in the message (``generate``, ``suite 'smoke'``).

    Raises:
        UserError: What does not fit, the estimate, the limit, and how to override.
    """
    if not estimates:
        return
    problems = []
    worst = max(estimates, key=lambda e: e.peak_bytes)
    if limits.memory_bytes is not None and worst.peak_bytes > limits.memory_bytes:
        where = "GPU memory" if worst.device == "cuda" else "memory"
        growth = "" if worst.kv_bounded else "; its KV cache grows with the video length (a full-cache method)"
        problems.append(
            f"{where}: needs about {fmt_bytes(worst.peak_bytes)} for {worst.method} ({worst.num_latent_frames} latent "
            f"frames: KV cache {fmt_bytes(worst.kv_bytes)}, latents {fmt_bytes(worst.latents_bytes)}, weights "
            f"{fmt_bytes(worst.weights_bytes)}){growth}, but {limits.memory_source} is "
            f"{fmt_bytes(limits.memory_bytes)}"
        )
    host = max(estimates, key=lambda e: e.host_bytes)
    if limits.host_bytes is not None and host.host_bytes > limits.host_bytes:
        problems.append(
            f"host memory: the result latents need about {fmt_bytes(host.host_bytes)}, but available RAM is "
            f"{fmt_bytes(limits.host_bytes)}"
        )
    disk = max(e.disk_bytes for e in estimates) * videos
    if limits.disk_bytes is not None and disk > limits.disk_bytes:
        count = f" for {videos} videos" if videos > 1 else ""
        problems.append(
            f"disk: the mp4s need up to {fmt_bytes(disk)}{count}, but {limits.disk_path} has "
            f"{fmt_bytes(limits.disk_bytes)} free"
        )
    slow = max(estimates, key=lambda e: e.seconds)
    if limits.seconds is not None and slow.seconds > limits.seconds:
        problems.append(
            f"time: one {slow.method} video would take about {fmt_seconds(slow.seconds)} of sampling "
            f"({slow.seconds_basis}), over the {fmt_seconds(limits.seconds)} limit"
        )
    if not problems:
        return
    head = f"{what} does not fit: " if len(problems) == 1 else f"{what} does not fit ({len(problems)} limits):\n  "
    raise UserError(
        head + ("\n  ".join(problems)),
        "shorten it (--duration / --num-latent-frames), use a bounded-cache method, set the memory limit with "
        "--max-memory SIZE, or skip these checks with --force-size",
    )

"""Provenance recorded in every result file: code version, library versions, device, time."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from deepforcing import ENGINE_VERSION, __version__
from deepforcing.paths import project_root

_PACKAGES = ("torch", "diffusers", "transformers", "av", "numpy", "torchmetrics", "open_clip_torch", "pyyaml")


@functools.cache
def git_info() -> dict[str, Any]:
    """Commit of the project checkout and whether tracked files differ from it (None outside git)."""
    root = project_root()

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


@functools.cache
def versions() -> dict[str, str | None]:
    """Versions of Python, this package and the libraries that can change a number."""
    out: dict[str, str | None] = {
        "python": sys.version.split()[0],
        "deepforcing": __version__,
        "engine": ENGINE_VERSION,
    }
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def device_info(device: str) -> dict[str, Any]:
    """The compute device: type, name and (CUDA) the driver's CUDA version."""
    info: dict[str, Any] = {"device": device, "platform": platform.platform(), "machine": platform.machine()}
    if device.startswith("cuda"):
        import torch

        idx = torch.device(device).index or 0
        info["name"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
        info["memory_bytes"] = torch.cuda.get_device_properties(idx).total_memory
    else:
        info["name"] = _cpu_name()
    return info


@functools.cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def now() -> str:
    """UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def provenance(device: str, dtype: str, world_size: int = 1) -> dict[str, Any]:
    """Everything about how a file was produced (except per-unit weights hashes and configs)."""
    return {
        "git": git_info(),
        "versions": versions(),
        "device": device_info(device),
        "dtype": dtype,
        "world_size": world_size,
        "created_at": now(),
        "argv": sys.argv,
    }

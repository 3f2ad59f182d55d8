"""What every resumable stage of the toy training shares: its checkpoint file.

A stage checkpoint holds the settings it was written with (as JSON-ready data), the stage's own tensors and
random states, and the progress every stage keeps (``step``, wall and CPU seconds, the history rows and the
command segments). It is written atomically (a ``.tmp`` file renamed over the old one), and ``--resume`` accepts it
only when its settings equal the current ones except the step counts; a setting the checkpoint predates counts
as its default (the behaviour before that setting existed).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Protocol

import torch

from deepforcing.errors import UserError


class StageProgress(Protocol):
    """The progress fields every stage state has."""

    step: int
    seconds: float
    cpu_seconds: float
    history: list[dict[str, float]]
    segments: list[dict[str, Any]]


def config_json(cfg: Any) -> dict[str, Any]:
    """A frozen config dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def write_stage(path: Path, cfg: Any, state: StageProgress, tensors: dict[str, Any]) -> None:
    """Write ``tensors`` with the settings and ``state``'s progress atomically; closes the open segment at its step."""
    if state.segments:
        state.segments[-1]["to_step"] = state.step
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "config": config_json(cfg),
            **tensors,
            "step": state.step,
            "seconds": state.seconds,
            "cpu_seconds": state.cpu_seconds,
            "history": state.history,
            "segments": state.segments,
        },
        tmp,
    )
    tmp.replace(path)


def read_stage(path: Path, cfg: Any) -> dict[str, Any]:
    """A stage checkpoint written with ``cfg``'s settings (only ``steps`` may differ).

    Raises:
        UserError: It was written with other settings.
    """
    raw = torch.load(path, map_location="cpu", weights_only=True)
    defaults = config_json(type(cfg)())
    changed = {k for k, v in config_json(cfg).items() if k != "steps" and raw["config"].get(k, defaults.get(k)) != v}
    if changed:
        raise UserError(
            f"--resume: checkpoint {path} was written with different settings ({', '.join(sorted(changed))})",
            "resume with the same options (only the step counts may change) or use a new --out",
        )
    return raw


def restore_progress(state: StageProgress, raw: dict[str, Any]) -> None:
    """Copy a checkpoint's progress fields into a fresh stage state."""
    state.step, state.seconds, state.cpu_seconds = raw["step"], raw["seconds"], raw["cpu_seconds"]
    state.history, state.segments = raw["history"], raw["segments"]

"""Where the project's data folders (baselines/, prompts/, eval/, reports/) live.

They sit beside the package in the source tree (the project is installed editable from a checkout);
``DEEPFORCING_HOME`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """``$DEEPFORCING_HOME`` or the directory that contains the ``deepforcing`` package."""
    env = os.environ.get("DEEPFORCING_HOME")
    return Path(env) if env else Path(__file__).resolve().parents[1]


def baselines_dir() -> Path:
    """``baselines/``: method presets and published numbers."""
    return project_root() / "baselines"

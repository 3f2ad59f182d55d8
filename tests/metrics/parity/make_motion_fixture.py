"""Regenerate ``fixtures/vbench_parity_motion.json`` by running vbench's own motion_smoothness.

Usage (from the repository root, with the isolated vbench install described in ``vbench_ref.py`` and
``motion_ref.py``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref PYTHONPATH=. python -m tests.metrics.parity.make_motion_fixture

The fixture holds only numbers produced by vbench's code on the scenario of ``motion_setup.py``: per-video
scores and the aggregate for two random AMT-S checkpoints (a normal one and a "zero-motion" one) and for the
downscaled path (VBench's CUDA rule on a small GPU), per-pair mean
absolute differences, per-channel means of vbench's uint8 predictions, and average-pooled predicted frames and
finest flows; plus sha256 digests of the seeded weights and clips.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import tempfile
from pathlib import Path

import torch

from tests.metrics.parity.motion_ref import FLOW_POOL, FRAME_POOL, ref_motion_smoothness
from tests.metrics.parity.motion_setup import (
    FLOW_GAIN,
    MASK_GAIN,
    RESIDUAL_GAIN,
    SCALED_VRAM_BYTES,
    build_motion_scenario,
    scaled_clip,
)

FIXTURE = Path(__file__).parent / "fixtures" / "vbench_parity_motion.json"
logger = logging.getLogger(__name__)


def run_reference(tmp: Path) -> dict:
    s = build_motion_scenario(tmp)
    return {
        "sha256": s.sha256,
        "gains": {"flow": FLOW_GAIN, "residual": RESIDUAL_GAIN, "mask": MASK_GAIN},
        "pool": {"frame": list(FRAME_POOL), "flow": list(FLOW_POOL)},
        "motion_smoothness": ref_motion_smoothness(s.clips, s.amt),
        "motion_smoothness_zero_motion": ref_motion_smoothness(s.clips, s.amt_zero_motion),
        "motion_smoothness_scaled": {
            "vram_bytes": SCALED_VRAM_BYTES,
            **ref_motion_smoothness(scaled_clip(), s.amt, vram_bytes=SCALED_VRAM_BYTES),
        },
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = run_reference(Path(tmp))
    data["made_with"] = {
        "vbench": "0.1.5 (pip --no-deps --target; see vbench_ref.py / motion_ref.py), device cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "PYTHONPATH=. python -m tests.metrics.parity.make_motion_fixture",
    }
    text = json.dumps(data, indent=1, sort_keys=True)
    # One line per innermost list of numbers keeps the file short and readable.
    text = re.sub(
        r"\[\s*([-+0-9.eE,\s]+?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text
    )
    FIXTURE.write_text(text + "\n")
    logger.info("wrote %s", FIXTURE)


if __name__ == "__main__":
    main()

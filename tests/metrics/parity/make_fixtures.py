"""Regenerate ``fixtures/vbench_parity.json`` by running vbench's own dimension functions.

Usage (from the repository root, with the isolated vbench install described in ``vbench_ref.py``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref DEEPFORCING_DINO_REPO=/tmp/dino_repo \\
        PYTHONPATH=. python -m tests.metrics.parity.make_fixtures

The fixture holds only numbers: vbench's per-video results and aggregates for the tiny scenario of
``setup.py``, plus sha256 digests of the seeded weights and clips so that a test can tell if regenerating them
ever gives different bytes.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
from importlib import metadata
from pathlib import Path

import torch

from tests.metrics.parity import vbench_ref
from tests.metrics.parity.setup import (
    FLOW_FPS,
    TINY_DINO_ARCH,
    build_flow_scenario,
    build_musiq_scenario,
    build_scenario,
    static_flow_clip,
)

FIXTURE = Path(__file__).parent / "fixtures" / "vbench_parity.json"
logger = logging.getLogger(__name__)


def run_reference(tmp: Path) -> dict:
    s = build_scenario(tmp)
    out: dict = {"sha256": s.sha256, "dimensions": {}}
    out["dimensions"]["temporal_flickering"] = {"per_video": vbench_ref.ref_temporal_flickering(s.clips)}
    dino = vbench_ref.load_reference_dino(s.dino, **TINY_DINO_ARCH)
    agg, per = vbench_ref.ref_subject_consistency(s.clips, dino)
    out["dimensions"]["subject_consistency"] = {"aggregate": agg, "per_video": per}
    agg, per = vbench_ref.ref_background_consistency(s.clips, s.clip_b32)
    out["dimensions"]["background_consistency"] = {"aggregate": agg, "per_video": per}
    agg, per = vbench_ref.ref_aesthetic_quality(s.clips, s.clip_l14, s.aesthetic_dir)
    out["dimensions"]["aesthetic_quality"] = {"aggregate": agg, "per_video": per}
    f = build_flow_scenario(tmp / "flow")
    out["sha256"].update(f.sha256)
    out["dimensions"]["dynamic_degree"] = {
        "fps": FLOW_FPS,
        "per_video": vbench_ref.ref_dynamic_degree(f.flow_clips, f.raft, FLOW_FPS),
        "zero_flow_per_video": vbench_ref.ref_dynamic_degree({"static": static_flow_clip()}, f.raft_zero, FLOW_FPS),
    }
    musiq, iq_clips, sha = build_musiq_scenario(tmp / "musiq")
    out["sha256"].update(sha)
    agg, per = vbench_ref.ref_imaging_quality(iq_clips, musiq)
    out["dimensions"]["imaging_quality"] = {"aggregate": agg, "per_video_0_100": per}
    return out


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        data = run_reference(Path(tmp))
    data["made_with"] = {
        "vbench": "0.1.5 (pip --no-deps --target; see vbench_ref.py)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "open_clip_torch": metadata.version("open_clip_torch"),
        "pyiqa": "0.1.10 (pip --no-deps --target, MUSIQ module imported without pyiqa's __init__)",
        "command": "PYTHONPATH=. python -m tests.metrics.parity.make_fixtures",
    }
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    logger.info("wrote %s", FIXTURE)


if __name__ == "__main__":
    main()

"""Regenerate ``fixtures/vbench_parity_static.json`` by running vbench's own RAFT static filter.

Usage (from the repository root, with the isolated vbench install described in ``vbench_ref.py``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref PYTHONPATH=. python -m tests.metrics.parity.make_static_fixture

The fixture holds only numbers: vbench's decision and per-pair scores for each clip and checkpoint of
``static_filter_ref.py``, plus sha256 digests of the seeded weights and clips.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
from pathlib import Path

import torch

from tests.metrics.parity.static_filter_ref import build_static_scenario, ref_static_filter

FIXTURE = Path(__file__).parent / "fixtures" / "vbench_parity_static.json"
logger = logging.getLogger(__name__)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        weights, clips, sha = build_static_scenario(Path(tmp))
        data = {
            "sha256": sha,
            "static_filter": {name: ref_static_filter(clips, path) for name, path in weights.items()},
        }
    data["made_with"] = {
        "vbench": "0.1.5 (pip --no-deps --target; vbench.cli.static_filter.StaticFilter)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "PYTHONPATH=. python -m tests.metrics.parity.make_static_fixture",
    }
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    logger.info("wrote %s", FIXTURE)


if __name__ == "__main__":
    main()

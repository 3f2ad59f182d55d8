"""Regenerate ``fixtures/vbench_parity_overall.json`` by running vbench's own ``overall_consistency``.

Usage (from the repository root, with the isolated vbench install of ``vbench_ref.py`` plus ``einops``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref PYTHONPATH=. python -m tests.metrics.parity.make_overall_fixture

The fixture holds only numbers: vbench's per-video scores and aggregate for the tiny ViCLIP scenario of
``overall_setup.py``, the token ids vbench's ViCLIP tokenizer produces for a set of texts, and sha256 digests of
the seeded weights and clips.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import tempfile
from pathlib import Path

import torch

from tests.metrics.parity import overall_ref
from tests.metrics.parity.overall_setup import TINY_VICLIP, TOKENIZER_ONLY, build_overall_scenario

FIXTURE = Path(__file__).parent / "fixtures" / "vbench_parity_overall.json"
logger = logging.getLogger(__name__)


def run_reference(tmp: Path) -> dict:
    """vbench's numbers for the scenario built under ``tmp``."""
    s = build_overall_scenario(tmp)
    agg, per = overall_ref.ref_overall_consistency(s.clips, s.prompts, s.checkpoint, TINY_VICLIP)
    texts = list(s.prompts.values()) + TOKENIZER_ONLY
    tokens = overall_ref.ref_viclip_tokens(texts, TINY_VICLIP.context_length)
    return {
        "sha256": s.sha256,
        "arch": dataclasses.asdict(TINY_VICLIP),
        "overall_consistency": {"aggregate": agg, "per_video": per, "prompts": s.prompts},
        "viclip_tokens": [{"text": t, "ids": ids} for t, ids in zip(texts, tokens, strict=True)],
    }


def main() -> None:
    """Write the fixture."""
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = run_reference(Path(tmp))
    data["made_with"] = {
        "vbench": "0.1.5 (pip --no-deps --target, + einops; see vbench_ref.py / overall_ref.py)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "PYTHONPATH=. python -m tests.metrics.parity.make_overall_fixture",
    }
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    logger.info("wrote %s", FIXTURE)


if __name__ == "__main__":
    main()

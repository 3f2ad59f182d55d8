"""Regenerate ``fixtures/vbench_parity_overall.json`` by running vbench's own ``overall_consistency``.

Usage (from the repository root, with the isolated vbench install of ``vbench_ref.py`` plus ``einops``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref PYTHONPATH=. python -m tests.metrics.parity.make_overall_fixture
    # once, at the released size (minutes, ~8 GB): ... make_overall_fixture --full-size-check

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


def full_size_check(tmp: Path) -> float:
    """Compare ours with vbench on one clip at the released ViCLIP size (random seeded weights, 428 M params).

    Not part of the fixture (minutes on CPU, ~8 GB of memory): run with ``--full-size-check``; it checks that
    vbench's unmodified ``ViCLIP`` constructor loads our default-architecture state dict strictly and that the
    scores agree (measured: |diff| 7.5e-9, torch 2.14.1 CPU). Returns the absolute difference.
    """
    from deepforcing.metrics.backbones.viclip import ViCLIPConfig
    from deepforcing.metrics.vbench.overall_consistency import OverallConsistency, OverallConsistencyConfig
    from tests.metrics.parity.overall_setup import PROMPTS, overall_clips, tiny_viclip_state_dict

    ckpt = tmp / "ViClip-InternVid-10M-FLT.pth"
    torch.save({"model": tiny_viclip_state_dict(seed=9, config=ViCLIPConfig())}, ckpt)
    clips = {"landscape": overall_clips()["landscape"]}
    prompts = {"landscape": PROMPTS["portrait"]}
    _, ref = overall_ref.ref_overall_consistency(clips, prompts, ckpt, ViCLIPConfig())
    metric = OverallConsistency(OverallConsistencyConfig(str(ckpt)))
    ours = metric.score_frames(clips["landscape"], prompts["landscape"])
    diff = abs(ours - ref["landscape"])
    logger.info("full-size ViCLIP: vbench %.8f, ours %.8f, |diff| %.3g", ref["landscape"], ours, diff)
    return diff


def main() -> None:
    """Write the fixture (or, with ``--full-size-check``, only compare at the released size)."""
    import sys

    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    if "--full-size-check" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            full_size_check(Path(tmp))
        return
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

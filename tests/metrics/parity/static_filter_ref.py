"""The static-filter parity scenario and vbench's own ``StaticFilter`` as the reference.

Scenario: the RAFT flow scenario of ``setup.py`` (random ``raft-things.pth``-format checkpoints, 130x150 clips)
plus a "slow" checkpoint whose flows are a few tenths of VBench's threshold, so that both decisions occur.

Reference: ``vbench.cli.static_filter.StaticFilter`` from the isolated vbench 0.1.5 install (its class body is
the same as ``vbench2_beta_long/static_filter.py``'s, which imports ``torchvision.io.write_video`` and cannot be
imported under current torchvision). ``get_frames`` is replaced by the list OpenCV decoding would give
(``(1, 3, H, W)`` float RGB tensors) and ``check_static`` is wrapped to record the scores it receives.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from tests.metrics.parity import vbench_ref
from tests.metrics.parity.setup import build_flow_scenario, flow_clips, static_flow_clip
from tests.metrics.parity.tiny import raft_things_state_dict, state_dict_sha256

#: Flow-head scale of the "slow" random RAFT (flows around VBench's 3 * 130 / 256 px static threshold).
SLOW_FLOW_SCALE = 0.01


def static_clips() -> dict[str, torch.Tensor]:
    """The clips judged by the filter (5 frames, 130x150 / 150x130, plus one frame repeated)."""
    return {**flow_clips(), "still": static_flow_clip()}


def build_static_scenario(root: Path) -> tuple[dict[str, Path], dict[str, torch.Tensor], dict[str, str]]:
    """Write the checkpoints; return (name -> checkpoint path, clips, sha256 of weights and clips)."""
    flow = build_flow_scenario(root)
    slow_sd = raft_things_state_dict(seed=5, flow_scale=SLOW_FLOW_SCALE)
    slow = root / "raft-things-slow.pth"
    torch.save(slow_sd, slow)
    clips = static_clips()
    sha = {
        "raft": flow.sha256["raft"],
        "raft_slow": state_dict_sha256(slow_sd),
        "static_clips": state_dict_sha256(clips),
    }
    return {"raft": flow.raft, "raft_slow": slow, "raft_zero": flow.raft_zero}, clips, sha


def ref_static_filter(clips: dict[str, torch.Tensor], raft_path: Path) -> dict[str, dict]:
    """vbench's ``StaticFilter.infer`` per clip: decision, consecutive-pair scores and loop-pair scores."""
    vbench_ref.require_vbench()
    mod = importlib.import_module("vbench.cli.static_filter")
    from easydict import EasyDict

    args = EasyDict({"model": str(raft_path), "small": False, "mixed_precision": False, "alternate_corr": False})
    sf = mod.StaticFilter(args, "cpu")
    out: dict[str, dict] = {}
    for name, frames in clips.items():
        frame_list = [f.permute(2, 0, 1).float()[None] for f in frames]  # (1, 3, H, W) float RGB each
        sf.get_frames = lambda path, fl=frame_list: fl
        seen: list[float] = []
        sf.check_static = lambda scores, seen=seen: (seen.extend(scores), mod.StaticFilter.check_static(sf, scores))[1]
        static = sf.infer(f"{name}.mp4")
        out[name] = {
            "static": bool(static),
            "pair_scores": [float(s) for s in seen[:-2]],
            "loop_scores": [float(s) for s in seen[-2:]],
            "thres": float(sf.params["thres"]),
            "count_num": int(sf.params["count_num"]),
        }
    return out

"""Run vbench 0.1.5's own ``motion_smoothness`` (and its bundled AMT code) as the reference.

Needs the isolated install of ``vbench_ref.py`` plus the packages vbench's AMT code imports::

    pip install --no-deps --target "$DEEPFORCING_VBENCH_REF" omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 imageio

Frames are handed to vbench by replacing ``FrameProcess.get_frames`` on vbench's ``MotionSmoothness`` object
with the list of RGB ``uint8`` arrays OpenCV would give for a lossless file; everything after decoding is
vbench's code: frame selection, ``InputPadder``, the AMT-S network built from vbench's ``AMT-S.yaml`` and loaded
from the checkpoint with vbench's ``load_model``, ``tensor2img``, ``vfi_score`` and the aggregate.

To expose intermediates, the network's ``forward`` is wrapped to run with ``eval=False`` (vbench's own
training-time return path, same computation) and record the predicted frame and the finest flows; ``get_diff``
is wrapped to record the per-pair mean absolute differences.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.metrics.parity import vbench_ref

#: Grid the predicted frames and flows are average-pooled to for the fixture.
FRAME_POOL = (4, 4)
FLOW_POOL = (3, 3)


def require_motion_reference():
    """Import vbench's motion_smoothness module, or skip saying what is missing."""
    vbench = vbench_ref.require_vbench()
    for name in ("omegaconf", "imageio"):
        try:
            importlib.import_module(name)
        except ImportError:
            pytest.skip(
                f"{name} not in {vbench_ref.VBENCH_REF_ENV}: pip install --no-deps --target $dir "
                "omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 imageio"
            )
    return importlib.import_module("vbench.motion_smoothness"), Path(vbench.__file__).parent


def pooled(x: torch.Tensor, size: tuple[int, int]) -> list:
    """``(B, ..., H, W)`` -> nested lists of the ``size`` average pool, 8 significant digits (fixture data)."""
    lead = x.shape[:-2]
    y = F.adaptive_avg_pool2d(x.reshape(-1, *x.shape[-2:]).double(), size).reshape(*lead, *size)
    return _round(y.tolist())


def _round(v):
    return [_round(u) for u in v] if isinstance(v, list) else float(f"{v:.8g}")


def ref_motion_smoothness(clips: dict[str, torch.Tensor], amt_path: Path, vram_bytes: int | None = None) -> dict:
    """vbench's ``motion_smoothness(motion, video_list)`` on ``clips`` with the AMT-S checkpoint ``amt_path``.

    ``vram_bytes`` switches vbench's object to its CUDA scale rule with that much memory (the network still runs
    on the CPU); flows are then not recorded (vbench's ``eval=False`` path cannot reshape them when scaled).

    Returns:
        ``{"aggregate": float, "per_video": {name: float}, "clips": {name: {"pair_mean_abs_diff": [...],
        "frame_pooled": [...], "flow_t0_pooled": [...], "flow_t1_pooled": [...], "pred_uint8_mean": [...]}}}``.
    """
    mod, root = require_motion_reference()
    motion = mod.MotionSmoothness(str(root / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"), str(amt_path), "cpu")
    frames_of = {f"{name}.mp4": [f.numpy() for f in frames] for name, frames in clips.items()}
    motion.fp.get_frames = lambda path: list(frames_of[path])
    if vram_bytes is not None:  # the values vbench's initialization() sets on CUDA
        motion.anchor_resolution, motion.anchor_memory = 1024 * 512, 1500 * 1024**2
        motion.anchor_memory_bias, motion.vram_avail = 2500 * 1024**2, vram_bytes
    flows = vram_bytes is None

    record: dict[str, list] = {}
    network_forward = motion.model.forward

    def forward(img0, img1, embt, scale_factor=1.0, eval=False, **kwargs):  # noqa: A002 - vbench's keyword
        out = network_forward(img0, img1, embt, scale_factor=scale_factor, eval=not flows, **kwargs)
        record["frame"].append(out["imgt_pred"].detach().clone())
        record["scale"].append(float(scale_factor))
        if flows:
            record["flow0"].append(out["flow0_pred"][0].detach().clone())
            record["flow1"].append(out["flow1_pred"][0].detach().clone())
        return out

    motion.model.forward = forward
    get_diff = motion.get_diff

    def recording_get_diff(img1, img2):
        d = get_diff(img1, img2)
        record["diffs"].append(float(d))
        record["pred_uint8_mean"].append(img2.reshape(-1, 3).astype("float64").mean(axis=0).tolist())
        return d

    motion.get_diff = recording_get_diff
    per_clip: dict[str, dict] = {}
    per_video: dict[str, float] = {}
    for path in frames_of:
        for key in ("frame", "flow0", "flow1", "diffs", "pred_uint8_mean", "scale"):
            record[key] = []
        agg, results = mod.motion_smoothness(motion, [path])
        name = path.removesuffix(".mp4")
        per_video[name] = float(results[0]["video_results"])
        per_clip[name] = {
            "pair_mean_abs_diff": record["diffs"],
            "pred_uint8_mean": record["pred_uint8_mean"],
            "frame_pooled": pooled(torch.cat(record["frame"]), FRAME_POOL),
            "padded_hw": list(record["frame"][0].shape[-2:]),
            "scale": record["scale"][0],
        }
        if flows:
            per_clip[name]["flow_t0_pooled"] = pooled(torch.cat(record["flow0"]), FLOW_POOL)
            per_clip[name]["flow_t1_pooled"] = pooled(torch.cat(record["flow1"]), FLOW_POOL)
    for key in ("frame", "flow0", "flow1", "diffs", "pred_uint8_mean", "scale"):  # per_clip keeps the per-video lists
        record[key] = []
    agg, _ = mod.motion_smoothness(motion, list(frames_of))
    return {"aggregate": float(agg), "per_video": per_video, "clips": per_clip}

"""Run ``vbench``'s own dimension functions as the reference, from an isolated install.

VBench 0.1.5 pins ``transformers==4.33.2``, ``numpy<2`` and ``timm<=1.0.12``; it is therefore never installed
into the project environment. Parity tests use a ``pip --target`` directory holding only vbench and the few
packages its dimension modules import, appended to ``sys.path`` (so the project's numpy/torch win)::

    pip install --no-deps --target "$DEEPFORCING_VBENCH_REF" \\
        vbench==0.1.5 openai-clip==1.0.1 decord==0.6.0 opencv-python-headless
    git clone https://github.com/facebookresearch/dino "$DEEPFORCING_DINO_REPO"   # subject_consistency only

``openai-clip`` does ``from pkg_resources import packaging`` (gone in setuptools >= 81); a stub module
exposing ``packaging`` is installed in ``sys.modules`` when the real one is missing. Frames are handed to
vbench by replacing ``load_video`` / ``get_frames`` in the dimension module (what decord / OpenCV would
return for a lossless file), so the comparison is on the same decoded clip; everything after decoding is
vbench's code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
from functools import partial
from pathlib import Path

import pytest
import torch

VBENCH_REF_ENV = "DEEPFORCING_VBENCH_REF"
DINO_REPO_ENV = "DEEPFORCING_DINO_REPO"


def vbench_ref_dir() -> Path | None:
    d = os.environ.get(VBENCH_REF_ENV)
    return Path(d) if d and (Path(d) / "vbench").is_dir() else None


def dino_repo_dir() -> Path | None:
    d = os.environ.get(DINO_REPO_ENV)
    return Path(d) if d and (Path(d) / "vision_transformer.py").is_file() else None


def require_vbench():
    """Import ``vbench`` from the isolated install, or skip the test saying how to provide it."""
    d = vbench_ref_dir()
    if d is None:
        pytest.skip(
            f"vbench reference not installed: set {VBENCH_REF_ENV} to a `pip install --no-deps --target` "
            "dir with vbench==0.1.5 openai-clip==1.0.1 decord==0.6.0 opencv-python-headless"
        )
    if str(d) not in sys.path:
        sys.path.append(str(d))
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import packaging
        import packaging.version  # noqa: F401

        stub = types.ModuleType("pkg_resources")
        stub.packaging = packaging
        sys.modules["pkg_resources"] = stub
    return importlib.import_module("vbench")


def _frames_as_vbench_loads_them(frames: torch.Tensor) -> torch.Tensor:
    # vbench.utils.load_video: torch.Tensor(uint8 (T, H, W, C) array).permute(0, 3, 1, 2)
    # -> float32 (T, C, H, W) in 0..255
    return torch.Tensor(frames.numpy()).permute(0, 3, 1, 2)


@contextlib.contextmanager
def _patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _per_video(fn, clips: dict[str, torch.Tensor], module, loader_name: str, loader) -> dict[str, float]:
    with _patched(module, loader_name, lambda path, *a, **k: loader(clips[path])):
        _, video_results = fn(list(clips))
    return {r["video_path"]: float(r["video_results"]) for r in video_results}


def ref_temporal_flickering(clips: dict[str, torch.Tensor]) -> dict[str, float]:
    """vbench ``temporal_flickering`` per video (frames handed over as OpenCV would: BGR uint8 arrays)."""
    require_vbench()
    mod = importlib.import_module("vbench.temporal_flickering")
    return _per_video(
        mod.temporal_flickering,
        clips,
        mod,
        "get_frames",
        lambda f: [fr[..., ::-1].copy() for fr in f.numpy()],
    )


def load_reference_dino(state_path: Path, **arch):
    """DINO's own ``VisionTransformer`` (from the DINO checkout), loaded strictly from ``state_path``."""
    repo = dino_repo_dir()
    if repo is None:
        pytest.skip(f"DINO reference code not found: set {DINO_REPO_ENV} to a checkout of facebookresearch/dino")
    saved = {k: sys.modules.pop(k) for k in ("utils", "vision_transformer") if k in sys.modules}
    sys.path.insert(0, str(repo))
    try:
        vits = importlib.import_module("vision_transformer")
        model = vits.VisionTransformer(
            num_classes=0, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), **arch
        )
    finally:
        sys.path.remove(str(repo))
        for k in ("utils", "vision_transformer"):
            sys.modules.pop(k, None)
        sys.modules.update(saved)
    model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def ref_subject_consistency(clips: dict[str, torch.Tensor], dino_model) -> tuple[float, dict[str, float]]:
    """vbench ``subject_consistency`` with the given DINO model: (aggregate, per-video)."""
    require_vbench()
    mod = importlib.import_module("vbench.subject_consistency")
    with _patched(mod, "load_video", lambda path, *a, **k: _frames_as_vbench_loads_them(clips[path])):
        agg, res = mod.subject_consistency(dino_model, list(clips), "cpu", False)
    return float(agg), {r["video_path"]: float(r["video_results"]) for r in res}


def _openai_clip_load(path: Path):
    require_vbench()
    clip = importlib.import_module("clip")
    model, preprocess = clip.load(str(path), device="cpu", jit=False)
    return model.eval(), preprocess


def ref_background_consistency(clips: dict[str, torch.Tensor], clip_path: Path) -> tuple[float, dict[str, float]]:
    """vbench ``background_consistency`` with ``clip.load(clip_path)``: (aggregate, per-video)."""
    mod = importlib.import_module("vbench.background_consistency") if require_vbench() else None
    model, preprocess = _openai_clip_load(clip_path)
    with _patched(mod, "load_video", lambda path, *a, **k: _frames_as_vbench_loads_them(clips[path])):
        agg, res = mod.background_consistency(model, preprocess, list(clips), "cpu", False)
    return float(agg), {r["video_path"]: float(r["video_results"]) for r in res}


def ref_aesthetic_quality(
    clips: dict[str, torch.Tensor], clip_path: Path, head_dir: Path
) -> tuple[float, dict[str, float]]:
    """vbench ``aesthetic_quality``: head via ``get_aesthetic_model(head_dir)``, CLIP via ``clip.load``."""
    require_vbench()
    mod = importlib.import_module("vbench.aesthetic_quality")
    head = mod.get_aesthetic_model(str(head_dir))
    model, _ = _openai_clip_load(clip_path)
    with _patched(mod, "load_video", lambda path, *a, **k: _frames_as_vbench_loads_them(clips[path])):
        agg, res = mod.laion_aesthetic(head, model, list(clips), "cpu")
    return float(agg), {r["video_path"]: float(r["video_results"]) for r in res}


def ref_dynamic_degree(clips: dict[str, torch.Tensor], raft_path: Path, fps: float) -> dict[str, dict]:
    """vbench ``DynamicDegree`` (RAFT from ``raft_path``) per clip: its pair scores and its decision.

    ``get_frames`` is replaced by the same list vbench builds from OpenCV frames — ``(1, 3, H, W)`` float RGB
    tensors, then vbench's own ``extract_frame`` with ``interval = max(1, round(fps / 8))`` — and
    ``check_move`` is wrapped to record the per-pair scores it receives.
    """
    require_vbench()
    mod = importlib.import_module("vbench.dynamic_degree")
    from easydict import EasyDict

    args = EasyDict({"model": str(raft_path), "small": False, "mixed_precision": False, "alternate_corr": False})
    dyn = mod.DynamicDegree(args, "cpu")
    out: dict[str, dict] = {}
    for name, frames in clips.items():
        frame_list = [f.permute(2, 0, 1).float()[None] for f in frames]
        dyn.get_frames = lambda path, fl=frame_list: dyn.extract_frame(fl, max(1, round(fps / 8)))
        seen: list[float] = []
        dyn.check_move = lambda scores, seen=seen: (seen.extend(scores), mod.DynamicDegree.check_move(dyn, scores))[1]
        moving = dyn.infer(f"{name}.mp4")
        out[name] = {"dynamic": bool(moving), "pair_scores": [float(s) for s in seen]}
    return out


def _import_pyiqa_musiq():
    """Import ``pyiqa.archs.musiq_arch`` without running pyiqa's package ``__init__`` files.

    pyiqa's ``__init__`` imports every metric (and their dependencies); the packages on the way to the MUSIQ
    module are therefore registered as bare namespace modules pointing at the installed directories.
    """
    d = vbench_ref_dir()
    root = d / "pyiqa" if d else None
    if root is None or not (root / "archs" / "musiq_arch.py").is_file():
        pytest.skip(f"pyiqa not in {VBENCH_REF_ENV}: pip install --no-deps --target $dir pyiqa==0.1.10")
    for name in ("pyiqa", "pyiqa.archs", "pyiqa.utils", "pyiqa.data", "pyiqa.matlab_utils"):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = mod
    padding = importlib.import_module("pyiqa.matlab_utils.padding")
    sys.modules["pyiqa.matlab_utils"].ExactPadding2d = padding.ExactPadding2d
    sys.modules["pyiqa.matlab_utils"].exact_padding_2d = padding.exact_padding_2d
    return importlib.import_module("pyiqa.archs.musiq_arch")


def ref_imaging_quality(clips: dict[str, torch.Tensor], musiq_path: Path) -> tuple[float, dict[str, float]]:
    """vbench ``imaging_quality`` (pyiqa 0.1.10 MUSIQ loaded as vbench does): (aggregate, per-video 0–100)."""
    require_vbench()
    _import_pyiqa_musiq()
    mod = importlib.import_module("vbench.imaging_quality")
    model = mod.MUSIQ(pretrained_model_path=str(musiq_path))
    model.training = False  # what vbench's compute_imaging_quality does (no .eval())
    with _patched(mod, "load_video", lambda path, *a, **k: _frames_as_vbench_loads_them(clips[path])):
        agg, res = mod.technical_quality(model, list(clips), "cpu")
    return float(agg), {r["video_path"]: float(r["video_results"]) for r in res}

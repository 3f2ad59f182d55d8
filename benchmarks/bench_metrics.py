"""Frames per second of each VBench dimension: ours vs vbench 0.1.5's own function, same clips, same weights (CPU).

Weights are random but full size (DINO ViT-B/16, OpenAI CLIP ViT-B/32 and ViT-L/14, the LAION v1 head,
raft-things, MUSIQ-SPAQ), written in the released formats; clips are random ``(T, H, W, 3)`` uint8 frames.
Time is the **CPU time of this single-threaded process** (``time.process_time``, ``torch.set_num_threads(1)``)
because the machine is shared; each side runs ``--rounds`` times and the median is kept. Model loading is not
timed; decoding is not timed either (both sides get the decoded frames: vbench's ``load_video`` /
``get_frames`` are replaced by the in-memory frames, as in the parity tests). What decoding once saves is
shown on its own line: vbench decodes every video once per dimension (decord, or OpenCV for flickering and
dynamic degree), the harness once for all dimensions (PyAV).

The vbench side runs only when ``DEEPFORCING_VBENCH_REF`` points at the isolated install described in
``tests/metrics/parity/vbench_ref.py`` (subject_consistency also needs ``DEEPFORCING_DINO_REPO``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref DEEPFORCING_DINO_REPO=/tmp/dino_repo PYTHONPATH=. \\
        nice -n 10 python benchmarks/bench_metrics.py [--frames 8] [--height 240] [--width 320] [--rounds 1]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tests.metrics.parity import vbench_ref
from tests.metrics.parity.tiny import (
    musiq_state_dict,
    raft_things_state_dict,
    tiny_dino_state_dict,
    tiny_laion_head_state_dict,
    tiny_openai_clip_state_dict,
)

DIMS = (
    "temporal_flickering",
    "subject_consistency",
    "background_consistency",
    "aesthetic_quality",
    "dynamic_degree",
    "imaging_quality",
)
FPS = 16.0
logger = logging.getLogger("bench_metrics")


def cpu_seconds(fn: Callable[[], object], rounds: int) -> float:
    """Median CPU time of ``fn`` over ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def save_clip_archive(state: dict[str, torch.Tensor], path: Path) -> Path:
    """An OpenAI-format CLIP TorchScript archive (as ``tiny.save_openai_clip_torchscript``, without the trace
    check, which full-size random models fail on graph naming, not on numbers)."""
    from open_clip.model import build_model_from_openai_state_dict

    model = build_model_from_openai_state_dict(dict(state), cast_dtype=None).float().eval()
    model._buffers.pop("attn_mask", None)
    image = torch.zeros(1, 3, *model.visual.image_size)
    torch.jit.trace_module(model, {"encode_image": (image,)}, check_trace=False).save(str(path))
    return path


def write_weights(root: Path) -> dict[str, Path]:
    """Random full-size checkpoints in the released formats (CLIP as TorchScript archives, as ``clip.load`` needs)."""
    files = {
        "dino": (tiny_dino_state_dict(seed=1, dim=768, depth=12), "dino_vitbase16_pretrain.pth"),
        "raft": (raft_things_state_dict(seed=5, flow_scale=0.03), "raft-things.pth"),
        "musiq": (musiq_state_dict(seed=7), "musiq_spaq_ckpt-358bb6af.pth"),
    }
    out = {
        "clip_b32": save_clip_archive(
            tiny_openai_clip_state_dict(seed=2, embed_dim=512, width=768, layers=12, patch=32), root / "ViT-B-32.pt"
        ),
        "clip_l14": save_clip_archive(
            tiny_openai_clip_state_dict(seed=3, embed_dim=768, width=1024, layers=24, patch=14), root / "ViT-L-14.pt"
        ),
    }
    for key, (state, name) in files.items():
        torch.save(state, root / name)
        out[key] = root / name
    head_dir = root / "aesthetic_model" / "emb_reader"
    head_dir.mkdir(parents=True)
    torch.save(tiny_laion_head_state_dict(seed=4), head_dir / "sa_0_4_vit_l_14_linear.pth")
    out["head_dir"] = head_dir
    return out


def ours(dim: str, w: dict[str, Path]) -> Callable[[torch.Tensor], object]:
    """Our metric for ``dim``, built once; returns a function scoring one clip."""
    from deepforcing.metrics.base import VideoContext
    from deepforcing.metrics.clips import ClipSpan

    if dim == "temporal_flickering":
        from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering

        m = TemporalFlickering()
    elif dim == "subject_consistency":
        from deepforcing.metrics.vbench.subject_consistency import SubjectConsistency, SubjectConsistencyConfig

        m = SubjectConsistency(SubjectConsistencyConfig(str(w["dino"])))
    elif dim == "background_consistency":
        from deepforcing.metrics.vbench.background_consistency import (
            BackgroundConsistency,
            BackgroundConsistencyConfig,
        )

        m = BackgroundConsistency(BackgroundConsistencyConfig(str(w["clip_b32"])))
    elif dim == "aesthetic_quality":
        from deepforcing.metrics.vbench.aesthetic_quality import AestheticQuality, AestheticQualityConfig

        m = AestheticQuality(
            AestheticQualityConfig(str(w["clip_l14"]), str(w["head_dir"] / "sa_0_4_vit_l_14_linear.pth"))
        )
    elif dim == "dynamic_degree":
        from deepforcing.metrics.vbench.dynamic_degree import DynamicDegree, DynamicDegreeConfig

        m = DynamicDegree(DynamicDegreeConfig(str(w["raft"])))
    elif dim == "imaging_quality":
        from deepforcing.metrics.vbench.imaging_quality import ImagingQuality, ImagingQualityConfig

        m = ImagingQuality(ImagingQualityConfig(str(w["musiq"])))
    else:
        raise ValueError(dim)
    ctx = VideoContext(fps=FPS)
    return lambda frames: m.score_video(frames, [ClipSpan(0, 0, frames.shape[0], 0)], ctx)


def theirs(dim: str, w: dict[str, Path]) -> Callable[[torch.Tensor], object]:
    """vbench's own dimension function for ``dim`` with its model built once; returns a function of one clip."""
    vbench_ref.require_vbench()
    as_loaded = vbench_ref._frames_as_vbench_loads_them
    if dim == "temporal_flickering":
        return lambda frames: vbench_ref.ref_temporal_flickering({"v": frames})
    if dim == "subject_consistency":
        mod = importlib.import_module("vbench.subject_consistency")
        dino = vbench_ref.load_reference_dino(w["dino"], embed_dim=768, depth=12, num_heads=12, patch_size=16)

        def run(frames):
            with vbench_ref._patched(mod, "load_video", lambda *a, **k: as_loaded(frames)):
                return mod.subject_consistency(dino, ["v"], "cpu", False)

        return run
    if dim in ("background_consistency", "aesthetic_quality"):
        key = "clip_b32" if dim == "background_consistency" else "clip_l14"
        model, preprocess = vbench_ref._openai_clip_load(w[key])
        mod = importlib.import_module(f"vbench.{dim}")
        head = mod.get_aesthetic_model(str(w["head_dir"])) if dim == "aesthetic_quality" else None

        def run(frames):
            with vbench_ref._patched(mod, "load_video", lambda *a, **k: as_loaded(frames)):
                if head is None:
                    return mod.background_consistency(model, preprocess, ["v"], "cpu", False)
                return mod.laion_aesthetic(head, model, ["v"], "cpu")

        return run
    if dim == "dynamic_degree":
        mod = importlib.import_module("vbench.dynamic_degree")
        from easydict import EasyDict

        args = EasyDict({"model": str(w["raft"]), "small": False, "mixed_precision": False, "alternate_corr": False})
        dyn = mod.DynamicDegree(args, "cpu")

        def run(frames):
            frame_list = [f.permute(2, 0, 1).float()[None] for f in frames]  # what its OpenCV reader builds
            dyn.get_frames = lambda path: dyn.extract_frame(frame_list, max(1, round(FPS / 8)))
            return dyn.infer("v.mp4")

        return run
    if dim == "imaging_quality":
        vbench_ref._import_pyiqa_musiq()
        mod = importlib.import_module("vbench.imaging_quality")
        model = mod.MUSIQ(pretrained_model_path=str(w["musiq"]))
        model.training = False

        def run(frames):
            with vbench_ref._patched(mod, "load_video", lambda *a, **k: as_loaded(frames)):
                return mod.technical_quality(model, ["v"], "cpu")

        return run
    raise ValueError(dim)


def decode_seconds(frames: torch.Tensor, root: Path, rounds: int) -> tuple[float, float | None, float | None]:
    """CPU time to decode one lossless mp4 of ``frames``: (PyAV, decord, OpenCV) — None where not installed."""
    import av

    path = root / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264rgb", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        stream.options = {"crf": "0"}
        for f in frames.numpy():
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    from deepforcing.metrics.video_io import decode_video

    ours_s = cpu_seconds(lambda: decode_video(path), rounds)
    dec = cv = None
    if vbench_ref.vbench_ref_dir() is not None:
        vbench_ref.require_vbench()
        load_video = importlib.import_module("vbench.utils").load_video
        dec = cpu_seconds(lambda: load_video(str(path)), rounds)
        get_frames = importlib.import_module("vbench.temporal_flickering").get_frames
        cv = cpu_seconds(lambda: get_frames(str(path)), rounds)
    return ours_s, dec, cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=1, help="timed runs per side (median)")
    parser.add_argument("--dims", default=",".join(DIMS), help="comma-separated dimensions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (args.frames, args.height, args.width, 3), generator=g, dtype=torch.uint8)
    have_ref = vbench_ref.vbench_ref_dir() is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        w = write_weights(Path(tmp))
        for dim in args.dims.split(","):
            fn = ours(dim, w)
            if dim != "dynamic_degree":
                fn(frames[:2])  # warm-up (lazy inits), not timed
            t_ours = cpu_seconds(lambda fn=fn: fn(frames), args.rounds)
            t_ref = None
            if have_ref and (dim != "subject_consistency" or vbench_ref.dino_repo_dir() is not None):
                ref = theirs(dim, w)
                if dim != "dynamic_degree":
                    ref(frames[:2])
                t_ref = cpu_seconds(lambda ref=ref: ref(frames), args.rounds)
            rows.append((dim, t_ours, t_ref))
            print(f"  {dim}: ours {t_ours:.2f} s, vbench {t_ref if t_ref is None else round(t_ref, 2)} s", flush=True)
        d_ours, d_decord, d_cv = decode_seconds(frames, Path(tmp), max(3, args.rounds))

    n = args.frames
    print(f"\nCPU time, 1 thread; clip {n} x {args.height} x {args.width}; median of {args.rounds} run(s)")
    print(f"| {'dimension':<24} | {'ours fps':>9} | {'vbench fps':>10} | {'speed-up':>8} |")
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 12}|{'-' * 10}|")
    for dim, t_o, t_r in rows:
        ref_fps = f"{n / t_r:10.2f}" if t_r else f"{'-':>10}"
        ratio = f"{t_r / t_o:7.2f}x" if t_r else f"{'-':>8}"
        print(f"| {dim:<24} | {n / t_o:9.2f} | {ref_fps} | {ratio} |")
    if d_decord is not None:
        k_cv = sum(d in ("temporal_flickering", "dynamic_degree") for d, *_ in rows)
        k_dec = len(rows) - k_cv
        ref_dec = k_dec * d_decord + k_cv * d_cv
        print(
            f"| {'decode (all dims)':<24} | {n / d_ours:9.2f} | {n / ref_dec:10.2f} | {ref_dec / d_ours:7.2f}x |"
            f"  <- ours once (PyAV); vbench {k_dec} x decord + {k_cv} x OpenCV"
        )
        t_o = sum(r[1] for r in rows) + d_ours
        t_r = sum(r[2] for r in rows if r[2]) + ref_dec
        if all(r[2] for r in rows):
            print(f"| {'total incl. decode':<24} | {n / t_o:9.2f} | {n / t_r:10.2f} | {t_r / t_o:7.2f}x |")


if __name__ == "__main__":
    main()

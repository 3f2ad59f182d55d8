"""Frames per second of each VBench dimension: ours vs vbench 0.1.5's own function, same clips, same weights (CPU).

Weights are random but full size (DINO ViT-B/16, OpenAI CLIP ViT-B/32 and ViT-L/14, the LAION v1 head,
raft-things, MUSIQ-SPAQ, AMT-S, ViCLIP ViT-L/14), written in the released formats; clips are random
``(T, H, W, 3)`` uint8 frames. The RAFT decisions (dynamic_degree, the static filter) are timed on a whole 2-s
clip at 16 fps (32 frames, what VBench-Long scores), once with a random RAFT that sees motion everywhere and
once with a zero-flow RAFT (what a still video gives), because how early their answer is fixed depends on it.
Time is the **CPU time of this single-threaded process** (``time.process_time``, ``torch.set_num_threads(1)``)
because the machine is shared; each side runs ``--rounds`` times, alternating with the other, and keeps its
median. Model loading is not timed; decoding is not timed either (both sides get the decoded frames: vbench's
``load_video`` / ``get_frames`` are replaced by the in-memory frames, as in the parity tests). What decoding
once saves is shown on its own line: vbench decodes every video once per dimension (decord, or OpenCV for
flickering, motion smoothness and the RAFT dimensions), the harness once for all dimensions (PyAV).

The vbench side runs only when ``DEEPFORCING_VBENCH_REF`` points at the isolated install described in
``tests/metrics/parity/vbench_ref.py`` (subject_consistency also needs ``DEEPFORCING_DINO_REPO``; motion
smoothness and overall consistency need the extra packages of ``motion_ref.py`` / ``overall_ref.py``)::

    DEEPFORCING_VBENCH_REF=/tmp/vbref DEEPFORCING_DINO_REPO=/tmp/dino_repo PYTHONPATH=. \\
        nice -n 10 python benchmarks/bench_metrics.py [--frames 8] [--height 240] [--width 320] [--rounds 1]

``--dense`` adds a column: the share of our CPU time spent in dense kernels (matrix products, convolutions,
attention) — work both sides do identically, so ``vbench time / our dense time`` bounds the speed-up any
reimplementation at the same precision could reach (torch profiler, one extra run).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    "imaging_quality",
    "motion_smoothness",
    "overall_consistency",
    "dynamic_degree",
    "static_filter",
)
#: Dimensions timed on a 2-s clip, once with a moving and once with a zero-flow RAFT.
FLOW_DIMS = ("dynamic_degree", "static_filter")
FPS = 16.0
#: Flow-head scale of the "moving" random RAFT: top-5 % flows of ~10 px on random 240 x 320 frames, above
#: dynamic_degree's 6 * 240 / 256 px and the static filter's 3 * 240 / 256 px thresholds.
MOVING_FLOW_SCALE = 0.1
PROMPT = "A red square slides across a rippling, colourful background."
#: Kernels that do the same dense arithmetic on both sides (``--dense``).
DENSE_OPS = ("addmm", "mm", "bmm", "convolution", "conv2d", "conv_transpose", "scaled_dot_product", "baddbmm", "matmul")
logger = logging.getLogger("bench_metrics")


def cpu_seconds(fn: Callable[[], object], rounds: int, min_seconds: float = 0.5) -> float:
    """Median CPU time of one ``fn`` call over ``rounds`` measurements.

    A call under ``min_seconds`` is repeated until a measurement lasts ``min_seconds`` (then divided), so that
    millisecond-scale dimensions are not timer noise.
    """
    times = []
    for _ in range(rounds):
        calls, t0 = 0, time.process_time()
        while True:
            fn()
            calls += 1
            spent = time.process_time() - t0
            if spent >= min_seconds:
                break
        times.append(spent / calls)
    return statistics.median(times)


def dense_share(fn: Callable[[], object]) -> float:
    """Share of ``fn``'s CPU time spent in dense kernels (:data:`DENSE_OPS`), from one profiled call."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    dense = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in DENSE_OPS))
    return dense / total if total else 0.0


def save_clip_archive(state: dict[str, torch.Tensor], path: Path) -> Path:
    """An OpenAI-format CLIP TorchScript archive (as ``tiny.save_openai_clip_torchscript``, without the trace
    check, which full-size random models fail on graph naming, not on numbers)."""
    from open_clip.model import build_model_from_openai_state_dict

    model = build_model_from_openai_state_dict(dict(state), cast_dtype=None).float().eval()
    model._buffers.pop("attn_mask", None)
    image = torch.zeros(1, 3, *model.visual.image_size)
    torch.jit.trace_module(model, {"encode_image": (image,)}, check_trace=False).save(str(path))
    return path


def write_weights(root: Path, dims: tuple[str, ...]) -> dict[str, Path]:
    """Random full-size checkpoints in the released formats for ``dims`` (CLIP as TorchScript archives)."""
    out: dict[str, Path] = {}

    def save(key: str, make: Callable[[], object], name: str) -> None:
        torch.save(make(), root / name)
        out[key] = root / name

    if "subject_consistency" in dims:
        save("dino", lambda: tiny_dino_state_dict(seed=1, dim=768, depth=12), "dino_vitbase16_pretrain.pth")
    if "background_consistency" in dims:
        state = tiny_openai_clip_state_dict(seed=2, embed_dim=512, width=768, layers=12, patch=32)
        out["clip_b32"] = save_clip_archive(state, root / "ViT-B-32.pt")
    if "aesthetic_quality" in dims:
        state = tiny_openai_clip_state_dict(seed=3, embed_dim=768, width=1024, layers=24, patch=14)
        out["clip_l14"] = save_clip_archive(state, root / "ViT-L-14.pt")
        head_dir = root / "aesthetic_model" / "emb_reader"
        head_dir.mkdir(parents=True)
        torch.save(tiny_laion_head_state_dict(seed=4), head_dir / "sa_0_4_vit_l_14_linear.pth")
        out["head_dir"] = head_dir
    if set(dims) & set(FLOW_DIMS):
        save("raft", lambda: raft_things_state_dict(seed=5, flow_scale=MOVING_FLOW_SCALE), "raft-things.pth")
        save("raft_zero", lambda: raft_things_state_dict(seed=5, flow_scale=0.0), "raft-things-zero.pth")
    if "imaging_quality" in dims:
        save("musiq", lambda: musiq_state_dict(seed=7), "musiq_spaq_ckpt-358bb6af.pth")
    if "motion_smoothness" in dims:
        from tests.metrics.parity.motion_setup import amt_s_state_dict, save_amt_checkpoint

        out["amt"] = save_amt_checkpoint(amt_s_state_dict(seed=9), root / "amt-s.pth")
    if "overall_consistency" in dims:
        from deepforcing.metrics.backbones.viclip import ViCLIPConfig
        from tests.metrics.parity.overall_setup import tiny_viclip_state_dict

        save("viclip", lambda: {"model": tiny_viclip_state_dict(10, ViCLIPConfig())}, "ViClip-InternVid-10M-FLT.pth")
    return out


def ours(dim: str, w: dict[str, Path], raft: str = "raft") -> Callable[[torch.Tensor], object]:
    """Our metric for ``dim``, built once; returns a function scoring one clip (``raft``: which RAFT)."""
    from deepforcing.metrics.base import VideoContext
    from deepforcing.metrics.clips import ClipSpan

    if dim == "temporal_flickering":
        from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering

        m = TemporalFlickering()
    elif dim == "static_filter":
        from deepforcing.metrics.vbench.static_filter import RaftStaticFilter

        return RaftStaticFilter(w[raft]).decide
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

        m = DynamicDegree(DynamicDegreeConfig(str(w[raft])))
    elif dim == "imaging_quality":
        from deepforcing.metrics.vbench.imaging_quality import ImagingQuality, ImagingQualityConfig

        m = ImagingQuality(ImagingQualityConfig(str(w["musiq"])))
    elif dim == "motion_smoothness":
        from deepforcing.metrics.vbench.motion_smoothness import MotionSmoothness, MotionSmoothnessConfig

        m = MotionSmoothness(MotionSmoothnessConfig(str(w["amt"])))
    elif dim == "overall_consistency":
        from deepforcing.metrics.vbench.overall_consistency import OverallConsistency, OverallConsistencyConfig

        m = OverallConsistency(OverallConsistencyConfig(str(w["viclip"])))
    else:
        raise ValueError(dim)
    ctx = VideoContext(fps=FPS, prompt=PROMPT)
    return lambda frames: m.score_video(frames, [ClipSpan(0, 0, frames.shape[0], 0)], ctx)


def theirs(dim: str, w: dict[str, Path], raft: str = "raft") -> Callable[[torch.Tensor], object]:
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
    if dim in FLOW_DIMS:
        from easydict import EasyDict

        args = EasyDict({"model": str(w[raft]), "small": False, "mixed_precision": False, "alternate_corr": False})
        if dim == "dynamic_degree":
            obj = importlib.import_module("vbench.dynamic_degree").DynamicDegree(args, "cpu")
        else:
            obj = importlib.import_module("vbench.cli.static_filter").StaticFilter(args, "cpu")

        def run(frames):
            frame_list = [f.permute(2, 0, 1).float()[None] for f in frames]  # what its OpenCV reader builds
            if dim == "dynamic_degree":
                obj.get_frames = lambda path: obj.extract_frame(frame_list, max(1, round(FPS / 8)))
            else:
                obj.get_frames = lambda path: frame_list
            return obj.infer("v.mp4")

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
    if dim == "motion_smoothness":
        from tests.metrics.parity.motion_ref import require_motion_reference

        mod, root = require_motion_reference()
        motion = mod.MotionSmoothness(str(root / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"), str(w["amt"]), "cpu")

        def run(frames):
            motion.fp.get_frames = lambda path: [f.numpy() for f in frames]  # OpenCV's RGB arrays
            return mod.motion_smoothness(motion, ["v.mp4"])

        return run
    if dim == "overall_consistency":
        from deepforcing.metrics.backbones.viclip import ViCLIPConfig
        from tests.metrics.parity.overall_ref import _FakeVideoReader, load_reference_viclip

        model, tokenizer = load_reference_viclip(w["viclip"], ViCLIPConfig())
        mod = importlib.import_module("vbench.overall_consistency")
        utils = importlib.import_module("vbench.utils")

        def run(frames):  # vbench caches the prompt's text features across calls, as over a long video's clips
            with vbench_ref._patched(utils, "VideoReader", lambda path, *a, **k: _FakeVideoReader(frames)):
                return mod.overall_consistency(model, [{"prompt": PROMPT, "video_list": ["v"]}], tokenizer, "cpu")

        return run
    raise ValueError(dim)


@dataclass
class Row:
    """One timed case: CPU seconds per clip (ours, vbench's) and our share of dense kernels."""

    label: str
    frames: int
    ours: float
    ref: float | None
    dense: float | None


def time_case(label, dim, w, frames, rounds, have_ref, raft="raft", dense=False) -> Row:
    """Time ours and vbench's function for ``dim`` on ``frames``.

    Both are built once and warmed up; the timed runs alternate (ours, vbench, ours, ...) so that a drift in the
    machine's speed touches both sides alike; each side keeps its median.
    """
    fn = ours(dim, w, raft)
    ref = None
    if have_ref and (dim != "subject_consistency" or vbench_ref.dino_repo_dir() is not None):
        ref = theirs(dim, w, raft)
    if dim not in FLOW_DIMS:  # warm-up (lazy inits), not timed
        fn(frames[:4])
        if ref is not None:
            ref(frames[:4])
    t_ours, t_ref = [], []
    for _ in range(rounds):
        t_ours.append(cpu_seconds(lambda: fn(frames), 1))
        if ref is not None:
            t_ref.append(cpu_seconds(lambda: ref(frames), 1))
    share = dense_share(lambda: fn(frames)) if dense else None
    row = Row(label, frames.shape[0], statistics.median(t_ours), statistics.median(t_ref) if t_ref else None, share)
    print(f"  {label}: ours {row.ours:.2f} s, vbench {row.ref if row.ref is None else round(row.ref, 2)} s", flush=True)
    return row


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


def print_table(rows: list[Row], header: str, dense: bool) -> None:
    """Markdown table of frames per second and speed-ups."""
    print(f"\n{header}")
    cols = f"| {'dimension':<30} | {'ours fps':>9} | {'vbench fps':>10} | {'speed-up':>8} |"
    line = f"|{'-' * 32}|{'-' * 11}|{'-' * 12}|{'-' * 10}|"
    if dense:
        cols += f" {'dense share':>11} | {'ceiling':>8} |"
        line += f"{'-' * 13}|{'-' * 10}|"
    print(cols)
    print(line)
    for r in rows:
        ref_fps = f"{r.frames / r.ref:10.2f}" if r.ref else f"{'-':>10}"
        ratio = f"{r.ref / r.ours:7.2f}x" if r.ref else f"{'-':>8}"
        out = f"| {r.label:<30} | {r.frames / r.ours:9.2f} | {ref_fps} | {ratio} |"
        if dense:
            ceiling = f"{r.ref / (r.dense * r.ours):7.2f}x" if r.ref and r.dense else f"{'-':>8}"
            out += f" {r.dense:11.0%} | {ceiling} |"
        print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (RAFT decisions: a 2-s clip)")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=1, help="timed runs per side (median)")
    parser.add_argument("--dims", default=",".join(DIMS), help="comma-separated dimensions")
    parser.add_argument("--dense", action="store_true", help="also profile our dense-kernel share (one more run)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    dims = tuple(args.dims.split(","))
    if unknown := sorted(set(dims) - set(DIMS)):
        parser.error(f"unknown dimension(s) {unknown}; choose from {', '.join(DIMS)}")
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (args.frames, args.height, args.width, 3), generator=g, dtype=torch.uint8)
    two_s = torch.randint(0, 256, (int(2 * FPS), args.height, args.width, 3), generator=g, dtype=torch.uint8)
    have_ref = vbench_ref.vbench_ref_dir() is not None
    rows, flow_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        w = write_weights(Path(tmp), dims)
        for dim in dims:
            if dim in FLOW_DIMS:
                for raft, what in (("raft", "moving"), ("raft_zero", "still")):
                    row = time_case(f"{dim} ({what})", dim, w, two_s, args.rounds, have_ref, raft)
                    flow_rows.append(row)
            else:
                rows.append(time_case(dim, dim, w, frames, args.rounds, have_ref, dense=args.dense))
        d_ours, d_decord, d_cv = decode_seconds(frames, Path(tmp), max(3, args.rounds))

    n = args.frames
    header = f"CPU time, 1 thread; clip {n} x {args.height} x {args.width}; median of {args.rounds}"
    print_table(rows, header, args.dense)
    if d_decord is not None:  # vbench reads with OpenCV for flickering and motion smoothness, decord otherwise
        k_cv = sum(r.label in ("temporal_flickering", "motion_smoothness") for r in rows)
        k_dec = len(rows) - k_cv
        ref_dec = k_dec * d_decord + k_cv * d_cv
        print(
            f"| {'decode (these dims)':<30} | {n / d_ours:9.2f} | {n / ref_dec:10.2f} | {ref_dec / d_ours:7.2f}x |"
            f"  <- ours once (PyAV); vbench {k_dec} x decord + {k_cv} x OpenCV"
        )
        if rows and all(r.ref for r in rows):
            t_o = sum(r.ours for r in rows) + d_ours
            t_r = sum(r.ref for r in rows) + ref_dec
            print(f"| {'total incl. decode':<30} | {n / t_o:9.2f} | {n / t_r:10.2f} | {t_r / t_o:7.2f}x |")
    if flow_rows:
        header = f"RAFT decisions on one 2-s clip ({two_s.shape[0]} x {args.height} x {args.width} at {FPS:g} fps)"
        print_table(flow_rows, header, dense=False)  # fewer RAFT passes than vbench: no common dense work


if __name__ == "__main__":
    main()

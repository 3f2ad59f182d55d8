"""Weight files of the metric backbones: names, sizes and sha256 where known, sources, and where they go.

This table is data for the project-wide weights registry (``deepforcing-eval weights list | verify |
download``); :func:`check_metric_weights` is the offline check run before any video is decoded: one error that
lists every missing file of the requested metrics and where to put it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deepforcing.errors import UserError


@dataclass(frozen=True)
class MetricWeight:
    """One weight file.

    Attributes:
        key: Stable id.
        relpath: Location under the weights root.
        metrics: Registered metric names that need it.
        source: Where it is published.
        size: Bytes, if known.
        sha256: Digest, if known.
        note: Format / provenance remarks.
        hub_key: Key of the same file in the project-wide registry (:mod:`deepforcing.weights`), a Hugging Face
            Hub file or a plain URL, so ``deepforcing-eval weights download metrics`` fetches it.
    """

    key: str
    relpath: str
    metrics: tuple[str, ...]
    source: str
    size: int | None = None
    sha256: str | None = None
    note: str = ""
    hub_key: str | None = None


METRIC_WEIGHTS: tuple[MetricWeight, ...] = (
    MetricWeight(
        "dino_vitb16",
        "metrics/dino/dino_vitbase16_pretrain.pth",
        ("subject_consistency", "long_horizon_coherence", "transition_smoothness"),
        "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
        note="plain state dict of DINO's VisionTransformer (ViT-B/16)",
        hub_key="metrics/dino-vitb16",
    ),
    MetricWeight(
        "openai_clip_vit_b32",
        "metrics/clip/ViT-B-32.pt",
        (
            "background_consistency",
            "clip_text_similarity",
            "segment_text_alignment",
            "switch_accuracy",
            "transition_smoothness",
            "switch_latency",
        ),
        "https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        note="TorchScript archive, fp16 weights (sha256 is the hash in the URL)",
        hub_key="metrics/openai-clip-vit-b32",
    ),
    MetricWeight(
        "openai_clip_vit_l14",
        "metrics/clip/ViT-L-14.pt",
        ("aesthetic_quality", "laion_improved_aesthetic"),
        "https://openaipublic.azureedge.net/clip/models/"
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
        sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        note="TorchScript archive, fp16 weights (sha256 is the hash in the URL)",
        hub_key="metrics/openai-clip-vit-l14",
    ),
    MetricWeight(
        "laion_aesthetic_v1_l14",
        "metrics/aesthetic/sa_0_4_vit_l_14_linear.pth",
        ("aesthetic_quality",),
        "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
        size=4071,
        sha256="2cd4e60f4f24ae3bcd57b847b13c1f3ba27edc28cc1a7f9ce74ee9f421243cba",
        note="nn.Linear(768, 1) state dict",
        hub_key="metrics/laion-aesthetic-v1-l14",
    ),
    MetricWeight(
        "laion_improved_l14",
        "metrics/aesthetic/sac+logos+ava1-l14-linearMSE.pth",
        ("laion_improved_aesthetic",),
        "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac+logos+ava1-l14-linearMSE.pth",
        size=3714759,
        sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0",
        note="state dict of an nn.Sequential MLP (layers.0/2/4/6/7: 768-1024-128-64-16-1, no activations)",
        hub_key="metrics/laion-improved-l14",
    ),
    MetricWeight(
        "raft_things",
        "metrics/raft/raft-things.pth",
        ("dynamic_degree",),
        "https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip (unzip; models/raft-things.pth)",
        note="state dict of the original RAFT (DataParallel 'module.' keys); converted to torchvision raft_large",
        hub_key="metrics/raft-things",
    ),
    MetricWeight(
        "musiq_spaq",
        "metrics/musiq/musiq_spaq_ckpt-358bb6af.pth",
        ("imaging_quality",),
        "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/musiq_spaq_ckpt-358bb6af.pth",
        note="pyiqa MUSIQ state dict (1-output SPAQ head)",
        hub_key="metrics/musiq-spaq",
    ),
    MetricWeight(
        "amt_s",
        "metrics/amt/amt-s.pth",
        ("motion_smoothness",),
        "https://huggingface.co/lalala125/AMT/resolve/main/amt-s.pth",
        note="AMT-S checkpoint: torch.save dict with a 'state_dict' entry (read by backbones.amt.load_amt_s; "
        "needs MotionSmoothnessConfig.trust_pickle=True if the safe loader refuses it)",
        hub_key="metrics/amt-s",
    ),
    MetricWeight(
        "viclip",
        "metrics/viclip/ViClip-InternVid-10M-FLT.pth",
        ("overall_consistency", "segment_text_alignment", "switch_accuracy"),
        "https://huggingface.co/OpenGVLab/VBench_Used_Models/resolve/main/ViClip-InternVid-10M-FLT.pth",
        note="{'model': state_dict} of ViCLIP ViT-L/14 (loaded strictly, weights_only=True); the BPE vocabulary "
        "bpe_simple_vocab_16e6.txt.gz is read from open_clip's package (sha256 924691ac…804a, checked at load)",
        hub_key="metrics/viclip",
    ),
    MetricWeight(
        "i3d_styleganv",
        "metrics/i3d/i3d_torchscript.pt",
        ("fvd",),
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
        note="StyleGAN-V TorchScript port of tf-hub i3d-kinetics-400",
        hub_key="metrics/i3d-styleganv",
    ),
)


def weights_for(metric_names: Iterable[str]) -> list[MetricWeight]:
    """The weight files the given metrics need (each once, in table order)."""
    wanted = set(metric_names)
    return [w for w in METRIC_WEIGHTS if wanted & set(w.metrics)]


def _hub_copy(hub_key: str, root: Path) -> Path | None:
    """Where ``deepforcing-eval weights download`` put a Hub-hosted file, or None.

    That is ``<root>/<repo_id>/<filename>`` (``--weights-dir``) or the Hugging Face cache.
    """
    from deepforcing import weights

    try:
        return weights.resolve(hub_key, weights_dir=root)
    except UserError:
        return None


def check_metric_weights(metric_names: Iterable[str], root: str | Path) -> dict[str, Path]:
    """Check that every file the metrics need is under ``root``; never touches the network.

    Args:
        metric_names: Registered metric names a suite asks for.
        root: The weights root directory.

    Returns:
        Weight key → path, for the requested metrics.

    Raises:
        UserError: Listing every missing file (path, the metrics that need it, and its source).

    A Hub-hosted file (``hub_key``) is also found where the project-wide registry downloads it.
    """
    root = Path(root).expanduser()
    found, missing = {}, []
    for w in weights_for(metric_names):
        p = root / w.relpath
        hub = None if p.is_file() or w.hub_key is None else _hub_copy(w.hub_key, root)
        if p.is_file() or hub is not None:
            found[w.key] = p if hub is None else hub
        else:
            also = f"; or <repo_id>/<file> there / in the HF cache: `weights download {w.hub_key}`" if w.hub_key else ""
            missing.append(f"  {p}  (for {', '.join(w.metrics)}; from {w.source}{also})")
    if missing:
        raise UserError(
            f"{len(missing)} metric weight file(s) missing:\n" + "\n".join(missing),
            "place the files at these paths (or run `deepforcing-eval weights download`)",
        )
    return found

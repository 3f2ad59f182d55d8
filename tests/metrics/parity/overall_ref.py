"""Run vbench 0.1.5's own ``overall_consistency`` (and its ViCLIP tokenizer) as the reference.

Uses the isolated install of ``vbench_ref.py`` (plus ``einops``, which vbench's ViCLIP vision module imports:
``pip install --no-deps --target "$DEEPFORCING_VBENCH_REF" einops``). Three things are arranged from here,
without changing vbench's code:

* vbench's ViCLIP tokenizer module reads ``$VBENCH_CACHE_DIR/ViCLIP/bpe_simple_vocab_16e6.txt.gz`` at import
  (and wgets it when missing); ``vbench.utils.CACHE_DIR`` is pointed at a temporary folder holding the copy
  shipped with ``openai-clip`` before that module is first imported;
* ``ViCLIP.__init__`` hard-codes the ViT-L/14 sizes in its calls to ``clip_joint_l14`` / ``clip_text_l14``;
  for a tiny model those two names are replaced, for the duration of the constructor, by functions that
  build vbench's own ``VisionTransformer`` / ``CLIP_TEXT`` classes with the tiny sizes (every other argument
  passed through). The checkpoint is then loaded by vbench's constructor (``torch.load(...)["model"]``,
  strict ``load_state_dict``);
* frames reach vbench through a stand-in for decord's ``VideoReader`` (length, fps, ``get_batch`` returning
  the uint8 ``(T, H, W, C)`` tensor decord's torch bridge returns), so vbench's own
  ``read_frames_decord_by_fps`` / ``get_frame_indices`` pick the 8 frames.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from deepforcing.metrics.backbones.viclip import ViCLIPConfig
from tests.metrics.parity import vbench_ref

_VOCAB = "bpe_simple_vocab_16e6.txt.gz"


def _import_viclip_modules():
    """Import vbench's ViCLIP modules with the tokenizer vocabulary available offline."""
    vbench_ref.require_vbench()
    if "einops" not in sys.modules and importlib.util.find_spec("einops") is None:
        import pytest

        pytest.skip(f"einops not in {vbench_ref.VBENCH_REF_ENV}: pip install --no-deps --target $dir einops")
    if "vbench.third_party.ViCLIP.simple_tokenizer" not in sys.modules:
        utils = importlib.import_module("vbench.utils")
        if not (Path(utils.CACHE_DIR) / "ViCLIP" / _VOCAB).is_file():
            cache = Path(tempfile.mkdtemp(prefix="vbench-cache-"))
            (cache / "ViCLIP").mkdir()
            shutil.copy(Path(importlib.import_module("clip").__file__).parent / _VOCAB, cache / "ViCLIP" / _VOCAB)
            utils.CACHE_DIR = str(cache)
    viclip = importlib.import_module("vbench.third_party.ViCLIP.viclip")
    vision = importlib.import_module("vbench.third_party.ViCLIP.viclip_vision")
    text = importlib.import_module("vbench.third_party.ViCLIP.viclip_text")
    return viclip, vision, text


@contextlib.contextmanager
def _sized_builders(viclip, vision, text, arch: ViCLIPConfig):
    """Make ``ViCLIP.__init__`` build its towers at ``arch``'s sizes (no-op for the released sizes)."""
    if arch == ViCLIPConfig():
        yield
        return

    def build_vision(**kw):
        return vision.VisionTransformer(
            input_resolution=kw["input_resolution"],
            patch_size=arch.patch_size,
            width=arch.vision_width,
            layers=arch.vision_layers,
            heads=arch.vision_heads,
            output_dim=arch.embed_dim,
            kernel_size=kw["kernel_size"],
            num_frames=kw["num_frames"],
            drop_path=kw["drop_path"],
            checkpoint_num=kw["checkpoint_num"],
        ).eval()

    def build_text(**kw):
        return text.CLIP_TEXT(
            arch.embed_dim,
            kw["context_length"],
            kw["vocab_size"],
            arch.text_width,
            arch.text_heads,
            arch.text_layers,
            kw["checkpoint_num"],
        ).eval()

    with (
        vbench_ref._patched(viclip, "clip_joint_l14", build_vision),
        vbench_ref._patched(viclip, "clip_text_l14", build_text),
    ):
        yield


def load_reference_viclip(checkpoint: Path, arch: ViCLIPConfig):
    """vbench's ``ViCLIP(tokenizer, pretrain=checkpoint)`` built at ``arch``'s sizes; returns (model, tokenizer)."""
    viclip, vision, text = _import_viclip_modules()
    tok_mod = importlib.import_module("vbench.third_party.ViCLIP.simple_tokenizer")
    utils = importlib.import_module("vbench.utils")
    tokenizer = tok_mod.SimpleTokenizer(str(Path(utils.CACHE_DIR) / "ViCLIP" / _VOCAB))
    with _sized_builders(viclip, vision, text, arch):
        model = viclip.ViCLIP(tokenizer=tokenizer, pretrain=str(checkpoint))
    return model, tokenizer


def ref_viclip_tokens(texts: list[str], context_length: int = 32) -> list[list[int]]:
    """Token ids from vbench's ViCLIP text tokenizer (``CLIP_TEXT.tokenize``, the one ``encode_text`` uses)."""
    _, _, text = _import_viclip_modules()
    enc = text.CLIP_TEXT(8, context_length, 49408, 8, 1, 0, 0)  # sizes irrelevant: only .tokenize is used
    return [row.tolist() for row in enc.tokenize(texts, context_length=context_length)]


class _FakeVideoReader:
    """What ``decord.VideoReader`` gives vbench for a losslessly decoded clip (torch bridge)."""

    def __init__(self, frames: torch.Tensor, fps: float = 16.0):
        self._frames = frames.contiguous()  # (T, H, W, 3) uint8
        self._fps = fps

    def __len__(self) -> int:
        return int(self._frames.shape[0])

    def get_avg_fps(self) -> float:
        return self._fps

    def get_batch(self, indices) -> torch.Tensor:
        return self._frames[torch.as_tensor([int(i) for i in indices])]


def ref_overall_consistency(
    clips: dict[str, torch.Tensor], prompts: dict[str, str], checkpoint: Path, arch: ViCLIPConfig
) -> tuple[float, dict[str, float]]:
    """vbench ``overall_consistency`` on the clips (one prompt each): (aggregate, per-video)."""
    model, tokenizer = load_reference_viclip(checkpoint, arch)
    mod = importlib.import_module("vbench.overall_consistency")
    utils = importlib.import_module("vbench.utils")
    video_dict = [{"prompt": prompts[name], "video_list": [name]} for name in clips]
    mod.get_text_features.__defaults__[0].clear()  # vbench caches text features by prompt across calls
    with vbench_ref._patched(utils, "VideoReader", lambda path, *a, **k: _FakeVideoReader(clips[path])):
        agg, res = mod.overall_consistency(model, video_dict, tokenizer, "cpu")
    return float(agg), {r["video_path"]: float(r["video_results"]) for r in res}

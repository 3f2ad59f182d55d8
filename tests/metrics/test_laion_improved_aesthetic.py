"""LAION improved aesthetic predictor: official key layout, strict loader, known answer on a tiny CLIP."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepforcing.errors import UserError
from deepforcing.metrics.backbones.laion_improved import load_improved_aesthetic_head

pytest.importorskip("open_clip", reason="open_clip_torch not installed; needed to write the tiny CLIP archive")

#: Key layout of sac+logos+ava1-l14-linearMSE.pth (read from the published file, metrics.md §4.2).
OFFICIAL_SHAPES = {
    "layers.0.weight": (1024, 768),
    "layers.0.bias": (1024,),
    "layers.2.weight": (128, 1024),
    "layers.2.bias": (128,),
    "layers.4.weight": (64, 128),
    "layers.4.bias": (64,),
    "layers.6.weight": (16, 64),
    "layers.6.bias": (16,),
    "layers.7.weight": (1, 16),
    "layers.7.bias": (1,),
}


def random_official_head(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) / (s[-1] ** 0.5) for k, s in OFFICIAL_SHAPES.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.metrics.parity.tiny import save_openai_clip_torchscript, tiny_openai_clip_state_dict

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("laion")
    clip = save_openai_clip_torchscript(tiny_openai_clip_state_dict(seed=3, embed_dim=768, patch=14), root / "L14.pt")
    head = random_official_head()
    torch.save(head, root / "sac+logos+ava1-l14-linearMSE.pth")
    return clip, root / "sac+logos+ava1-l14-linearMSE.pth", head


def _by_hand(frames, clip_path: Path, head: dict[str, torch.Tensor]) -> torch.Tensor:
    """CLIP's PIL preprocessing, encode_image, L2 norm, then the five affine layers written out."""
    from deepforcing.metrics.backbones.openai_clip import load_openai_clip

    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    xs = []
    for f in frames.numpy():
        im = Image.fromarray(f)
        w, h = im.size  # short side -> 224, long side -> int(224 * long / short) (torchvision's Resize rule)
        im = im.resize((int(224 * w / h), 224) if w >= h else (224, int(224 * h / w)), Image.BICUBIC)
        left, top = round((im.size[0] - 224) / 2), round((im.size[1] - 224) / 2)
        im = im.crop((left, top, left + 224, top + 224))
        x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255
        xs.append((x - mean) / std)
    with torch.no_grad():
        emb = load_openai_clip(clip_path).encode_image(torch.stack(xs)).float()
    z = emb / emb.norm(dim=-1, keepdim=True)
    for i in (0, 2, 4, 6, 7):
        z = z @ head[f"layers.{i}.weight"].T + head[f"layers.{i}.bias"]
    return z[:, 0]


def test_scores_equal_hand_computation(files):
    from deepforcing.metrics.laion_improved_aesthetic import LaionImprovedAesthetic, LaionImprovedAestheticConfig
    from tests.metrics.parity.tiny import synthetic_clip

    clip, head_path, head = files
    metric = LaionImprovedAesthetic(LaionImprovedAestheticConfig(str(clip), str(head_path)))
    frames = synthetic_clip(40, frames=3, height=40, width=56)
    ours = metric.frame_scores(frames)
    expected = _by_hand(frames, clip, head)
    assert torch.allclose(ours, expected, atol=1e-5), (ours, expected)
    row = metric.score_clip(frames, 0)[0]
    assert row.value == pytest.approx(float(expected.double().mean()), abs=1e-5) and row.weight == 3
    assert metric.id == "laion_improved_aesthetic@clip=openai-vit-l14,head=sac+logos+ava1-l14-mse,pre=pil,scale=1-10"
    vb = LaionImprovedAesthetic(LaionImprovedAestheticConfig(str(clip), str(head_path), preprocess="vbench"))
    assert vb.id.endswith("pre=vbench,scale=1-10") and vb.frame_scores(frames).shape == (3,)


def test_loader_is_strict(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_improved_aesthetic_head(tmp_path / "missing.pth")
    bad = random_official_head()
    bad["layers.1.weight"] = bad.pop("layers.2.weight")  # a ReLU-less MLP saved with other indices
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="not the improved aesthetic MLP"):
        load_improved_aesthetic_head(tmp_path / "bad.pth")
    torch.save({"weight": torch.zeros(1, 768), "bias": torch.zeros(1)}, tmp_path / "v1.pth")  # the v1 linear head
    with pytest.raises(UserError, match="layers.0/2/4/6/7"):
        load_improved_aesthetic_head(tmp_path / "v1.pth")
    good = random_official_head()
    torch.save(good, tmp_path / "ok.pth")
    head = load_improved_aesthetic_head(tmp_path / "ok.pth")
    assert not head.training and set(head.state_dict()) == set(OFFICIAL_SHAPES)


def test_registry_entry():
    from deepforcing.metrics.weights import weights_for

    keys = {w.key: w for w in weights_for(["laion_improved_aesthetic"])}
    assert set(keys) == {"openai_clip_vit_l14", "laion_improved_l14"}
    assert keys["laion_improved_l14"].size == 3714759
    assert keys["laion_improved_l14"].sha256.startswith("21dd590f")

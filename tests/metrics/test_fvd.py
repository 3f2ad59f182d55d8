import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from deepforcing.errors import UserError
from deepforcing.metrics.frechet import FeatureStats, fid_from_stats, frechet_distance, trace_sqrt_product

needs_torchmetrics = pytest.mark.skipif(
    importlib.util.find_spec("torchmetrics") is None,
    reason="torchmetrics not installed (pip install 'deepforcing-eval[metrics]')",
)


def _feats(seed, n=300, d=24, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ a + shift


def test_identical_sets_give_zero():
    s = FeatureStats.of(_feats(0))
    assert abs(fid_from_stats(s, s)) < 1e-9


def test_closed_form_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0])
    s1, s2 = torch.diag(torch.tensor([1.0, 4.0])), torch.diag(torch.tensor([4.0, 1.0]))
    # |dmu|^2 = 5, Tr = 10, Tr sqrt(diag(4, 4)) = 4  ->  5 + 10 - 8 = 7
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(7.0, abs=1e-12)
    # commuting (scaled) covariances: d = Tr(S) (1 + c - 2 sqrt(c))
    s = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(mu1, s, mu1, 4 * s) == pytest.approx(float(torch.trace(s)) * (1 + 4 - 4), abs=1e-12)


def test_trace_sqrt_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = FeatureStats.of(_feats(1)).cov(), FeatureStats.of(_feats(2, shift=0.3)).cov()
    ref = np.real(np.trace(scipy_linalg.sqrtm(a.numpy() @ b.numpy())))
    assert trace_sqrt_product(a, b) == pytest.approx(ref, rel=1e-9)


@needs_torchmetrics
def test_matches_torchmetrics_formula():
    from torchmetrics.image.fid import _compute_fid

    x, y = _feats(3, n=500, d=32), _feats(4, n=400, d=32, shift=0.5)
    a, b = FeatureStats.of(x), FeatureStats.of(y)
    ref = float(_compute_fid(a.mean(), a.cov("n-1"), b.mean(), b.cov("n-1")))
    assert fid_from_stats(a, b, "n-1") == pytest.approx(ref, abs=1e-6)


def test_stats_merge_equals_one_pass_and_numpy_cov():
    x = _feats(5, n=257)
    whole = FeatureStats.of(x)
    parts = [FeatureStats.of(x[i::3]) for i in range(3)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.n == whole.n
    torch.testing.assert_close(merged.cov(), whole.cov(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole.cov("n-1").numpy(), np.cov(x.numpy(), rowvar=False), atol=1e-12)
    np.testing.assert_allclose(whole.cov("n").numpy(), np.cov(x.numpy(), rowvar=False, bias=True), atol=1e-12)


def test_stats_save_load(tmp_path):
    s = FeatureStats.of(_feats(6))
    s.save(tmp_path / "ref.safetensors")
    back = FeatureStats.load(tmp_path / "ref.safetensors")
    assert back.n == s.n and torch.equal(back.outer, s.outer)


class TinyI3D(nn.Module):
    """Same calling convention as StyleGAN-V's i3d_torchscript.pt: (B, 3, T, H, W) -> (B, 400)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, kernel_size=(3, 7, 7), stride=(2, 4, 4))
        self.fc = nn.Linear(8 * 4, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = torch.relu(self.conv(x))  # (B, 8, T', H', W')
        h = nn.functional.adaptive_avg_pool3d(h, (1, 2, 2)).flatten(1)  # (B, 32)
        logits = self.fc(h)
        return logits if return_features else logits.softmax(dim=-1)


@pytest.fixture
def i3d_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(TinyI3D().eval()).save(str(path))
    return path


def _video_clips(seed, n=6, t=16, h=40, w=56):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, t, h, w, 3), generator=g, dtype=torch.uint8)


def test_i3d_loader_and_preprocess(i3d_file):
    from deepforcing.metrics.i3d import i3d_features, load_i3d_torchscript, preprocess_clips

    x = preprocess_clips(_video_clips(0, n=2))
    assert x.shape == (2, 3, 16, 224, 224) and x.min() >= -1 and x.max() <= 1
    model = load_i3d_torchscript(i3d_file)
    f = i3d_features(model, _video_clips(0, n=3), batch_size=2)
    assert f.shape == (3, 400) and f.dtype == torch.float64
    with pytest.raises(UserError, match="not found"):
        load_i3d_torchscript(i3d_file.parent / "nope.pt")
    bad = i3d_file.parent / "bad.pt"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="not a TorchScript"):
        load_i3d_torchscript(bad)


@needs_torchmetrics
def test_fvd_metric_end_to_end_and_merge(i3d_file):
    from deepforcing.metrics.fvd import FrechetVideoDistance, FVDConfig, load_fvd

    cfg = FVDConfig(str(i3d_file))
    assert cfg.metric_id == "fvd@i3d=styleganv,frames=16,res=224,resize=stretch,cov=n-1"
    real, fake = _video_clips(1), _video_clips(2)
    one = load_fvd(cfg)
    one.update(real, real=True)
    one.update(real, real=False)
    assert abs(float(one.compute())) < 1e-6  # same clips on both sides
    one.reset()  # keeps real statistics
    assert int(one.real_n) == 6 and int(one.fake_n) == 0
    one.update(fake, real=False)
    single = float(one.compute())
    assert single > 0

    # two shards, merged, equal the single pass
    a, b = FrechetVideoDistance(cfg), FrechetVideoDistance(cfg)
    a.update(real[:4], real=True)
    b.update(real[4:], real=True)
    a.update(fake[:1], real=False)
    b.update(fake[1:], real=False)
    a.merge_state(b)
    # features of a batch do not depend on the other clips in it beyond float32 rounding
    assert float(a.compute()) == pytest.approx(single, abs=1e-9)

    with pytest.raises(ValueError, match="clips"):
        a.update(_video_clips(3, t=8), real=False)
    with pytest.raises(UserError, match="not found"):
        load_fvd(FVDConfig("/nonexistent/i3d_torchscript.pt"))


@needs_torchmetrics
def test_window_clips():
    from deepforcing.metrics.fvd import window_clips

    frames = torch.arange(16 * 20, dtype=torch.uint8).reshape(-1, 1, 1, 1).expand(-1, 2, 2, 3)
    first = window_clips(frames, 16.0, 0, 5)  # 80 frames -> 5 clips of 16
    assert first.shape == (5, 16, 2, 2, 3) and int(first[0, 0, 0, 0, 0]) == 0
    late = window_clips(frames, 16.0, 15, 20)
    assert int(late[0, 0, 0, 0, 0]) == (15 * 16) % 256
    with pytest.raises(UserError):
        window_clips(frames, 16.0, 19.5, 20)


@needs_torchmetrics
def test_fvd_state_merge_is_exact_on_features():
    from deepforcing.metrics.fvd import FrechetVideoDistance, FVDConfig

    cfg = FVDConfig("unused.pt", feature_dim=24)
    real, fake = _feats(7, n=90), _feats(8, n=70, shift=0.2)
    one = FrechetVideoDistance(cfg)
    one.update_features(real, real=True)
    one.update_features(fake, real=False)
    shards = [FrechetVideoDistance(cfg) for _ in range(3)]
    for i, m in enumerate(shards):
        m.update_features(real[i::3], real=True)
        m.update_features(fake[i::3], real=False)
    for m in shards[1:]:
        shards[0].merge_state(m)
    assert float(shards[0].compute()) == pytest.approx(float(one.compute()), rel=1e-12)
    assert float(one.compute()) == pytest.approx(
        fid_from_stats(FeatureStats.of(real), FeatureStats.of(fake)), rel=1e-12
    )

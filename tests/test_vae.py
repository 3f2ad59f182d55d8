import re

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.model import tiny_assets
from deepforcing.model.vae import (
    WAN21_LATENTS_MEAN,
    WAN21_LATENTS_STD,
    WanVAE,
    diffusers_vae_to_wan,
)

# Streaming vs full decode, tiny random VAE, fp32 CPU (torch 2.14, diffusers 0.42.1), 10 latent frames in
# 3-frame chunks: measured max |diff| = 0 at 4x6 latents and <= 1.3e-6 at 2x2 latents (pixels in [-1, 1]).
# The only source is the 1x1x1 post_quant_conv run on a chunk instead of the whole tensor (different summation
# blocking); the causal decoder itself sees identical per-frame inputs and cache. Allowed: 1e-5.
STREAM_TOL = 1e-5


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vae")
    vae_dir = tiny_assets.save_tiny_vae(root / "vae", seed=0)
    pth = tiny_assets.save_tiny_wan_vae_pth(root / "original" / "Wan2.1_VAE.pth", seed=0)
    return {"vae_dir": vae_dir, "pth": pth}


@pytest.fixture(scope="module")
def vae(assets):
    return WanVAE.from_diffusers(assets["vae_dir"])


def latents(b, f, h=4, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, f, 16, h, w, generator=g)  # [B, F, 16, h, w] normalised latents


def test_tiny_vae_files_and_config(assets, vae):
    assert sorted(p.name for p in assets["vae_dir"].iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    cfg = vae.vae.config
    assert cfg.z_dim == 16 and list(cfg.dim_mult) == [1, 2, 4, 4]
    assert list(cfg.temperal_downsample) == [False, True, True]
    assert vae.temporal_factor == 4 and vae.spatial_factor == 8
    assert torch.allclose(vae.latents_mean, torch.tensor(WAN21_LATENTS_MEAN))
    assert torch.allclose(vae.latents_std, torch.tensor(WAN21_LATENTS_STD))


def test_tiny_vae_is_deterministic(assets, tmp_path):
    again = tiny_assets.save_tiny_vae(tmp_path / "vae", seed=0)
    name = "diffusion_pytorch_model.safetensors"
    assert (again / name).read_bytes() == (assets["vae_dir"] / name).read_bytes()


def test_decode_full_shape_range_and_denormalisation(vae):
    z = latents(1, 3, h=2, w=3)
    frames = vae.decode_full(z)
    assert tuple(frames.shape) == (1, 1 + 4 * 2, 3, 16, 24)  # [B, T, 3, 8h, 8w]
    assert frames.dtype == torch.float32
    assert frames.min() >= -1 and frames.max() <= 1
    assert frames.std() > 0.05  # not saturated / constant
    # Same as diffusers' own decode on Wan-de-normalised latents (z * std + mean), pipeline convention.
    mean = torch.tensor(WAN21_LATENTS_MEAN).view(1, 16, 1, 1, 1)
    std = torch.tensor(WAN21_LATENTS_STD).view(1, 16, 1, 1, 1)
    raw = z.permute(0, 2, 1, 3, 4) * std + mean  # [B, 16, F, h, w]
    ref = vae.vae.decode(raw).sample.permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(frames, ref, rtol=0, atol=0)


def test_streaming_equals_full_decode(vae):
    z = latents(1, 10, h=2, w=2, seed=1)  # 10 latent frames -> 37 pixel frames
    full = vae.decode_full(z)
    dec = vae.streaming_decoder()
    outs = [dec.decode(z[:, i : i + 3]) for i in range(0, 10, 3)]  # chunks of 3, 3, 3, 1
    assert [o.shape[1] for o in outs] == [9, 12, 12, 4]
    stream = torch.cat(outs, dim=1)
    assert stream.shape == full.shape == (1, 37, 3, 16, 16)
    assert (stream - full).abs().max().item() <= STREAM_TOL
    assert dec.latent_frames_seen == 10 and dec.pixel_frames_emitted == 37


def test_streaming_batched_uneven_chunks_and_reset(vae):
    z = latents(2, 4, h=2, w=2, seed=2)
    full = vae.decode_full(z)
    dec = vae.streaming_decoder()
    first = torch.cat([dec.decode(z[:, :1]), dec.decode(z[:, 1:3]), dec.decode(z[:, 3:])], dim=1)
    assert (first - full).abs().max().item() <= STREAM_TOL
    dec.reset()
    again = torch.cat([dec.decode(z[:, :2]), dec.decode(z[:, 2:])], dim=1)
    assert (again - full).abs().max().item() <= STREAM_TOL
    # Two decoders are independent (their own caches).
    other = vae.streaming_decoder()
    assert other.decode(z[:, :1]).shape[1] == 1


def test_streaming_rejects_shape_change(vae):
    dec = vae.streaming_decoder()
    dec.decode(latents(1, 1, h=2, w=2))
    with pytest.raises(UserError, match="reset"):
        dec.decode(latents(2, 1, h=2, w=2))
    with pytest.raises(UserError, match=r"\[B, F, 16, h, w\]"):
        vae.decode_full(torch.zeros(1, 2, 8, 2, 2))


def test_original_key_layout_round_trip(assets):
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    sd = tiny_assets.build_tiny_vae(seed=0).state_dict()
    wan = torch.load(assets["pth"], weights_only=True)
    assert set(wan) == set(diffusers_vae_to_wan(sd))
    # Wan's own module names (wan/modules/vae.py), none of diffusers' names.
    for key in [
        "conv1.weight",
        "conv2.bias",
        "encoder.conv1.weight",
        "encoder.downsamples.0.residual.0.gamma",
        "encoder.downsamples.2.resample.1.weight",
        "encoder.downsamples.5.time_conv.weight",
        "encoder.middle.1.to_qkv.weight",
        "encoder.head.2.weight",
        "decoder.middle.2.residual.6.weight",
        "decoder.upsamples.3.time_conv.weight",
        "decoder.upsamples.4.shortcut.weight",
        "decoder.upsamples.11.resample.1.weight",
        "decoder.upsamples.14.residual.3.gamma",
        "decoder.head.0.gamma",
    ]:
        assert key in wan, key
    assert not any(re.search(r"mid_block|up_blocks|down_blocks|conv_in|conv_out|norm_out|quant", k) for k in wan)
    back = convert_wan_vae_to_diffusers(wan)
    assert set(back) == set(sd)
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def test_from_original_matches_diffusers_layout(assets, vae):
    orig = WanVAE.from_original(assets["pth"])  # config inferred (base_dim 8 from the checkpoint)
    assert orig.vae.config.base_dim == 8
    z = latents(1, 2, h=2, w=2, seed=3)
    torch.testing.assert_close(orig.decode_full(z), vae.decode_full(z), rtol=0, atol=0)
    explicit = WanVAE.from_original(assets["pth"], config=assets["vae_dir"])  # local config.json, no Hub
    torch.testing.assert_close(explicit.decode_full(z), vae.decode_full(z), rtol=0, atol=0)


def test_from_original_errors(assets, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        WanVAE.from_original(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="original Wan VAE"):
        WanVAE.from_original(bad)
    with pytest.raises(UserError, match="does not match"):
        WanVAE.from_original(assets["pth"], config={**tiny_assets.TINY_VAE_CONFIG, "base_dim": 16})
    with pytest.raises(UserError, match="config.json"):
        WanVAE.from_diffusers(tmp_path)


def test_decoder_api_guard():
    from deepforcing.model.vae import _check_decoder_api

    class OldDecoder(torch.nn.Module):
        def forward(self, x):  # no feat_cache / feat_idx: an unsupported diffusers
            return x

    class FakeVAE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = OldDecoder()
            self.post_quant_conv = torch.nn.Identity()

    with pytest.raises(UserError, match="feat_cache"):
        _check_decoder_api(FakeVAE())

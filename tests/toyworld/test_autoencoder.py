"""The toy autoencoder (the toy model's VAE): shapes, normalisation, training from scratch, exact resume."""

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.toyworld.autoencoder import AutoencoderConfig, ToyAutoencoder, train_autoencoder
from deepforcing.toyworld.world import sample_scene


def _cfg(**kw) -> AutoencoderConfig:
    base = dict(steps=32, width=16, scenes=2, warmup_steps=2, normalisation_scenes=4, checkpoint_every=16)
    return AutoencoderConfig(**{**base, **kw})


def test_encode_decode_shapes_over_leading_dimensions():
    torch.manual_seed(0)
    ae = ToyAutoencoder(16, 8).eval()
    frames = sample_scene(3).render(6)  # [6, 32, 32, 3]
    z = ae.encode(torch.stack([frames, frames]))
    assert z.shape == (2, 6, 16, 8, 8) and z.dtype == torch.float32
    out = ae.decode(z)
    assert out.shape == (2, 6, 32, 32, 3) and out.dtype == torch.uint8
    assert torch.equal(out[0], ae.decode(z[0]))  # frame by frame: no mixing across the batch


def test_a_few_steps_from_scratch_reduce_the_loss_normalise_the_latent_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg()
    state = train_autoencoder(cfg, tmp_path / "a.pt")
    losses = [r["loss"] for r in state.history]
    assert len(losses) == 32 and state.cpu_seconds > 0
    assert sum(losses[-4:]) / 4 < 0.75 * sum(losses[:4]) / 4, losses  # measured: 0.62
    # The latent is normalised on fixed frames: unit std per channel there (the DiT sees unit-scale data).
    z = state.model.encode(sample_scene(5 * 10**8 - 10**6).render(7))
    assert 0.3 < float(z.std()) < 3.0
    assert not state.model.training and not any(p.requires_grad for p in state.model.parameters())

    def interrupt(step, row):
        if step == 16:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(cfg, tmp_path / "b.pt", on_step=interrupt)
    resumed = train_autoencoder(cfg, tmp_path / "b.pt", resume=True)
    for (name, a), b in zip(state.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [seg["to_step"] for seg in resumed.segments] == [16, 32]
    with pytest.raises(UserError, match="different settings"):
        train_autoencoder(_cfg(width=8), tmp_path / "b.pt", resume=True)
    with pytest.raises(UserError, match="already holds a training run"):
        train_autoencoder(cfg, tmp_path / "b.pt")


def test_bad_settings_are_refused():
    with pytest.raises(UserError, match="must be positive"):
        AutoencoderConfig(channels=0)

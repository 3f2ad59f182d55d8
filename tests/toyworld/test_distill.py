"""Stage 2 of the toy training: the self-rollout is the engine's sampler, and the DMD / critic losses do what
they should."""

import torch

from deepforcing import methods
from deepforcing.model.wan import CausalWanModel
from deepforcing.noise import NoiseStream
from deepforcing.samplers.chunkwise import ChunkwiseSampler
from deepforcing.toyworld.distill import DistillConfig, critic_loss, dmd_loss, self_rollout
from deepforcing.toyworld.model import new_text_encoder, toy_preset

CAPTION = "a red circle bouncing on a dark blue background"

C = toy_preset().wan.in_dim  # latent channels of the toy autoencoder


def _model(seed: int) -> CausalWanModel:
    torch.manual_seed(seed)
    return CausalWanModel(toy_preset().wan).eval()


def test_rollout_to_the_last_step_is_the_engines_sampler():
    torch.set_num_threads(1)
    dit, enc = _model(0), new_text_encoder()
    method = methods.get("self-forcing")
    cfg = DistillConfig().sampler_config()
    assert cfg == method.sampler_config  # the student is trained for the method preset as it is
    with torch.no_grad():
        text = dit.encode_text(enc.encode([CAPTION]))
    stream = NoiseStream("p", 0)
    noise = stream.initial((1, 6, C, 8, 8))
    with torch.no_grad():
        ref = ChunkwiseSampler(cfg).sample(dit, text, methods.build_policy(method), noise, stream).latents
    last = len(cfg.denoising_steps) - 1
    for grad in (False, True):
        stream = NoiseStream("p", 0)
        stream.initial((1, 6, C, 8, 8))
        policy = methods.build_policy(method)
        out = self_rollout(dit, text, noise, cfg, policy, [last, last], stream.generator, grad=grad)
        assert torch.equal(out.detach(), ref)


def test_rollout_gradient_reaches_the_generator_only_through_exit_passes():
    torch.set_num_threads(1)
    dit, enc = _model(1), new_text_encoder()
    cfg = DistillConfig().sampler_config()
    with torch.no_grad():
        context = enc.encode([CAPTION, CAPTION])
    text = dit.encode_text(context)
    noise = torch.randn(2, 6, C, 8, 8, generator=torch.Generator().manual_seed(0))
    policy = methods.build_policy(methods.get("self-forcing"))
    out = self_rollout(dit, text, noise, cfg, policy, [0, 2], torch.Generator().manual_seed(1), grad=True)
    assert out.shape == (2, 6, C, 8, 8) and out.requires_grad
    out[:, 3:].square().mean().backward()  # the second chunk alone: its exit pass attends to the first's cache
    grads = [p.grad for p in dit.parameters()]
    assert all(g is not None for g in grads[:3]) and sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_dmd_direction_vanishes_when_fake_equals_real_and_critic_learns():
    torch.set_num_threads(1)
    real, enc = _model(2), new_text_encoder()
    with torch.no_grad():
        context = enc.encode([CAPTION])
        text = real.encode_text(context)
        uncond = real.encode_text(enc.encode([""]))
    x = torch.randn(1, 3, C, 8, 8, requires_grad=True)
    sigma, eps = torch.tensor([0.5]), torch.randn(1, 3, C, 8, 8)
    loss, info = dmd_loss(x, sigma, eps, real, text, uncond, real, text, guidance=1.0)
    loss.backward()
    assert info["dmd_direction"] == 0.0 and float(x.grad.abs().max()) == 0.0
    # With guidance the teacher's x0 moves away from the fake's: the gradient is the normalised difference.
    x.grad = None
    loss, info = dmd_loss(x, sigma, eps, real, text, uncond, real, text, guidance=3.0)
    loss.backward()
    assert info["dmd_direction"] > 0 and float(x.grad.abs().max()) > 0
    fake = _model(3).train()
    opt = torch.optim.Adam(fake.parameters(), lr=1e-3)
    data = torch.randn(2, 3, C, 8, 8, generator=torch.Generator().manual_seed(5)) * 0.5
    gen = torch.Generator().manual_seed(6)
    losses = []
    for _ in range(15):
        ftext = fake.encode_text(torch.cat([context, context]))
        loss = critic_loss(fake, data, torch.rand(2, generator=gen), torch.randn(data.shape, generator=gen), ftext)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5

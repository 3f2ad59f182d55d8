import pytest
import torch

from deepforcing.samplers.chunkwise import ChunkwiseConfig
from deepforcing.samplers.schedule import FlowSchedule


def test_warped_self_forcing_steps():
    ts = ChunkwiseConfig().timesteps()
    assert ts.dtype == torch.float32
    torch.testing.assert_close(ts, torch.tensor([1000.0, 937.5, 833.3333, 625.0]), rtol=0, atol=1e-3)


def test_warped_rolling_forcing_steps():
    ts = FlowSchedule(5.0).warp((1000, 800, 600, 400, 200))
    torch.testing.assert_close(ts, torch.tensor([1000.0, 952.381, 882.353, 769.231, 555.556]), rtol=0, atol=2e-3)


@pytest.mark.parametrize("t", [1000.0, 937.5, 625.0])
def test_noise_then_x0_roundtrip(t):
    s = FlowSchedule()
    torch.manual_seed(0)
    x0, eps = torch.randn(4, 8), torch.randn(4, 8)
    xt = s.add_noise(x0, eps, t)
    flow = eps - x0  # the exact flow target
    torch.testing.assert_close(s.flow_to_x0(flow, xt, t), x0, rtol=0, atol=1e-5)


def test_sigma_lookup():
    s = FlowSchedule()
    assert float(s.sigma(1000.0)) == 1.0
    assert abs(float(s.sigma(625.0)) - 0.625) < 1e-6
    # t = 0 maps to the last table entry, as the reference's argmin does
    assert 0 < float(s.sigma(0.0)) < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("t", [937.5, 833.3333129882812, 625.0])
def test_memoised_scalar_steps_are_the_tensor_formula_bitwise(dtype, t):
    """The memo (table built once, σ per timestep) changes no bit, in bf16 too (σ = 0.8333 is not a bf16)."""
    s = FlowSchedule()
    g = torch.Generator().manual_seed(0)
    x0, eps, flow = (torch.randn(2, 3, 4, 4, generator=g).to(dtype) for _ in range(3))
    sigma = s.sigma(torch.tensor(t))  # 0-d float32 from the table, as the samplers always used it
    assert torch.equal(s.add_noise(x0, eps, t), ((1 - sigma) * x0 + sigma * eps).type_as(eps))
    x0_ref = (eps.to(torch.float64) - sigma.to(torch.float64) * flow.to(torch.float64)).to(dtype)
    assert torch.equal(s.flow_to_x0(flow, eps, t), x0_ref)
    per_frame = torch.tensor([t, 1000.0, t])  # one timestep per frame [n] over latents [B, n, ...]
    assert torch.equal(s.sigma(per_frame), torch.stack([sigma, s.sigma(torch.tensor(1000.0)), sigma]))

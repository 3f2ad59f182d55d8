"""Stage 1b of the toy training: the teacher's ODE pairs and the student's regression on them."""

import pytest
import torch

from deepforcing.model.wan import CausalWanModel
from deepforcing.toyworld.distill import DistillConfig, distill
from deepforcing.toyworld.flow import predict_x0
from deepforcing.toyworld.model import new_text_encoder, toy_preset
from deepforcing.toyworld.ode import OdeInitConfig, OdePairs, ode_init, regression_loss, teacher_trajectories

C = toy_preset().wan.in_dim
CAPTION = "a red circle bouncing on a dark blue background"


def _teacher(seed: int = 0) -> CausalWanModel:
    torch.manual_seed(seed)
    return CausalWanModel(toy_preset().wan).eval().requires_grad_(False)


def test_grid_passes_through_the_students_noise_levels():
    cfg = OdeInitConfig(ode_steps=24, ode_shift=3.0)
    sig = cfg.student_sigmas()
    assert sig == (1.0, 0.9375, 0.833333, 0.625)  # self-forcing: 1000/750/500/250 warped by shift 5
    grid = cfg.grid()
    assert grid[0] == 1.0 and grid[-1] == 0.0 and all(s in grid for s in sig)
    assert grid == sorted(set(grid), reverse=True)


def test_trajectories_are_euler_steps_of_the_guided_flow():
    torch.set_num_threads(1)
    teacher, enc = _teacher(), new_text_encoder()
    noise = torch.randn(2, 6, C, 8, 8, generator=torch.Generator().manual_seed(0))
    captions = [CAPTION] * 2
    grid, keep = [1.0, 0.6, 0.0], (1.0, 0.6)
    states, x0 = teacher_trajectories(teacher, enc, captions, noise, grid, keep, guidance=2.0)
    assert states.shape == (2, 2, 6, C, 8, 8) and x0.shape == (2, 6, C, 8, 8)
    assert torch.equal(states[:, 0], noise)
    # One Euler step by hand from the state at 0.6 ends where the trajectory does.
    text = teacher.encode_text(enc.encode(captions))
    uncond = teacher.encode_text(enc.encode(["", ""]))
    x0_hat = predict_x0(teacher, states[:, 1], torch.full((2, 6), 0.6), text, uncond=uncond, guidance=2.0)
    torch.testing.assert_close(x0, x0_hat, rtol=0, atol=1e-5)  # the last step lands on the x0 prediction
    with pytest.raises(ValueError, match="kept levels"):
        teacher_trajectories(teacher, enc, captions, noise, grid, (0.5,), guidance=1.0)


def test_regression_is_zero_for_an_exact_student_and_reaches_every_weight():
    torch.set_num_threads(1)
    student, enc = _teacher(1), new_text_encoder()
    x0 = torch.randn(2, 6, C, 8, 8, generator=torch.Generator().manual_seed(2))
    # States that are the endpoint itself at sigma 0: a student predicting x0 = x_t - 0·v is exact.
    pairs = OdePairs(x0[:, None].expand(2, 1, 6, C, 8, 8).clone(), x0, [CAPTION] * 2, (0.0,))
    loss = regression_loss(student, enc, pairs, torch.Generator().manual_seed(0), 4, 3)
    assert float(loss) == 0.0
    pairs = OdePairs(torch.randn(2, 1, 6, C, 8, 8), x0, [CAPTION] * 2, (0.5,))
    loss = regression_loss(student.train().requires_grad_(True), enc, pairs, torch.Generator().manual_seed(0), 4, 3)
    loss.backward()
    assert float(loss.detach()) > 0 and all(p.grad is not None for p in student.parameters() if p.requires_grad)


def _tiny(steps: int = 30, **kw) -> OdeInitConfig:
    return OdeInitConfig(trajectories=3, ode_steps=2, steps=steps, batch_size=2, lr=1e-3, checkpoint_every=5, **kw)


def test_a_few_steps_from_scratch_reduce_the_loss_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    teacher, enc = _teacher(3), new_text_encoder()
    done: list[int] = []
    state = ode_init(_tiny(), teacher, enc, tmp_path / "a.pt", on_step=lambda u, r: done.append(u))
    assert len(state.captions) == 3 and state.states[-1].shape[0] == 1  # the last batch is the remainder
    assert done == list(range(1, 2 + 30 + 1))  # 2 integration batches, then 30 regression steps
    losses = [r["loss"] for r in state.history]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    pairs = state.pairs(_tiny())
    assert pairs.states.dtype == torch.float16 and pairs.states.shape == (3, 4, 21, C, 8, 8)

    def interrupt(units, row):
        if units in (1, 9):  # after the first integration batch, and in the regression
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ode_init(_tiny(), teacher, enc, tmp_path / "b.pt", on_step=interrupt)
    with pytest.raises(KeyboardInterrupt):
        ode_init(_tiny(), teacher, enc, tmp_path / "b.pt", resume=True, on_step=interrupt)
    resumed = ode_init(_tiny(), teacher, enc, tmp_path / "b.pt", resume=True)
    assert torch.equal(torch.cat(resumed.x0), torch.cat(state.x0)) and resumed.captions == state.captions
    for a, b in zip(state.student.state_dict().values(), resumed.student.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(Exception, match="different settings"):
        ode_init(_tiny(guidance=1.0), teacher, enc, tmp_path / "b.pt", resume=True)
    with pytest.raises(Exception, match="already exists"):
        ode_init(_tiny(), teacher, enc, tmp_path / "b.pt")


def test_dmd_with_a_regression_weight_needs_the_pairs(tmp_path):
    with pytest.raises(ValueError, match="ODE pairs"):
        distill(DistillConfig(steps=1, regression_weight=0.5), _teacher(), new_text_encoder(), tmp_path / "d.pt")
    with pytest.raises(Exception, match="regression_weight"):
        DistillConfig(regression_weight=-1.0)


@pytest.mark.parametrize("option", [["--regression-weight", "1"], ["--merge", "0.3"], ["--dmd-init", "ode"]])
def test_cli_refuses_options_that_need_the_ode_stage_without_it(capsys, tmp_path, option):
    from deepforcing.cli import main

    code = main(["toyworld", "train", "--out", str(tmp_path / "t"), *option])
    err = capsys.readouterr().err
    assert code == 2 and option[0] in err and "--ode-steps" in err and not (tmp_path / "t").exists()


def test_merge_is_a_weight_interpolation():
    from deepforcing.toyworld.recipe import merge_students

    a, b = _teacher(4), _teacher(5)
    m = merge_students(a, b, 0.3)
    for name, v in m.state_dict().items():
        torch.testing.assert_close(v, 0.7 * a.state_dict()[name] + 0.3 * b.state_dict()[name], rtol=1e-6, atol=1e-6)
    assert all(torch.equal(x, y) for x, y in zip(merge_students(a, b, 0.0).parameters(), a.parameters(), strict=True))

"""Training the toy model from scratch on CPU: every stage, checkpoints that round-trip, the exported bundle."""

import json

import pytest
import torch
from safetensors.torch import load_file

from deepforcing.toyworld.autoencoder import AutoencoderConfig, ToyAutoencoder
from deepforcing.toyworld.distill import DistillConfig
from deepforcing.toyworld.model import load_toy_model
from deepforcing.toyworld.ode import OdeInitConfig
from deepforcing.toyworld.recipe import Recipe, train_toy_model
from deepforcing.toyworld.train import TrainConfig, make_batch, noise_layout, train_teacher
from deepforcing.toyworld.world import WorldConfig


def _tiny_recipe(teacher_steps: int = 4, distill_steps: int = 2) -> Recipe:
    return Recipe(
        autoencoder=AutoencoderConfig(steps=3, width=8, scenes=1, normalisation_scenes=2, checkpoint_every=2),
        teacher=TrainConfig(steps=teacher_steps, batch_size=1, warmup_steps=2, validation_clips=1, checkpoint_every=2),
        ode=OdeInitConfig(trajectories=2, ode_steps=2, steps=2, batch_size=1, checkpoint_every=1),
        distill=DistillConfig(
            steps=distill_steps,
            batch_size=1,
            critic_updates=1,
            regression_weight=1.0,
            validate_every=100,
            checkpoint_every=1,
        ),
        distill_init="ode",
        merge=0.25,
        validation_scenes=1,
        oracle_steps=2,
    )


def test_noise_layouts():
    cfg = TrainConfig(p_teacher=1.0)
    index, scored = noise_layout(cfg, 64, torch.Generator().manual_seed(0))
    assert index.shape == scored.shape == (64, 7)
    assert torch.equal(index < 0, ~scored)
    for row in index:
        clean = (row < 0).tolist()
        first = clean.index(False)
        assert all(clean[:first]) and not any(clean[first:])
    index, scored = noise_layout(TrainConfig(p_teacher=0.0), 64, torch.Generator().manual_seed(0))
    assert scored.all() and (index >= 0).all()
    # Full attention: one timestep per clip, every chunk scored.
    index, scored = noise_layout(cfg, 16, torch.Generator().manual_seed(0), bidirectional=True)
    assert scored.all() and (index == index[:, :1]).all() and (index >= 0).all()


def _random_autoencoder() -> ToyAutoencoder:
    torch.manual_seed(0)
    return ToyAutoencoder(16, 8).eval().requires_grad_(False)


def test_a_few_teacher_steps_from_scratch_reduce_the_loss_and_the_checkpoint_round_trips(tmp_path):
    torch.set_num_threads(1)
    ae = _random_autoencoder()
    cfg = TrainConfig(steps=12, batch_size=2, warmup_steps=3, validation_clips=2, validate_every=12, checkpoint_every=6)
    state = train_teacher(cfg, tmp_path / "a.pt", ae)
    first, last = state.history[0], state.history[-1]
    assert last["step"] == 12 and state.cpu_seconds > 0
    # The head starts at zero (v = 0); a dozen steps already move both validation losses down.
    assert last["val_loss"] < first["val_loss"] - 0.05 and last["val_loss_causal"] < first["val_loss_causal"] - 0.05
    assert {r["mode"] for r in state.history[1:]} == {"full", "causal"}

    def interrupt(step, row):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_teacher(cfg, tmp_path / "b.pt", ae, on_step=interrupt)
    resumed = train_teacher(cfg, tmp_path / "b.pt", ae, resume=True)
    for a, b in zip(state.ema_dit.state_dict().values(), resumed.ema_dit.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [seg["to_step"] for seg in resumed.segments] == [6, 12]
    with pytest.raises(Exception, match="different settings"):
        train_teacher(TrainConfig(steps=12, batch_size=3), tmp_path / "b.pt", ae, resume=True)


def test_all_stages_export_a_loadable_bundle_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    recipe = _tiny_recipe()
    card = train_toy_model(recipe, tmp_path / "a", command="deepforcing-eval toyworld train --out a")
    files = ("autoencoder.csv", "loss.csv", "loss.svg", "distill.csv", "distill.svg", "MODEL_CARD.md")
    for name in (*files, "ode.csv", "autoencoder.pt", "teacher.pt", "ode.pt", "distill.pt", "autoencoder.safetensors"):
        assert (tmp_path / "a" / name).is_file()
    header = (tmp_path / "a" / "distill.csv").read_text().splitlines()[0].split(",")
    rows = [
        dict(zip(header, line.split(","), strict=True))
        for line in (tmp_path / "a" / "distill.csv").read_text().splitlines()[1:]
    ]
    assert all(float(r["regression_loss"]) > 0 for r in rows)  # the DMD student also regresses on the ODE pairs
    run = card["run"]
    assert run["teacher"]["steps"] == 4 and run["distill"]["steps"] == 2 and run["distill"]["rollouts"] == 4
    assert run["autoencoder"]["steps"] == 3 and run["ode"]["trajectories"] == 2 and run["ode"]["steps"] == 2
    stages = sum(run[k]["cpu_seconds"] for k in ("autoencoder", "teacher", "ode", "distill"))
    assert run["cpu_seconds"] == pytest.approx(stages, abs=0.3)
    sampling = {"denoising_steps": [1000, 750, 500, 250], "shift": 5.0, "warp": True, "renoise": "fresh"}
    assert card["sampling"] == sampling  # the self-forcing preset's sampler, as it is
    model = load_toy_model(tmp_path / "a")
    assert model.sampling.denoising_steps == (1000, 750, 500, 250)
    # The bundle is 0.75 x the student's EMA from the stage-2 checkpoint + 0.25 x the stage-1b student, as float16.
    ema = torch.load(tmp_path / "a" / "distill.pt", weights_only=True)["ema"]
    ode = torch.load(tmp_path / "a" / "ode.pt", weights_only=True)["student"]
    assert card["training"]["merge"] == 0.25 and card["training"]["distill_init"] == "ode"
    for name, value in model.dit.state_dict().items():
        torch.testing.assert_close(value, torch.lerp(ema[name], ode[name], 0.25).half().float(), rtol=0, atol=0)
    assert (
        "dmd_student" in card["evaluation"] and "(1 − 0.25)·DMD EMA" in (tmp_path / "a" / "MODEL_CARD.md").read_text()
    )
    # ... and the autoencoder is stage 0's, in float32, with its latent normalisation.
    ae = torch.load(tmp_path / "a" / "autoencoder.pt", weights_only=True)["model"]
    for name, value in model.autoencoder.state_dict().items():
        torch.testing.assert_close(value, ae[name], rtol=0, atol=0)
    assert not torch.equal(model.autoencoder.latent_std, torch.ones(16))

    def interrupt(stage, step, total, row):
        if stage == "distill" and step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_toy_model(recipe, tmp_path / "b", on_progress=interrupt, command="x")
    resumed = train_toy_model(recipe, tmp_path / "b", resume=True, command="y")
    a = load_file(str(tmp_path / "a" / "generator.safetensors"))
    b = load_file(str(tmp_path / "b" / "generator.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    segments = json.loads((tmp_path / "b" / "card.json").read_text())["run"]["distill"]["segments"]
    assert [(s["command"], s["to_step"]) for s in segments] == [("x", 1), ("y", 2)]
    assert resumed["run"]["teacher"]["segments"][-1]["to_step"] == 4


def test_batches_are_deterministic():
    ae = _random_autoencoder()
    a = make_batch([1, 2], WorldConfig(), 6, ae)
    b = make_batch([1, 2], WorldConfig(), 6, ae)
    assert a.x0.shape == (2, 6, 16, 8, 8)
    assert torch.equal(a.x0, b.x0) and a.captions == b.captions

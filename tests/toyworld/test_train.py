import json

import pytest
import torch
from safetensors.torch import load_file

from deepforcing.toyworld.model import load_toy_model
from deepforcing.toyworld.train import TrainConfig, make_batch, noise_layout, train, validation_loss
from deepforcing.toyworld.world import WorldConfig


def test_noise_layout_teacher_forcing_has_clean_unscored_prefix():
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


def test_short_training_run_reduces_loss_and_exports_a_loadable_bundle(tmp_path):
    cfg = TrainConfig(steps=24, batch_size=2, warmup_steps=4, validation_clips=4, validate_every=24)
    card = train(cfg, tmp_path)
    run = card["run"]
    assert run["steps"] == 24
    assert run["final_val_loss"] < run["initial_val_loss"] - 0.05
    for name in ("loss.csv", "loss.svg", "MODEL_CARD.md", "card.json", "generator.safetensors", "checkpoint.pt"):
        assert (tmp_path / name).is_file()
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss") and len(lines) == 1 + 1 + 24
    model = load_toy_model(tmp_path)
    # Weights are stored as float16: the loaded model matches the trained EMA up to that rounding.
    assert abs(validation_loss(model.dit, model.text_encoder, cfg, WorldConfig()) - run["final_val_loss"]) < 1e-2


def test_resume_continues_exactly(tmp_path):
    cfg = TrainConfig(steps=4, batch_size=1, warmup_steps=2, validation_clips=1, validate_every=100, checkpoint_every=2)
    train(cfg, tmp_path / "a")

    def interrupt(step, row):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", on_step=interrupt)
    train(cfg, tmp_path / "b", resume=True)
    a, b = (
        load_file(str(tmp_path / "a" / "generator.safetensors")),
        load_file(str(tmp_path / "b" / "generator.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert [seg["to_step"] for seg in card["run"]["segments"]] == [2, 4]  # interrupted at 2, resumed to 4


def test_batches_are_deterministic():
    a = make_batch([1, 2], WorldConfig(), 6)
    b = make_batch([1, 2], WorldConfig(), 6)
    assert torch.equal(a.x0, b.x0) and a.captions == b.captions

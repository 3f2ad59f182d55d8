"""The checkpoint file every toy training stage shares: settings check, defaults for settings added later."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.toyworld.stage_checkpoint import read_stage, restore_progress, write_stage


@dataclass(frozen=True)
class _Cfg:
    steps: int = 10
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    added_later: float = 0.0


@dataclass
class _State:
    step: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list = field(default_factory=list)
    segments: list = field(default_factory=list)


def test_round_trip_and_the_settings_check(tmp_path: Path):
    state = _State(7, 1.5, 1.25, [{"loss": 0.5}], [{"command": "a", "to_step": 10}])
    write_stage(tmp_path / "c.pt", _Cfg(), state, {"w": torch.ones(2)})
    assert state.segments[-1]["to_step"] == 7 and not (tmp_path / "c.tmp").exists()
    raw = read_stage(tmp_path / "c.pt", _Cfg(steps=20))  # step counts may change
    assert torch.equal(raw["w"], torch.ones(2)) and raw["config"]["betas"] == [0.9, 0.99]
    fresh = _State()
    restore_progress(fresh, raw)
    assert (fresh.step, fresh.seconds, fresh.cpu_seconds, fresh.history) == (7, 1.5, 1.25, [{"loss": 0.5}])
    with pytest.raises(UserError, match=r"different settings \(lr\)"):
        read_stage(tmp_path / "c.pt", _Cfg(lr=1.0))


def test_a_setting_the_checkpoint_predates_counts_as_its_default(tmp_path: Path):
    write_stage(tmp_path / "c.pt", _Cfg(), _State(), {})
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    del raw["config"]["added_later"]
    torch.save(raw, tmp_path / "old.pt")
    read_stage(tmp_path / "old.pt", _Cfg())  # the default: the behaviour the old run had
    with pytest.raises(UserError, match="added_later"):
        read_stage(tmp_path / "old.pt", _Cfg(added_later=1.0))

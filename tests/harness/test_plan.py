"""Work-plan expansion, content keys and the GPU-time estimate."""

import dataclasses

import pytest

from deepforcing import ENGINE_VERSION
from deepforcing.harness.plan import PAPER_FPS, UnitKey, build_plan, paper_fps, pixel_frames
from deepforcing.harness.suites import Overrides, load_suite

BASE = UnitKey(
    method_config_hash="88d8d2898aa9",
    weights_id="tiny:tiny@0123456789ab",
    model="tiny",
    prompt_id="mgb-0001",
    prompt_sha256="ab" * 32,
    seed=0,
    num_latent_frames=42,
    dtype="float32",
)


def test_same_inputs_same_key():
    again = UnitKey(**dataclasses.asdict(BASE))
    assert again.key == BASE.key and len(BASE.key) == 16
    assert BASE.engine_version == ENGINE_VERSION


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method_config_hash", "3d2ba7d00000"),
        ("weights_id", "tiny:tiny@ffffffffffff"),
        ("model", "medium"),
        ("prompt_id", "mgb-0002"),
        ("prompt_sha256", "cd" * 32),
        ("seed", 1),
        ("num_latent_frames", 45),
        ("dtype", "bfloat16"),
        ("engine_version", ENGINE_VERSION + "-next"),
    ],
)
def test_any_changed_input_changes_the_key(field, value):
    assert dataclasses.replace(BASE, **{field: value}).key != BASE.key


def test_plan_expansion_and_keys():
    suite = load_suite("smoke-tiny", Overrides(seeds=(0, 3)))
    plan = build_plan(suite, dtype="float32")
    # method-major, then prompts, then seeds
    assert [(i.method, i.prompt.prompt_id, i.seed) for i in plan.items[:4]] == [
        ("self-forcing", "mgb-0001", 0),
        ("self-forcing", "mgb-0001", 3),
        ("self-forcing", "mgb-0002", 0),
        ("self-forcing", "mgb-0002", 3),
    ]
    assert len(plan.items) == 3 * 2 * 2 and len(plan.units()) == 12
    assert len({i.unit.key for i in plan.items}) == 12
    # one weights id for the tiny model, content-derived
    assert len({i.unit.weights_id for i in plan.items}) == 1
    assert plan.items[0].unit.weights_id.startswith("tiny:tiny@")
    # the plan is a pure function of the suite
    assert [i.unit.key for i in build_plan(suite, dtype="float32").items] == [i.unit.key for i in plan.items]
    assert build_plan(suite, dtype="bfloat16").items[0].unit.key != plan.items[0].unit.key


def test_identical_method_configs_share_units():
    # deep-forcing-query-both is deep-forcing with the knob at its default value: same sampler/policy config.
    suite = load_suite("smoke-tiny", Overrides(methods=("deep-forcing", "deep-forcing-query-both")))
    plan = build_plan(suite, dtype="float32")
    assert len(plan.items) == 4 and len(plan.units()) == 2
    assert {i.method for i in plan.units()} == {"deep-forcing"}


def test_estimate_uses_paper_fps():
    assert paper_fps("self-forcing") == (15.78, True)
    assert paper_fps("deep-forcing") == (15.75, True)
    assert paper_fps("rolling-forcing") == (15.79, True)
    assert paper_fps("deep-forcing-ds-sink4") == (15.75, False)
    assert paper_fps("sink-longlive") == (15.78, False)
    suite = load_suite("smoke-tiny")
    plan = build_plan(suite, dtype="float32", resolve_weights=False)
    est = plan.estimate_seconds()
    assert est["self-forcing"] == pytest.approx(2 * pixel_frames(42) / PAPER_FPS["self-forcing"])
    assert pixel_frames(240) == 957  # "60 s": 59.8 s at 16 fps

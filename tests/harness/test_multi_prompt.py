"""Multi-prompt suites: schedules as the suite's prompts, every method x switch mode it defines, segments recorded."""

import json
from pathlib import Path

import pytest

from deepforcing.cli import main
from deepforcing.errors import UserError
from deepforcing.harness.plan import build_plan
from deepforcing.harness.suites import load_suite

SCHEDULES = """
schedules:
  - id: two-scenes
    segments:
      - {prompt: a red ball rolls on grass, latent_frames: 6}
      - {prompt: the red ball stops under a tree, latent_frames: 6}
  - id: one-scene
    segments:
      - {prompt: a blue cube spins, latent_frames: 12}
"""


def _suite(tmp_path: Path, **extra) -> Path:
    (tmp_path / "schedules.yaml").write_text(SCHEDULES)
    lines = [
        "name: mp-tiny",
        "version: 1",
        "model: tiny",
        f"prompt_schedule: {{file: {tmp_path / 'schedules.yaml'}}}",
        "methods: [self-forcing, infinity-rope]",
        "seeds: [0]",
        "metrics: [image_stats]",
        "clip_seconds: 1",
        "allow_short: true",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    path = tmp_path / "mp-tiny.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_switch_modes_expand_the_methods_that_define_them(tmp_path):
    suite = load_suite(str(_suite(tmp_path, switch="[flush, cut]")))
    assert suite.methods == ("self-forcing+flush", "infinity-rope+flush", "infinity-rope+cut")
    assert suite.num_latent_frames == 12  # the schedules' common length
    plan = build_plan(suite, dtype="float32", resolve_weights=False)
    keys = {(it.method, it.prompt.prompt_id): it.unit for it in plan.items}
    # a one-prompt schedule has no switch: its units do not depend on the mode
    assert keys[("infinity-rope+flush", "one-scene")].key == keys[("infinity-rope+cut", "one-scene")].key
    assert keys[("infinity-rope+flush", "two-scenes")].key != keys[("infinity-rope+cut", "two-scenes")].key
    assert keys[("infinity-rope+cut", "two-scenes")].switch == "cut"


def test_schedule_problems_are_listed_together(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "- {prompt: '', seconds: 2}\n- {prompt: b, seconds: -1}\n- {prompt: c, latent_frames: 4, seconds: 1}\n"
    )
    path = _suite(tmp_path)
    path.write_text(path.read_text().replace("schedules.yaml", "bad.yaml"))
    with pytest.raises(UserError) as err:
        load_suite(str(path))
    message = str(err.value)
    assert "segment 1: the prompt is empty" in message
    assert "segment 2: seconds -1 is not a positive duration" in message
    assert "segment 3: give exactly one of" in message


def test_a_multi_prompt_suite_runs_and_every_unit_records_its_segments(tmp_path):
    out = tmp_path / "runs"
    code = main(["-q", "--suite", str(_suite(tmp_path, switch="[flush, cut]")), "--out", str(out), "--no-score"])
    assert code == 0
    units = [json.loads(p.read_text()) for p in sorted(out.rglob("units/*/unit.json"))]
    by = {(u["method"], u["prompt"]["prompt_id"]): u for u in units}
    two = by[("infinity-rope+cut", "two-scenes")]
    assert two["switch_frames"] == [6] and two["unit"]["switch"] == "cut"
    assert [(s["prompt"], s["start_s"], s["end_s"]) for s in two["segments"]] == [
        ("a red ball rolls on grass", 0.0, 21 / 16),  # latent frame 6 = video frames 21-24
        ("the red ball stops under a tree", 21 / 16, 45 / 16),
    ]
    one = by[("infinity-rope+flush", "one-scene")]  # shared with +cut: one prompt, no switch
    assert one["switch_frames"] == [] and len(one["segments"]) == 1 and ("infinity-rope+cut", "one-scene") not in by
    assert len(units) == 5  # 3 methods x 2 schedules, minus the shared one-prompt unit


def test_a_method_that_defines_none_of_the_modes_is_a_suite_problem(tmp_path):
    with pytest.raises(UserError, match="method 'self-forcing' defines none of the modes"):
        load_suite(str(_suite(tmp_path, switch="[cut]")))


def test_prompt_switch_metrics_score_generated_units_against_their_segments(tmp_path):
    """The engine's recorded segments reach the scorer: switch latency is measured at the recorded switch."""
    pytest.importorskip("open_clip")
    import torch

    from deepforcing.metrics.weights import weights_for
    from tests.metrics.parity.tiny import tiny_openai_clip_state_dict

    weights = tmp_path / "weights"
    (w,) = weights_for(["switch_latency"])
    (weights / w.relpath).parent.mkdir(parents=True)
    torch.save(tiny_openai_clip_state_dict(seed=21, embed_dim=64, patch=32, vocab=49408), weights / w.relpath)
    suite = _suite(tmp_path, switch="[cut]")
    (tmp_path / "schedules.yaml").write_text(SCHEDULES.split("  - id: one-scene")[0])  # the two-scene video only
    suite.write_text(suite.read_text().replace("[self-forcing, infinity-rope]", "[infinity-rope]"))
    suite.write_text(suite.read_text().replace("[image_stats]", "[switch_latency]"))
    out = tmp_path / "runs"
    assert main(["-q", "--suite", str(suite), "--out", str(out), "--weights-dir", str(weights), "--no-report"]) == 0
    (aggregate,) = out.rglob("aggregate.json")
    result = json.loads(aggregate.read_text())
    assert result["n_samples"]["infinity-rope+cut"] == {
        "expected": 1,
        "generated": 1,
        "scored": 1,
        "failed": 0,
        "missing": 0,
    }
    (clips,) = out.rglob("clips.jsonl")
    rows = [json.loads(line) for line in clips.read_text().splitlines()]
    (row,) = [r for r in rows if r.get("record") == "clip" and r["metric"].startswith("switch_latency")]
    assert (row["start_frame"], row["stop_frame"]) == (21, 45)  # the recorded switch: latent frame 6 = video frame 21
    assert 0 <= row["value"] <= 24 / 16  # seconds after the switch, at most the new scene's length

"""Suite validation: one error with the YAML line and the valid choices; prompt sets with stable ids."""

import json
import textwrap

import pytest

from deepforcing.errors import UserError
from deepforcing.harness import prompts as prompt_sets
from deepforcing.harness.suites import Overrides, available_suites, load_suite, select_prompts

GOOD = """\
name: {name}
version: 1
description: test suite
model: tiny
prompts:
  set: moviegen
  first: 3
methods: [self-forcing, deep-forcing]
seeds: [0, 1]
length:
  latent_frames: 9
metrics: [image_stats]
drift: [image_stats]
"""


def write_suite(tmp_path, text, name="t"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).format(name=name))
    return str(path)


def error_of(path, overrides=None):
    with pytest.raises(UserError) as info:
        load_suite(path, overrides)
    return str(info.value)


def test_good_suite_resolves(tmp_path):
    suite = load_suite(write_suite(tmp_path, GOOD))
    assert suite.methods == ("self-forcing", "deep-forcing")
    assert suite.num_latent_frames == 9 and suite.seeds == (0, 1)
    assert [p.prompt_id for p in select_prompts(suite)] == ["mgb-0001", "mgb-0002", "mgb-0003"]
    assert len(suite.config_hash) == 12
    # the hash is content: same file -> same hash; an override -> another hash
    assert load_suite(write_suite(tmp_path, GOOD)).config_hash == suite.config_hash
    assert load_suite(write_suite(tmp_path, GOOD), Overrides(seeds=(0,))).config_hash != suite.config_hash


def test_unknown_method_names_line_and_choices(tmp_path):
    path = write_suite(tmp_path, GOOD.replace("[self-forcing, deep-forcing]", "[self-forcing, deep-forcng]"))
    msg = error_of(path)
    assert "t.yaml:8: unknown method 'deep-forcng'" in msg
    assert "did you mean 'deep-forcing'" in msg and "choose one of:" in msg and "sink-longlive" in msg


def test_every_problem_in_one_error(tmp_path):
    text = (
        GOOD.replace("[image_stats]\ndrift", "[image_stats, imaging_qualty]\ndrift")
        .replace("set: moviegen", "set: moviegen-extendd")
        .replace("latent_frames: 9", "latent_frames: 10")
    )
    msg = error_of(write_suite(tmp_path, text))
    assert "3 problems" in msg
    assert "t.yaml:6: unknown prompt set 'moviegen-extendd'" in msg and "moviegen-extended" in msg
    assert "t.yaml:11: 2.5 s = 10 latent frames is not a whole number of 3-frame chunks" in msg
    assert "nearest whole-chunk lengths: 2.25 s = 9 latent frames or 3 s = 12 latent frames" in msg
    assert "t.yaml:12: unknown metric 'imaging_qualty'" in msg and "temporal_flickering" in msg


def test_duration_in_seconds_must_be_whole_chunks(tmp_path):
    path = write_suite(tmp_path, GOOD.replace("latent_frames: 9", "seconds: 50"))
    msg = error_of(path)
    assert "50 s = 200 latent frames is not a whole number of 3-frame chunks" in msg
    assert "49.5 s = 198 latent frames or 50.25 s = 201 latent frames" in msg
    assert load_suite(write_suite(tmp_path, GOOD.replace("latent_frames: 9", "seconds: 60"))).num_latent_frames == 240


def test_duplicate_prompt_ids_in_suite_ignoring_case(tmp_path):
    text = GOOD.replace("  first: 3", "  ids: [mgb-0001, mgb-0007, MGB-0001]")
    msg = error_of(write_suite(tmp_path, text))
    assert "t.yaml:7: duplicate prompt id 'MGB-0001'" in msg


def test_duplicate_prompt_ids_in_a_prompt_file(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        "\n".join(json.dumps(r) for r in [{"prompt_id": "a", "prompt": "x"}, {"prompt_id": "A", "prompt": "y"}])
    )
    text = GOOD.replace("  set: moviegen\n  first: 3", f"  file: {prompts}")
    msg = error_of(write_suite(tmp_path, text))
    assert "duplicate prompt id 'A'" in msg and "p:1 and p:2" in msg


def test_unknown_prompt_id_and_field(tmp_path):
    text = GOOD.replace("  first: 3", "  ids: [mgb-0001, mgb-9999]").replace("seeds: [0, 1]", "seeds: [0, 1]\nsteps: 4")
    msg = error_of(write_suite(tmp_path, text))
    assert "t.yaml:7: unknown prompt id 'mgb-9999'" in msg and "mgb-0001 … mgb-1003" in msg
    assert "unknown field 'steps'" in msg


def test_drift_needs_its_metric_and_fvd_needs_two_windows(tmp_path):
    text = GOOD.replace("metrics: [image_stats]", "metrics: [fvd]")
    msg = error_of(write_suite(tmp_path, text))
    assert "t.yaml:12: temporal FVD compares the first and last 5 s, but the videos are 2.06 s" in msg
    assert "drift of 'image_stats' needs 'image_stats' in metrics" in msg
    assert load_suite(write_suite(tmp_path, text.replace("drift: [image_stats]", "fvd_window_s: 1"))).metrics == (
        "fvd",
    )


def test_a_copy_under_another_name_is_its_own_suite(tmp_path, caplog):
    path = tmp_path / "my-copy.yaml"
    path.write_text(GOOD.format(name="t"))  # copied from t.yaml, `name:` not edited
    with caplog.at_level("WARNING", logger="deepforcing.harness.suites"):
        suite = load_suite(str(path))
    assert suite.name == "my-copy"  # its runs go to <out>/my-copy/, never into the original's
    assert "my-copy.yaml:1: name 't' differs from the file name; the suite is called 'my-copy'" in caplog.text
    original = load_suite(write_suite(tmp_path, GOOD))
    assert original.name == "t" and original.config_hash != suite.config_hash
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text(GOOD.format(name="x").split("\n", 1)[1])
    assert load_suite(str(nameless)).name == "nameless"


def test_missing_fields_are_reported_with_every_other_problem(tmp_path):
    text = GOOD.replace("version: 1\n", "").replace("seeds: [0, 1]\n", "").replace("deep-forcing]", "deep-forcng]")
    text = text.replace("metrics: [image_stats]", "metrics: [image_stat]")
    msg = error_of(write_suite(tmp_path, text))
    assert "(5 problems)" in msg
    for needle in (
        "missing required field 'version'",
        "missing required field 'seeds'",
        "unknown method 'deep-forcng'",
        "unknown metric 'image_stat'",
        "drift of 'image_stats' needs 'image_stats' in metrics",
    ):
        assert needle in msg


def test_problems_that_would_fail_unit_by_unit_are_found_up_front(tmp_path):
    text = GOOD.replace("[self-forcing, deep-forcing]", "[self-forcing, rolling-forcing]")
    msg = error_of(write_suite(tmp_path, text))  # rolling windows need 5 chunks: 15 latent frames
    assert "method 'rolling-forcing' needs at least 15 latent frames, got 9" in msg
    toy = GOOD.replace("model: tiny", "model: toyworld")  # moviegen prompts are not toy captions
    msg = error_of(write_suite(tmp_path, toy))
    assert "3 of 3 prompts cannot be read by the toyworld model" in msg and "mgb-0001 (toy caption:" in msg
    assert "toyworld captions" in msg


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = write_suite(tmp_path, GOOD.replace("seeds: [0, 1]", "seeds: [0, 1"))
    assert "t.yaml:" in error_of(path) and "invalid YAML" in error_of(path)


def test_overrides_are_validated_and_name_the_flag(tmp_path):
    path = write_suite(tmp_path, GOOD)
    assert "--methods: unknown method 'nope'" in error_of(path, Overrides(methods=("self-forcing", "nope")))
    assert "--duration: 10.1 s is 40.4 latent frames" in error_of(path, Overrides(seconds=10.1))
    assert "--num-latent-frames: " in error_of(path, Overrides(latent_frames=4))
    assert "--limit: 4 is more than the suite's 3 prompts" in error_of(path, Overrides(limit=4))
    suite = load_suite(path, Overrides(limit=2, metrics=("temporal_flickering",)))
    assert len(select_prompts(suite)) == 2 and suite.drift == ()
    assert ("--limit", "2") in suite.overrides


def test_every_shipped_suite_validates():
    shipped = {"smoke", "smoke-tiny", "vbench-long", "vbench-long-30s", "vbench-long-60s", "ablation-sink"}
    assert shipped | {"ablation-pc", "project-page"} <= set(available_suites())
    for name in available_suites():
        suite = load_suite(name)  # raises on any problem
        assert suite.metrics, name
    table1 = load_suite("vbench-long")
    assert {"motion_smoothness", "overall_consistency", "subject_consistency", "imaging_quality"} <= set(table1.metrics)


def test_shipped_suite_protocols():
    tiny = load_suite("smoke-tiny")
    assert tiny.model == "tiny" and len(select_prompts(tiny)) * len(tiny.methods) == 6
    smoke = load_suite("smoke")  # the quick start: the toy model, 10x its trained horizon of 21 frames
    assert smoke.model == "toyworld" and smoke.num_latent_frames >= 10 * 21
    assert {"self-forcing", "deep-forcing"} <= set(smoke.methods) and any(m.startswith("sink-") for m in smoke.methods)
    assert "toy_oracle" in smoke.metrics and all(p.prompt_id.startswith("toy-") for p in select_prompts(smoke))
    ov = Overrides(methods=("self-forcing", "deep-forcing"), metrics=("aesthetic_quality",))
    for name, frames, n_prompts in [
        ("vbench-long", 126, 128),
        ("vbench-long-60s", 240, 128),
        ("ablation-sink", 201, 21),
    ]:
        suite = load_suite(name, ov)
        assert suite.num_latent_frames == frames and len(select_prompts(suite)) == n_prompts
    assert load_suite("vbench-long", ov).name == "vbench-long-30s"  # the alias
    page = load_suite("project-page", ov)
    texts = [p.text for p in select_prompts(page)]
    assert texts[0].startswith("A stylish woman strolls down a bustling Tokyo street")
    assert "Victoria crowned pigeon" in texts[1] and "cloud shaped like a man" in texts[2] and "tsunami" in texts[3]


def test_prompt_sets_are_pinned_and_ids_stable():
    for name in prompt_sets.available_sets():
        prompts = prompt_sets.load_set(name)
        assert len({p.prompt_id for p in prompts}) == len(prompts)
    ext = prompt_sets.load_set("moviegen-extended")
    assert len(ext) == 1003 and ext[6].prompt_id == "mgbx-0007" and ext[6].origin == "moviegen-extended:7"
    assert len(prompt_sets.load_set("vbench")) == 946


def test_changed_prompt_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "prompts" / "x").mkdir(parents=True)
    (tmp_path / "prompts" / "x" / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "prompts" / "sets.yaml").write_text(
        "sets:\n  x: {file: x/a.txt, format: lines, id_format: 'x-{line}', sha256: '00'}\n"
    )
    monkeypatch.setenv("DEEPFORCING_HOME", str(tmp_path))
    prompt_sets.registered_sets.cache_clear()
    try:
        with pytest.raises(UserError, match="does not match its pinned sha256"):
            prompt_sets.load_set("x")
    finally:
        prompt_sets.registered_sets.cache_clear()

"""Suite ``metric_options``: validated per metric, part of the suite hash and the metric fingerprint."""

import textwrap

import pytest
import torch

from deepforcing.errors import UserError
from deepforcing.harness.suites import load_suite

SUITE = """\
name: t
version: 1
model: tiny
prompts: {set: moviegen, first: 1}
methods: [self-forcing]
seeds: [0]
length: {latent_frames: 9}
metrics: [image_stats, temporal_flickering, subject_consistency]
"""


def write(tmp_path, extra=""):
    path = tmp_path / "t.yaml"
    path.write_text(SUITE + textwrap.dedent(extra))
    return str(path)


def test_options_resolve_and_change_the_hash(tmp_path):
    plain = load_suite(write(tmp_path))
    assert plain.metric_options == ()
    with_opts = load_suite(
        write(
            tmp_path,
            """\
            metric_options:
              temporal_flickering: {static_filter: true}
              subject_consistency: {slow_fast: true, w_inclip: 0.7, w_clip2clip: 0.3}
            """,
        )
    )
    assert with_opts.options_for("temporal_flickering") == {"static_filter": True}
    assert with_opts.options_for("subject_consistency") == {"slow_fast": True, "w_inclip": 0.7, "w_clip2clip": 0.3}
    assert with_opts.options_for("image_stats") == {}
    assert with_opts.config_hash != plain.config_hash


def test_bad_options_are_one_error_with_lines(tmp_path):
    path = write(
        tmp_path,
        """\
        metric_options:
          temporal_flickering: {static_filter: yes please}
          subject_consistency: {slowfast: true, w_inclip: -1}
          image_stats: {bins: 10}
          dynamic_degree: {iters: 12}
        """,
    )
    with pytest.raises(UserError) as info:
        load_suite(path)
    msg = str(info.value)
    assert "5 problems" in msg
    assert "t.yaml:10: temporal_flickering.static_filter must be true or false, got 'yes please'" in msg
    assert "t.yaml:11: unknown option 'slowfast' of 'subject_consistency'" in msg and "did you mean 'slow_fast'" in msg
    assert "subject_consistency.w_inclip must be a number >= 0, got -1" in msg
    assert "t.yaml:12: metric 'image_stats' takes no options" in msg
    assert "t.yaml:13: options for 'dynamic_degree' need 'dynamic_degree' in metrics" in msg


def test_static_filter_option_reaches_the_metric(tmp_path):
    from deepforcing.harness.scoring import build_metric, plan_metrics
    from deepforcing.metrics.weights import weights_for
    from tests.metrics.parity.tiny import raft_things_state_dict

    pytest.importorskip("torchvision")
    # the static filter needs raft-things.pth: missing -> the usual "weight file(s) missing" error
    options = {"temporal_flickering": {"static_filter": True}}
    with pytest.raises(UserError, match="raft-things.pth"):
        plan_metrics(("temporal_flickering",), 2.0, False, tmp_path, metric_options=options)
    raft = tmp_path / weights_for(["dynamic_degree"])[0].relpath
    raft.parent.mkdir(parents=True)
    torch.save(raft_things_state_dict(0), raft)
    plain = plan_metrics(("temporal_flickering",), 2.0, False, tmp_path)["temporal_flickering"]
    plan = plan_metrics(("temporal_flickering",), 2.0, False, tmp_path, metric_options=options)["temporal_flickering"]
    assert plan.fingerprint != plain.fingerprint and "raft_things" in plan.weights
    metric = build_metric(plan, "cpu")
    assert metric.filter is not None and metric.id.endswith("static_filter=true")
    assert build_metric(plain, "cpu").filter is None


def test_scene_split_is_validated_hashed_and_needs_pyscenedetect(tmp_path, monkeypatch):
    import importlib.util

    from deepforcing.harness.scoring import plan_metrics

    plain = load_suite(write(tmp_path))
    assert plain.scene_split is False
    split = load_suite(write(tmp_path, "scene_split: true\n"))
    assert split.scene_split is True and split.config_hash != plain.config_hash
    with pytest.raises(UserError, match="scene_split must be true or false, got 'yes'"):
        load_suite(write(tmp_path, "scene_split: 'yes'\n"))
    if importlib.util.find_spec("scenedetect") is None:
        with pytest.raises(UserError, match=r"deepforcing-eval\[scenes\]"):
            plan_metrics(("image_stats",), 2.0, False, tmp_path, scene_split=True)
    else:
        a = plan_metrics(("image_stats",), 2.0, False, tmp_path)["image_stats"]
        b = plan_metrics(("image_stats",), 2.0, False, tmp_path, scene_split=True)["image_stats"]
        assert a.fingerprint != b.fingerprint


def test_every_registered_metric_and_suite_metric_has_a_builder():
    from deepforcing.harness.scoring import check_buildable
    from deepforcing.harness.suites import available_suites
    from deepforcing.metrics import available_metrics

    check_buildable(tuple(available_metrics()))  # raises naming any metric a suite could ask for but not get
    for name in available_suites():
        check_buildable(load_suite(name).metrics)


def test_dynamic_degree_and_imaging_quality_build_from_their_weight_files(tmp_path):
    from deepforcing.harness.scoring import build_metric, plan_metrics
    from deepforcing.metrics.weights import weights_for
    from tests.metrics.parity.tiny import musiq_state_dict, raft_things_state_dict

    pytest.importorskip("torchvision")
    names = ("dynamic_degree", "imaging_quality")
    for w, state in zip(weights_for(names), (raft_things_state_dict(0), musiq_state_dict(0)), strict=True):
        (tmp_path / w.relpath).parent.mkdir(parents=True)
        torch.save(state, tmp_path / w.relpath)
    plans = plan_metrics(names, 2.0, False, tmp_path, metric_options={"dynamic_degree": {"early_exit": False}})
    dynamic, imaging = (build_metric(plans[n], "cpu") for n in names)
    assert dynamic.config.early_exit is False and dynamic.id.startswith("vbench.dynamic_degree@")
    assert imaging.id.startswith("vbench.imaging_quality@")
    default = plan_metrics(("dynamic_degree",), 2.0, False, tmp_path)["dynamic_degree"]
    assert build_metric(default, "cpu").config.early_exit is True


def test_seconds_options_of_the_long_horizon_and_switch_metrics(tmp_path):
    suite = SUITE.replace("metrics: [image_stats, temporal_flickering, subject_consistency]",
                          "metrics: [long_horizon_coherence, switch_latency, transition_smoothness]")  # fmt: skip
    path = tmp_path / "t.yaml"
    path.write_text(
        suite
        + "metric_options:\n"
        + "  long_horizon_coherence: {stride_s: 0.5, gaps_s: [1, 2.5, 10]}\n"
        + "  switch_latency: {search_s: 4}\n"
        + "  transition_smoothness: {window_s: 1.5}\n"
    )
    s = load_suite(str(path))
    assert s.options_for("long_horizon_coherence") == {"gaps_s": (1, 2.5, 10), "stride_s": 0.5}
    assert s.options_for("switch_latency") == {"search_s": 4} and hash(s.metric_options)
    path.write_text(
        suite
        + "metric_options:\n"
        + "  long_horizon_coherence: {stride_s: 0, gaps_s: [5, 2]}\n"
        + "  switch_latency: {search_s: true}\n"
    )
    with pytest.raises(UserError) as info:
        load_suite(str(path))
    msg = str(info.value)
    assert "3 problems" in msg and "long_horizon_coherence.gaps_s must be a list of increasing seconds" in msg
    assert "stride_s must be a number of seconds > 0, got 0" in msg and "switch_latency.search_s" in msg

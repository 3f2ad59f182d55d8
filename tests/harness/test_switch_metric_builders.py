"""The harness builds the long-horizon and prompt-switch metrics from the weight files of the registry."""

import pytest
import torch

from deepforcing.metrics.weights import weights_for


def test_builders_map_the_registry_files_to_each_config():
    from deepforcing.harness.scoring import _BUILDERS, check_buildable

    names = (
        "long_horizon_coherence",
        "segment_text_alignment",
        "switch_accuracy",
        "transition_smoothness",
        "switch_latency",
    )
    check_buildable(names)
    paths = {w.key: f"/w/{w.key}" for w in weights_for(names)}
    assert set(paths) == {"dino_vitb16", "openai_clip_vit_b32", "viclip"}
    assert _BUILDERS["long_horizon_coherence"](paths).weights == "/w/dino_vitb16"
    for name in ("segment_text_alignment", "switch_accuracy"):
        config = _BUILDERS[name](paths)
        assert (config.viclip_weights, config.clip_weights) == ("/w/viclip", "/w/openai_clip_vit_b32")
        assert {w.key for w in weights_for([name])} == {"viclip", "openai_clip_vit_b32"}
    smooth = _BUILDERS["transition_smoothness"](paths)
    assert (smooth.dino_weights, smooth.clip_weights) == ("/w/dino_vitb16", "/w/openai_clip_vit_b32")
    assert _BUILDERS["switch_latency"](paths).clip_weights == "/w/openai_clip_vit_b32"


def test_switch_latency_builds_from_its_weight_file_with_options(tmp_path):
    from deepforcing.harness.scoring import _source_files, build_metric, plan_metrics
    from tests.metrics.parity.tiny import tiny_openai_clip_state_dict

    pytest.importorskip("open_clip")
    (w,) = weights_for(["switch_latency"])
    (tmp_path / w.relpath).parent.mkdir(parents=True)
    torch.save(tiny_openai_clip_state_dict(seed=21, embed_dim=64, patch=32, vocab=49408), tmp_path / w.relpath)
    plan = plan_metrics(("switch_latency",), 2.0, False, tmp_path, metric_options={"switch_latency": {"search_s": 3}})
    metric = build_metric(plan["switch_latency"], "cpu")
    assert metric.id.endswith("search=3s") and metric.config.search_s == 3
    assert {"text_alignment.py", "segments.py", "switch_latency.py"} <= {
        f.name for f in _source_files("switch_latency")
    }

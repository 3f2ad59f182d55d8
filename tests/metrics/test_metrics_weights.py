import pytest

from deepforcing.errors import UserError
from deepforcing.metrics import METRICS, PLANNED_METRICS, get_metric
from deepforcing.metrics.weights import METRIC_WEIGHTS, check_metric_weights, weights_for


def test_table_refers_to_registered_metrics():
    for w in METRIC_WEIGHTS:
        assert set(w.metrics) <= set(METRICS) | set(PLANNED_METRICS), w.key
    assert weights_for(["image_stats", "temporal_flickering"]) == []


def test_metric_files_are_in_the_project_registry_group():
    from deepforcing import weights

    group = set(weights.groups()["metrics"])
    hub = {w.hub_key for w in METRIC_WEIGHTS if w.hub_key}
    assert hub == group
    for key in hub:
        entry = weights.get(key)
        metric_file = next(w for w in METRIC_WEIGHTS if w.hub_key == key)
        if entry.url is None:  # a Hub file: same file name
            assert entry.filename == metric_file.relpath.rsplit("/", 1)[1]
        else:  # a plain-URL file: same URL, and it lands where the harness looks (<root>/<relpath>)
            assert f"{entry.repo_id}/{entry.filename}" == metric_file.relpath
            assert metric_file.source.startswith(entry.url)
            assert (entry.sha256, entry.size_bytes) == (metric_file.sha256, metric_file.size)


def test_planned_metric_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(PLANNED_METRICS, "future_dimension", "its backbone is not ported yet")
    with pytest.raises(UserError, match="not implemented yet: its backbone"):
        get_metric("future_dimension")
    assert not {"motion_smoothness", "overall_consistency"} & set(PLANNED_METRICS)  # the Table-1 columns exist


def test_missing_files_are_listed_together(tmp_path):
    with pytest.raises(UserError) as err:
        check_metric_weights(["aesthetic_quality", "subject_consistency", "image_stats"], tmp_path)
    msg = str(err.value)
    assert "3 metric weight file(s) missing" in msg
    for name in ("ViT-L-14.pt", "sa_0_4_vit_l_14_linear.pth", "dino_vitbase16_pretrain.pth"):
        assert name in msg
    assert "ViT-B-32.pt" not in msg and "i3d" not in msg


def test_present_files_are_returned(tmp_path):
    for w in weights_for(["fvd"]):
        (tmp_path / w.relpath).parent.mkdir(parents=True)
        (tmp_path / w.relpath).write_bytes(b"x")
    assert set(check_metric_weights(["fvd"], tmp_path)) == {"i3d_styleganv"}


def test_metric_metadata_file_matches_the_registry():
    from pathlib import Path

    import yaml

    from deepforcing.metrics.image_stats import ImageStatistics
    from deepforcing.metrics.vbench.temporal_flickering import TemporalFlickering

    meta = yaml.safe_load((Path(__file__).parents[2] / "eval" / "metrics.yaml").read_text())
    entries = {m["name"]: m for m in meta["metrics"]}
    assert set(entries) == set(METRICS) | set(PLANNED_METRICS)
    for name, m in entries.items():
        assert m["direction"] in ("higher", "lower", None), name
        assert (m["status"] == "planned") == (name in PLANNED_METRICS), name
    assert entries["temporal_flickering"]["id"] == TemporalFlickering().metric_ids[0]
    assert entries["image_stats"]["id"] == ImageStatistics().metric_ids

"""The published numbers: byte-identical to the source, every row mapped or explained, names that exist."""

import csv
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from deepforcing import methods
from deepforcing.paths import project_root
from deepforcing.report.published import load_published, published_dir

CSV = published_dir() / "published_results.csv"
#: Method presets named in mapping.yaml that issue 15 adds (baselines/methods/ on the methods branch); until they
#: exist here the mapping may name them, and only them, ahead of time.
ISSUE_15_PRESETS = {"rolling-sink", "infinity-rope", "infinity-rope-sf", "memrope", "lol-paper", "longlive"}


def test_csv_matches_the_recorded_sha256():
    sources = (published_dir() / "SOURCES.md").read_text()
    recorded = re.search(r"`published_results\.csv` \| `([0-9a-f]{64})`", sources).group(1)
    assert hashlib.sha256(CSV.read_bytes()).hexdigest() == recorded


def test_csv_is_identical_to_the_shared_copy_when_present():
    shared = project_root().parent / "shared" / "data" / "published_results.csv"
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared} (outside the project workspace)")
    assert CSV.read_bytes() == shared.read_bytes()


def test_every_published_method_and_metric_is_mapped_or_explained():
    pub = load_published()
    rows = list(csv.DictReader(CSV.open()))
    assert len(rows) == len(pub.values) == 861
    assert set(pub.sources) == {r["source"] for r in rows} and pub.sources[0] == "Deep Forcing arXiv 2512.05081v1"
    for key in {(r["source"], r["method"]) for r in rows}:
        assert key in pub.methods or key in pub.unmatched_by_source, f"{key} is neither mapped nor explained"
    for key, why in pub.unmatched_by_source.items():
        assert why, f"{key}: an unmatched method needs a reason"
    for metric in {r["metric"] for r in rows}:
        link = pub.metrics.get(metric)
        assert link is not None, f"metric {metric} has no mapping"
        assert link.ours or link.why
    mapped = {n for names, _ in pub.methods.values() for n in names}
    unknown = mapped - set(methods.available())
    assert unknown <= ISSUE_15_PRESETS, unknown
    tables = {(r["source"], r["table"]) for r in rows}
    for (src, _), (_names, only) in pub.methods.items():
        assert {(src, t) for t in only} <= tables, (src, only)


def test_the_new_methods_are_mapped():
    pub = load_published()
    rs = {v.metric: v for v in pub.for_method("rolling-sink", 60.0)}
    assert rs["subject_consistency"].value == 98.58 and rs["subject_consistency"].source.startswith("Rolling Sink")
    assert {v.metric: v.value for v in pub.for_method("rolling-sink", 300.0)}["aesthetic_quality"] == 62.96
    for name in ("infinity-rope", "infinity-rope-sf"):
        ir = {v.metric: v for v in pub.for_method(name, 240.0)}
        assert (
            ir["temporal_flickering"].table == "Table 2 (120 s / 240 s)" and ir["temporal_flickering"].duration_s == 240
        )
    ll = {v.metric: v for v in pub.for_method("longlive", 30.0)}
    assert ll["subject_consistency"].value == 97.97 and ll["subject_consistency"].source.startswith("Deep Forcing")
    assert ll["fps"].value == 18.16  # Deep Forcing (preferred source) over LongLive's own 20.7 at the same 30 s
    five_min = {v.metric: v for v in pub.for_method("longlive", 300.0)}
    assert five_min["subject_consistency"].value == 96.91 and five_min["subject_consistency"].table == "Table S4"
    lol = {(v.metric, v.table) for v in pub.for_method("lol-paper", 100.0)}
    assert ("dynamic_degree", "Table 1 (PE-extension methods)") in lol
    assert pub.for_method("memrope", 60.0) == []  # no published number in the shared table


def test_numbers_without_a_length_are_never_placed_beside_ours():
    pub = load_published()
    unstated = [v for v in pub.values if v.duration_s is None]
    assert len(unstated) == 16 and all(v.table.startswith("Table 3 (action-control") for v in unstated)
    assert unstated[0].reference.endswith("length not stated")
    for name in ("self-forcing", "longlive", "infinity-rope"):
        assert all(v.duration_s is not None for v in pub.for_method(name, None))


def test_lookup_prefers_the_nearest_length_then_the_earlier_source():
    pub = load_published()
    sf = {v.metric: v for v in pub.for_method("self-forcing", 60.0)}
    assert sf["subject_consistency"].source == "Deep Forcing arXiv 2512.05081v1"  # also printed by 3 others at 60 s
    sf = {v.metric: v for v in pub.for_method("self-forcing", 240.0)}
    assert sf["subject_consistency"].source.startswith("Infinity-RoPE") and sf["subject_consistency"].duration_s == 240
    sf5 = {v.metric: v for v in pub.for_method("self-forcing", 5.0)}
    assert sf5["fps"].source.startswith("Infinity-RoPE") and sf5["fps"].duration_s == 5


def test_malformed_mappings_are_refused(tmp_path):
    from deepforcing.errors import UserError

    (tmp_path / "published_results.csv").write_bytes(CSV.read_bytes())
    (tmp_path / "mapping.yaml").write_text("version: 1\nfile: published_results.csv\nmethods: []\n")
    with pytest.raises(UserError, match="expected 'version: 2'"):
        load_published(str(tmp_path))
    (tmp_path / "mapping.yaml").write_text(
        "version: 2\nfile: published_results.csv\nsources:\n  - source: Deep Forcing arXiv 2512.05081v1\n"
    )
    with pytest.raises(UserError, match="source 'LoL arXiv 2601.16914v1' is not listed"):
        load_published(str(tmp_path))


def test_lookup_prefers_table_1_at_the_nearest_duration():
    pub = load_published()
    by_metric = {v.metric: v for v in pub.for_method("deep-forcing", 60.0)}
    assert by_metric["overall_consistency"].value == 20.38 and by_metric["overall_consistency"].table == "Table 1"
    by_metric = {v.metric: v for v in pub.for_method("deep-forcing", 10.3)}
    assert by_metric["overall_consistency"].value == 20.54 and by_metric["overall_consistency"].duration_s == 30
    assert by_metric["chunk_latency_min_s"].value == 0.747  # only Table 6 (60 s) has latency
    sink = {v.metric: v for v in pub.for_method("deep-forcing-ds-sink10", 30.0)}
    assert sink["dynamic_degree"].value == 48.58 and sink["dynamic_degree"].table.startswith("Table 4")
    assert pub.for_method("sink-longlive", 30.0) == []


def test_paper_columns_agree_with_the_metric_metadata_when_present():
    meta = project_root() / "eval" / "metrics.yaml"
    if not meta.is_file():
        pytest.skip("eval/metrics.yaml (metric metadata) is not in this checkout yet")
    pub = load_published()
    for m in yaml.safe_load(meta.read_text())["metrics"]:
        paper = m.get("paper")
        if not paper:
            continue
        link = pub.metrics[paper["column"]]
        ids = m["id"] if isinstance(m["id"], list) else [m["id"]]
        assert link.scale == paper["scale"], m["name"]
        if ids[0]:
            assert link.ours == ids[0].split("@")[0], m["name"]


def test_numbers_are_never_edited():
    """Spot-check printed numbers of several sources."""
    rows = {
        (r["source"].split(" arXiv")[0], r["table"], r["duration_s"], r["method"], r["metric"]): r["value"]
        for r in csv.DictReader(CSV.open())
    }
    assert rows[("Deep Forcing", "Table 1", "30", "Deep Forcing", "dynamic_degree")] == "57.56"
    assert rows[("Deep Forcing", "Table 1", "60", "Self Forcing", "aesthetic_quality")] == "56.45"
    assert rows[("Deep Forcing", "Table 6 (speed)", "60", "Deep Forcing", "chunk_latency_max_s")] == "0.797"
    assert rows[("Rolling Sink", "Table 1", "60", "Self Forcing", "aesthetic_quality")] == "59.16"
    assert rows[("Rolling Sink", "Table 1", "60", "Rolling Sink", "avg_rank")] == "1.3750"
    assert Path(CSV).read_text().startswith("source,table,duration_s,method,metric,value,note\n")

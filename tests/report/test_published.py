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

CSV = published_dir() / "deep_forcing_2512.05081v1.csv"
PAPERS = sorted(published_dir().glob("*.csv"))


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.name)
def test_csv_matches_the_recorded_sha256(path):
    sources = (published_dir() / "SOURCES.md").read_text()
    recorded = re.search(rf"`{re.escape(path.name)}` \| `([0-9a-f]{{64}})`", sources).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.name)
def test_csv_rows_are_the_shared_rows_when_present(path):
    """Each paper's file is the header plus that paper's rows of the shared CSV, byte for byte, in order."""
    shared = project_root().parent / "shared" / "data" / "published_results.csv"
    if not shared.is_file():
        pytest.skip(f"no shared copy at {shared} (outside the project workspace)")
    lines = shared.read_text(encoding="utf-8").splitlines(keepends=True)
    mine = path.read_text(encoding="utf-8").splitlines(keepends=True)
    source = mine[1].split(",")[0]
    assert mine == [lines[0]] + [line for line in lines[1:] if line.startswith(source + ",")]


def test_every_published_method_and_metric_is_mapped_or_explained():
    pub = load_published()
    rows = [r for path in PAPERS for r in csv.DictReader(path.open())]
    assert len(rows) == len(pub.values) and len([r for r in rows if r["source"].startswith("Deep Forcing")]) == 109
    for key in {(r["source"], r["method"]) for r in rows}:
        assert key in pub.methods or key in pub.unmatched, f"{key} is neither mapped nor explained"
    for key, why in pub.unmatched.items():
        assert why, f"{key}: an unmatched method needs a reason"
    for metric in {r["metric"] for r in rows}:
        link = pub.metrics.get(metric)
        assert link is not None, f"metric {metric} has no mapping"
        assert link.ours or link.why
    mapped = {n for names, _ in pub.methods.values() for n in names}
    assert mapped <= set(methods.available()), mapped - set(methods.available())
    tables = {(r["source"], r["table"]) for r in rows}
    for (source, _pub), (_names, only) in pub.methods.items():
        assert {(source, t) for t in only} <= tables


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
    """Spot-check a few printed numbers (arXiv 2512.05081v1 Table 1 and Table 6)."""
    rows = {(r["table"], r["duration_s"], r["method"], r["metric"]): r["value"] for r in csv.DictReader(CSV.open())}
    assert rows[("Table 1", "30", "Deep Forcing", "dynamic_degree")] == "57.56"
    assert rows[("Table 1", "60", "Self Forcing", "aesthetic_quality")] == "56.45"
    assert rows[("Table 6 (speed)", "60", "Deep Forcing", "chunk_latency_max_s")] == "0.797"
    assert Path(CSV).read_text().startswith("source,table,duration_s,method,metric,value,note\n")


def test_rolling_sink_numbers_are_shown_for_rolling_sink():
    pub = load_published()
    by_metric = {v.metric: v for v in pub.for_method("rolling-sink", 60.0)}
    assert by_metric["subject_consistency"].value == 98.58 and by_metric["subject_consistency"].table == "Table 1"
    assert {v.metric: v for v in pub.for_method("rolling-sink", 300.0)}["aesthetic_quality"].value == 62.96
    # self-forcing has numbers in both papers: the length nearest ours decides, Deep Forcing's first on a tie
    sf = {v.metric: v for v in pub.for_method("self-forcing", 60.0)}
    assert sf["dynamic_degree"].source.startswith("Deep Forcing") and sf["dynamic_degree"].value == 31.98
    # a metric Deep Forcing did not print comes from the next paper in mapping-file order (Infinity-RoPE's)
    assert sf["temporal_flickering"].source.startswith("Infinity-RoPE")


def test_infinity_rope_numbers_are_shown_for_both_presets():
    pub = load_published()
    for preset in ("infinity-rope", "infinity-rope-sf"):
        by_metric = {v.metric: v for v in pub.for_method(preset, 60.0)}
        assert by_metric["background_consistency"].value == 94.90 and by_metric["dynamic_degree"].value == 52
    assert {v.metric: v for v in pub.for_method("infinity-rope", 240.0)}["overall"].value == 83.09

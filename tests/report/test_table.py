"""The table model and its renderers: raw values, directions, sources, best cells, paper columns, formats.

The golden Markdown snapshot (``golden/smoke-summary.md``) is the summary table of the committed smoke-run
fixture; regenerate it with ``UPDATE_GOLDEN=1 pytest tests/report/test_table.py`` after an intended change.
"""

import csv
import io
import os

import pytest
from report_helpers import FIXTURE_RUN, GOLDEN, make_run

from deepforcing.errors import UserError
from deepforcing.report import render
from deepforcing.report import table as T
from deepforcing.report.published import load_published
from deepforcing.report.runs import load_run, load_runs

SUBJ = "vbench.subject_consistency@backbone=dino_vitb16,res=224,ref=vbench0.1.5"
LUMA = "image_stats.mean_luma@luma=bt601"
DRIFT = f"drift.first_last@window=5,abs=true[{LUMA}]"


@pytest.fixture
def synthetic(tmp_path):
    return make_run(
        tmp_path,
        {
            "self-forcing": {SUBJ: (0.9701, True, 2), LUMA: (0.41, None, 2), DRIFT: (0.030, False, 2)},
            "deep-forcing": {SUBJ: (0.9750, True, 2), LUMA: (0.42, None, 2), DRIFT: (0.010, False, 2)},
            "sink-longlive": {SUBJ: (0.9750, True, 2), LUMA: (0.43, None, 2), DRIFT: (None, False, 0)},
        },
        timings={"deep-forcing": {"fps_mean": 15.0, "chunk_latency_ms_mean": 700.0, "n_videos": 2}},
        config_hashes={"deep-forcing": "3d2ba7d8894d"},
    )


def test_cells_keep_raw_value_display_direction_n_and_source(synthetic):
    run = load_run(synthetic)
    t = T.summary_table([run], None)
    cell = t.cell("deep-forcing", SUBJ)
    assert cell.value == 0.975 and cell.display == "0.9750" and cell.direction == "higher" and cell.n == 2
    assert cell.source == T.Source("deep-forcing", "3d2ba7d8894d", "synthetic/tiny")
    assert "raw 0.975" in cell.tooltip() and "n=2 videos" in cell.tooltip() and "@3d2ba7d8894d" in cell.tooltip()
    missing = t.cell("sink-longlive", DRIFT)
    assert missing.value is None and missing.display == "—" and missing.direction == "lower"
    assert t.cell("deep-forcing", "timing.fps_mean").display == "15.00"


def test_best_per_column_follows_the_direction_and_marks_ties(synthetic):
    t = T.summary_table([load_run(synthetic)], None)
    assert [t.cell(m, SUBJ).best for m in ("self-forcing", "deep-forcing", "sink-longlive")] == [False, True, True]
    assert [t.cell(m, DRIFT).best for m in ("self-forcing", "deep-forcing", "sink-longlive")] == [False, True, False]
    assert not any(t.cell(m, LUMA).best for m in ("self-forcing", "deep-forcing"))  # no direction: no best


def test_paper_numbers_beside_ours_in_our_unit_with_delta(synthetic):
    t = T.summary_table([load_run(synthetic)], load_published())
    paper = t.cell("deep-forcing", f"paper:{SUBJ}")
    assert paper.value == pytest.approx(0.9734)  # Table 1, 30 s: 97.34 / 100
    assert paper.source.reference == "Deep Forcing arXiv 2512.05081v1, Table 1, 30 s"
    assert "printed 97.34" in paper.note
    assert t.cell("deep-forcing", f"delta:{SUBJ}").value == pytest.approx(0.9750 - 0.9734)
    assert t.cell("sink-longlive", f"paper:{SUBJ}").value is None  # LongLive is not sink-longlive
    assert any("Table 1: VBench-Long" in n for n in t.notes)
    col = t.columns[t.column_index(f"paper:{SUBJ}")]
    assert col.group == "Subject consistency" and col.sub == "paper (no CI)" and col.kind == "paper"


def test_paper_table_is_in_the_paper_unit_and_explains_unmatched_methods(synthetic):
    t = T.paper_table([load_run(synthetic)], load_published())
    row = next(r for r in t.rows if r[0].value == "deep-forcing" and r[2].value == "subject_consistency")
    assert row[4].value == 97.34 and row[5].value == pytest.approx(97.5) and row[6].value == pytest.approx(0.16)
    assert "no published counterpart: sink-longlive" in t.notes
    assert any(n.startswith("published methods without a counterpart here — CausVid:") for n in t.notes)
    assert not any("— LongLive:" in n for n in t.notes)  # LongLive's own weights are the longlive preset


def test_several_runs_label_rows_by_run(tmp_path):
    a = make_run(tmp_path / "a", {"deep-forcing": {SUBJ: (0.97, True, 2)}}, run_id="gpu0")
    b = make_run(tmp_path / "b", {"deep-forcing": {SUBJ: (0.98, True, 2)}}, run_id="gpu1")
    t = T.summary_table(load_runs([a, b]), None)
    assert [r[0].value for r in t.rows] == ["deep-forcing · synthetic/gpu0", "deep-forcing · synthetic/gpu1"]
    assert t.rows[1][1].best and not t.rows[0][1].best


def test_same_run_twice_is_an_error(synthetic):
    with pytest.raises(UserError, match="given twice"):
        load_runs([synthetic, synthetic / "results"])


def test_latex_is_booktabs_with_bold_best_and_escaping(synthetic):
    t = T.summary_table([load_run(synthetic)], load_published(), keys=[SUBJ, DRIFT])
    tex = render.to_latex(t)
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\begin{tabular}{lrrrr}" in tex
    assert "\\multicolumn{3}{c}{Subject consistency $\\uparrow$}" in tex and "\\cmidrule(lr){2-4}" in tex
    assert "\\textbf{0.9750}" in tex and "\\textbf{0.0100}" in tex
    assert "\\textbar{}first - last 5 s\\textbar{}" in tex and "$\\Delta$" in tex
    assert "_" not in tex.replace("\\_", "")  # every underscore escaped


def test_csv_keeps_raw_values_wide_and_long(synthetic):
    t = T.summary_table([load_run(synthetic)], None, keys=[SUBJ])
    wide = list(csv.reader(io.StringIO(render.to_csv(t))))
    assert wide[0] == ["method", SUBJ] and wide[2] == ["deep-forcing", "0.975"]
    long = list(csv.DictReader(io.StringIO(render.to_csv(t, layout="long"))))
    row = next(r for r in long if r["row"] == "deep-forcing" and r["column"] == SUBJ)
    assert row["value"] == "0.975" and row["display"] == "0.9750" and row["direction"] == "higher"
    assert row["n"] == "2" and row["best"] == "1" and row["config_hash"] == "3d2ba7d8894d"


def test_html_table_carries_raw_values_and_tooltips(synthetic):
    t = T.summary_table([load_run(synthetic)], load_published(), keys=[SUBJ])
    html = render.to_html(t)
    assert 'data-table="summary"' in html and 'colspan="3" class="group"' in html
    assert 'class="num best" data-value="0.975"' in html and "<strong>0.9750</strong>" in html
    assert "Deep Forcing arXiv 2512.05081v1, Table 1, 30 s" in html


def test_markdown_golden_snapshot_of_the_smoke_fixture():
    t = T.summary_table([load_run(FIXTURE_RUN)], load_published())
    got = render.to_markdown(t)
    path = GOLDEN / "smoke-summary.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
    assert got == path.read_text(), "summary Markdown changed; if intended, re-run with UPDATE_GOLDEN=1"


def test_paired_markdown_golden_snapshot_of_the_smoke_fixture():
    t = T.paired_table([load_run(FIXTURE_RUN)])
    assert len(t.rows) == 3 * 14  # 3 pairs x (7 metric ids + their first/last drift)
    got = render.to_markdown(t)
    path = GOLDEN / "smoke-paired.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text(), "paired Markdown changed; if intended, re-run with UPDATE_GOLDEN=1"


def test_difference_format_keeps_the_metric_format_unless_it_would_show_zero():
    assert T.difference_format(".4f", [0.031, 0.012, 0.05]) == ".4f"
    assert T.difference_format("+.4f", [0.0002, 0.0001, 0.0003]) == ".4f"
    assert T.difference_format(".4f", [3.6e-6, -2.3e-5, 3.1e-5]) == ".2e"  # +0.0000 would say nothing
    assert T.difference_format(".4f", [0.0, 0.0, 0.0]) == ".4f"  # an exact zero is shown as one
    assert T.difference_format(".1f", [0.04, 1.0]) == ".2e" and T.difference_format(".4g", [1e-9]) == ".4g"


def test_drift_and_speed_tables_of_the_fixture():
    run = load_run(FIXTURE_RUN)
    drift = T.drift_table([run])
    assert len(drift.rows) == 7 * 5 and drift.best == "row"
    labels = {(r[0].value, r[1].value) for r in drift.rows}
    assert ("Mean luma", "VDE (w=linear)") in labels and ("Mean luma", "VDE (w=log)") in labels
    slope = next(r for r in drift.rows if r[1].value == "Slope per minute")
    assert not any(c.best for c in slope[2:])  # slopes have no direction
    speed = T.speed_table([run], load_published())
    # the fixture is the tiny model on a CPU: the paper's H100 FPS is not put beside it
    assert speed.cell("deep-forcing", "paper:fps").value is None
    assert speed.cell("sink-longlive", "paper:fps").value is None


def test_published_numbers_stand_only_beside_comparable_runs(tmp_path):
    timings = {"deep-forcing": {"fps_mean": 12.0}}
    h100 = load_run(make_run(tmp_path / "a", {"deep-forcing": {SUBJ: (0.97, True, 2)}}, timings=timings))
    cpu = load_run(make_run(tmp_path / "b", {"deep-forcing": {SUBJ: (0.97, True, 2)}}, timings=timings, device="CPU"))
    toy = load_run(
        make_run(tmp_path / "c", {"deep-forcing": {SUBJ: (0.97, True, 2)}}, timings=timings, model="toyworld")
    )
    pub = load_published()
    assert T.speed_table([h100], pub).cell("deep-forcing", "paper:fps").value == 15.75
    assert T.speed_table([cpu], pub).cell("deep-forcing", "paper:fps").value is None
    quality = T.summary_table([cpu], pub, keys=[SUBJ])
    assert any(c.key == f"paper:{SUBJ}" for c in quality.columns)  # same model: quality is compared on any device
    toy_table = T.summary_table([toy], pub, keys=[SUBJ, "timing.fps_mean"])
    assert [c.kind for c in toy_table.columns] == ["label", "ours", "ours"]  # no paper cells, no delta
    assert sum("not compared with this run" in n for n in toy_table.notes) == 1  # said once
    assert not T.paper_table([toy], pub).rows
    cpu_paper = T.paper_table([cpu], pub)
    fps_row = next(r for r in cpu_paper.rows if r[2].value == "fps")
    assert fps_row[5].value is None and "speed not compared" in fps_row[5].note

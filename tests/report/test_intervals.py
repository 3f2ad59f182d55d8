"""Confidence intervals in the report: on the cell, in every renderer, in the charts; paired comparisons; coherence.

The runs here are synthetic aggregates whose intervals and paired tests are computed by ``deepforcing.stats`` from
per-video values chosen so the answers are known (``report_helpers.make_stats_run``, the harness's recipe).
"""

import csv
import io
import json
import math
import re

import pandas as pd
import pytest
from report_helpers import make_run, make_stats_run

from deepforcing import console, stats
from deepforcing.cli import main
from deepforcing.report import charts, render
from deepforcing.report import table as T
from deepforcing.report.html import ReportOptions, build_report, coherence_panels, drift_panels
from deepforcing.report.published import load_published
from deepforcing.report.runs import load_run

SUBJ = "vbench.subject_consistency@backbone=dino_vitb16,res=224,ref=vbench0.1.5"
LUMA = "image_stats.mean_luma@luma=bt601"
DRIFT = f"drift.first_last@window=5,abs=true[{LUMA}]"
PROMPTS = [f"p{i:02d}" for i in range(8)]
#: self-forcing's subject consistency per prompt, and deep-forcing's shift on every prompt: binary fractions, so
#: every difference is exactly DELTA (a zero-width interval, and eight tied magnitudes for the Wilcoxon test).
BASE = [0.9375 + k / 256 for k in (3, 5, 8, 4, 6, 10, 1, 12)]
DELTA = 1 / 64


def _videos(values):
    return {(p, 0): v for p, v in zip(PROMPTS, values, strict=True)}


@pytest.fixture
def shifted(tmp_path):
    """Two methods; deep-forcing is self-forcing + 1/64 on every prompt (subject consistency), luma identical."""
    luma = [0.40 + 0.01 * i for i in range(8)]
    drift = [0.03, 0.02, 0.04, 0.05, 0.01, 0.03, 0.02, 0.06]
    return load_run(
        make_stats_run(
            tmp_path,
            {
                "self-forcing": {SUBJ: _videos(BASE), LUMA: _videos(luma), DRIFT: _videos(drift)},
                "deep-forcing": {
                    SUBJ: _videos([v + DELTA for v in BASE]),
                    LUMA: _videos(luma),
                    DRIFT: _videos([d + 0.005 for d in drift]),
                },
            },
            {SUBJ: True, LUMA: None, DRIFT: False},
        )
    )


# ------------------------------------------------------------------------------------------------ cells
def test_summary_cells_carry_the_aggregate_interval(shifted):
    t = T.summary_table([shifted], None)
    cell = t.cell("self-forcing", SUBJ)
    ci = shifted.results("self-forcing")[SUBJ]["ci"]
    assert ci["status"] == "ok" and ci["n"] == 8
    assert (cell.ci.low, cell.ci.high, cell.ci.n) == (ci["ci_low"], ci["ci_high"], 8)
    assert cell.ci.low < cell.number < cell.ci.high
    assert cell.ci_display == f"[{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]"
    assert cell.full_display == f"{cell.display} {cell.ci_display}"
    assert f"95% CI {cell.ci_display} over 8 prompts" in cell.tooltip()
    assert t.cell("deep-forcing", DRIFT).ci.known  # drift summaries have intervals too
    assert any(n.startswith("[low, high] beside our numbers: 95% bootstrap over prompts") for n in t.notes)
    # timings have none
    assert T.summary_table([shifted], None, keys=["timing.fps_mean"]).cell("deep-forcing", "timing.fps_mean").ci is None


def test_a_single_prompt_and_an_old_run_show_no_interval_and_say_why(tmp_path):
    one = stats.bootstrap_ci([stats.Observation("p0", 0.5, "0")]).to_dict()
    run = load_run(make_run(tmp_path / "a", {"deep-forcing": {SUBJ: (0.5, True, 1, one)}}))
    t = T.summary_table([run], None, keys=[SUBJ])
    cell = t.cell("deep-forcing", SUBJ)
    assert cell.ci.status == "single_prompt" and not cell.ci.known and cell.ci_display == ""
    assert cell.full_display == "0.5000" and "one prompt: no interval over prompts" in cell.tooltip()
    assert "1 number(s) without an interval: one prompt: no interval over prompts." in t.notes
    old = load_run(make_run(tmp_path / "b", {"deep-forcing": {SUBJ: (0.5, True, 2)}}))
    t = T.summary_table([old], None, keys=[SUBJ])
    assert t.cell("deep-forcing", SUBJ).ci is None
    assert any("no intervals (scored before the harness wrote them" in n for n in t.notes)


def test_every_renderer_shows_the_interval(shifted):
    t = T.summary_table([shifted], None, keys=[SUBJ, LUMA])
    best = t.cell("deep-forcing", SUBJ)
    lo, hi = best.ci.low, best.ci.high
    md = render.to_markdown(t)
    assert f"| **{best.display}** {best.ci_display} |" in md
    tex = render.to_latex(t)
    assert rf"\textbf{{{best.display}}} {{\scriptsize {best.ci_display}}}" in tex
    page = render.to_html(t)
    assert f'data-ci-low="{lo!r}" data-ci-high="{hi!r}"' in page
    assert f'<strong>{best.display}</strong> <span class="ci">{best.ci_display}</span>' in page
    assert any(best.ci_display in line for line in console.plain_lines(render.to_console(t)))
    js = render.to_json(t)
    row = js["rows"].index(next(r for r in js["rows"] if r["method"] == "deep-forcing"))
    assert js["intervals"][row][SUBJ] == {"ci_low": lo, "ci_high": hi, "n_prompts": 8, "status": "ok", "level": 0.95}


def test_csv_wide_and_long_carry_the_bounds_and_load_with_pandas(shifted, tmp_path):
    t = T.summary_table([shifted], None, keys=[SUBJ, "timing.fps_mean"])
    cell = t.cell("deep-forcing", SUBJ)
    wide_path = tmp_path / "wide.csv"
    wide_path.write_text(render.to_csv(t))
    wide = pd.read_csv(wide_path)
    assert list(wide.columns) == ["method", SUBJ, f"ci_low:{SUBJ}", f"ci_high:{SUBJ}", "timing.fps_mean"]
    row = wide[wide["method"] == "deep-forcing"].iloc[0]
    assert (row[SUBJ], row[f"ci_low:{SUBJ}"], row[f"ci_high:{SUBJ}"]) == (cell.number, cell.ci.low, cell.ci.high)
    long_path = tmp_path / "long.csv"
    long_path.write_text(render.to_csv(t, layout="long"))
    long = pd.read_csv(long_path)
    assert list(long.columns)[-4:] == ["ci_low", "ci_high", "n_prompts", "ci_status"]
    r = long[(long["row"] == "deep-forcing") & (long["column"] == SUBJ)].iloc[0]
    assert (r["ci_low"], r["ci_high"], r["n_prompts"], r["ci_status"]) == (cell.ci.low, cell.ci.high, 8, "ok")
    label = long[(long["row"] == "deep-forcing") & (long["column"] == "method")].iloc[0]
    assert math.isnan(label["ci_low"]) and math.isnan(label["ci_status"])  # empty: no interval


def test_published_numbers_stay_marked_as_point_values(tmp_path):
    ci = {"ci_low": 0.970, "ci_high": 0.980, "n": 8, "status": "ok", "confidence_level": 0.95}
    run = load_run(make_run(tmp_path, {"deep-forcing": {SUBJ: (0.975, True, 8, ci)}}))
    pub = load_published()
    t = T.summary_table([run], pub, keys=[SUBJ])
    paper = t.cell("deep-forcing", f"paper:{SUBJ}")
    assert paper.ci is None and paper.ci_display == "" and "published point value, no interval" in paper.note
    col = t.columns[t.column_index(f"paper:{SUBJ}")]
    assert col.label == "Subject consistency (paper, no CI)" and "no interval" in col.description
    assert "paper: published point values, no interval (none was published)." in t.notes
    md = render.to_markdown(t)
    assert "0.9750 [0.9700, 0.9800] | 0.9734 | +0.0016 |" in md  # ours with its interval, the paper's without
    # the paper table shows ours in the paper's unit (x100), the interval converted the same way
    pt = T.paper_table([run], pub)
    row = next(r for r in pt.rows if r[0].value == "deep-forcing" and r[2].value == "subject_consistency")
    assert row[5].ci.low == pytest.approx(97.0) and row[5].ci.high == pytest.approx(98.0)
    assert row[5].full_display == "97.50 [97.00, 98.00]" and row[4].ci is None


# ----------------------------------------------------------------------------------------------- paired
def test_paired_comparison_of_a_constant_shift_is_significant_and_direction_aware(shifted):
    t = T.paired_table([shifted])
    rows = {r[1].value: r for r in t.rows}
    assert set(rows) == {SUBJ, LUMA, DRIFT}
    subj = rows[SUBJ]
    assert subj[0].value == "deep-forcing vs self-forcing"
    # +δ on every prompt: difference δ with the zero-width interval [δ, δ]; the eight |d| tie, so Wilcoxon uses the
    # normal approximation with tie correction: T = 0, mean 8·9/4 = 18, variance 8·9·17/24 − (8³ − 8)/48 = 40.5,
    # p = 2 Φ(−18 / √40.5) = 2 Φ(−2√2) = erfc(2)
    assert (subj[2].value, subj[2].ci.low, subj[2].ci.high) == (DELTA, DELTA, DELTA)
    assert subj[2].ci.status == "constant"
    assert subj[3].value == pytest.approx(math.erfc(2), rel=1e-12) and subj[4].value == 8
    assert subj[2].best and subj[5].value == "deep-forcing better (significant)"
    drift = rows[DRIFT]  # lower is better: +0.005 is worse
    assert drift[2].best and drift[5].value == "deep-forcing worse (significant)"
    luma = rows[LUMA]  # identical: difference exactly 0, p = 1
    assert luma[2].value == 0.0 and luma[3].value == 1.0 and not luma[2].best and luma[5].value == "no difference"
    lines = T.paired_lines(t)
    assert lines[0] == (
        "deep-forcing vs self-forcing, Subject consistency: +0.0156 [0.0156, 0.0156], p = 0.00468, n = 8 "
        "— deep-forcing better (significant)"
    )
    assert len(lines) == 2  # the two significant ones


def test_paired_verdicts_known_answers():
    base = {"mean": 0.02, "ci_low": 0.01, "ci_high": 0.03, "p_value": 0.004, "confidence_level": 0.95}
    assert T.paired_verdict("a", {**base, "higher_is_better": True}) == ("a better (significant)", True)
    assert T.paired_verdict("a", {**base, "higher_is_better": False}) == ("a worse (significant)", True)
    assert T.paired_verdict("a", {**base, "higher_is_better": None}) == ("a higher (significant)", True)
    # the test and the interval must agree: p < 0.05 but an interval containing 0 is not significant
    assert T.paired_verdict("a", {**base, "ci_low": -0.001, "higher_is_better": True}) == ("a better (n.s.)", False)
    assert T.paired_verdict("a", {**base, "p_value": 0.06, "higher_is_better": True}) == ("a better (n.s.)", False)
    assert (
        T.paired_verdict("a", {**base, "mean": -0.02, "ci_low": -0.03, "ci_high": -0.01, "higher_is_better": True})[0]
        == "a worse (significant)"
    )
    assert T.paired_verdict("a", {"mean": None, "note": "no matched pair"}) == ("no matched pair", False)


def test_paired_with_few_prompts_says_it_cannot_be_significant(tmp_path):
    run = load_run(
        make_stats_run(
            tmp_path,
            {
                "self-forcing": {SUBJ: {("p0", 0): 0.95, ("p1", 0): 0.96}},
                "deep-forcing": {SUBJ: {("p0", 0): 0.97, ("p1", 0): 0.99}},
            },
            {SUBJ: True},
        )
    )
    t = T.paired_table([run])
    (row,) = t.rows
    assert row[3].value == 0.5 and not row[2].best and row[5].value == "deep-forcing better (n.s.)"
    assert any("fewer than 6 prompts" in n for n in t.notes)


def test_no_paired_results_is_said(tmp_path):
    run = load_run(make_run(tmp_path, {"deep-forcing": {SUBJ: (0.97, True, 2)}}))
    t = T.paired_table([run])
    assert not t.rows and "no paired comparisons" in t.notes[-1]
    assert [x.name for x in T.export_tables([run])] == ["summary"]


def test_exports_and_the_report_carry_the_paired_comparisons(shifted, tmp_path, capsys):
    md, tex = tmp_path / "s.md", tmp_path / "s.tex"
    out = tmp_path / "r.html"
    code = main(["-q", "report", str(shifted.root), "--out", str(out), "--markdown", str(md), "--latex", str(tex)])
    assert code == 0
    text = md.read_text()
    assert text.startswith("### Summary") and "### Paired comparisons" in text
    assert "| deep-forcing vs self-forcing | Subject consistency | **+0.0156** [0.0156, 0.0156] | 0.00468 | 8 |" in text
    latex = tex.read_text()
    assert latex.count(r"\begin{table}") == 2 and r"\label{tab:paired}" in latex
    assert r"\textbf{+0.0156} {\scriptsize [0.0156, 0.0156]}" in latex
    page = out.read_text()
    assert '<section id="paired">' in page and '<a href="#paired">' in page
    assert "2 of 3 comparison(s) in the summary's metrics are significant" in page
    assert "<li>deep-forcing vs self-forcing, Subject consistency: +0.0156 [0.0156, 0.0156], p = 0.00468" in page
    capsys.readouterr()
    assert main(["-q", "report", str(shifted.root), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["paired"]["name"] == "paired" and len(doc["paired"]["rows"]) == 3
    assert doc["summary"]["intervals"][0][SUBJ]["n_prompts"] == 8


# -------------------------------------------------------------------------------------------- coherence
COH = "long_horizon_coherence@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dt={}s"
SLOPE = "long_horizon_coherence.slope@backbone=dino_vitb16,res=224,feat=cls,grid=1s,dts=2-5-10-20-50,fit=log10"
GAPS = (2, 5, 10, 20, 50)


@pytest.fixture
def coherent(tmp_path):
    """Coherence falling with log10(Δt): deep-forcing by 0.05 per decade, self-forcing by 0.15, 8 prompts."""
    videos, hib = {}, {}
    for method, rate in (("self-forcing", 0.15), ("deep-forcing", 0.05)):
        videos[method] = {}
        for g in GAPS:
            videos[method][COH.format(g)] = _videos([0.95 - rate * math.log10(g / 2) + 0.002 * i for i in range(8)])
            hib[COH.format(g)] = True
        videos[method][SLOPE] = _videos([-rate + 0.001 * i for i in range(8)])
        hib[SLOPE] = True
    return load_run(make_stats_run(tmp_path, videos, hib))


def test_coherence_groups_sort_gaps_numerically_and_find_the_slope(coherent):
    (g,) = T.coherence_groups([coherent])
    assert [dt for dt, _ in g.gaps] == [2.0, 5.0, 10.0, 20.0, 50.0]  # "10s" sorts after "5s"
    assert g.slope == SLOPE and g.protocol == "backbone=dino_vitb16,res=224,feat=cls,grid=1s"
    t = T.coherence_table([coherent], g)
    assert [c.label for c in t.columns] == ["Method", *(f"Δt = {d} s" for d in GAPS), "Slope per decade"]
    assert t.cell("deep-forcing", COH.format(50)).best and t.cell("deep-forcing", SLOPE).best
    assert all(t.cell(m, COH.format(g)).ci.known for m in ("self-forcing", "deep-forcing") for g in GAPS)
    assert T.describe(COH.format(10)).label == "Long-horizon coherence (dt=10s)"
    # the summary orders the gaps by value too
    assert [k for k in T.default_summary_keys([coherent]) if "dt=" in k] == [COH.format(g) for g in GAPS]


def test_coherence_chart_has_one_ci_bar_per_gap_and_method(coherent, tmp_path):
    series = T.series_of([coherent])
    (panel,) = coherence_panels(series, T.coherence_groups([coherent]))
    assert panel.xscale == "log" and panel.xticks == (2.0, 5.0, 10.0, 20.0, 50.0)
    deep = next(c for c in panel.curves if c.label == "deep-forcing")
    ci = coherent.results("deep-forcing")[COH.format(20)]["ci"]
    assert (deep.ci_lo[3], deep.ci_hi[3]) == (ci["ci_low"], ci["ci_high"])
    page = build_report([coherent], tmp_path / "r.html", ReportOptions(filmstrips=False))
    assert '<section id="coherence">' in page and '<a href="#coherence">' in page
    fig = page[page.index('data-chart="coherence"') :]
    fig = fig[: fig.index("</figure>")]
    for j in range(2):
        group = re.search(rf'<g id="ci-bars-0-{j}">(.*?)</g>', fig, re.S)
        assert group and group.group(1).count("<path") == len(GAPS)
    assert 'data-table="coherence"' in page


def test_no_coherence_no_section(shifted, tmp_path):
    page = build_report([shifted], tmp_path / "r.html", ReportOptions(filmstrips=False))
    assert 'id="coherence"' not in page and T.coherence_groups([shifted]) == []


# ----------------------------------------------------------------------------------------------- charts
def test_ci_bars_skip_points_without_an_interval():
    c = charts.Curve("a", (1.0, 2.0, 3.0), (0.5, 0.6, 0.7), ci_lo=(0.4, math.nan, 0.6), ci_hi=(0.6, math.nan, 0.8))
    assert c.ci_bars() == ((1.0, 3.0), (0.4, 0.6), (0.6, 0.8))
    assert charts.Curve("b", (1.0,), (0.5,)).ci_bars() == ((), (), ())
    svg = charts.panels_svg([charts.Panel("t", (c,))], "t")
    group = re.search(r'<g id="ci-bars-0-0">(.*?)</g>', svg, re.S)
    assert group and group.group(1).count("<path") == 2


def test_drift_curves_carry_each_methods_run_level_interval(shifted, tmp_path):
    clips = tmp_path / "synthetic" / "tiny" / "results" / "clips.jsonl"
    rows = [{"record": "header"}]
    for method, level in (("self-forcing", 0.4), ("deep-forcing", 0.5)):
        for k in range(3):
            rows.append(
                {
                    "record": "clip",
                    "method": method,
                    "metric": LUMA,
                    "start_frame": 32 * k,
                    "stop_frame": 32 * (k + 1),
                    "fps": 16,
                    "value": level + 0.01 * k,
                }
            )
    clips.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = load_run(shifted.root)
    (panel,) = drift_panels(T.series_of([run]))
    points = [c for c in panel.curves if c.points]
    assert [c.label for c in points] == ["self-forcing", "deep-forcing"]
    ci = run.results("deep-forcing")[LUMA]["ci"]
    assert points[1].y == (run.value("deep-forcing", LUMA),)
    assert (points[1].ci_lo, points[1].ci_hi) == ((ci["ci_low"],), (ci["ci_high"],))
    assert all(c.x[0] > 5.0 for c in points)  # right of the last clip centre (5 s)


def test_csv_wide_without_intervals_is_unchanged(tmp_path):
    run = load_run(make_run(tmp_path, {"deep-forcing": {SUBJ: (0.97, True, 2)}}))
    t = T.summary_table([run], None, keys=[SUBJ])
    assert list(csv.reader(io.StringIO(render.to_csv(t))))[0] == ["method", SUBJ]

"""The HTML report without a browser: self-contained, every section, ablation plots, reproducible bytes."""

import re

import pytest
from report_helpers import FIXTURE_RUN, make_run

from deepforcing.cli import main
from deepforcing.report.html import ReportOptions, build_report, find_ablations
from deepforcing.report.published import load_published
from deepforcing.report.runs import load_run
from deepforcing.report.table import series_of

SECTIONS = ("summary", "paired", "problems", "paper", "drift", "ablation", "speed", "prompts", "provenance")


def _page(runs, tmp_path, **kw):
    return build_report(runs, tmp_path / "report.html", ReportOptions(published=load_published(), **kw))


def assert_self_contained(page: str) -> None:
    """No resource is fetched from anywhere: no external src/href, stylesheet link, import or url()."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    for src in re.findall(r'<img[^>]+src="([^"]+)"', page):
        assert src.startswith("data:image/"), src[:40]
    assert "<script src" not in page


def test_fixture_report_has_every_section_and_is_self_contained(tmp_path):
    page = _page([load_run(FIXTURE_RUN)], tmp_path)
    assert_self_contained(page)
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    for name in ("summary", "paper", "drift", "speed", "methods"):
        assert f'data-table="{name}"' in page
    assert page.count('data-chart="drift-curves"') == 1 and page.count('data-chart="speed"') == 1
    assert page.count("<svg") == 2
    assert "No ablation grid in these runs" in page
    assert page.count("mp4 missing") == 6  # the fixture has no videos; each (prompt, method) says so
    assert "\\begin{tabular}" in page and "| Method |" in page  # LaTeX and Markdown of the summary to copy
    assert "uses model tiny" in page and "not compared with this run" in page
    assert '<section id="problems">' in page and "None: every video was scored." in page
    # drift curves: one panel per per-clip metric id (7), each with the three methods
    svg = page[page.index('data-chart="drift-curves"') :]
    assert all(label in svg for label in ("Mean luma", "Temporal flickering", "self-forcing", "sink-longlive"))


def test_report_is_reproducible(tmp_path):
    run = load_run(FIXTURE_RUN)
    assert _page([run], tmp_path) == _page([run], tmp_path)


def test_ablation_plot_sink_size_against_overall_consistency_and_aesthetic_drift(tmp_path):
    oc = "vbench.overall_consistency@model=viclip"
    ad = "drift.first_last@window=5,abs=true[vbench.aesthetic_quality@clip=openai-vit-l14]"
    results = {
        f"deep-forcing-ds-sink{s}": {oc: (0.200 + s / 1000, True, 21), ad: (0.05 - s / 1000, False, 21)}
        for s in (0, 4, 10, 18)
    }
    run = load_run(make_run(tmp_path, results, suite="ablation-sink"))
    found = find_ablations(series_of([run]))
    assert len(found) == 1 and found[0].knob == "policy_config.sink_frames"
    assert [v for v, _ in found[0].points] == [0, 4, 10, 18]
    page = _page([run], tmp_path)
    assert_self_contained(page)
    fig = page[page.index('data-chart="ablation-deep-forcing-ds-sink_frames"') :]
    fig = fig[: fig.index("</figure>")]
    assert "Overall consistency" in fig and "Aesthetic quality: |first - last 5 s|" in fig
    assert "sink frames" in fig


def test_cli_report_writes_html_and_tables(tmp_path, capsys):
    out = tmp_path / "r" / "report.html"
    code = main(
        [
            "-q",
            "report",
            str(FIXTURE_RUN),
            "--out",
            str(out),
            "--markdown",
            str(tmp_path / "s.md"),
            "--latex",
            str(tmp_path / "s.tex"),
            "--csv",
            str(tmp_path / "s.csv"),
        ]
    )
    assert code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "s.md").read_text().startswith("### Summary")
    assert "\\toprule" in (tmp_path / "s.tex").read_text()
    assert (tmp_path / "s.csv").read_text().startswith("method,")


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "{tmp}/nothing"], "run directory not found"),
        (["report", "{tmp}"], "no results in"),
        (["report", "{fixture}", "--out", "{tmp}/r.pdf"], "--out must end in .html"),
        (["report", "{fixture}", "--latex", "{tmp}/t.md"], "--latex must end in .tex"),
    ],
)
def test_cli_report_bad_input_exits_2(tmp_path, capsys, args, message):
    argv = [a.format(tmp=tmp_path, fixture=FIXTURE_RUN) for a in args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_run_without_results_names_the_score_command(tmp_path, capsys):
    run = tmp_path / "smoke" / "tiny"
    (run / "units").mkdir(parents=True)
    assert main(["report", str(run)]) == 2
    assert "deepforcing-eval score" in capsys.readouterr().err


def test_several_runs_in_one_report(tmp_path):
    import json
    import shutil

    other = tmp_path / "b" / "smoke" / "cpu2"
    shutil.copytree(FIXTURE_RUN, other)
    agg = json.loads((other / "results" / "aggregate.json").read_text())
    agg["run_id"] = "cpu2"
    (other / "results" / "aggregate.json").write_text(json.dumps(agg))
    runs = [load_run(FIXTURE_RUN), load_run(other)]
    page = _page(runs, tmp_path, filmstrips=False)
    assert_self_contained(page)
    assert "deep-forcing · smoke-tiny/cpu2" in page and "deep-forcing · smoke-tiny/tiny" in page
    summary = page[page.index('data-table="summary"') : page.index("</table>", page.index('data-table="summary"'))]
    assert summary[summary.index("<tbody>") :].count("<tr>") == 6  # 2 runs x 3 methods
    legend = page[page.index('data-chart="drift-curves"') :]
    assert "sink-longlive · smoke-tiny/cpu2" in legend[: legend.index("</figure>")]
    # a comparison stays within its run: one row per (run, pair, key), labelled with the run
    paired = page[page.index('data-table="paired"') :]
    assert "deep-forcing vs self-forcing · smoke-tiny/cpu2" in paired[: paired.index("</table>")]

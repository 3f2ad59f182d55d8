"""The drift study runner: resumable rows, and the same rows and summary with one or several worker processes."""

import json

import pytest

from deepforcing.errors import UserError
from deepforcing.toyworld.drift import GROUND_TRUTH, DriftStudy, run_study

# A study small enough for CI: 2 captions x 1 seed x 2 methods, 12 frames in segments of 3 (the last one "late").
STUDY = DriftStudy(
    methods=("self-forcing", "deep-forcing"), prompts=2, seeds=1, num_frames=12, segment_frames=3, late_segments=1
)


def _rows(path):
    rows = [json.loads(line) for line in (path / "rows.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k != "seconds"} for r in rows),
        key=lambda r: (r["method"], r["prompt"], r["seed"], r["segment"]),
    )


def test_workers_give_the_rows_of_one_process_and_a_rerun_resumes(tmp_path):
    one = run_study(STUDY, tmp_path / "one", progress=False)
    two = run_study(STUDY, tmp_path / "two", progress=False, jobs=2)
    rows = _rows(tmp_path / "one")
    # 2 prompts x (ground truth + 2 methods) videos, 4 segments each
    assert len(rows) == 2 * 3 * 4
    assert {r["method"] for r in rows} == {GROUND_TRUTH, "self-forcing", "deep-forcing"}
    assert rows == _rows(tmp_path / "two")
    assert one["table"] == two["table"]
    # a rerun generates nothing and writes the same summary
    before = (tmp_path / "one" / "rows.jsonl").read_text()
    again = run_study(STUDY, tmp_path / "one", progress=False)
    assert (tmp_path / "one" / "rows.jsonl").read_text() == before and again["table"] == one["table"]
    # an interrupted study (last video's rows lost) resumes with only that video
    lines = before.splitlines(keepends=True)
    (tmp_path / "one" / "rows.jsonl").write_text("".join(lines[:-4]))
    resumed = run_study(STUDY, tmp_path / "one", progress=False)
    assert _rows(tmp_path / "one") == rows and resumed["table"] == one["table"]
    # presence and motion by the captions' shape count: every prompt falls in one group
    by = one["by_shapes"]
    assert set(by) == {GROUND_TRUTH, "self-forcing", "deep-forcing"}
    groups = by["self-forcing"]["presence"]
    assert sum(g["early_prompts"] for g in groups.values()) == 2 and set(groups) <= {"1", "2"}
    gt = [r for r in rows if r["method"] == GROUND_TRUTH and r["segment"] == 0]
    for k, g in by[GROUND_TRUTH]["presence"].items():  # one seed: the group's mean is the mean of its rows
        vals = [r["presence"] for r in gt if (" and " in r["caption"]) == (k == "2")]
        assert g["early"][0] == pytest.approx(sum(vals) / len(vals))
    assert "by the caption's shape count" in (tmp_path / "one" / "summary.md").read_text()
    # the summary names its kind, so the report reads it as findings
    from deepforcing.report.findings import load_findings

    assert json.loads((tmp_path / "one" / "summary.json").read_text())["kind"] == "toyworld-drift-study"
    findings = load_findings(tmp_path / "one" / "summary.json")
    assert findings.title == "Toy-world findings" and "2 held-out captions" in findings.intro


def test_cli_json_and_plain_output_of_a_finished_study(tmp_path, capsys):
    from deepforcing.cli import main

    run_study(STUDY, tmp_path / "s", progress=False)
    argv = ["toyworld", "drift", "--methods", "self-forcing,deep-forcing", "--prompts", "2", "--seeds", "1"]
    argv += ["--frames", "12", "--out", str(tmp_path / "s")]
    # the CLI's study has 21-frame segments: a 12-frame one leaves no late segment (one line, exit 2)
    assert main(argv) == 2
    assert "leave no late segments" in capsys.readouterr().err
    assert main([*argv[:-4], "--frames", "84", "--out", str(tmp_path / "c"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "toyworld-drift" and doc["study"]["prompts"] == 2
    assert set(doc["table"]) == {GROUND_TRUTH, "self-forcing", "deep-forcing"}
    assert main([*argv[:-4], "--frames", "84", "--out", str(tmp_path / "c")]) == 0  # resumed: nothing generated
    assert "Toy-world drift: 2 prompts" in capsys.readouterr().out


def test_bad_jobs_fail_before_compute(tmp_path):
    with pytest.raises(UserError, match="--jobs"):
        run_study(STUDY, tmp_path / "x", progress=False, jobs=0)
    assert not (tmp_path / "x").exists()

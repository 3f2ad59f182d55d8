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
    # the summary names its kind, so the report reads it as findings
    from deepforcing.report.findings import load_findings

    assert json.loads((tmp_path / "one" / "summary.json").read_text())["kind"] == "toyworld-drift-study"
    findings = load_findings(tmp_path / "one" / "summary.json")
    assert findings.title == "Toy-world findings" and "2 held-out captions" in findings.intro


def test_bad_jobs_fail_before_compute(tmp_path):
    with pytest.raises(UserError, match="--jobs"):
        run_study(STUDY, tmp_path / "x", progress=False, jobs=0)
    assert not (tmp_path / "x").exists()

"""The report names prompts the text encoder truncated (banner, summary notes, a note under the prompt)."""

import json
import shutil

from report_helpers import FIXTURE_RUN


def test_report_notes_truncated_prompts(tmp_path):
    from deepforcing.report.html import ReportOptions, build_report
    from deepforcing.report.runs import load_run
    from deepforcing.report.table import summary_table, truncation_notes

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run_dir)
    manifest = run_dir / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    first = next(r for r in lines if r.get("record") == "unit")
    pid = first["unit"]["prompt_id"]
    for r in lines:
        if r.get("record") == "unit":
            cut = r["unit"]["prompt_id"] == pid
            r["prompt_truncated"] = cut
            r["prompt_tokens"] = {"count": 700 if cut else 12, "limit": 512, "truncated": cut}
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    run = load_run(run_dir)
    notes = truncation_notes([run])
    assert len(notes) == 1 and f"{pid} (700 tokens, limit 512)" in notes[0] and "1 prompt(s)" in notes[0]
    assert notes[0] in summary_table([run]).notes
    page = build_report([run], tmp_path / "report.html", ReportOptions())
    assert page.count('class="banner truncated"') == 1  # the one prompt, under its text
    assert "prompt truncated: 700 tokens, the text encoder reads 512" in page
    for r in lines:
        if r.get("record") == "unit":
            r["prompt_truncated"] = False
            r["prompt_tokens"] = {"count": 12, "limit": 512, "truncated": False}
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert truncation_notes([load_run(run_dir)]) == []  # nothing cut: nothing said
    # the committed fixture is a real smoke-tiny run: its tiny text encoder reads 16 tokens, so both prompts are cut
    (real,) = truncation_notes([load_run(FIXTURE_RUN)])
    assert "2 prompt(s)" in real and "mgb-0001 (75 tokens, limit 16)" in real

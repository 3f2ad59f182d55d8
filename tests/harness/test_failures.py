"""One accounting of failed and missing units: summary, aggregate, CSV, report and exit code agree.

Runs the tiny suite (2 prompts, 9 latent frames, weight-free metrics) in-process and breaks it the ways a user
meets: a video changed after generation, an undecodable video, a generation that raises, a run folder that does
not exist, a changed unit config.
"""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from deepforcing.cli import main

SUITE = ["--suite", "smoke-tiny", "--num-latent-frames", "9", "--methods", "self-forcing"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run_dir(tmp_path, capsys):
    code, _, err = _run(capsys, "-q", *SUITE, "--out", str(tmp_path))
    assert code == 0, err
    return tmp_path / "smoke-tiny" / "tiny"


def _units(run: Path) -> list[Path]:
    return sorted(p.parent for p in run.glob("units/*/unit.json"))


def _replace_video(unit: Path, data: bytes, *, keep_record: bool) -> None:
    """Overwrite a unit's video; with ``keep_record`` its unit.json is updated to agree (as an imported file)."""
    (unit / "video.mp4").write_bytes(data)
    if keep_record:
        row = json.loads((unit / "unit.json").read_text())
        row.update(video_sha256=hashlib.sha256(data).hexdigest(), video_bytes=len(data))
        (unit / "unit.json").write_text(json.dumps(row))


def test_a_broken_video_is_one_failure_everywhere(run_dir, capsys, tmp_path):
    a, b = _units(run_dir)
    _replace_video(a, (a / "video.mp4").read_bytes()[:2000], keep_record=True)  # undecodable, sha agrees
    code, out, err = _run(capsys, "score", *SUITE, "--out", str(tmp_path))
    assert code == 3, err  # completed with failures
    assert "self-forcing 1/2 scored (1 failed)" in out
    assert "failed (2):" in out and "cannot open video" in out  # one line per metric that could not score it

    agg = json.loads((run_dir / "results" / "aggregate.json").read_text())
    assert agg["n_samples"]["self-forcing"] == {"expected": 2, "generated": 2, "scored": 1, "failed": 1, "missing": 0}
    assert {p["unit_key"] for p in agg["problems"]} == {a.name}
    assert {p["state"] for p in agg["problems"]} == {"failed"} and {p["stage"] for p in agg["problems"]} == {"score"}
    problems = pd.read_csv(run_dir / "results" / "problems.csv")
    assert len(problems) == len(agg["problems"]) and set(problems["unit_key"]) == {a.name}
    table = pd.read_csv(run_dir / "results" / "aggregate.csv")
    primary = table[~table["metric"].str.contains("[", regex=False)]  # drift columns can be undefined at 9 frames
    assert len(primary) and (primary["n_videos"] == 1).all() and (primary["failed_videos"] == 1).all()

    page = (run_dir / "report.html").read_text()
    assert 'id="problems"' in page and a.name in page and "1 failed of 2 video(s)" in page

    code, out, _ = _run(capsys, "score", *SUITE, "--out", str(tmp_path), "--allow-failures", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["failed"]) == 2 and doc["missing"] == [] and doc["failed_units"]["self-forcing"] == 1


def test_a_video_changed_after_generation_is_not_scored_and_says_why(run_dir, capsys, tmp_path):
    a, _ = _units(run_dir)
    _replace_video(a, (a / "video.mp4").read_bytes()[:-100], keep_record=False)
    code, out, _ = _run(capsys, "score", *SUITE, "--out", str(tmp_path))
    assert code == 3
    assert "does not match the sha256 recorded when it was generated" in out and "regenerating" not in out
    assert f"`run` generates units/{a.name} again" in out
    agg = json.loads((run_dir / "results" / "aggregate.json").read_text())
    assert [p["stage"] for p in agg["problems"]] == ["video"]
    code, _, err = _run(capsys, *SUITE, "--out", str(tmp_path))  # `run` regenerates it
    assert code == 0, err


def test_a_unit_whose_generation_raises_is_counted_and_the_others_finish(tmp_path, capsys, monkeypatch):
    from deepforcing.pipeline import VideoGenerator

    real = VideoGenerator.generate

    def flaky(self, prompt, **kwargs):
        if kwargs.get("prompt_id") == "mgb-0001":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(self, prompt, **kwargs)

    monkeypatch.setattr(VideoGenerator, "generate", flaky)
    code, out, err = _run(capsys, *SUITE, "--out", str(tmp_path))
    assert code == 3
    assert "self-forcing 1/2 scored (1 failed)" in out and "CUDA out of memory (simulated)" in out
    run = tmp_path / "smoke-tiny" / "tiny"
    failed = [json.loads(p.read_text()) for p in run.glob("units/*/failed.json")]
    assert len(failed) == 1 and failed[0]["stage"] == "generate" and failed[0]["prompt_id"] == "mgb-0001"
    assert json.loads((run / "run.json").read_text())["status"] == "incomplete"

    monkeypatch.setattr(VideoGenerator, "generate", real)
    code, out, err = _run(capsys, *SUITE, "--out", str(tmp_path))  # the failed unit is tried again
    assert code == 0, err
    assert not list(run.glob("units/*/failed.json")) and "self-forcing 2/2 scored" in out


def test_score_of_a_run_that_does_not_exist_creates_nothing(run_dir, capsys, tmp_path):
    code, _, err = _run(capsys, "score", *SUITE, "--out", str(tmp_path), "--run-id", "typo")
    assert code == 2 and "run not found" in err and str(run_dir) in err  # lists the runs that exist
    assert not (tmp_path / "smoke-tiny" / "typo").exists()
    empty = tmp_path / "elsewhere"
    code, _, err = _run(capsys, "score", *SUITE, "--out", str(empty))
    assert code == 2 and "deepforcing-eval run --suite smoke-tiny" in err and not empty.exists()


def test_missing_units_say_which_field_of_their_config_changed(run_dir, capsys, tmp_path):
    old = {p.name for p in _units(run_dir)}
    code, out, _ = _run(capsys, "score", *SUITE[:2], "--num-latent-frames", "6", *SUITE[4:], "--out", str(tmp_path))
    assert code == 3
    assert "missing (2):" in out and "num_latent_frames: 9 -> 6" in out and "that unit is kept as it is" in out
    assert {p.name for p in _units(run_dir)} == old  # nothing was touched


def test_every_csv_the_harness_writes_loads_with_plain_pandas(run_dir):
    csvs = sorted(run_dir.rglob("*.csv"))
    assert {p.name for p in csvs} >= {"aggregate.csv", "problems.csv", "index.csv"}
    for path in csvs:
        frame = pd.read_csv(path)
        assert len(frame.columns) > 1, path
    table = pd.read_csv(run_dir / "results" / "aggregate.csv")
    defined = table.dropna(subset=["value"])
    assert (
        len(defined)
        and (defined["ci_low"] <= defined["value"]).all()
        and (defined["value"] <= defined["ci_high"]).all()
    )
    assert (defined["n_prompts"] == 2).all()
    prov = json.loads((run_dir / "results" / "provenance.json").read_text())
    assert prov["suite"] == "smoke-tiny" and "provenance" in prov


def test_every_file_names_the_config_that_ran_and_the_tree_is_readable(tmp_path, capsys):
    """The toy model runs methods with its card's sampler: unit.json, manifest, aggregate and index agree on it."""
    from deepforcing.toyworld.kind import SHIPPED_DIR

    argv = ["--suite", "smoke", "--limit", "1", "--methods", "self-forcing", "--metrics", "image_stats"]
    code, _, err = _run(capsys, "-q", *argv, "--num-latent-frames", "21", "--out", str(tmp_path), "--no-report")
    assert code == 0, err
    run = tmp_path / "smoke" / "toyworld"
    assert not (run / "report.html").exists()  # --no-report
    (unit,) = _units(run)
    row = json.loads((unit / "unit.json").read_text())
    steps = json.loads((SHIPPED_DIR / "card.json").read_text())["sampling"]["denoising_steps"]
    assert row["method_config"]["sampler_config"]["denoising_steps"] == steps  # what ran, not the DMD preset's
    hashes = {row["unit"]["method_config_hash"], row["method_config"]["config_hash"]}
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    hashes.add(agg["methods"]["self-forcing"]["config_hash"])
    hashes |= {
        r["method_config_hash"] for r in map(json.loads, (run / "results" / "clips.jsonl").open()) if "unit_key" in r
    }
    assert len(hashes) == 1 and agg["methods"]["self-forcing"]["config"] == {
        k: v for k, v in row["method_config"].items() if k != "config_hash"
    }
    index = pd.read_csv(run / "index.csv")
    assert index.loc[0, "status"] == "ok" and index.loc[0, "unit_key"] == unit.name
    link = run / "videos" / "self-forcing" / f"{index.loc[0, 'prompt_id']}__s0.mp4"
    assert link.is_symlink() and link.resolve() == (unit / "video.mp4").resolve()

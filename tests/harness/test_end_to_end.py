"""End to end with real signals and processes: Ctrl-C, SIGKILL and resume, world-size independence, rescoring.

One run directory is built step by step (module fixture): a run is interrupted by a real SIGINT in the middle
of its second unit (sent to this process, which runs the CLI in-process), a subprocess run is killed with
SIGKILL, then the run is resumed. A torchrun job with 2 CPU processes (gloo) then writes the same suite to
another directory and every result row must be identical.
"""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepforcing.cli import main
from deepforcing.harness import schema
from deepforcing.harness.store import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
SUITE = ["--suite", "smoke-tiny", "--num-latent-frames", "9", "--methods", "self-forcing,deep-forcing"]
N_UNITS = 4  # 2 prompts x 2 methods

pytestmark = pytest.mark.slow


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def _units(root: Path) -> list[Path]:
    return sorted(root.glob("smoke-tiny/tiny/units/*/unit.json"))


def _start(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "deepforcing.cli", "-q", *SUITE, "--out", str(out)]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_units(proc: subprocess.Popen, out: Path, n: int, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while len(_units(out)) < n:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting for units")
        time.sleep(0.05)


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if ".tmp" in p.name]


def _snapshot(out: Path) -> dict[str, tuple]:
    snap = {}
    for rec in _units(out):
        video = rec.parent / "video.mp4"
        snap[rec.parent.name] = (rec.stat().st_ino, rec.stat().st_mtime_ns, video.stat().st_ino, rec.read_text())
    return snap


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """SIGINT a run, SIGKILL the next one, resume: returns (run root, what each step saw)."""
    from deepforcing.harness.progress import Progress

    out = tmp_path_factory.mktemp("e2e") / "runs"
    seen = {}

    # 1. Ctrl-C (a real SIGINT to this process) in the middle of the second unit: exit 130, a clear message,
    #    no temporary or partial file.
    # The trigger counts units started (not unit.json files) and raises the signal in this thread, so that the
    # interrupt cannot land later than the second unit on a slow or busy machine.
    real_chunk, real_unit = Progress.chunk, Progress.unit
    started = []

    def unit(self, label, num_chunks=None):
        started.append(label)
        real_unit(self, label, num_chunks)

    def chunk(self, done, total):
        if len(started) >= 2 and done >= 2 and not seen.get("signalled"):
            seen["signalled"] = True
            signal.raise_signal(signal.SIGINT)  # a real SIGINT; Python raises KeyboardInterrupt right here
        real_chunk(self, done, total)

    Progress.chunk, Progress.unit = chunk, unit
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: restore Ctrl-C's
    # default (KeyboardInterrupt) as an interactive session has it, whatever started the test session.
    previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _capture_stderr() as err:
            seen["sigint_rc"] = main(["-q", *SUITE, "--out", str(out)])
    finally:
        Progress.chunk, Progress.unit = real_chunk, real_unit
        signal.signal(signal.SIGINT, previous_sigint)
    assert seen.get("signalled"), f"the run never reached its second unit's second chunk (units started: {started})"
    seen["sigint_err"] = err.getvalue()
    seen["after_sigint"] = _snapshot(out)
    seen["temp_after_sigint"] = _temp_files(out)

    # 2. SIGKILL a subprocess as soon as one more unit is done (the next one is then in flight).
    proc = _start(out)
    _wait_for_units(proc, out, len(seen["after_sigint"]) + 1)
    proc.kill()
    proc.communicate(timeout=60)
    seen["kill_rc"] = proc.returncode
    seen["after_kill"] = _snapshot(out)
    seen["killed_at"] = time.time()

    # 3. Resume (in this process: importing the whole stack in another one would only cost time).
    seen["resume_rc"] = main(["-q", *SUITE, "--out", str(out)])
    seen["after_resume"] = _snapshot(out)
    return out / "smoke-tiny" / "tiny", seen


def _capture_stderr():
    """Capture what the CLI prints on stderr (the console layer writes to the current ``sys.stderr``)."""
    return contextlib.redirect_stderr(io.StringIO())


def test_sigint_stops_cleanly(resumed_run):
    _, seen = resumed_run
    assert seen["sigint_rc"] == 130, seen["sigint_err"]
    assert "interrupted" in seen["sigint_err"] and "re-run the same command to resume" in seen["sigint_err"]
    assert "Traceback" not in seen["sigint_err"]
    assert seen["signalled"] and len(seen["after_sigint"]) == 1  # the second unit was in flight: not kept
    assert seen["temp_after_sigint"] == []


def test_sigkill_then_resume_redoes_only_the_unit_in_flight(resumed_run):
    run, seen = resumed_run
    assert seen["kill_rc"] == -signal.SIGKILL
    assert seen["resume_rc"] == 0
    before, after = seen["after_kill"], seen["after_resume"]
    assert len(after) == N_UNITS
    # every unit that was complete at the kill is untouched: same files (inode), same row
    for key, state in before.items():
        assert after[key] == state, f"unit {key} was redone"
    # the others were generated after the kill
    for key in set(after) - set(before):
        row = json.loads((run / "units" / key / "unit.json").read_text())
        assert row["finished_at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seen["killed_at"] - 1))
    # nothing partial is left, every file parses
    assert _temp_files(run) == []
    for p in run.rglob("*.json"):
        json.loads(p.read_text())
    header, rows = read_jsonl(run / "results" / "clips.jsonl")
    assert header["schema_version"] == 1 and header["provenance"]["git"]["commit"]
    assert {r["unit_key"] for r in rows} == set(after)
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    assert set(agg) == set(schema.Aggregate.__annotations__)
    for name in ("clips.jsonl", "videos.jsonl", "../manifest.jsonl"):
        head, rows = read_jsonl(run / "results" / name)
        assert set(head) == set(schema.Header.__annotations__)
        for row in rows:
            row_type = schema.ROW_TYPES[row["record"]]
            keys = set(row_type.__annotations__) | ({"used_by"} if row["record"] == "unit" else set())
            assert set(row) == keys, (row["record"], set(row) ^ keys)
    assert agg["n_samples"]["deep-forcing"] == {"expected": 2, "generated": 2, "scored": 2, "failed": 0, "missing": 0}
    assert agg["problems"] == []
    assert agg["timings"]["self-forcing"]["fps_mean"] > 0
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_world_size_does_not_change_results(resumed_run, tmp_path):
    run1, _ = resumed_run
    out2 = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "deepforcing.cli",
        "-q",
        *SUITE,
        "--out",
        str(out2),
    ]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run2 = out2 / "smoke-tiny" / "tiny"
    ranks = {json.loads(p.read_text())["rank"] for p in _units(out2)}
    assert ranks == {0, 1}  # both processes generated units
    for name in ("clips.jsonl", "videos.jsonl"):
        h1, rows1 = read_jsonl(run1 / "results" / name)
        h2, rows2 = read_jsonl(run2 / "results" / name)
        assert rows1 == rows2 and len(rows1) > 0
        assert h2["provenance"]["world_size"] == 2 and h1["provenance"]["world_size"] == 1
    a1 = json.loads((run1 / "results" / "aggregate.json").read_text())
    a2 = json.loads((run2 / "results" / "aggregate.json").read_text())
    assert a1["results"] == a2["results"] and a1["n_samples"] == a2["n_samples"]
    shas1 = {r["unit_key"]: r["video_sha256"] for r in read_jsonl(run1 / "manifest.jsonl")[1]}
    shas2 = {r["unit_key"]: r["video_sha256"] for r in read_jsonl(run2 / "manifest.jsonl")[1]}
    assert shas1 == shas2 and len(shas1) == N_UNITS


def test_rescoring_never_regenerates(resumed_run, capsys):
    run, _ = resumed_run
    out = run.parent.parent
    videos = {p: p.stat().st_mtime_ns for p in run.rglob("video.mp4")}
    caches = {p: p.stat().st_mtime_ns for p in run.rglob("image_stats-*.json")}
    # another metric set: scores only, cached image_stats rows reused
    assert main(["-q", "score", *SUITE, "--out", str(out), "--metrics", "image_stats"]) == 0
    assert {p: p.stat().st_mtime_ns for p in run.rglob("video.mp4")} == videos
    assert {p: p.stat().st_mtime_ns for p in run.rglob("image_stats-*.json")} == caches
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    assert all(k.startswith(("image_stats", "drift")) for k in agg["results"]["self-forcing"])
    # forced rescoring recomputes the rows, still without touching a video
    assert main(["-q", "score", *SUITE, "--out", str(out), "--metrics", "image_stats", "--force"]) == 0
    assert {p: p.stat().st_mtime_ns for p in run.rglob("video.mp4")} == videos
    assert all(p.stat().st_mtime_ns > caches[p] for p in caches)
    # and `run` with everything done generates nothing
    capsys.readouterr()
    assert main([*SUITE, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0 generated" in text
    # the summary is plain text when piped: one line per metric, the methods' numbers on it
    luma = next(line.split() for line in text.splitlines() if line.startswith("image_stats.mean_luma "))
    assert len(luma) == 3 and all(0 < float(v) < 1 for v in luma[1:])
    assert f"  {run / 'results' / 'aggregate.json'}" in text.splitlines()
    # and the same summary as a JSON document (docs/cli.md, kind run-summary)
    assert main(["score", *SUITE, "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["kind"] == "run-summary" and doc["scored"] is True
    assert doc["suite"] == "smoke-tiny" and doc["run_dir"] == str(run) and doc["missing"] == []
    assert doc["methods"] == ["self-forcing", "deep-forcing"] and doc["units"]["pending"] == 0
    assert doc["n_samples"]["deep-forcing"]["scored"] == 2
    assert doc["results"]["self-forcing"]["image_stats.mean_luma@luma=bt601"]["n_videos"] == 2
    assert doc["files"]["aggregate.json"] == str(run / "results" / "aggregate.json")


def _fake_i3d(clips):
    """A deterministic stand-in for I3D: per-clip colour / motion statistics, (B, 8) float64."""
    import torch

    x = clips.double() / 255.0  # (B, T, H, W, 3)
    feats = [x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3)), (x[:, 1:] - x[:, :-1]).abs().mean(dim=(1, 2, 3, 4))[:, None]]
    return torch.cat([*feats, x.amax(dim=(1, 2, 3, 4))[:, None]], dim=1)


def test_temporal_fvd_from_cached_statistics(resumed_run, tmp_path, monkeypatch):
    """Temporal FVD (first vs last window) is scored from the same videos, merged per method in plan order."""
    import torch

    from deepforcing.harness import scoring
    from deepforcing.metrics.frechet import FeatureStats, fid_from_stats
    from deepforcing.metrics.fvd import window_clips
    from deepforcing.metrics.video_io import decode_video

    run, _ = resumed_run
    suite = tmp_path / "smoke-tiny.yaml"  # same name and units as the run above, other metrics
    suite.write_text(
        "name: smoke-tiny\nversion: 1\nmodel: tiny\nprompts: {set: moviegen, first: 2}\n"
        "methods: [self-forcing, deep-forcing]\nseeds: [0]\nlength: {latent_frames: 9}\n"
        "metrics: [fvd]\nfvd_window_s: 1\n"
    )
    weights = tmp_path / "w"
    (weights / "metrics" / "i3d").mkdir(parents=True)
    (weights / "metrics" / "i3d" / "i3d_torchscript.pt").write_bytes(b"stand-in")
    monkeypatch.setattr(scoring, "fvd_extractor", lambda mp, device: _fake_i3d)
    videos = {p: p.stat().st_mtime_ns for p in run.rglob("video.mp4")}
    argv = ["-q", "score", "--suite", str(suite), "--out", str(run.parent.parent), "--weights-dir", str(weights)]
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in run.rglob("video.mp4")} == videos
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    fid = scoring.fvd_metric_id(1.0)
    assert fid == "fvd.temporal@i3d=styleganv,frames=16,res=224,resize=stretch,cov=n-1,ref=first1s,eval=last1s"
    got = agg["results"]["deep-forcing"][fid]
    assert got["n_videos"] == 2 and got["n_clips_ref"] == 2 and got["n_clips_eval"] == 2
    # the same number computed directly from the videos
    manifest = read_jsonl(run / "manifest.jsonl")[1]
    keys = [r["unit_key"] for r in manifest if "deep-forcing" in r["used_by"]]
    ref, last = FeatureStats.empty(8), FeatureStats.empty(8)
    for key in keys:
        v = decode_video(run / "units" / key / "video.mp4")
        dur = v.frames.shape[0] / v.fps
        ref.update(_fake_i3d(window_clips(v.frames, v.fps, 0, 1)))
        last.update(_fake_i3d(window_clips(v.frames, v.fps, dur - 1, dur)))
    assert got["value"] == pytest.approx(fid_from_stats(ref, last), rel=1e-9, abs=1e-12)
    assert torch.isfinite(torch.tensor(got["value"]))

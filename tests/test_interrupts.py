"""SIGINT / SIGTERM during generation: real subprocesses on the toy model; partial files go, finished files stay."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepforcing.interrupts import Terminated, exit_code, stop_on_signals
from deepforcing.video_io import write_video

REPO = Path(__file__).resolve().parents[1]
CAPTION = "a red circle bouncing on a black background"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def _popen(cmd: list[str]) -> subprocess.Popen:
    """Start the CLI with SIGINT handled normally, even when this test process ignores it (started with `&`)."""
    return subprocess.Popen(
        cmd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - no threads involved
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended early (rc {proc.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the process")
        time.sleep(0.05)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def test_stop_on_signals_turns_sigterm_into_an_interrupt_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as info, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert isinstance(info.value, Terminated) and exit_code(info.value) == 143
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_code(KeyboardInterrupt()) == 130


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_generate_interrupted_removes_the_partial_video_and_keeps_finished_ones(tmp_path, signum):
    finished = tmp_path / "finished.mp4"
    write_video(finished, np.full((4, 32, 32, 3), 90, dtype=np.uint8), fps=4)
    out = tmp_path / "out.mp4"  # a complete video from an earlier run, to be replaced only by a complete one
    write_video(out, np.full((4, 32, 32, 3), 200, dtype=np.uint8), fps=4)
    shas = {p: _sha(p) for p in (finished, out)}
    cmd = [sys.executable, "-m", "deepforcing.cli", "-q", "generate", "--model", "toyworld", "--prompt", CAPTION]
    cmd += ["--num-latent-frames", "600", "--output", str(out)]
    proc = _popen(cmd)
    _wait_for(lambda: bool(list(tmp_path.glob(".out.mp4.*.tmp.mp4"))), proc)
    time.sleep(1.0)  # a few chunks into the video
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "interrupted" in err
    assert _temps(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finished.mp4", "out.mp4"]
    assert {p: _sha(p) for p in shas} == shas


def _run_cmd(out: Path) -> list[str]:
    return [
        sys.executable, "-m", "deepforcing.cli", "-q", "run", "--suite", "smoke", "--methods", "self-forcing",
        "--limit", "2", "--num-latent-frames", "120", "--no-score", "--out", str(out),
    ]  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_suite_run_killed_mid_unit_resumes_without_stray_files(tmp_path, signum):
    root = tmp_path / "smoke" / "toyworld" / "units"
    proc = _popen(_run_cmd(tmp_path))

    def second_unit_in_flight() -> bool:
        done = list(root.glob("*/unit.json"))
        return len(done) == 1 and any(p.parent != done[0].parent for p in root.glob("*/.video.mp4.*.tmp.mp4"))

    _wait_for(second_unit_in_flight, proc)
    first = next(root.glob("*/unit.json")).parent
    first_sha = _sha(first / "video.mp4")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        assert _temps(tmp_path) == []  # the unit in flight left nothing
    else:
        assert proc.returncode == -signal.SIGKILL
    assert [p.parent for p in root.glob("*/unit.json")] == [first]  # the finished unit is kept
    assert [p.parent for p in root.glob("*/video.mp4")] == [first]  # no video without its row

    resumed = subprocess.run(_run_cmd(tmp_path), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(root.glob("*/unit.json"))) == 2
    assert _sha(first / "video.mp4") == first_sha  # reused, not regenerated
    assert _temps(tmp_path) == []  # SIGKILL's temporary file is gone after the resume

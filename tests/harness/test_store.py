"""Run store: atomic writes (disk full, unwritable), completeness checks, stale temporary files."""

import dataclasses
import errno
import json
import os
import shutil
import subprocess

import pytest

from deepforcing.errors import UserError
from deepforcing.harness import store as store_mod
from deepforcing.harness.plan import UnitKey
from deepforcing.harness.store import RunStore, atomic_write_bytes, atomic_write_json, read_jsonl, sha256_file

UNIT = UnitKey("88d8d2898aa9", "tiny:tiny@0123456789ab", "tiny", "mgb-0001", "ab" * 32, 0, 9, "float32")


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "b.json"
    atomic_write_json(path, {"x": 1, "nan": float("nan")})
    assert json.loads(path.read_text()) == {"nan": None, "x": 1}
    atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_disk_full_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"old": True})
    calls = {"n": 0}
    real_write = os.write

    def full(fd, data):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[:10]))  # a short first write, then the disk is full

    monkeypatch.setattr(store_mod.os, "write", full)
    with pytest.raises(UserError, match="no space left on the device while writing .*r.json"):
        atomic_write_bytes(path, b"x" * 10_000)
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB filesystem (needs mount permission; skipped otherwise)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_really_full_filesystem(tiny_tmpfs):
    target = tiny_tmpfs / "results" / "aggregate.json"
    with pytest.raises(UserError, match="no space left on the device"):
        atomic_write_bytes(target, b"y" * 1_000_000)
    assert list((tiny_tmpfs / "results").iterdir()) == []  # no half-written file, no temporary file
    store = RunStore(tiny_tmpfs, "smoke", "tiny")
    store.check_writable()  # small probe fits


def test_unwritable_out_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = RunStore(blocker / "runs", "smoke", "tiny")
    with pytest.raises(UserError, match="cannot create the run directory .*file/runs/smoke/tiny"):
        store.check_writable()


def test_run_id_is_checked():
    with pytest.raises(UserError, match="run id"):
        RunStore("runs", "smoke", "../x")


def _done_unit(store, key):
    video = store.video_path(key)
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x00video" * 100)
    store.write_record(
        key,
        {
            "unit_key": key,
            "unit": dataclasses.asdict(UNIT),
            "video_sha256": sha256_file(video),
            "video_bytes": video.stat().st_size,
        },
    )
    return video


def test_done_only_when_video_and_row_agree(tmp_path):
    store = RunStore(tmp_path, "smoke", "tiny")
    key = UNIT.key
    assert store.done_record(UNIT) is None
    video = _done_unit(store, key)
    assert store.done_record(UNIT)["video_sha256"] == sha256_file(video)
    # same size, different bytes: the sha256 disagrees
    video.write_bytes(b"\x00videO" * 100)
    assert store.done_record(UNIT) is None
    # a row for another unit in this directory is not accepted
    video.unlink()
    _done_unit(RunStore(tmp_path, "smoke", "tiny2"), key)
    shutil.copy(store.root.parent / "tiny2" / "units" / key / "video.mp4", video)
    other = dataclasses.replace(UNIT, seed=1)
    assert store.done_record(other) is None
    # a truncated row is ignored, never trusted
    store.record_path(key).write_text('{"unit_key": ')
    assert store.done_record(UNIT) is None


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path):
    store = RunStore(tmp_path, "smoke", "tiny")
    d = store.unit_dir(UNIT.key)
    d.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (d / f".video.mp4.{dead.pid}-deadbeef.tmp.mp4").write_bytes(b"partial")
    (d / f".unit.json.{os.getpid()}-cafe0000.tmp").write_bytes(b"mine")  # a live writer: kept
    assert store.clean_stale_tmp(UNIT.key) == 1
    assert [p.name for p in d.iterdir()] == [f".unit.json.{os.getpid()}-cafe0000.tmp"]


def test_jsonl_has_a_header_with_schema(tmp_path):
    path = tmp_path / "x.jsonl"
    store_mod.atomic_write_jsonl(path, {"suite": "s", "provenance": {"git": "abc"}}, [{"a": 1}, {"a": float("inf")}])
    header, rows = read_jsonl(path)
    assert header["schema_version"] == store_mod.SCHEMA_VERSION and header["provenance"] == {"git": "abc"}
    assert rows == [{"a": 1}, {"a": None}]

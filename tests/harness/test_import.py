"""Videos made elsewhere: export a run in VBench's layout, import it back, and every score is the same bit for bit.

Also: the layouts (VBench names, a mapping file, one folder per method), videos of other frame rates, sizes and
lengths (their protocol is recorded), and the bad inputs a user meets (no videos, no prompt, two files for one
prompt, a broken file).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepforcing.cli import main
from deepforcing.files import read_jsonl

SUITE = ["--suite", "smoke-tiny", "--methods", "self-forcing", "--num-latent-frames", "9"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A run of the tiny suite: 2 prompts x self-forcing, 9 latent frames (33 video frames at 16 fps)."""
    out = tmp_path_factory.mktemp("import") / "runs"
    assert main(["-q", *SUITE, "--out", str(out)]) == 0
    return out


def _clip_values(run: Path, method: str) -> dict:
    rows = read_jsonl(run / "results" / "clips.jsonl")[1]
    return {
        (r["prompt_id"], r["seed"], r["metric"], r["clip_index"]): r["value"] for r in rows if r["method"] == method
    }


def test_export_then_import_gives_every_score_bit_for_bit(generated, tmp_path, capsys):
    run = generated / "smoke-tiny" / "tiny"
    code, out, err = _run(capsys, "export", str(run), str(tmp_path / "vb"), "--json")
    assert code == 0, err
    written = json.loads(out)["methods"]["self-forcing"]
    names = sorted(p.name for p in (tmp_path / "vb" / "self-forcing").glob("*.mp4"))
    assert written["videos"] == 2 and all(n.endswith("-0.mp4") for n in names)  # VBench naming: <prompt>-<index>
    vbench = json.loads((tmp_path / "vb" / "self-forcing_eval_results.json").read_text())
    score, videos = vbench["temporal_flickering"]
    assert len(videos) == 2 and {"video_path", "video_results"} == set(videos[0]) and 0 < score <= 1

    argv = ["score-videos", str(tmp_path / "vb" / "self-forcing"), "--name", "theirs", *SUITE, "--out", str(generated)]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    ours, theirs = _clip_values(run, "self-forcing"), _clip_values(run, "theirs")
    assert ours and ours == theirs  # same keys (prompt ids matched by text), same values, exactly
    agg = json.loads((run / "results" / "aggregate.json").read_text())
    paired = agg["paired"]["theirs vs self-forcing"]
    assert all(p["mean"] == 0 and p["ci_low"] == 0 and p["ci_high"] == 0 for p in paired.values())
    assert agg["methods"]["theirs"]["config"]["layout"] == "vbench"
    index = pd.read_csv(run / "index.csv")
    assert set(index[index["method"] == "theirs"]["status"]) == {"ok"}
    assert "theirs" in (run / "report.html").read_text()

    code, out, _ = _run(capsys, *argv, "--json")  # again: nothing is copied or scored twice
    assert code == 0 and json.loads(out)["units"]["scored_here"] == 0


def _write_video(path: Path, frames: int, fps: int, size: tuple[int, int], seed: int) -> None:
    from deepforcing.video_io import Mp4Writer

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, size[0], size[1], 3), dtype=np.uint8)
    shift = np.arange(frames, dtype=np.uint8)[:, None, None, None]
    with Mp4Writer(path, fps=fps) as w:
        w.write((base + shift).astype(np.uint8))


def test_videos_of_other_rates_sizes_and_lengths_record_what_was_done(tmp_path, capsys):
    folder = tmp_path / "mine"
    specs = {"a cat-0.mp4": (40, 8, (48, 64)), "a cat-1.mp4": (75, 24, (96, 32)), "a dog.mp4": (33, 16, (64, 64))}
    for i, (name, (n, fps, size)) in enumerate(specs.items()):
        _write_video(folder / name, n, fps, size, i)
    code, out, err = _run(capsys, "score-videos", str(folder), "--name", "mine", "--metrics", "image_stats",
                          "--out", str(tmp_path / "runs"), "--json")  # fmt: skip
    assert code == 0, err
    run = tmp_path / "runs" / "videos" / "mine"
    rows = {
        json.loads(p.read_text())["imported_from"]: json.loads(p.read_text()) for p in run.glob("units/*/unit.json")
    }
    assert len(rows) == 3
    for name, (n, fps, (h, w)) in specs.items():
        proto = rows[str((folder / name).resolve())]["protocol"]
        assert (proto["fps"], proto["height"], proto["width"], proto["frames"]) == (fps, h, w, n)
        assert proto["container"] == "mov,mp4,m4a,3gp,3g2,mj2" and proto["codec"] == "h264"
    index = pd.read_csv(run / "index.csv")
    assert sorted(index["seed"]) == [0, 0, 1] and set(index["prompt"]) == {"a cat", "a dog"}
    clips = read_jsonl(run / "results" / "clips.jsonl")[1]
    assert {r["fps"] for r in clips} == {8.0, 16.0, 24.0}  # scored at each file's own rate (2-s clips)


def test_a_mapping_file_and_a_folder_per_method(tmp_path, capsys):
    root = tmp_path / "videos"
    for i, name in enumerate(("x1.mp4", "x2.mp4", "y1.mp4")):
        _write_video(root / name, 33, 16, (32, 32), i)
    segments = json.dumps(
        [{"prompt": "a cat", "start_s": 0, "end_s": 1}, {"prompt": "a dog", "start_s": 1, "end_s": 2.0625}]
    )
    pd.DataFrame(
        {
            "path": ["x1.mp4", "x2.mp4", "y1.mp4"],
            "prompt": ["a cat then a dog", "a cat then a dog", "a bird"],
            "seed": [0, 1, 0],
            "method": ["x", "x", "y"],
            "segments": [segments, segments, ""],
        }
    ).to_csv(tmp_path / "map.csv", index=False)
    code, out, err = _run(capsys, "score-videos", str(root), "--prompts", str(tmp_path / "map.csv"),
                          "--metrics", "image_stats", "--out", str(tmp_path / "runs"), "--run-id", "m")  # fmt: skip
    assert code == 0, err
    run = tmp_path / "runs" / "videos" / "m"
    units = [json.loads(p.read_text()) for p in run.glob("units/*/unit.json")]
    assert sorted(u["method"] for u in units) == ["x", "x", "y"]
    assert [len(u["segments"] or []) for u in sorted(units, key=lambda u: u["method"])] == [2, 2, 0]

    nested = tmp_path / "nested"
    for m in ("a", "b"):
        _write_video(nested / m / "a bird-0.mp4", 33, 16, (32, 32), 7)
    code, out, err = _run(capsys, "score-videos", str(nested), "--name", "lab", "--metrics", "image_stats",
                          "--out", str(tmp_path / "runs"), "--run-id", "n", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["methods"] == ["lab-a", "lab-b"]


@pytest.mark.parametrize(
    ("files", "mapping", "needle"),
    [
        ({}, None, "no video files"),
        ({"-0.mp4": 0}, None, "no prompt in the file name"),
        ({"a cat-0.mp4": 0, "a cat-0.mov": 1}, None, "2 files for prompt"),
        ({"x.mp4": 0, "y.mp4": 1}, "path,prompt\nx.mp4,a cat\ny.mp4,\nz.mp4,a dog\n", "2 problem(s)"),
    ],
)
def test_bad_folders_are_refused_with_every_problem_and_nothing_copied(tmp_path, capsys, files, mapping, needle):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, seed in files.items():
        _write_video(folder / name, 9, 16, (32, 32), seed)
    extra = []
    if mapping:
        (tmp_path / "map.csv").write_text(mapping)
        extra = ["--prompts", str(tmp_path / "map.csv")]
    code, _, err = _run(capsys, "score-videos", str(folder), "--name", "n", "--metrics", "image_stats",
                        "--out", str(tmp_path / "runs"), *extra)  # fmt: skip
    assert code == 2 and needle in err
    if mapping:
        assert "y.mp4 has no prompt" in err and "z.mp4 not found" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("unit.json"))


def test_a_broken_file_is_a_failed_unit_and_the_others_are_scored(tmp_path, capsys):
    folder = tmp_path / "in"
    _write_video(folder / "a cat-0.mp4", 33, 16, (32, 32), 0)
    (folder / "a dog-0.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(300))  # an mp4 header, no video
    code, out, err = _run(capsys, "score-videos", str(folder), "--name", "n", "--metrics", "image_stats",
                          "--out", str(tmp_path / "runs"))  # fmt: skip
    assert code == 3, err
    assert "n 1/2 scored (1 failed)" in out and "cannot open video" in out
    run = tmp_path / "runs" / "videos" / "n"
    problems = pd.read_csv(run / "results" / "problems.csv")
    index = pd.read_csv(run / "index.csv").set_index("prompt")
    assert list(problems["state"]) == ["failed"] and index.loc["a dog", "status"] == "failed"
    assert index.loc["a dog", "prompt_id"] == "vb-0346"  # "a dog" is a VBench prompt: the suite's id is shared


def test_set_fvd_against_a_reference_folder(tmp_path, capsys):
    """Set-level FVD: a method against the same videos as a reference is 0; against other videos it is not."""
    import torch

    from tests.metrics.test_fvd import TinyI3D

    weights = tmp_path / "weights"
    (weights / "metrics" / "i3d").mkdir(parents=True)
    torch.manual_seed(0)
    torch.jit.script(TinyI3D().eval()).save(str(weights / "metrics" / "i3d" / "i3d_torchscript.pt"))
    same, other = tmp_path / "same", tmp_path / "other"
    for i in range(3):  # 6 s at 16 fps: 6 clips of 16 frames, 5 of them in the first / last 5 s
        _write_video(same / f"a scene-{i}.mp4", 96, 16, (32, 32), i)
        _write_video(other / f"a scene-{i}.mp4", 96, 16, (32, 32), 10 + i)
    argv = ["score-videos", "--metrics", "fvd", "--weights-dir", str(weights), "--out", str(tmp_path / "runs"),
            "--run-id", "r", "--fvd-reference", str(same), "--no-report"]  # fmt: skip
    assert _run(capsys, *argv[:1], str(same), "--name", "mine", *argv[1:])[0] == 0
    assert _run(capsys, *argv[:1], str(other), "--name", "theirs", *argv[1:])[0] == 0
    agg = json.loads((tmp_path / "runs" / "videos" / "r" / "results" / "aggregate.json").read_text())
    key = "fvd.set@i3d=styleganv,frames=16,res=224,resize=stretch,cov=n-1,clips=all,ref=reference"
    mine, theirs = agg["results"]["mine"][key], agg["results"]["theirs"][key]
    assert mine["n_clips"] == [18, 18] and abs(mine["value"]) < 1e-6  # a set against itself
    assert theirs["value"] > 1e-3
    assert agg["set_fvd"]["theirs vs mine"]["value"] == pytest.approx(theirs["value"], rel=1e-9)
    assert set(agg["results"]["reference"]) == {k for k in agg["results"]["reference"] if k.startswith("fvd.")}
    assert agg["n_samples"]["reference"]["scored"] == 3  # scored with FVD alone, nothing missing

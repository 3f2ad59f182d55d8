"""CLI of the harness: --suite shortcut, suites list/show, the dry run, errors before any compute."""

import json

from pytest import approx

from deepforcing.cli import main, normalize_argv

COMMANDS = ["generate", "methods", "weights", "run", "score", "suites"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_suite_flag_means_run():
    assert normalize_argv(["--suite", "smoke"], COMMANDS) == ["run", "--suite", "smoke"]
    assert normalize_argv(["-q", "--suite=smoke", "--dry-run"], COMMANDS) == ["-q", "run", "--suite=smoke", "--dry-run"]
    assert normalize_argv(["score", "--suite", "smoke"], COMMANDS) == ["score", "--suite", "smoke"]
    assert normalize_argv(["methods", "list"], COMMANDS) == ["methods", "list"]
    # global options with a value stay in front of the inserted command; a value equal to a command name is a value
    assert normalize_argv(["--weights-dir", "run", "--suite", "smoke"], COMMANDS) == [
        "--weights-dir",
        "run",
        "run",
        "--suite",
        "smoke",
    ]
    assert normalize_argv(["-v", "--weights-dir=w", "--suite", "smoke"], COMMANDS) == [
        "-v",
        "--weights-dir=w",
        "run",
        "--suite",
        "smoke",
    ]
    assert normalize_argv(["--suite", "smoke", "--help"], COMMANDS) == ["run", "--suite", "smoke", "--help"]
    assert normalize_argv(["--help"], COMMANDS) == ["--help"]


def test_suites_list_and_show(capsys):
    code, out, _ = _run(capsys, "suites", "list")
    assert code == 0 and "alias of vbench-long-30s" in out and "invalid" not in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["smoke"][:3] == ["smoke", "2", "toyworld"] and rows["smoke"][-1] == "ok"
    doc = json.loads(_run(capsys, "suites", "list", "--json")[1])
    assert doc["schema_version"] == 1 and doc["kind"] == "suites"
    by_name = {s["name"]: s for s in doc["suites"]}
    assert by_name["vbench-long"] == {
        "name": "vbench-long",
        "file": by_name["vbench-long"]["file"],
        "status": "alias",
        "alias_of": "vbench-long-30s",
    }
    assert by_name["smoke"]["status"] == "ok" and by_name["smoke"]["model"] == "toyworld"
    assert by_name["smoke"]["length"] == {"seconds": None, "latent_frames": 210} and by_name["smoke"]["problems"] == []
    code, out, _ = _run(capsys, "suites", "show", "smoke")
    assert code == 0 and '"config_hash"' in out and '"toy-002"' in out and '"model": "toyworld"' in out
    doc = json.loads(out)
    assert doc["kind"] == "suite" and doc["schema_version"] == 1 and doc["prompt_ids"] == ["toy-001", "toy-002"]
    code, out, _ = _run(capsys, "suites", "show", "vbench-long")
    assert code == 0 and '"vbench-long-30s"' in out and '"overall_consistency"' in out
    code, _, err = _run(capsys, "suites", "show", "smok")
    assert code == 2 and "did you mean 'smoke'" in err


def test_dry_run_prints_plan_and_writes_nothing(capsys, tmp_path):
    out_dir = tmp_path / "runs"
    code, out, err = _run(capsys, "--suite", "smoke", "--dry-run", "--out", str(out_dir))
    assert code == 0, err
    assert "210 latent frames = 210 frames = 52.50 s at 4 fps" in out  # the toy model: 1 frame per latent
    code, out, err = _run(capsys, "--suite", "smoke-tiny", "--dry-run", "--out", str(out_dir))
    assert code == 0, err
    assert "work plan: suite smoke-tiny" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}  # plain text: one row a line
    assert rows["self-forcing"][6] == "15.78" and rows["deep-forcing"][6] == "15.75"
    assert rows["sink-longlive"][6] == "15.78*"
    assert rows["total"][1:] == ["-", "6", "6", "0", "6", "-", "63", "s"]  # videos, units, done, to generate, time
    assert "42 latent frames = 165 frames = 10.31 s at 16 fps" in out
    assert "1x NVIDIA H100" in out and "this suite's model is tiny" in out  # the estimate states what it assumes
    code, out, err = _run(capsys, "--suite", "smoke-tiny", "--dry-run", "--out", str(out_dir), "--json")
    plan = json.loads(out)
    assert plan["kind"] == "plan" and plan["schema_version"] == 1
    assert [m["name"] for m in plan["methods"]] == ["self-forcing", "deep-forcing", "sink-longlive"]
    estimate = 2 * 165 / 15.78 + 2 * 165 / 15.75 + 2 * 165 / 15.78
    assert plan["total"] == {
        "videos": 6,
        "new_units": 6,
        "done": 0,
        "to_generate": 6,
        "estimate_seconds": approx(estimate),
    }
    assert plan["estimate"]["gpu"] == "1x NVIDIA H100" and "Tables 1 and 6" in plan["estimate"]["source"]
    assert (
        plan["video_frames"] == 165 and plan["video_fps"] == 16 and plan["prompts"]["ids"] == ["mgb-0001", "mgb-0002"]
    )
    assert not out_dir.exists()


def test_dry_run_of_a_gpu_suite_estimates_hours(capsys, tmp_path):
    code, out, _ = _run(
        capsys,
        "--suite",
        "vbench-long",
        "--methods",
        "self-forcing,deep-forcing",
        "--metrics",
        "aesthetic_quality",
        "--dry-run",
        "--out",
        str(tmp_path),
        "--weights-dir",
        str(tmp_path / "no-weights"),
    )
    assert code == 0
    total = next(line.split() for line in out.splitlines() if line.startswith("total "))
    assert total[2] == "256" and total[-2:] == ["2.3", "h"]  # 256 x 501 frames at 15.78 / 15.75 FPS
    assert "generator weights not ready" in out and "metrics not ready" in out


def test_missing_weights_reported_before_compute(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    code, _, err = _run(
        capsys,
        "--suite",
        "smoke",
        "--model",
        "wan2.1-t2v-1.3b",
        "--metrics",
        "aesthetic_quality",
        "--out",
        str(tmp_path / "runs"),
        "--weights-dir",
        str(tmp_path / "w"),
        "--device",
        "cpu",
    )
    assert code == 2
    assert "cannot start; nothing was computed" in err
    assert "checkpoints/self_forcing_dmd.pt" in err and "deepforcing-eval weights download self-forcing-dmd" in err
    assert "metric weight file(s) missing" in err and "ViT-L-14.pt" in err
    assert not list((tmp_path / "runs").rglob("*.mp4")) and not list((tmp_path / "runs").rglob("unit.json"))


def test_invalid_override_exits_2(capsys, tmp_path):
    code, _, err = _run(capsys, "--suite", "smoke", "--duration", "10.1", "--out", str(tmp_path))
    assert code == 2 and "--duration: 10.1 s is 40.4 latent frames" in err and "Traceback" not in err


def test_unwritable_out_exits_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "--suite", "smoke", "--out", str(blocker / "runs"), "--device", "cpu")
    assert code == 2 and "cannot create the run directory" in err

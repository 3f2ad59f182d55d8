"""regress: tolerances as declared, every kind of change caught, exit codes, --update with a diff."""

import json

import pytest
from report_helpers import make_run

from deepforcing.cli import main
from deepforcing.errors import UserError
from deepforcing.report import regress
from deepforcing.report.runs import load_run

LUMA = "image_stats.mean_luma@luma=bt601"
SHARP = "image_stats.sharpness@op=laplacian3,scale=255,res=native"
FLICK = "vbench.temporal_flickering@ref=vbench0.1.5,static_filter=false"


def _run(tmp_path, name="run", luma=0.4260, sharp=2753.0, flick=0.7712, n=2, config="aaa", **kw):
    results = {"deep-forcing": {LUMA: (luma, None, n), SHARP: (sharp, None, n), FLICK: (flick, True, n)}}
    return load_run(make_run(tmp_path / name, results, suite="smoke", config_hashes={"deep-forcing": config}, **kw))


def _baseline(tmp_path, **tol):
    doc = regress.make_baseline(_run(tmp_path, "blessed"))
    doc["tolerances"] = {
        "why": "test",
        "default": {"abs": 1e-9, "rel": 1e-6},
        "rules": [{"match": "image_stats.sharpness*", "abs": 0.5, "rel": 0.0}],
        **tol,
    }
    path = tmp_path / "baseline.json"
    path.write_text(regress.dump_baseline(doc))
    return path


def _statuses(comparison):
    return {(f.method, f.key): f.status for f in comparison.findings}


def test_identical_run_passes(tmp_path):
    path = _baseline(tmp_path)
    c = regress.compare(_run(tmp_path), regress.read_baseline(path))
    assert c.ok and set(c.counts()) == {"ok"} and c.counts()["ok"] == 3


def test_tolerances_default_and_rules(tmp_path):
    base = regress.read_baseline(_baseline(tmp_path))
    assert regress.tolerance_for(base, SHARP).rule == "rules[0] image_stats.sharpness*"
    assert regress.tolerance_for(base, LUMA).rule == "default"
    # within: 4e-7 relative on luma (rel 1e-6), 0.4 absolute on sharpness (abs 0.5)
    c = regress.compare(_run(tmp_path, luma=0.4260 * (1 + 4e-7), sharp=2753.4), base)
    assert c.ok
    # outside: 2e-6 relative, 0.6 absolute
    c = regress.compare(_run(tmp_path, "r2", luma=0.4260 * (1 + 2e-6), sharp=2753.6), base)
    assert _statuses(c)[("deep-forcing", LUMA)] == "moved" and _statuses(c)[("deep-forcing", SHARP)] == "moved"


def test_per_metric_tol_overrides_rules(tmp_path):
    path = _baseline(tmp_path)
    doc = json.loads(path.read_text())
    doc["methods"]["deep-forcing"]["metrics"][SHARP]["tol"] = {"abs": 10.0, "rel": 0.0}
    path.write_text(json.dumps(doc))
    c = regress.compare(_run(tmp_path, sharp=2760.0), regress.read_baseline(path))
    assert c.ok


def test_every_kind_of_change_is_caught(tmp_path):
    base = regress.read_baseline(_baseline(tmp_path))
    assert (
        _statuses(regress.compare(_run(tmp_path, "a", config="bbb"), base))[("deep-forcing", "config_hash")] == "config"
    )
    assert _statuses(regress.compare(_run(tmp_path, "b", n=1), base))[("deep-forcing", LUMA)] == "n_videos"
    assert _statuses(regress.compare(_run(tmp_path, "c", flick=None), base))[("deep-forcing", FLICK)] == "undefined"
    c = regress.compare(_run(tmp_path, "d", latent_frames=42), base)
    assert _statuses(c)[("", "protocol.num_latent_frames")] == "protocol" and not c.ok
    other = load_run(make_run(tmp_path / "e", {"self-forcing": {LUMA: (0.4, None, 2)}}, suite="smoke"))
    s = _statuses(regress.compare(other, base))
    assert s[("deep-forcing", "*")] == "missing" and s[("self-forcing", "*")] == "new"


def test_a_new_metric_is_reported_but_does_not_fail(tmp_path):
    base = regress.read_baseline(_baseline(tmp_path))
    run = load_run(
        make_run(
            tmp_path / "new",
            {
                "deep-forcing": {
                    LUMA: (0.4260, None, 2),
                    SHARP: (2753.0, None, 2),
                    FLICK: (0.7712, True, 2),
                    "fvd@x=1": (12.0, False, 2),
                }
            },
            suite="smoke",
            config_hashes={"deep-forcing": "aaa"},
        )
    )
    c = regress.compare(run, base)
    assert c.ok and _statuses(c)[("deep-forcing", "fvd@x=1")] == "new"


def test_better_or_worse_is_shown_for_directed_metrics(tmp_path):
    base = regress.read_baseline(_baseline(tmp_path))
    c = regress.compare(_run(tmp_path, flick=0.78), base)
    f = next(f for f in c.findings if f.key == FLICK)
    assert f.status == "moved" and f.verdict == "better" and f.delta == pytest.approx(0.0088)
    t = regress.findings_table(c)
    assert [r[7].value for r in t.rows] == ["moved (better)"]


def test_suite_mismatch_and_bad_files_are_user_errors(tmp_path):
    base = regress.read_baseline(_baseline(tmp_path))
    other = load_run(make_run(tmp_path / "x", {"deep-forcing": {LUMA: (0.4, None, 2)}}, suite="other"))
    with pytest.raises(UserError, match="of suite 'other'"):
        regress.compare(other, base)
    with pytest.raises(UserError, match="--update"):
        regress.read_baseline(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"kind": "deepforcing-eval regression baseline", "schema_version": 1, "tolerances": '
        '{"default": {"abs": -1, "rel": 0}}}'
    )
    with pytest.raises(UserError, match="non-negative"):
        regress.read_baseline(bad)


def _cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_exit_codes_and_update_with_diff(tmp_path, capsys):
    path = _baseline(tmp_path)
    good = _run(tmp_path, "good").root
    moved = _run(tmp_path, "moved", luma=0.43).root
    assert _cli(capsys, "regress", str(good), "--baseline", str(path))[0] == 0
    code, out, err = _cli(capsys, "regress", str(moved), "--baseline", str(path))
    assert code == 1 and "moved" in out and "Mean" in out and "--update" in err
    code, out, _ = _cli(capsys, "regress", str(moved), "--baseline", str(path), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["counts"] == {"ok": 2, "moved": 1}
    assert doc["schema_version"] == 1 and doc["kind"] == "regress" and isinstance(doc["notes"], list)
    code, _, err = _cli(capsys, "regress", str(tmp_path / "missing"), "--baseline", str(path))
    assert code == 2 and "run directory not found" in err

    before = json.loads(path.read_text())
    code, out, _ = _cli(capsys, "regress", str(moved), "--baseline", str(path), "--update")
    assert code == 0 and "re-blessed" in out
    assert '-          "value": 0.426' in out and '+          "value": 0.43' in out  # the diff is shown
    after = json.loads(path.read_text())
    assert after["tolerances"] == before["tolerances"]  # declarations survive a re-bless
    assert after["methods"]["deep-forcing"]["metrics"][LUMA]["value"] == 0.43
    assert _cli(capsys, "regress", str(moved), "--baseline", str(path))[0] == 0
    code, out, _ = _cli(capsys, "regress", str(moved), "--baseline", str(path), "--update")
    assert code == 0 and "up to date" in out
    code, out, _ = _cli(capsys, "regress", str(moved), "--baseline", str(path), "--update", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "regress-update" and doc["action"] == "up to date" and doc["diff"] == ""


def test_update_creates_a_new_baseline(tmp_path, capsys):
    path = tmp_path / "new" / "b.json"
    code, out, _ = _cli(capsys, "regress", str(_run(tmp_path).root), "--baseline", str(path), "--update")
    assert code == 0 and "created" in out
    doc = regress.read_baseline(path)
    assert doc["tolerances"] == regress.DEFAULT_TOLERANCES and doc["suite"] == "smoke"


def test_other_weights_fail_and_another_machine_is_noted(tmp_path):
    base_path = _baseline(tmp_path)
    doc = json.loads(base_path.read_text())
    doc["methods"]["deep-forcing"]["weights_id"] = "tiny:tiny@000000000000"
    doc["blessed_from"] = {"device": {"name": "Other CPU"}, "versions": {"torch": "2.0.0", "av": "1"}}
    base_path.write_text(json.dumps(doc))
    run = _run(tmp_path)
    agg = json.loads((run.root / "results" / "aggregate.json").read_text())
    agg["methods"]["deep-forcing"]["weights_id"] = "tiny:tiny@d033545087a4"
    agg["provenance"]["versions"] = {"torch": "2.14.1", "av": "1"}
    (run.root / "results" / "aggregate.json").write_text(json.dumps(agg))
    run = load_run(run.root)
    base = regress.read_baseline(base_path)
    assert _statuses(regress.compare(run, base))[("deep-forcing", "weights_id")] == "weights"
    notes = regress.environment_notes(run, base)
    assert notes == [
        "device differs from the blessed run's: Other CPU -> NVIDIA H100 80GB HBM3",
        "library versions differ from the blessed run's: torch 2.0.0 -> 2.14.1",
    ]


def test_committed_smoke_baseline_is_valid_and_explains_its_tolerances():
    from report_helpers import ROOT

    base = regress.read_baseline(ROOT / "reports" / "baselines" / "smoke.json")
    assert base["suite"] == "smoke" and len(base["tolerances"]["why"]) >= 3
    for rule in base["tolerances"]["rules"]:
        assert rule["rel"] >= 2.5 * rule["noise_max_rel"], rule  # margin over the measured noise
        assert rule["knob_rel"], rule
    keys = {k for m in base["methods"].values() for k in m["metrics"]}
    assert len(keys) == 85  # per method: 8 toy oracle + 6 image statistics + flickering values and their drift
    assert all(regress.tolerance_for(base, k).rule != "default" for k in keys)  # every value has a declared rule
    assert set(base["methods"]) == {"self-forcing", "deep-forcing", "sink-longlive"}

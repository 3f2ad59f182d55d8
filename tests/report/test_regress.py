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


# --------------------------------------------------------------------------------------------- CI gate
def _ci(low, high, n=8, status="ok"):
    return {"ci_low": low, "ci_high": high, "n": n, "status": status, "confidence_level": 0.95, "mean": None}


def _ci_run(tmp_path, name, luma, ci):
    results = {"deep-forcing": {LUMA: (luma, None, 8, ci) if ci is not None else (luma, None, 8)}}
    return load_run(make_run(tmp_path / name, results, suite="smoke", config_hashes={"deep-forcing": "aaa"}))


@pytest.fixture
def ci_baseline(tmp_path):
    """Blessed: luma 0.4260 with the interval [0.4200, 0.4300]; tolerance abs 1e-4."""
    doc = regress.make_baseline(_ci_run(tmp_path, "blessed", 0.4260, _ci(0.4200, 0.4300)))
    doc["tolerances"] = {"why": "test", "default": {"abs": 1e-4, "rel": 0.0}, "rules": []}
    path = tmp_path / "baseline.json"
    path.write_text(regress.dump_baseline(doc))
    return path


def _luma(c):
    return next(f for f in c.findings if f.key == LUMA)


def test_blessing_keeps_the_interval(ci_baseline):
    entry = regress.read_baseline(ci_baseline)["methods"]["deep-forcing"]["metrics"][LUMA]
    assert entry["ci"] == {"ci_low": 0.42, "ci_high": 0.43, "n": 8, "status": "ok", "confidence_level": 0.95}


@pytest.mark.parametrize(
    "luma, ci, by_tolerance, by_ci, decided_by, overlap",
    [
        # 0.0010 away (10x the tolerance) but [0.4220, 0.4320] overlaps [0.4200, 0.4300]
        (0.4270, _ci(0.4220, 0.4320), "moved", "ok", "ci-overlap", True),
        # closed intervals: touching ends overlap
        (0.4350, _ci(0.4300, 0.4400), "moved", "ok", "ci-overlap", True),
        # disjoint: [0.4301, 0.4400] starts after 0.4300
        (0.4350, _ci(0.4301, 0.4400), "moved", "moved", "ci-overlap", False),
        # no interval on the current side (one prompt): the tolerance decides
        (0.4270, _ci(None, None, n=1, status="single_prompt"), "moved", "moved", "tolerance (no interval)", None),
        (0.4270, None, "moved", "moved", "tolerance (no interval)", None),
        # within the tolerance: passes whatever the intervals say (the tolerance is a floor)
        (0.42605, _ci(0.5, 0.6), "ok", "ok", "tolerance", False),
    ],
)
def test_ci_overlap_gate_known_answers(tmp_path, ci_baseline, luma, ci, by_tolerance, by_ci, decided_by, overlap):
    base = regress.read_baseline(ci_baseline)
    run = _ci_run(tmp_path, "now", luma, ci)
    assert _luma(regress.compare(run, base)).status == by_tolerance  # the default gate: tolerance only
    f = _luma(regress.compare(run, base, gate="ci-overlap"))
    assert (f.status, f.decided_by, f.overlap) == (by_ci, decided_by, overlap)
    assert f.ci_baseline == (0.42, 0.43)


def test_ci_overlap_without_a_baseline_interval_falls_back(tmp_path):
    doc = regress.make_baseline(_ci_run(tmp_path, "old", 0.4260, None))  # blessed before intervals were kept
    assert "ci" not in doc["methods"]["deep-forcing"]["metrics"][LUMA]
    f = _luma(regress.compare(_ci_run(tmp_path, "now", 0.4270, _ci(0.42, 0.43)), doc, gate="ci-overlap"))
    assert (f.status, f.decided_by, f.ci_baseline) == ("moved", "tolerance (no interval)", None)


def test_gate_from_the_baseline_survives_a_rebless_and_bad_gates_are_refused(tmp_path, ci_baseline, capsys):
    doc = json.loads(ci_baseline.read_text())
    doc["tolerances"]["gate"] = "ci-overlap"
    ci_baseline.write_text(json.dumps(doc))
    moved = _ci_run(tmp_path, "moved", 0.4270, _ci(0.4220, 0.4320))
    c = regress.compare(moved, regress.read_baseline(ci_baseline))
    assert c.gate == "ci-overlap" and c.ok
    assert not regress.compare(moved, regress.read_baseline(ci_baseline), gate="tolerance").ok  # the flag wins
    code, out, _ = _cli(capsys, "regress", str(moved.root), "--baseline", str(ci_baseline), "--update")
    after = json.loads(ci_baseline.read_text())
    assert code == 0 and after["tolerances"]["gate"] == "ci-overlap"
    assert after["methods"]["deep-forcing"]["metrics"][LUMA]["ci"]["ci_low"] == 0.422
    doc["tolerances"]["gate"] = "overlap"
    ci_baseline.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="tolerances.gate must be one of tolerance, ci-overlap"):
        regress.read_baseline(ci_baseline)
    with pytest.raises(UserError, match="unknown gate"):
        regress.compare(moved, regress.read_baseline(_fresh(tmp_path)), gate="x")


def _fresh(tmp_path):
    path = tmp_path / "fresh.json"
    path.write_text(regress.dump_baseline(regress.make_baseline(_ci_run(tmp_path, "fresh", 0.4260, None))))
    return path


def test_cli_gate_flag_exit_codes_and_json(tmp_path, ci_baseline, capsys):
    moved = _ci_run(tmp_path, "moved", 0.4270, _ci(0.4220, 0.4320)).root
    disjoint = _ci_run(tmp_path, "disjoint", 0.4350, _ci(0.4301, 0.4400)).root
    assert _cli(capsys, "regress", str(moved), "--baseline", str(ci_baseline))[0] == 1
    code, out, _ = _cli(capsys, "regress", str(moved), "--baseline", str(ci_baseline), "--gate", "ci-overlap")
    assert code == 0 and "or overlapping 95% intervals" in out
    code, out, err = _cli(capsys, "regress", str(disjoint), "--baseline", str(ci_baseline), "--gate", "ci-overlap")
    assert code == 1 and "intervals disjoint" in out and "[0.4301, 0.44]" in out and "and intervals" in err
    code, out, _ = _cli(
        capsys, "regress", str(disjoint), "--baseline", str(ci_baseline), "--gate", "ci-overlap", "--json"
    )
    doc = json.loads(out)
    (f,) = [f for f in doc["findings"] if f["key"] == LUMA]
    assert doc["gate"] == "ci-overlap" and code == 1
    assert (f["ci_baseline"], f["ci_current"], f["overlap"], f["decided_by"]) == (
        [0.42, 0.43],
        [0.4301, 0.44],
        False,
        "ci-overlap",
    )
    with pytest.raises(SystemExit) as exc:
        main(["regress", str(moved), "--baseline", str(ci_baseline), "--gate", "nope"])
    assert exc.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err

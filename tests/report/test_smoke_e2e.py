"""End to end on a real smoke run: the CI regression gate, proof that it fails, and the report in a browser.

* The session's smoke run (toy-world model, CPU) must match ``reports/baselines/smoke.json`` — the same check CI runs
  with ``make regress``.
* Changing one policy knob (Deep Forcing's sink 10 -> 4 latent frames, through a copy of the method presets
  under ``DEEPFORCING_HOME``) must make ``regress`` exit 1 because numbers moved, not only the config hash.
* The report opens in headless Chromium from disk: no console error, the key tables, charts and filmstrips are
  there, every image decodes, the mp4 links resolve; a full-page screenshot is left in the artifacts folder.
  Needs Debian's ``chromium`` + ``chromium-driver`` and ``selenium``: outside CI the test skips (with the reason)
  when they are missing; with ``CI`` or ``DEEPFORCING_REQUIRE_BROWSER`` set it fails instead.
"""

import json
import os
import shutil
import time

import pytest
from report_helpers import ROOT, cli_env, run_cli

from deepforcing.cli import main

BASELINE = ROOT / "reports" / "baselines" / "smoke.json"

pytestmark = pytest.mark.slow


def test_smoke_run_matches_the_committed_baseline(smoke_run, capsys):
    code = main(["regress", str(smoke_run), "--baseline", str(BASELINE), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, [f for f in doc["findings"] if f["status"] != "ok"]
    assert doc["counts"] == {"ok": 3 * 85}  # 3 methods x 85 result values, nothing new, nothing missing


def test_a_changed_policy_knob_fails_the_gate(smoke_run, tmp_path, capsys):
    home = tmp_path / "home"
    (home / "baselines").mkdir(parents=True)
    for name in ("eval", "prompts"):
        (home / name).symlink_to(ROOT / name)
    (home / "baselines" / "published").symlink_to(ROOT / "baselines" / "published")
    shutil.copytree(ROOT / "baselines" / "methods", home / "baselines" / "methods")
    preset = home / "baselines" / "methods" / "deep-forcing.yaml"
    text = preset.read_text()
    assert "  sink_frames: 10\n" in text
    preset.write_text(text.replace("  sink_frames: 10\n", "  sink_frames: 4\n"))

    out = tmp_path / "runs"
    proc = run_cli(
        "-q",
        "--suite",
        "smoke",
        "--methods",
        "deep-forcing",
        "--out",
        str(out),
        env=cli_env(DEEPFORCING_HOME=str(home)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Control: the same comparison on the unchanged method passes.
    assert main(["regress", str(smoke_run), "--baseline", str(BASELINE), "--methods", "deep-forcing"]) == 0
    capsys.readouterr()
    code = main(
        ["regress", str(out / "smoke" / "toyworld"), "--baseline", str(BASELINE), "--methods", "deep-forcing", "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    by_status: dict[str, list[str]] = {}
    for f in doc["findings"]:
        by_status.setdefault(f["status"], []).append(f["key"])
    assert by_status.get("config") == ["config_hash"]
    moved = by_status.get("moved", [])
    assert len(moved) >= 8, by_status  # the numbers themselves moved (13 when the baseline was blessed) ...
    assert len([k for k in moved if not k.startswith("drift.")]) >= 4, moved  # ... per-video means among them
    assert not by_status.get("protocol") and not by_status.get("missing")


def test_real_run_intervals_paired_comparisons_and_the_ci_gate(smoke_run, tmp_path, capsys):
    """The report shows the intervals the harness wrote; a baseline blessed with intervals gates on their overlap."""
    agg = json.loads((smoke_run / "results" / "aggregate.json").read_text())
    assert main(["-q", "report", str(smoke_run), "--out", str(tmp_path / "r.html"), "--no-filmstrips", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    summary, shown = doc["summary"], 0
    keys = [c["key"] for c in summary["columns"] if c["kind"] == "ours" and not c["key"].startswith("timing.")]
    for row, intervals in zip(summary["rows"], summary["intervals"], strict=True):
        for key in keys:
            ci = agg["results"][row["method"]][key].get("ci") or {}
            if ci.get("ci_low") is None:
                assert key not in intervals or intervals[key]["ci_low"] is None, (row["method"], key)
                continue
            assert intervals[key]["ci_low"] == ci["ci_low"] and intervals[key]["ci_high"] == ci["ci_high"]
            assert intervals[key]["n_prompts"] == ci["n"] == 2
            shown += 1
    assert shown >= 3 * 20, shown  # most of the 3 x 30 summary numbers of the smoke suite have an interval
    pairs = {r["comparison"] for r in doc["paired"]["rows"]}
    assert (
        pairs
        == set(agg["paired"])
        == {
            "deep-forcing vs self-forcing",
            "sink-longlive vs self-forcing",
            "sink-longlive vs deep-forcing",
        }
    )
    expected = [(name, k) for name, per_key in agg["paired"].items() for k in keys if k in per_key]
    assert [(r["comparison"], r["metric"]) for r in doc["paired"]["rows"]] == expected
    assert len(expected) >= 3 * 20
    for r in doc["paired"]["rows"]:  # two prompts: no comparison can be significant (the smallest p is 0.5)
        assert r["n"] <= 2 and not r["verdict"].endswith("(significant)"), r

    baseline = tmp_path / "with-intervals.json"
    assert main(["regress", str(smoke_run), "--baseline", str(baseline), "--update", "--json"]) == 0
    capsys.readouterr()
    blessed = json.loads(baseline.read_text())
    entry = blessed["methods"]["deep-forcing"]["metrics"][keys[0]]
    assert entry["ci"]["ci_low"] == agg["results"]["deep-forcing"][keys[0]]["ci"]["ci_low"]
    assert main(["regress", str(smoke_run), "--baseline", str(baseline), "--gate", "ci-overlap", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    numeric = [f for f in doc["findings"] if f["decided_by"]]
    assert doc["gate"] == "ci-overlap" and numeric and all(f["decided_by"] == "tolerance" for f in numeric)
    # the committed baseline has no intervals yet: under ci-overlap the tolerance decides, with the same verdict
    assert main(["regress", str(smoke_run), "--baseline", str(BASELINE), "--gate", "ci-overlap"]) == 0


# ------------------------------------------------------------------------------------------------ browser
def _require(reason: str):
    if os.environ.get("CI") or os.environ.get("DEEPFORCING_REQUIRE_BROWSER"):
        pytest.fail(f"browser test required in CI: {reason}")
    pytest.skip(f"{reason} (install: apt-get install chromium chromium-driver; pip install selenium)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require("selenium is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        _require("chromium or chromedriver not found on PATH")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout: float = 30.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_report_opens_in_a_real_browser(smoke_run, browser, artifacts_dir, capsys):
    out = artifacts_dir / "smoke-report.html"
    findings = ROOT / "reports" / "toyworld" / "drift-study.json"
    assert main(["-q", "report", str(smoke_run), "--out", str(out), "--copy-videos", "--findings", str(findings)]) == 0
    capsys.readouterr()
    browser.get(out.resolve().as_uri())
    _wait(browser, "return document.documentElement.getAttribute('data-report-ready') === '1'")
    _wait(browser, "return Array.from(document.images).every(i => i.complete)")

    q = browser.execute_script
    assert q("return document.querySelectorAll('table[data-table=summary] tbody tr').length") == 3
    for name in ("drift", "speed", "methods", "paired"):
        assert q(f"return document.querySelectorAll('table[data-table={name}] tbody tr').length") > 0, name
    # the toy-world model is not the published model: the paper table is there, empty, and says why
    assert q("return document.querySelectorAll('table[data-table=paper] tbody tr').length") == 0
    assert "no run here is comparable with the published numbers" in q("return document.body.innerText")
    assert q("return document.querySelectorAll('table.df-table').length") >= 8  # + one per-video table per prompt
    assert q("return document.querySelectorAll('table[data-table=paired] tbody tr').length") >= 3
    assert q("return document.querySelectorAll('table[data-table=summary] td.num span.ci').length") >= 3 * 20
    for chart in ("drift-curves", "speed"):
        box = q(
            f"const s = document.querySelector('figure[data-chart=\"{chart}\"] svg');"
            "const r = s && s.getBoundingClientRect(); return r ? [r.width, r.height] : null"
        )
        assert box and box[0] > 300 and box[1] > 150, (chart, box)
    assert q("return document.querySelectorAll('#drift svg path').length") > 20  # the curves were drawn
    stills = q("return Array.from(document.querySelectorAll('.strip img')).map(i => i.naturalWidth)")
    assert len(stills) == 6 * 12 and all(w > 0 for w in stills)  # 6 videos x 12 stills of 52.5 s
    assert q("return document.querySelectorAll('#findings table.df-table').length") == 8  # one per oracle number
    links = q("return Array.from(document.querySelectorAll('a[href$=\".mp4\"]')).map(a => a.getAttribute('href'))")
    assert len(links) == 6 and all((out.parent / h).is_file() for h in links)
    assert "Ours beside the paper" in q("return document.body.innerText")
    fetched = q("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(("data:", "file:")) for u in fetched), fetched  # nothing from the network

    height = q("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 100, 16000))
    shot = artifacts_dir / "smoke-report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")

    # Sorting by a column (the table's script) reorders the rows by raw value.
    order = "return Array.from(document.querySelectorAll('table[data-table=summary] tbody th')).map(t => t.textContent)"
    assert q(order) == ["self-forcing", "deep-forcing", "sink-longlive"]
    q("document.querySelector('table[data-table=summary] thead th[data-key=\"timing.fps_mean\"]').click()")
    # the toy-world summary has no paper columns, so its header is one row and header index = cell index
    assert q("return document.querySelectorAll('table[data-table=summary] thead tr').length") == 1
    fps = q(
        "const t = document.querySelector('table[data-table=summary]');"
        "const j = Array.from(t.tHead.rows[0].cells).findIndex(th => th.dataset.key === 'timing.fps_mean');"
        "return Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[j].getAttribute('data-value')))"
    )
    assert len(fps) == 3 and fps == sorted(fps), fps

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

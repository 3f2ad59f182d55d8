"""The CLI at any width, piped and on a terminal; ``--json`` documents; global options anywhere.

Subprocesses run the real entry point at 60 and 200 columns, with stdout a pipe and with stdout a pseudo-terminal
(the width set on the terminal itself), so no test depends on the width of the terminal that runs the suite
(which ``tests/conftest.py`` also pins to a narrow 40 columns to make any such dependency fail everywhere).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepforcing import methods
from deepforcing.cli import main

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
FIXTURE_RUN = ROOT / "tests" / "report" / "fixtures" / "smoke-tiny"


def _env(columns: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


def _piped(*argv: str, columns: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "deepforcing.cli", *argv],
        cwd=ROOT,
        env=_env(columns),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _on_terminal(*argv: str, columns: int) -> str:
    """Run the CLI with stdout on a pseudo-terminal ``columns`` wide; returns what it printed (ANSI removed)."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepforcing.cli", *argv],
        cwd=ROOT,
        env={**_env(None), "TERM": "xterm-256color"},
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    return ANSI.sub("", b"".join(chunks).decode("utf-8").replace("\r\n", "\n"))


def _whole(text: str, value: str) -> bool:
    return re.search(rf"(^|[\s│┃]){re.escape(value)}($|[\s│┃])", text, flags=re.M) is not None


def test_piped_listings_are_one_line_per_row_at_any_width():
    names = methods.available()
    narrow = _piped("methods", "list", columns=60)
    assert narrow == _piped("methods", "list", columns=200)  # the width of a pipe means nothing
    lines = narrow.splitlines()
    assert lines[0].split() == ["name", "hash", "policy", "checkpoint", "description"]
    assert [line.split()[0] for line in lines[1:]] == names  # `| grep NAME` finds each method, whole
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["deep-forcing-ds"][1:4] == [methods.get("deep-forcing-ds").config_hash, "deep-sink", "self-forcing-dmd"]
    assert len([line for line in lines if "deep-forcing-ds" in line]) == 8  # deep-forcing-ds + its sink grid

    suites = _piped("suites", "list", columns=60)
    assert suites == _piped("suites", "list", columns=200)
    assert any(line.split()[:3] == ["vbench-long-30s", "2", "wan2.1-t2v-1.3b"] for line in suites.splitlines())

    weights = _piped("weights", "list", columns=60)
    assert weights == _piped("weights", "list", columns=200)
    assert any(
        line.startswith("wan2.1-t2v-1.3b-diffusers/text_encoder/model.safetensors.index.json ")
        for line in weights.splitlines()
    )


@pytest.mark.parametrize("columns", [60, 200])
def test_terminal_listings_keep_every_name_and_hash(columns):
    text = _on_terminal("methods", "list", columns=columns)
    assert "…" not in text
    for name in methods.available():
        assert _whole(text, name), name
        assert _whole(text, methods.get(name).config_hash), name
    if columns == 200:  # a table that fits the terminal
        assert "┃" in text and max(len(line) for line in text.splitlines()) <= columns
    text = _on_terminal("suites", "list", columns=columns)
    for name in ("smoke", "smoke-tiny", "vbench-long-30s", "ablation-sink"):
        assert _whole(text, name)


def test_json_documents_of_the_listing_commands(capsys, tmp_path):
    def run(*argv):
        code = main(list(argv))
        out = capsys.readouterr().out
        return code, json.loads(out)

    code, doc = run("methods", "list", "--json")
    assert code == 0 and doc["schema_version"] == 1 and doc["kind"] == "methods"
    by_name = {m["name"]: m for m in doc["methods"]}
    assert list(by_name) == methods.available()
    ds = by_name["deep-forcing-ds"]
    assert ds["config_hash"] == methods.get("deep-forcing-ds").config_hash
    assert ds["policy"] == "deep-sink" and ds["policy_config"]["sink_frames"] == 10 and ds["sampler"] == "chunkwise"

    code, doc = run("methods", "show", "rolling-forcing")
    assert code == 0 and doc["kind"] == "method" and doc["schema_version"] == 1
    assert doc == {"schema_version": 1, "kind": "method", **by_name["rolling-forcing"]}

    code, doc = run("weights", "list", "--json")
    assert code == 0 and doc["kind"] == "weights"
    files = {f["key"]: f for f in doc["files"]}
    assert files["self-forcing-dmd"]["repo_id"] == "gdhe17/Self-Forcing"
    assert "self-forcing-dmd" in {k for keys in doc["groups"].values() for k in keys} | set(files)

    code, doc = run("weights", "verify", "self-forcing-dmd", "--weights-dir", str(tmp_path), "--json")
    assert code == 1 and doc["kind"] == "weights-verify" and doc["ok"] is False
    assert [(f["key"], f["status"], f["present"]) for f in doc["files"]] == [("self-forcing-dmd", "missing", False)]


def test_json_documents_of_report_and_generate(capsys, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(FIXTURE_RUN), "--out", str(out), "--no-filmstrips", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["kind"] == "report" and doc["written"] == [str(out)]
    assert doc["runs"] == [{"name": "smoke-tiny/tiny", "path": str(FIXTURE_RUN)}]
    summary = doc["summary"]
    assert summary["columns"][0]["key"] == "method" and summary["columns"][0]["kind"] == "label"
    assert [r["method"] for r in summary["rows"]] == ["self-forcing", "deep-forcing", "sink-longlive"]

    argv = ["-q", "generate", "--method", "deep-forcing", "--prompt", "a red ball", "--num-latent-frames", "6"]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "generate" and doc["method"] == "deep-forcing" and doc["model"] == "tiny"
    assert doc["latent_frames"] == 6 and doc["video_frames"] == 21 and doc["video"] is None


def test_report_prints_a_plain_summary(capsys, tmp_path):
    assert main(["report", str(FIXTURE_RUN), "--out", str(tmp_path / "r.html"), "--no-filmstrips"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[-1] == f"wrote {tmp_path / 'r.html'}"
    rows = [line for line in lines if line.startswith(("self-forcing ", "deep-forcing ", "sink-longlive "))]
    assert len(rows) == 3 and "…" not in text and "│" not in text


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "--json", "methods", "list"],
        ["methods", "list", "-q", "--json"],
        ["--json", "methods", "-q", "list"],
    ],
)
def test_global_options_before_or_after_the_command(capsys, argv):
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "methods"


def test_weights_dir_before_or_after_the_command(capsys, tmp_path):
    seen = []
    for argv in (
        ["--weights-dir", str(tmp_path), "weights", "verify", "self-forcing-dmd", "--json"],
        ["weights", "verify", "self-forcing-dmd", "--weights-dir", str(tmp_path), "--json"],
        ["weights", "--json", "verify", "self-forcing-dmd", "--dest", str(tmp_path)],
    ):
        assert main(argv) == 1
        seen.append(json.loads(capsys.readouterr().out)["weights_dir"])
    assert seen == [str(tmp_path)] * 3
    # a value after the command wins over one before it
    assert (
        main(
            [
                "--weights-dir",
                "/nowhere",
                "weights",
                "verify",
                "self-forcing-dmd",
                "--weights-dir",
                str(tmp_path),
                "--json",
            ]
        )
        == 1
    )
    assert json.loads(capsys.readouterr().out)["weights_dir"] == str(tmp_path)


def test_verbose_and_quiet_after_a_nested_command(capsys):
    assert main(["toyworld", "captions", "-n", "2", "-q"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["-v", "toyworld", "captions", "-n", "1"]) == 0


def test_json_where_a_command_has_none_is_refused(capsys):
    assert main(["--json", "toyworld", "captions", "-n", "1"]) == 2
    assert "has no JSON output" in capsys.readouterr().err


def test_help_lists_every_model_with_its_frame_rate(capsys):
    for argv in (["generate", "--help"], ["run", "--help"], ["score", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        for model in ("toyworld (4 fps", "tiny (16 fps", "wan2.1-t2v-1.3b (16 fps"):
            assert model in text, (argv, model)


def documented_fields(kind: str) -> list[str]:
    """The "Top-level fields" of a JSON kind in docs/cli.md (the backticked names of that sentence)."""
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split(f"### `{kind}`\n", 1)[1].split("\n### ", 1)[0]
    sentence = " ".join(section.split("Top-level fields:", 1)[1].split(".")[0].split())
    while "(" in sentence:  # parentheses describe a field; their names are not top-level
        sentence = re.sub(r"\([^()]*\)", "", sentence)
    return re.findall(r"`([a-z_0-9]+)`", sentence)


def test_documented_fields_match_real_documents(capsys, tmp_path):
    """Every kind in docs/cli.md is produced by a command, with at least the documented top-level fields."""
    baseline = tmp_path / "b.json"
    cheap = {
        "methods": ["methods", "list", "--json"],
        "method": ["methods", "show", "self-forcing"],
        "weights": ["weights", "list", "--json"],
        "weights-verify": ["weights", "verify", "self-forcing-dmd", "--weights-dir", str(tmp_path), "--json"],
        "suites": ["suites", "list", "--json"],
        "suite": ["suites", "show", "smoke"],
        "plan": ["--suite", "smoke-tiny", "--dry-run", "--out", str(tmp_path / "runs"), "--json"],
        "report": ["report", str(FIXTURE_RUN), "--out", str(tmp_path / "r.html"), "--no-filmstrips", "--json"],
        "regress-update": ["regress", str(FIXTURE_RUN), "--baseline", str(baseline), "--update", "--json"],
        "regress": ["regress", str(FIXTURE_RUN), "--baseline", str(baseline), "--json"],
        "generate": ["-q", "generate", "--prompt", "a red ball", "--num-latent-frames", "3", "--json"],
        "toyworld-generate": ["toyworld", "generate", "--frames", "6", "--segment", "3", "--json"],
        "toyworld-drift": [
            *("toyworld", "drift", "--methods", "self-forcing", "--prompts", "1", "--seeds", "1", "--frames", "84"),
            *("--out", str(tmp_path / "drift"), "--json"),
        ],
    }
    kinds = re.findall(r"^### `([a-z-]+)`$", (ROOT / "docs" / "cli.md").read_text(), flags=re.M)
    # run-summary needs a generated run: tests/harness/test_end_to_end.py checks it; weights-download needs a network
    assert set(kinds) == {*cheap, "run-summary", "weights-download"}
    for kind, argv in cheap.items():
        main(argv)
        doc = json.loads(capsys.readouterr().out)
        assert doc["kind"] == kind and doc["schema_version"] == 1
        fields = documented_fields(kind)
        assert fields, kind
        missing = [f for f in fields if f not in doc]
        assert not missing, f"{kind}: documented but not in the output: {missing}"


def test_line_progress_prints_one_line_per_finished_unit():
    import io

    from deepforcing.console import Output
    from deepforcing.harness.progress import LineProgress

    buf = io.StringIO()
    with LineProgress(Output(file=buf)) as progress:
        progress.stage("generating", 2)
        for label in ("deep-forcing toy-001 s0", "deep-forcing toy-002 s0"):
            progress.unit(label, 3)
            progress.chunk(3, 3)
            progress.advance()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "generating: 2 unit(s)"
    assert [line.rsplit(" (", 1)[0] for line in lines[1:]] == [
        "generating 1/2: deep-forcing toy-001 s0",
        "generating 2/2: deep-forcing toy-002 s0",
    ]

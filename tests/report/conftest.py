"""Session fixtures of the report tests (helpers in ``report_helpers``)."""

import os
from pathlib import Path

import pytest
from report_helpers import run_cli


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A real run of the smoke suite (toy-world model, CPU), generated once per session."""
    given = os.environ.get("DEEPFORCING_SMOKE_RUN")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("smoke") / "runs"
    proc = run_cli("-q", "--suite", "smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "smoke" / "toyworld"


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where tests leave artifacts (screenshots, reports): ``$DEEPFORCING_TEST_ARTIFACTS`` or a session tmp dir."""
    given = os.environ.get("DEEPFORCING_TEST_ARTIFACTS")
    path = Path(given) if given else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path

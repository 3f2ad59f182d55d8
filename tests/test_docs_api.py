"""docs/api.md is a test: every ``python`` block runs, top to bottom in one namespace, on the tiny model."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_every_example_of_the_api_page_runs(tmp_path, monkeypatch):
    blocks = _blocks(ROOT / "docs" / "api.md")
    assert len(blocks) >= 5
    monkeypatch.setenv("DEEPFORCING_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        own = "from_files" in code
        if own:  # a checkpoint and a context of one's own: nothing may be written to (a fresh) cache
            monkeypatch.setenv("DEEPFORCING_CACHE", str(tmp_path / "fresh-cache"))
        exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)  # noqa: S102 - the page's own code
        if own:
            assert not (tmp_path / "fresh-cache").exists()
            monkeypatch.setenv("DEEPFORCING_CACHE", str(tmp_path / "cache"))
    assert os.path.isfile(tmp_path / "out" / "fox.mp4")

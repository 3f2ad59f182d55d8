"""Every Python block of docs/engine-api.md runs, in order, in one namespace (the examples cannot rot)."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "engine-api.md"


def test_engine_api_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name} block {i}", "exec"), namespace)  # noqa: S102 - the documented examples

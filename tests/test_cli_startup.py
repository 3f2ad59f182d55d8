"""Listing commands stay light: the CLI module and ``methods``/``suites``/``weights list`` never import torch.

Speed and memory are measured in ``benchmarks/bench_cli_startup.py`` (figures in benchmarks/README.md); this test
keeps the cause of the slowness out: a torch-heavy import at module load or on a listing path. If it fails after
you add a policy or a sampler, put its config dataclass in ``deepforcing/policies/configs.py`` /
``deepforcing/samplers/configs.py`` (see those packages' docstrings).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Top-level packages a listing command must not import (each costs 0.2-2 s and up to ~650 MB here).
HEAVY = ("torch", "torchvision", "transformers", "diffusers", "huggingface_hub", "open_clip", "numpy", "av", "scipy")

_PROBE = """
import io, json, sys
sys.path.insert(0, {root!r})
argv = json.loads(sys.argv[1])
out = io.StringIO()
code = None
if argv is not None:
    from contextlib import redirect_stdout
    from deepforcing.cli import main
    with redirect_stdout(out):
        code = main(argv)
else:
    import deepforcing.cli  # noqa: F401
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy, "out": out.getvalue()}}))
"""


def _probe(argv):
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(root=str(ROOT), heavy=HEAVY), json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_importing_the_cli_imports_nothing_heavy():
    assert _probe(None)["heavy"] == []


@pytest.mark.parametrize(
    "argv",
    [
        ["methods", "list", "--json"],
        ["methods", "list"],
        ["methods", "show", "deep-forcing"],
        ["suites", "list"],
        ["suites", "list", "--json"],
        ["suites", "show", "smoke"],
        ["weights", "list", "--json"],
    ],
)
def test_listing_commands_do_not_import_torch(argv):
    result = _probe(argv)
    assert result["code"] == 0
    assert result["heavy"] == [], f"{' '.join(argv)} imported {result['heavy']}"
    if "--json" in argv:
        assert json.loads(result["out"])["schema_version"] == 1


def test_config_modules_need_only_the_standard_library():
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "import deepforcing.policies.configs, deepforcing.samplers.configs, deepforcing.methods; "
        "from deepforcing import policies, samplers; "
        "[policies.config_class(n) for n in policies.available()]; "
        "[samplers.config_class(n) for n in samplers.available()]; "
        "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    third_party = set(eval(proc.stdout))  # noqa: S307 - our own printed list
    assert third_party & set(HEAVY) == set()


def test_config_classes_are_the_ones_the_implementations_use():
    from deepforcing import policies, samplers

    for registry in (policies, samplers):
        for name in registry.available():
            impl, cfg = registry.REGISTRY.resolve(name)
            assert registry.config_class(name) is cfg
            assert impl(cfg()).cfg == cfg()  # the implementation accepts (and keeps) the registry's config class


def test_no_module_imports_the_top_level_cli():
    """Dependencies point one way: deepforcing.cli -> harness/report/toyworld CLIs -> deepforcing.console."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "deepforcing").rglob("*.py")
        if path != ROOT / "deepforcing" / "cli.py"
        and any(
            needle in path.read_text(encoding="utf-8")
            for needle in ("from deepforcing.cli import", "import deepforcing.cli", "from deepforcing import cli")
        )
    ]
    assert offenders == []

"""The package's dependency direction: cli -> harness / report -> methods -> samplers, policies -> cache, model.

Read from the source (every import, at module level or inside a function), so that a shortcut such as a report
importing the toy world, a metric importing the harness or a module-level import cycle fails here.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "deepforcing"

#: package (or module) -> packages it must never import, even lazily.
FORBIDDEN = {
    "deepforcing.report": ("deepforcing.toyworld", "deepforcing.harness", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.metrics": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.harness": ("deepforcing.cli",),
    "deepforcing.model": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.policies": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.samplers": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.cache": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.pipeline"),
    "deepforcing.pipeline": ("deepforcing.harness", "deepforcing.report", "deepforcing.cli", "deepforcing.toyworld"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _executed_on_import(body: list[ast.stmt]) -> list[ast.AST]:
    """Statements that run when the module is imported (not function bodies, not ``if TYPE_CHECKING:``)."""
    out: list[ast.AST] = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out += _executed_on_import(node.orelse)
            continue
        out.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            out += _executed_on_import(getattr(node, field, None) or [])
    return out


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _executed_on_import(tree.body) if top_level_only else list(ast.walk(tree))
    found = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            found.add(n.module)
            found |= {f"{n.module}.{a.name}" for a in n.names}
    return {m for m in found if m.startswith("deepforcing")}


def test_layers_import_only_downwards():
    bad = []
    for name, path in _modules().items():
        for owner, forbidden in FORBIDDEN.items():
            if name == owner or name.startswith(owner + "."):
                bad += [f"{name} imports {m}" for m in _imports(path, top_level_only=False) if m.startswith(forbidden)]
    assert not bad, "\n".join(sorted(bad))


def test_no_module_level_import_cycles():
    modules = _modules()
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in modules} for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles

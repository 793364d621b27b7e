"""The layering rules of docs/architecture.md, read from the source (ast; nothing is imported).

Layers, top to bottom: the command line (``transferscope.cli``, ``cli_models`` and each part's
``cli``/``cli_*`` modules) and ``demo`` -> the parts ``ntk``, ``dino``, ``bias`` -> ``core``.
Imports inside functions count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "transferscope"
PARTS = ("ntk", "dino", "bias")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[importer].name == "__init__.py"
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str) -> set[str]:
    """Project modules that module ``name`` imports (a name imported from a package counts as
    its submodule when one exists by that name, else as the package itself)."""
    tree = ast.parse(MODULES[name].read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node)
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # "pkg.mod.attr" -> "pkg.mod"
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_cli(module: str) -> bool:
    last = module.split(".")[-1]
    return last == "cli" or last.startswith("cli_") or module == f"{PACKAGE}.demo.command"


def _violations(rule) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in GRAPH.items() for b in targets
                  if rule(a, b))


def test_the_graph_sees_the_package():
    # guards the rules below against passing on an empty or mis-parsed graph
    assert {f"{PACKAGE}.{p}" for p in PARTS} <= set(MODULES)
    assert f"{PACKAGE}.core.errors" in GRAPH[f"{PACKAGE}.cli"] | {
        t for ts in GRAPH.values() for t in ts}
    assert any(t.startswith(f"{PACKAGE}.ntk.") for t in GRAPH[f"{PACKAGE}.ntk.cli"])


def test_no_part_imports_another_part():
    assert _violations(lambda a, b: _layer(a) in PARTS and _layer(b) in PARTS
                       and _layer(a) != _layer(b)) == []


def test_core_imports_no_part_no_demo_no_cli():
    assert _violations(lambda a, b: _layer(a) == "core"
                       and (_layer(b) in PARTS + ("demo",) or _is_cli(b))) == []


def test_only_the_command_line_imports_cli_modules_and_the_demo():
    top = {f"{PACKAGE}.cli", f"{PACKAGE}.__main__"}

    def breaks(a: str, b: str) -> bool:
        if a in top:
            return False
        if _is_cli(b):  # a part's CLI may mount its own sub-CLI; nothing else imports one
            return not (_is_cli(a) and _layer(a) == _layer(b))
        return _layer(b) == "demo" and _layer(a) != "demo"

    assert _violations(breaks) == []


def test_the_demo_calls_libraries_not_command_lines():
    assert _violations(lambda a, b: _layer(a) == "demo" and _layer(b) in PARTS
                       and _is_cli(b)) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_cycle_finder_on_known_graphs(edges, expected):
    assert _cycles(edges) == expected


def test_each_part_declares_its_public_api():
    for part in PARTS:
        tree = ast.parse(MODULES[f"{PACKAGE}.{part}"].read_text("utf-8"))
        names = [t.id for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)]
        assert "__all__" in names, part

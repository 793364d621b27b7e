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


# ================================================================ the rules of issue #29
# Each rule below holds for new code everywhere; for the code that predates it, each part keeps
# an allow-list in tests/architecture_baseline.py. A list only shrinks: an entry that no longer
# breaks the rule fails the test too (delete it), so the lists reach empty as parts adopt the
# rules (docs/architecture.md, "Adopting the #29 conventions").
from tests import architecture_baseline as baseline  # noqa: E402

NUMERIC_LIBRARIES = ("numpy", "scipy", "pandas", "torch", "sklearn", "matplotlib",
                     "transformers", "ray")


def _group(module: str) -> str:
    """``core``, ``demo``, a part's name, or ``cli`` for the top-level modules."""
    return _layer(module) or "cli" if module.count(".") >= 1 else "cli"


def _short(module: str) -> str:
    """``transferscope.ntk.kernel.options`` -> ``kernel.options`` (the part's own spelling)."""
    parts = module.split(".")
    return ".".join(parts[2:]) or "__init__" if len(parts) > 2 and parts[1] in PARTS \
        else module


def _check_against(found: dict[str, set[str]], allowed: dict[str, set[str]], what: str) -> None:
    new = {g: sorted(v - allowed.get(g, set())) for g, v in found.items()}
    stale = {g: sorted(v - found.get(g, set())) for g, v in allowed.items()}
    new = {g: v for g, v in new.items() if v}
    stale = {g: v for g, v in stale.items() if v}
    assert not new, f"{what} (new; fix them, do not list them): {new}"
    assert not stale, (f"{what}: these allow-list entries in tests/architecture_baseline.py "
                       f"are fixed now, delete them: {stale}")


def _dataclass_decorator(node: ast.ClassDef) -> ast.expr | None:
    for dec in node.decorator_list:
        func = dec.func if isinstance(dec, ast.Call) else dec
        if (isinstance(func, ast.Name) and func.id == "dataclass") or (
                isinstance(func, ast.Attribute) and func.attr == "dataclass"):
            return dec
    return None


def _positional_dataclasses() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            dec = _dataclass_decorator(node)
            if dec is None:
                continue
            kw_only = isinstance(dec, ast.Call) and any(
                k.arg == "kw_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in dec.keywords)
            if not kw_only:
                found.setdefault(_group(name), set()).add(f"{_short(name)}:{node.name}")
    return found


def test_every_dataclass_is_keyword_only():
    """``@dataclass(kw_only=True)``: no long positional calls whose order must be remembered."""
    _check_against(_positional_dataclasses(), baseline.POSITIONAL_DATACLASSES,
                   "dataclasses without kw_only=True")


def test_the_dataclass_finder_sees_both_kinds():
    code = ("from dataclasses import dataclass\n@dataclass\nclass A:\n    x: int\n"
            "@dataclass(kw_only=True, frozen=True)\nclass B:\n    y: int\n")
    tree = ast.parse(code)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    decs = [_dataclass_decorator(c) for c in classes]
    assert isinstance(decs[0], ast.Name) and isinstance(decs[1], ast.Call)
    assert [k.arg for k in decs[1].keywords] == ["kw_only", "frozen"]


# ---------------------------------------------------------------- parameters declared once
def _public_api(part: str) -> list[str]:
    tree = ast.parse(MODULES[f"{PACKAGE}.{part}"].read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    return []


def _holds_parameters(obj: object) -> bool:
    """A public config (a dataclass named ...Config/Options/Settings) or an estimator."""
    import dataclasses

    if not isinstance(obj, type):
        return False
    if dataclasses.is_dataclass(obj) and obj.__name__.endswith(("Config", "Options", "Settings")):
        return True
    return any(c.__module__.startswith("sklearn.") and c.__name__ == "BaseEstimator"
               for c in obj.__mro__)


def _unguarded() -> dict[str, set[str]]:
    """Public configs and estimators that do not check every parameter from a declaration."""
    import importlib

    from transferscope.core.params import Validated, ValidatedEstimator, undeclared

    found: dict[str, set[str]] = {}
    for part in PARTS:
        package = importlib.import_module(f"{PACKAGE}.{part}")
        for name in _public_api(part):
            obj = getattr(package, name)
            if not _holds_parameters(obj):
                continue
            guarded = issubclass(obj, Validated | ValidatedEstimator) and not undeclared(obj)
            if not guarded:
                found.setdefault(part, set()).add(name)
    return found


def test_every_public_config_and_estimator_checks_its_declared_parameters():
    """Each public config derives from ``core.params.Validated`` (checked when constructed),
    each estimator from ``ValidatedEstimator`` (checked at fit), and every parameter has a
    ``Spec`` (type, range or choices, help): the scikit-learn convention, declared once."""
    _check_against(_unguarded(), baseline.UNGUARDED_PARAMETERS,
                   "public configs/estimators with unchecked or undeclared parameters")


def test_every_validated_class_declares_each_parameter():
    """Wherever a class opts in (``Validated``/``ValidatedEstimator``), all its parameters carry
    a Spec: found from the source, then imported."""
    import importlib

    from transferscope.core.params import undeclared

    checked = []
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text("utf-8")).body:
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in getattr(node, "bases", [])}
            if isinstance(node, ast.ClassDef) and bases & {"Validated", "ValidatedEstimator"}:
                cls = getattr(importlib.import_module(name), node.name)
                assert undeclared(cls) == [], f"{name}.{node.name}"
                checked.append(f"{name}.{node.name}")
    assert f"{PACKAGE}.demo.config.DemoConfig" in checked


# ---------------------------------------------------------------- the command line
def _cli_modules() -> list[str]:
    return [m for m in MODULES if _is_cli(m)]


def _imported_libraries(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_command_line_modules_import_no_numeric_library():
    """Parse, call, print: arrays and tensors stay in the library."""
    bad = {m: sorted(_imported_libraries(MODULES[m]) & set(NUMERIC_LIBRARIES))
           for m in _cli_modules()}
    assert {m: v for m, v in bad.items() if v} == {}


_ARITHMETIC = (ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.MatMult, ast.Sub)


def _stringish(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant)
                                           and isinstance(node.value, str)):
        return True
    if isinstance(node, ast.IfExp):
        return _stringish(node.body) or _stringish(node.orelse)
    if isinstance(node, ast.BinOp):
        return _stringish(node.left) or _stringish(node.right)
    return isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("join", "format")


def _computations(path: Path) -> set[str]:
    """``function`` names (``<module>`` for top level) that do arithmetic on values."""
    found = set()
    tree = ast.parse(path.read_text("utf-8"))
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for node in ast.walk(func):
            path_join = isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) \
                and _stringish(node.right)  # out / "file.json"
            if isinstance(node, ast.BinOp) and not path_join and (
                    isinstance(node.op, _ARITHMETIC)
                    or (isinstance(node.op, ast.Add) and not _stringish(node))
                    or (isinstance(node.op, ast.Mod) and not _stringish(node.left))):
                found.add(func.name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                    "sum", "min", "max", "sorted", "round", "abs"):
                found.add(func.name)
    return found


def test_command_line_modules_compute_nothing():
    """No arithmetic in a CLI module: a number it prints comes computed in the result."""
    found: dict[str, set[str]] = {}
    for module in _cli_modules():
        for func in _computations(MODULES[module]):
            found.setdefault(_group(module), set()).add(f"{_short(module)}:{func}")
    _check_against(found, baseline.CLI_COMPUTATIONS, "computations in command-line modules")


def test_the_computation_finder_tells_formatting_from_arithmetic(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def show(r, n, out):\n    print(f'{r.steps:.3g}', 'a' + 'b', '%d' % n, out / 'f')\n"
                    "def epochs(r, b):\n    print(f'{r.steps * b / r.n:.3g}')\n")
    assert _computations(path) == {"epochs"}


def _library_imports(module: str) -> set[str]:
    """What a CLI module imports from its part other than the part's public API."""
    part = _layer(module)
    api = set(_public_api(part)) if part in PARTS else set()
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            source = node.module
            if source == f"{PACKAGE}.{part}":
                found |= {f"{source}.{a.name}" for a in node.names if a.name not in api}
            elif source.startswith(f"{PACKAGE}.{part}.") and not _is_cli(source):
                found.add(source)
    return {_short(m) if m.count(".") >= 2 else m for m in found}


def test_command_line_modules_call_only_their_part_public_api():
    """A part's CLI imports from the part only what its ``__init__`` exports (and the config
    modules that declare the options, listed in ``baseline.CLI_OPTION_MODULES``)."""
    found: dict[str, set[str]] = {}
    for module in _cli_modules():
        part = _layer(module)
        if part not in PARTS:
            continue
        extra = _library_imports(module) - baseline.CLI_OPTION_MODULES.get(part, set())
        if extra:
            found.setdefault(part, set()).update(f"{_short(module)} -> {m}" for m in extra)
    _check_against(found, baseline.CLI_PRIVATE_IMPORTS,
                   "command-line modules reaching past their part's public API")


def test_allow_lists_fail_on_a_new_entry_and_on_a_fixed_one():
    _check_against({"ntk": {"a"}}, {"ntk": {"a"}}, "x")  # listed and still there: passes
    with pytest.raises(AssertionError, match="new"):
        _check_against({"ntk": {"a", "b"}}, {"ntk": {"a"}}, "x")
    with pytest.raises(AssertionError, match="delete them"):
        _check_against({"ntk": set()}, {"ntk": {"a"}}, "x")

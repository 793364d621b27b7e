"""Test-quality gate: every test function checks something; every skip is listed with its reason.

A test passes this gate when its body (or a helper it calls from the same file, one level
deep) contains an ``assert``, a ``pytest.raises``/``pytest.warns`` block, a call to
``numpy.testing.assert_*``/``pandas.testing.assert_*``, or ``check(estimator)`` (scikit-learn's
``parametrize_with_checks`` hands each test one of its own asserting checks). Run by ``make test`` before pytest;
exit 1 lists the offenders. The skip list (``pytest.mark.skip``/``skipif``/``importorskip`` and
``pytest.skip`` calls) is printed so a reviewer sees what CI does not run, and why.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
CHECK_CALLS = ("raises", "warns", "deprecated_call")


def _checks(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CHECK_CALLS or name.startswith("assert_") or name == "check":
                return True
    return False


def _called_names(node: ast.AST) -> set[str]:
    return {sub.func.id for sub in ast.walk(node)
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)}


def _skip_reason(node: ast.AST) -> str | None:
    """The reason of a skip marker or call, as written (None if ``node`` is not one)."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ("skip", "skipif", "importorskip"):
        return None
    for kw in node.keywords:
        if kw.arg == "reason":
            return ast.unparse(kw.value)
    args = node.args[1:] if name == "skipif" else node.args
    return ast.unparse(args[0]) if args else "(no reason given)"


def main(tests: Path = TESTS) -> int:
    """Print the skips and the offenders under ``tests``; 1 if any test checks nothing."""
    missing: list[str] = []
    skips: list[str] = []
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        helpers = {n.name: n for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        rel = path.relative_to(tests.parent)
        for node in ast.walk(tree):
            reason = _skip_reason(node)
            if reason is not None:
                skips.append(f"{rel}:{node.lineno}: {reason}")
        for name, fn in helpers.items():
            if not name.startswith("test_"):
                continue
            called = [helpers[c] for c in _called_names(fn) if c in helpers and c != name]
            if not (_checks(fn) or any(_checks(h) for h in called)):
                missing.append(f"{rel}:{fn.lineno}: {name} checks nothing (no assert, "
                               "pytest.raises or assert_* call)")
    print(f"test-quality gate: {len(skips)} skip(s) in the suite:")
    for line in skips:
        print(f"  skip {line}")
    for line in missing:
        print(f"FAIL {line}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else TESTS))

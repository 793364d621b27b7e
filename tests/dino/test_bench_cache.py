"""`dino bench` results are cached under the package version and a digest of the code their
numbers come from (``evaluation.BENCH_CODE``): an entry written by other code is never read."""

import ast
import importlib.util
from pathlib import Path

import transferscope.core.cache as core_cache
from transferscope.dino import evaluation


def _dino_imports(module: str) -> set[str]:
    """The ``transferscope.dino`` modules ``module`` imports, read from its source."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text("utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "transferscope.dino."):
            found.add(node.module)
    return found


def test_the_bench_code_holds_every_module_a_result_is_computed_by():
    closure, todo = set(), ["transferscope.dino.evaluation"]
    while todo:
        module = todo.pop()
        if module not in closure:
            closure.add(module)
            todo.extend(_dino_imports(module))
    assert closure <= set(evaluation.BENCH_CODE), sorted(closure - set(evaluation.BENCH_CODE))
    # the command line and the report are not part of it: editing them keeps finished runs
    assert not {"transferscope.dino.cli", "transferscope.dino.report"} & set(
        evaluation.BENCH_CODE)


def test_the_bench_cache_folder_follows_the_package_version_and_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path))
    now = evaluation.bench_cache()
    assert now.root.parent == tmp_path / "dino-bench"
    monkeypatch.setattr(core_cache, "__version__", "0.0.0-other")
    assert evaluation.bench_cache().root != now.root
    monkeypatch.undo()
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path))
    other_code = core_cache.Cache("dino-bench", code=evaluation.BENCH_CODE[:-1])
    assert other_code.root != now.root and evaluation.bench_cache().root == now.root

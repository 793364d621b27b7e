"""Import a part's heavy modules (torch, transformers, ray, scikit-learn) only when used.

``transferscope --help`` must not pay for torch. Two pieces make that so:

* :func:`lazy_exports` for a package's ``__init__`` (PEP 562): the re-exports stay written as
  ordinary imports, inside ``if TYPE_CHECKING:`` (type checkers and readers see them), and
  each name is imported from its module the first time it is used::

      from typing import TYPE_CHECKING

      if TYPE_CHECKING:
          from transferscope.dino.estimator import DINORegressor
      else:
          from transferscope.core.lazy import lazy_exports

          lazy_exports(__name__)

      __all__ = ["DINORegressor"]

* :func:`lazy_module` for a command-line module that calls a heavy library module: the name
  is bound at import time, the module is imported on the first attribute access::

      if TYPE_CHECKING:
          from transferscope.ntk import pipeline
      else:
          pipeline = lazy_module("transferscope.ntk.pipeline")
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "lazy_module", "type_checking_imports"]


def type_checking_imports(path: str | Path, package: str) -> dict[str, str]:
    """``{name: module}`` of every ``from module import name`` inside the ``if
    TYPE_CHECKING:`` blocks at the top level of the file (relative imports resolved against
    ``package``)."""
    tree = ast.parse(Path(path).read_text("utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.ImportFrom):
                continue
            module = stmt.module or ""
            if stmt.level:
                base = package.split(".")
                base = base[: len(base) - (stmt.level - 1)]
                module = ".".join(base + ([module] if module else []))
            for alias in stmt.names:
                found[alias.asname or alias.name] = f"{module}:{alias.name}"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def lazy_exports(package: str) -> None:
    """Make package ``package`` (pass ``__name__``) import each name of its ``if
    TYPE_CHECKING:`` block from its module on first use, then keep it in the package's
    namespace. A name it does not list is looked up as a submodule, so ``from package import
    submodule`` keeps working; where an exported name is also a submodule's name (bias's
    ``debias`` function and ``debias/`` package), the export wins, as it did when the
    ``__init__`` imported it eagerly."""
    module = sys.modules[package]
    if module.__file__ is None:
        raise ImportError(f"{package}: lazy_exports needs a package with a source file")
    module.__dict__["_lazy_targets"] = type_checking_imports(module.__file__, package)
    module.__class__ = _LazyPackage


class _LazyPackage(types.ModuleType):
    """A package whose re-exports are imported when first read (PEP 562 semantics)."""

    _lazy_targets: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        target = self.__dict__["_lazy_targets"].get(name)
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        source, _, attr = target.partition(":")
        imported = importlib.import_module(source)
        try:
            value = getattr(imported, attr)
        except AttributeError:  # ``from package import submodule`` inside the block
            value = importlib.import_module(f"{source}.{attr}")
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds a submodule to its parent package after importing it; an
        # export of the same name must not be replaced by that module.
        target = self.__dict__.get("_lazy_targets", {}).get(name)
        if (target is not None and isinstance(value, types.ModuleType)
                and value.__name__ == f"{self.__name__}.{name}"
                and value.__name__ != target.replace(":", ".")):
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__["_lazy_targets"]))


class _LazyModule:
    """Stands for a module until an attribute is read; then imports it (an ordinary import:
    the module is executed once, in ``sys.modules`` as usual) and answers from it."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        loaded = "loaded" if self._name in sys.modules else "not loaded yet"
        return f"<lazy module {self._name!r} ({loaded})>"


def lazy_module(name: str) -> Any:
    """A stand-in for module ``name`` that imports it on the first attribute access."""
    return sys.modules.get(name) or _LazyModule(name)

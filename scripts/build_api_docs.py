"""Render each part's public API with its numpydoc docstrings into docs/api.md.

The public API of ``transferscope.ntk``, ``.dino`` and ``.bias`` is the package's ``__all__``;
each name is found where the package's ``if TYPE_CHECKING:`` block imports it from (the map
:func:`transferscope.core.lazy.type_checking_imports` reads). ``transferscope.core`` has no
flat API: where it declares no ``__all__``, each core module's ``__all__`` (or, without one,
its public functions and classes) is listed under the module. Everything is read from the
source (``ast``), nothing is imported, so the page builds in about a second and the same code
serves the check.

Run: .venv/bin/python scripts/build_api_docs.py          (rewrite docs/api.md)
     .venv/bin/python scripts/build_api_docs.py --check  (exit 1 when docs/api.md is stale)
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
OUT = ROOT / "docs" / "api.md"
PARTS = ("core", "ntk", "dino", "bias")
COMMAND = "python scripts/build_api_docs.py"
# numpydoc sections whose entries read "name : type" with an indented description
ENTRY_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises",
                  "Warns", "Attributes", "Methods"}

sys.path.insert(0, str(SRC))
from transferscope.core.lazy import type_checking_imports  # noqa: E402


@dataclass(kw_only=True)
class Entry:
    """One documented name: where it is defined and its definition's node."""

    name: str
    module: str
    node: ast.AST | None


@cache
def module_file(module: str) -> Path:
    """The source file of ``module`` (a package's ``__init__.py``)."""
    base = SRC.joinpath(*module.split("."))
    package = base / "__init__.py"
    if package.exists():
        return package
    path = base.with_suffix(".py")
    if not path.exists():
        raise SystemExit(f"{module}: no source file under {SRC}")
    return path


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(module_file(module).read_text("utf-8"))


def _dunder_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                  for t in node.targets)):
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    return None


def _imported_from(tree: ast.Module, module: str, name: str) -> str | None:
    """The module ``name`` is imported from in ``tree`` (any depth, relative resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    if not node.level:
                        return node.module
                    base = module.split(".")
                    is_package = module_file(module).name == "__init__.py"
                    base = base[: len(base) - (node.level - (1 if is_package else 0))]
                    return ".".join(base + ([node.module] if node.module else []))
    return None


def find(module: str, name: str, depth: int = 0) -> Entry:
    """Where ``name`` is defined, following re-exports from ``module``."""
    tree = _tree(module)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and \
                node.name == name:
            return Entry(name=name, module=module, node=node)
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return Entry(name=name, module=module, node=node)
    origin = _imported_from(tree, module, name)
    if origin is None or depth > 5:
        raise SystemExit(f"{module}: cannot find the definition of {name!r}")
    return find(origin, name, depth + 1)


def part_entries(part: str) -> dict[str, list[Entry]]:
    """``{heading: entries}`` of one part: its ``__all__``, or per core module."""
    package = f"transferscope.{part}"
    init = module_file(package)
    names = _dunder_all(ast.parse(init.read_text("utf-8")))
    if names is not None:
        targets = type_checking_imports(init, package)
        entries = []
        for name in names:
            origin = targets.get(name, f"{package}:{name}").split(":")[0]
            entries.append(find(origin, name))
        return {package: entries}
    found: dict[str, list[Entry]] = {}
    for path in sorted(init.parent.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = f"{package}.{path.stem}"
        tree = ast.parse(path.read_text("utf-8"))
        listed = _dunder_all(tree)
        if listed is None:
            listed = [n.name for n in tree.body
                      if isinstance(n, ast.FunctionDef | ast.ClassDef)
                      and not n.name.startswith("_")]
        if listed:
            found[module] = [find(module, name) for name in listed]
    return found


def _code(text: str) -> str:
    """Sphinx roles and double backticks as Markdown code."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: f"`{m[1].split('.')[-1]}`"
                  if m[0].count("~") else f"`{m[1]}`", text)
    return text.replace("``", "`")


def numpydoc_markdown(doc: str) -> str:
    """A numpydoc docstring as Markdown: section titles bold, parameter-like entries as a
    list (``name`` (type): description), other text as written."""
    lines = doc.splitlines()
    out: list[str] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"\s*-{3,}\s*", nxt) and not line.startswith(" "):
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if section in ENTRY_SECTIONS and line.strip() and not line.startswith(" "):
            name, _, kind = line.partition(" : ")
            desc = []
            i += 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                if lines[i].strip():
                    desc.append(lines[i].strip())
                elif i + 1 < len(lines) and not lines[i + 1].startswith(" "):
                    break
                i += 1
            label = f"`{name.strip()}`" + (f" ({_code(kind.strip())})" if kind.strip() else "")
            out.append(f"- {label}" + (f": {_code(' '.join(desc))}" if desc else ""))
            continue
        out.append(_code(line))
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> str:
    args = ast.unparse(node.args)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{name}({args}){returns}"


def _is_dataclass(node: ast.ClassDef) -> bool:
    return any("dataclass" in ast.unparse(d) for d in node.decorator_list)


def render_entry(entry: Entry) -> list[str]:
    """The Markdown of one name: heading, where it lives, signature, docstring."""
    node = entry.node
    lines = [f"### `{entry.name}`", "", f"*{entry.module}*", ""]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        lines += ["```python", "def " + _signature(node, entry.name), "```", ""]
        lines.append(numpydoc_markdown(ast.get_docstring(node) or "(no docstring)"))
    elif isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        init = next((s for s in node.body if isinstance(s, ast.FunctionDef)
                     and s.name == "__init__"), None)
        lines += ["```python", f"class {entry.name}" + (f"({bases})" if bases else "")]
        if init is not None:  # the constructor's parameters, ``self`` left out
            init.args.args = init.args.args[1:]
            lines.append(_signature(init, entry.name).split(" -> ")[0])
        lines += ["```", ""]
        lines.append(numpydoc_markdown(ast.get_docstring(node) or "(no docstring)"))
        fields = [s for s in node.body if isinstance(s, ast.AnnAssign)
                  and isinstance(s.target, ast.Name) and not s.target.id.startswith("_")
                  and "ClassVar" not in ast.unparse(s.annotation)]
        if fields and _is_dataclass(node):
            lines += ["", "**Fields**", ""]
            for f in fields:
                default = f" = {ast.unparse(f.value)}" if f.value is not None else ""
                lines.append(f"- `{ast.unparse(f.target)}: {ast.unparse(f.annotation)}"
                             f"{default}`")
        methods = [s for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
                   and not s.name.startswith("_") and ast.get_docstring(s)]
        if methods:
            lines += ["", "**Methods**", ""]
            for m in methods:
                summary = _code((ast.get_docstring(m) or "").split("\n\n")[0].replace("\n", " "))
                lines.append(f"- `{_signature(m, m.name)}`: {summary}")
    else:
        value = getattr(node, "value", None)
        shown = ast.unparse(value) if value is not None else ""
        lines.append("Constant" + (f": `{shown}`" if len(shown) <= 100 else
                                   f" (`{type(ast.literal_eval(value)).__name__}`)"
                                   if _literal(value) else "."))
    return lines + [""]


def _literal(node: ast.AST | None) -> bool:
    try:
        ast.literal_eval(node)  # type: ignore[arg-type]
    except (ValueError, TypeError, SyntaxError):
        return False
    return True


def build() -> str:
    """The whole page."""
    lines = ["# API reference", "",
             "The public names of each part (`__all__`) with their docstrings. Generated from "
             f"the source by `{COMMAND}`; do not edit by hand (a test checks this page is "
             "current).", ""]
    seen: dict[str, int] = {}  # GitHub numbers repeated heading anchors: name, name-1, ...
    for part in PARTS:
        for heading, entries in part_entries(part).items():
            lines += [f"## `{heading}`", ""]
            for e in entries:
                slug = re.sub(r"[^a-z0-9_-]", "", e.name.lower())
                count = seen.get(slug, 0)
                seen[slug] = count + 1
                lines.append(f"- [`{e.name}`](#{slug}{f'-{count}' if count else ''})")
            lines.append("")
            for entry in entries:
                lines += render_entry(entry)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the page differs from what the source gives")
    parser.add_argument("--output", type=Path, default=OUT, help="the page (docs/api.md)")
    args = parser.parse_args(argv)
    page = build()
    if args.check:
        current = args.output.read_text("utf-8") if args.output.exists() else ""
        if current != page:
            print(f"{args.output} is out of date with the public API: run `{COMMAND}` and "
                  "commit the result", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page, "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

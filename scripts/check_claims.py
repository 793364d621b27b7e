"""Claims gate: every measured number in the docs comes from a committed results file the text names.

A *claim* is a number in README.md or docs/*.md outside code blocks and code spans that either
carries a unit or a ratio (``s``, ``ms``, ``min``, ``h``, ``GiB``, ``MiB``, ``GB``, ``MB``, ``x``,
``%``) or has two or more decimals (``0.941``, ``+0.425``). A claim is *supported* when

- a results file the same section names (a path under ``examples/`` or ``benchmarks/results/``,
  a folder meaning every text file under it) contains the number, compared at the precision the
  text shows (``0.94`` is supported by ``0.9413``; ``55%`` by ``0.55`` or ``55.0``); or
- the section carries a computation note ``<!-- calc: 1.35 = 583.6 / 467.5 -->`` whose operands
  are all supported and whose value rounds to the claim; or
- the allow-list (``docs/claims-allowlist.txt``, lines ``FILE | NUMBER | why``) lists it: for
  definitions and settings (``24 GiB`` of the machine, a cap the code sets), never for
  measurements.

Not claims at all: versions (``Python >= 3.11``), levels (``95% CI``, ``90%-interval``, ``90%
quantile``, ``95% coverage``), decades (``the 1970s``) and shapes (``3100 x 3100``).

A section runs from one Markdown heading to the next. Run by ``make test`` (through
tests/test_claims_gate.py); ``python scripts/check_claims.py [ROOT [DOCUMENT ...]]`` checks every
document under ROOT (default: this repository) or only the ones named; exit 1 lists every
unsupported claim as ``FILE:LINE: NUMBER ...`` (and every allow-list entry that no longer matches
a number in its document), exit 2 is a bad argument or allow-list line.
"""

from __future__ import annotations

import ast
import operator
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = "docs/claims-allowlist.txt"
UNITS = ("GiB", "MiB", "KiB", "GB", "MB", "min", "ms", "s", "h", "x", "×", "%")
TEXT_SUFFIXES = {".txt", ".md", ".json", ".jsonl", ".csv", ".tsv", ".html", ".log"}

_NUMBER = r"[+\-−]?\d+(?:,\d{3})*(?:\.\d+)?"
# A number, optionally the first of a range ("1.03-1.18x"), then an optional unit. The
# look-behind keeps parts of words, versions (3.11.2), dates and flags (--n 64) out.
_CLAIM = re.compile(
    rf"(?<![\w.\-/=<>~^])(?P<num>{_NUMBER})(?![\d.]\d)"
    rf"(?:\s?(?P<unit>{'|'.join(map(re.escape, UNITS))})(?![\w]))?")
_RANGE_TAIL = re.compile(rf"\s?[-–]\s?(?P<num>{_NUMBER})\s?(?P<unit>{'|'.join(map(re.escape, UNITS))})(?!\w)")
_SOURCE = re.compile(r"(?:examples|benchmarks/results)/[\w./+\-]*[\w/]")
_CALC = re.compile(r"<!--\s*calc:\s*(?P<lhs>[^=]+?)\s*=\s*(?P<rhs>.+?)\s*-->")
_CODE_SPAN = re.compile(r"`[^`]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)|https?://\S+")
_HEADING = re.compile(r"^#{1,6}\s")
# Not measurements: versions ("Python >= 3.11") and confidence levels ("95% CI", "90% intervals").
_VERSION_BEFORE = re.compile(r"(?:>=|<=|==|~=|[<>]|\b[Pp]ython|\bversion|\bv)\s*$")
# Levels: "95% CI", "90%-interval", "90% quantile", "95% coverage" (the coverage of the 95%
# interval; a measured coverage reads "covered 91%" or "coverage 0.91").
_LEVEL_AFTER = re.compile(r"[\s\-]*(?:bootstrap\s+|predictive\s+|confidence\s+)?"
                          r"(?:CIs?|confidence|intervals?|coverage|quantiles?|percentiles?)\b")
# Decades ("the 1970s", "1946-1970s") and shapes ("3100 x 3100", "2 x 64 ReLU") carry a
# unit-like letter but are not measurements.
_DECADE = re.compile(r"(?:1[5-9]|20)\d0s$")
_SHAPE_AFTER = re.compile(r"\s*\d")
_VALUE = re.compile(_NUMBER)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One number found in a document."""

    path: str
    line: int
    text: str
    unit: str | None

    @property
    def decimals(self) -> int:
        digits = self.text.replace(",", "")
        return len(digits.split(".")[1]) if "." in digits else 0

    @property
    def value(self) -> Decimal:
        return Decimal(self.text.replace(",", "").replace("−", "-").lstrip("+"))


@dataclass(kw_only=True)
class Section:
    """Lines between two headings, with the results files they name and their calc notes."""

    start: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _sections(text: str) -> list[Section]:
    sections = [Section(start=1, lines=[])]
    in_code = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code and _HEADING.match(line):
            sections.append(Section(start=number, lines=[]))
        sections[-1].lines.append(line)
    return sections


def find_claims(path: str, text: str) -> list[tuple[Claim, Section]]:
    """Every claim in ``text`` with the section it stands in (code blocks and spans skipped)."""
    found: list[tuple[Claim, Section]] = []
    in_code = False
    for section in _sections(text):
        for offset, raw in enumerate(section.lines):
            if raw.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            line = _CALC.sub(" ", raw)
            line = _CODE_SPAN.sub(" ", line)
            line = _LINK_TARGET.sub(" ", line)
            line = re.sub(r"<!--.*?-->", " ", line)
            for match in _CLAIM.finditer(line):
                num, unit = match["num"], match["unit"]
                if _VERSION_BEFORE.search(line[:match.start()]):
                    continue
                following = section.lines[offset + 1] if offset + 1 < len(section.lines) else ""
                if unit == "%" and _LEVEL_AFTER.match(f"{line[match.end():]} {following}"):
                    continue
                if (unit in ("x", "×") and " " in match.group(0)
                        and _SHAPE_AFTER.match(line, match.end())):
                    continue
                tail = _RANGE_TAIL.match(line, match.end())
                if _DECADE.match(line[match.start():match.end()]) or (
                        tail is not None and _DECADE.match(tail.group(0).lstrip(" -–"))):
                    continue
                if unit is None and tail is not None:
                    unit = tail["unit"]
                has_decimals = "." in num and len(num.split(".")[1]) >= 2
                if unit is None and not has_decimals:
                    continue
                found.append((Claim(path=path, line=section.start + offset, text=num,
                                    unit=unit), section))
                if tail is not None:
                    found.append((Claim(path=path, line=section.start + offset,
                                        text=tail["num"], unit=tail["unit"]), section))
    return found


def _round(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _matches(claim_value: Decimal, decimals: int, source_value: Decimal) -> bool:
    return _round(source_value, decimals) == _round(claim_value, decimals)


def _supported_by(claim: Claim, values: list[Decimal]) -> bool:
    targets = [(claim.value, claim.decimals)]
    if claim.unit == "%":
        targets.append((claim.value / 100, claim.decimals + 2))
    return any(_matches(target, decimals, abs(v) if target >= 0 else v)
               or _matches(target, decimals, v)
               for target, decimals in targets for v in values)


def _source_values(root: Path, names: list[str], cache: dict[str, list[Decimal]]) -> list[Decimal]:
    values: list[Decimal] = []
    for name in names:
        if name not in cache:
            target = root / name
            files = ([target] if target.is_file()
                     else sorted(p for p in target.rglob("*") if p.suffix in TEXT_SUFFIXES)
                     if target.is_dir() else [])
            cache[name] = [Decimal(token.replace(",", ""))
                           for f in files
                           for token in _VALUE.findall(f.read_text("utf-8", errors="replace"))]
        values.extend(cache[name])
    return values


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _evaluate(node: ast.AST) -> tuple[Decimal, list[Decimal]]:
    """Value of an arithmetic expression and the literal operands it used."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        value = Decimal(repr(node.value))
        return value, [value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value, operands = _evaluate(node.operand)
        return -value, operands
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, lops = _evaluate(node.left)
        right, rops = _evaluate(node.right)
        return _OPS[type(node.op)](left, right), lops + rops
    raise ValueError(f"calc note: only numbers and + - * / are allowed, got {ast.unparse(node)!r}")


def _calc_values(section: Section, values: list[Decimal]) -> tuple[list[Decimal], list[str]]:
    """Values that the section's calc notes establish, and the notes that do not hold."""
    established: list[Decimal] = []
    broken: list[str] = []
    for note in _CALC.finditer(section.text):
        value, operands = _evaluate(ast.parse(note["rhs"], mode="eval").body)
        lhs = Decimal(note["lhs"].rstrip("x×%s ").replace(",", ""))
        decimals = len(note["lhs"].split(".")[1].rstrip("x×%s ")) if "." in note["lhs"] else 0
        missing = [op for op in operands
                   if not any(_matches(op, max(0, -op.as_tuple().exponent), v) for v in values)]
        if missing or _round(value, decimals) != lhs:
            broken.append(f"calc '{note.group(0)}': "
                          + (f"operands {[str(m) for m in missing]} not in the named files"
                             if missing else f"evaluates to {value:.6g}, not {lhs}"))
            continue
        established.append(lhs)
    return established, broken


def _allowlist(root: Path) -> dict[tuple[str, str], int]:
    """The allow-list's entries ``(file, number)`` with the line each stands on."""
    path = root / ALLOWLIST
    if not path.is_file():
        return {}
    entries: dict[tuple[str, str], int] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            parts = [p.strip() for p in line.split("|")]
            if len(parts) < 3 or not parts[2]:
                raise ValueError(f"{ALLOWLIST}:{number}: {line!r}: expected 'FILE | NUMBER | why'")
            entries[(parts[0], parts[1].replace(" ", ""))] = number
    return entries


def check(root: Path, documents: list[str]) -> list[str]:
    """Every unsupported claim in ``documents`` (paths relative to ``root``), one line each.

    An allow-list entry for one of ``documents`` that no claim there uses any more is reported
    too, so the list cannot outlive the text it excuses.
    """
    allowed = _allowlist(root)
    used: set[tuple[str, str]] = set()
    cache: dict[str, list[Decimal]] = {}
    problems: list[str] = []
    for doc in documents:
        if not (root / doc).is_file():
            raise ValueError(f"{doc}: no such document under {root}")
        text = (root / doc).read_text("utf-8")
        seen_sections: dict[int, tuple[list[Decimal], list[str]]] = {}
        for claim, section in find_claims(doc, text):
            keys = [(doc, claim.text + (claim.unit or "")), (doc, claim.text)]
            hits = [key for key in keys if key in allowed]
            if hits:
                used.update(hits)
                continue
            names = sorted(set(_SOURCE.findall(section.text)))
            values = _source_values(root, names, cache)
            if id(section) not in seen_sections:
                seen_sections[id(section)] = _calc_values(section, values)
                problems.extend(f"{doc}:{section.start}: {b}" for b in seen_sections[id(section)][1])
            computed = seen_sections[id(section)][0]
            if _supported_by(claim, values) or any(_matches(claim.value, claim.decimals, c)
                                                   for c in computed):
                continue
            where = (f"not in {', '.join(names)}" if names
                     else "the section names no file under examples/ or benchmarks/results/")
            problems.append(f"{doc}:{claim.line}: {claim.text}{claim.unit or ''}: {where}")
    problems.extend(f"{ALLOWLIST}:{line}: '{doc} | {number}' matches no number in {doc}"
                    for (doc, number), line in sorted(allowed.items(), key=lambda e: e[1])
                    if doc in documents and (doc, number) not in used)
    return problems


# rendered from the source's docstrings by scripts/build_api_docs.py: code, like code blocks
GENERATED = {"docs/api.md"}


def default_documents(root: Path) -> list[str]:
    """README.md and every docs/*.md but the generated API reference (:data:`GENERATED`)."""
    docs = ["README.md"] if (root / "README.md").is_file() else []
    return docs + sorted(name for p in (root / "docs").glob("*.md")
                         if (name := str(p.relative_to(root))) not in GENERATED)


def main(argv: list[str]) -> int:
    """``check_claims.py [ROOT [DOCUMENT ...]]``: every document (default) or the ones named."""
    root = Path(argv[0]).resolve() if argv else ROOT
    documents = argv[1:] or default_documents(root)
    try:
        problems = check(root, documents)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"claims gate: {len(problems)} unsupported claim(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

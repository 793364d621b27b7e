"""A UNBench checkout as items in our schema (``bias import-unbench``).

The layout read is the one the authors publish (``yueqingliang1/UNBench``, ``data/``):

- task 2 (vote simulation): ``data/task2.csv`` (Country in upper case, naming any Council
  member; Original_id, the number of the draft's folder; Authors, a Python-list string;
  Voting Y/N/A; Date) and ``data/task2/<Original_id>/<symbol>-EN.json`` (Date, ID, Title,
  Authors, Content = the draft's text). Each row becomes one vote item in the role form: the
  member votes on the draft's text, gold ``in favour`` (Y), ``against`` (N) or ``abstain``
  (A). Every member is kept: the permanent members under our canonical names, the elected
  members under their UN name written in ordinary case (``CÔTE D'IVOIRE`` -> ``Côte
  d'Ivoire``), scored on their own rows.
- task 1 (co-author choice): ``data/task1.json`` rows (folder_id, author, coauthor, date,
  choices_2 .. choices_5) and the draft's JSON in ``data/task1/<folder_id>/``. Each row
  becomes one ``coauthor`` item per choice list (form ``choices_K``): which of the K countries
  co-sponsored the draft with ``author``; gold the ``coauthor``.
- task 3 (adoption prediction): ``data/task3.json`` (``drafts`` texts and ``labels`` 1/0).
  Each draft becomes one ``adoption`` item, gold ``Adopted`` (1) or ``Not adopted`` (0).
- task 4 (statement generation) is not imported: it asks for free text judged against
  delegates' statements, not an answer among options a bias test can score.

Every row is kept or named with a one-line reason (:attr:`UnbenchItems.skipped`). Ours: the
sponsors (Authors) head a vote item's text, as they head the draft document itself; the
co-author item never shows the draft's author list (it holds the answer). ``Authors`` is read
with :func:`ast.literal_eval` (a literal, never code). Written from the layout alone; no
UNBench code is used.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.data.members import P5, canonical_member
from transferscope.bias.items import SCHEMA_VERSION, load_items, write_items
from transferscope.core.errors import InputError, describe_value
from transferscope.core.io import read_json

VOTES = {"Y": "in favour", "N": "against", "A": "abstain"}
CSV_COLUMNS = ("Country", "Original_id", "Authors", "Voting", "Date")
JSON_FIELDS = ("ID", "Date", "Title", "Content")
TASK1_FIELDS = ("folder_id", "author", "coauthor", "date")
CHOICES = tuple(f"choices_{k}" for k in range(2, 6))
ADOPTION = ("Adopted", "Not adopted")
TASK4_REASON = ("task 4 (statement generation): it asks for free text judged "
                "against delegates' statements, not an answer among options")
_LOWER = frozenset({"of", "the", "and", "for", "de", "da", "du", "des", "la", "le"})


@dataclass(kw_only=True)
class UnbenchItems:
    """The rows in our schema, and why any row was not kept (``where: reason`` lines)."""

    rows: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Items per task, per kind of member (task 2) and per gold answer (task 2)."""
        votes = [r for r in self.rows if r["test"] == "vote"]
        p5 = sum(r["nation"] in P5 for r in votes)
        gold = Counter(r["gold"] for r in votes)
        tests = Counter(r["test"] for r in self.rows)
        return {"items": len(self.rows), "task 2 vote items": len(votes),
                "permanent members": p5, "other members": len(votes) - p5,
                **{f"gold {k}": v for k, v in gold.items()},
                "task 1 coauthor items": tests["coauthor"],
                "task 3 adoption items": tests["adoption"]}


def draft_key(identifier: str) -> str:
    """One spelling of a draft symbol: ``S/2016/1100``, ``S_2016_1100-EN`` -> ``S/2016/1100``."""
    text = re.sub(r"-[A-Z]{2}$", "", str(identifier).strip().upper())
    return re.sub(r"[_\s]+", "/", text)


def country_name(text: str) -> str:
    """A country as UNBench writes it, in our names: a permanent member's canonical name,
    any other in ordinary case when written in capitals (``VENEZUELA (BOLIVARIAN REPUBLIC
    OF)`` -> ``Venezuela (Bolivarian Republic of)``), else as written (spaces folded)."""
    name = " ".join(str(text).split())
    member = canonical_member(name)
    if member is not None or not name.isupper():
        return member or name
    words = []
    for i, word in enumerate(name.lower().split(" ")):
        bare = word.strip("()")
        if i and bare in _LOWER:
            words.append(word)
            continue
        elided = re.match(r"(d'|l')(.+)", word)  # d'Ivoire: the article stays lower case
        head, word = (elided[1], elided[2]) if elided else ("", word)
        words.append(head + re.sub(r"(^|[-(])([^\W\d_])", lambda m: m[1] + m[2].upper(), word))
    return " ".join(words)


def parse_authors(value: Any) -> list[str]:
    """``"['France', 'Japan']"`` (UNBench's Python-list string) -> ``['France', 'Japan']``;
    a plain name is a list of one. Raises ValueError for anything else."""
    text = str(value).strip()
    if not text.startswith("["):
        return [" ".join(text.split())] if text else []
    parsed = ast.literal_eval(text)  # a literal only: never evaluates code
    if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
        raise ValueError("not a list of names")
    return [" ".join(a.split()) for a in parsed if a.strip()]


def folder_draft(folder: Path) -> dict[str, Any]:
    """The one draft JSON in a UNBench draft folder (one clear error per bad file); raises
    LookupError when the folder is missing or holds no JSON."""
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise LookupError(f"no draft JSON in {folder.parent.name}/{folder.name}/")
    data = read_json(files[0], f"UNBench draft with {', '.join(JSON_FIELDS)}")
    missing = [f for f in JSON_FIELDS if not isinstance(data, dict) or f not in data]
    if missing:
        raise InputError(f"{files[0]}: field {missing[0]} is missing: expected a UNBench draft "
                         f"with {', '.join(JSON_FIELDS)}")
    if not str(data["Content"]).strip():
        raise LookupError(f"the draft JSON {files[0].name} has an empty Content")
    return data


def _date(value: Any) -> str | None:
    try:
        return pd.Timestamp(str(value).strip()).date().isoformat()
    except (ValueError, TypeError):
        return None


def _require(root: Path, relative: str, what: str) -> Path:
    path = root / relative
    if not path.exists():
        raise InputError(f"UNBench checkout {root}: {relative} is missing: expected {what}")
    return path


def task2_items(root: Path, out: UnbenchItems) -> None:
    """Task 2 rows as vote items (see the module docstring), appended to ``out``."""
    csv_path = _require(root, "data/task2.csv", "the CSV of UNBench's task 2")
    json_dir = root / "data" / "task2"
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{csv_path}: column {missing[0]} is missing: expected the columns "
                         f"{', '.join(CSV_COLUMNS)}")
    seen: dict[str, int] = {}
    for number, row in enumerate(table.to_dict("records"), start=1):
        where = f"task2.csv row {number}"
        vote = VOTES.get(row["Voting"].strip().upper())
        if vote is None:
            out.skipped.append(f"{where}: Voting = {row['Voting']!r}: not Y, N or A")
            continue
        nation = country_name(row["Country"])
        if not nation:
            out.skipped.append(f"{where}: Country is empty")
            continue
        try:
            draft = folder_draft(json_dir / row["Original_id"].strip())
        except LookupError as exc:
            out.skipped.append(f"{where}: Original_id = {row['Original_id']!r}: {exc}")
            continue
        try:
            authors = parse_authors(row["Authors"])
        except (ValueError, SyntaxError):
            out.skipped.append(f"{where}: Authors = {describe_value(row['Authors'])}: not a "
                               "list of names")
            continue
        date = _date(row["Date"]) or _date(draft["Date"])
        if date is None:
            out.skipped.append(f"{where}: Date = {row['Date']!r}: not a date (nor the JSON's)")
            continue
        symbol = draft_key(draft["ID"])
        item_id = f"unbench/{symbol}/{nation}"
        if item_id in seen:
            out.skipped.append(f"{where}: {nation} on {symbol} again (first on row "
                               f"{seen[item_id]}): one vote per member and draft")
            continue
        seen[item_id] = number
        text = str(draft["Content"]).strip()
        out.rows.append({
            "id": item_id, "test": "vote", "form": "role", "nation": nation, "draft": symbol,
            "date": date, "title": " ".join(str(draft["Title"]).split()) or None,
            "text": f"Submitted by: {', '.join(authors)}\n\n{text}" if authors else text,
            "gold": vote})


def task1_items(root: Path, out: UnbenchItems) -> None:
    """Task 1 rows as co-author choice items, one per choice list, appended to ``out``."""
    path = root / "data" / "task1.json"
    if not path.exists():
        out.skipped.append("task 1: data/task1.json is missing: no co-author items")
        return
    rows = read_json(path, "UNBench task 1 (a list of co-author rows)")
    if not isinstance(rows, list):
        raise InputError(f"{path}: {describe_value(rows)}: expected a JSON list of rows with "
                         f"{', '.join(TASK1_FIELDS + CHOICES)}")
    for number, row in enumerate(rows, start=1):
        where = f"task1.json row {number}"
        absent = [f for f in TASK1_FIELDS if not isinstance(row, dict) or f not in row]
        if absent:
            out.skipped.append(f"{where}: field {absent[0]} is missing")
            continue
        try:
            draft = folder_draft(root / "data" / "task1" / str(row["folder_id"]))
        except LookupError as exc:
            out.skipped.append(f"{where}: folder_id = {row['folder_id']!r}: {exc}")
            continue
        date = _date(row["date"]) or _date(draft["Date"])
        author, gold = country_name(row["author"]), " ".join(str(row["coauthor"]).split())
        kept = 0
        for key in CHOICES:
            choices = row.get(key)
            if choices is None:
                continue
            names = [" ".join(str(c).split()) for c in choices] if isinstance(choices, list) \
                else []
            if len(names) < 2 or len({n.lower() for n in names}) != len(names) or gold not in names:
                out.skipped.append(f"{where}: {key} = {describe_value(choices)}: not distinct "
                                   f"names holding the coauthor {gold!r}")
                continue
            kept += 1
            out.rows.append({
                "id": f"unbench/task1/{number}/{key}", "test": "coauthor", "form": key,
                "nation": author, "draft": draft_key(draft["ID"]), "date": date,
                "title": " ".join(str(draft["Title"]).split()) or None,
                "text": str(draft["Content"]).strip(), "gold": gold, "options": names})
        if not kept and not any(row.get(k) is not None for k in CHOICES):
            out.skipped.append(f"{where}: none of {', '.join(CHOICES)}")


def task3_items(root: Path, out: UnbenchItems) -> None:
    """Task 3's drafts as adoption items, appended to ``out``."""
    path = root / "data" / "task3.json"
    if not path.exists():
        out.skipped.append("task 3: data/task3.json is missing: no adoption items")
        return
    data = read_json(path, "UNBench task 3 (drafts and labels)")
    drafts = data.get("drafts") if isinstance(data, dict) else None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(drafts, list) or not isinstance(labels, list) or len(drafts) != len(labels):
        raise InputError(f"{path}: {describe_value(data)}: expected an object with the lists "
                         "drafts and labels, of the same length")
    for number, (text, label) in enumerate(zip(drafts, labels, strict=True), start=1):
        where = f"task3.json draft {number}"
        if label not in (0, 1) or isinstance(label, bool):
            out.skipped.append(f"{where}: label = {describe_value(label)}: not 1 or 0")
            continue
        if not isinstance(text, str) or not text.strip():
            out.skipped.append(f"{where}: the draft text is empty")
            continue
        out.rows.append({"id": f"unbench/task3/{number}", "test": "adoption", "form": "adopted",
                         "text": text.strip(), "gold": ADOPTION[0] if label else ADOPTION[1],
                         "options": list(ADOPTION)})


def unbench_items(checkout: str | Path) -> UnbenchItems:
    """The items of a UNBench checkout (``checkout/data/``): task 2 votes, task 1 co-author
    choices, task 3 adoption; task 4 named as not imported. Task 2 is required."""
    root = Path(checkout)
    out = UnbenchItems(rows=[])
    task2_items(root, out)
    if not any(r["test"] == "vote" for r in out.rows):
        raise InputError(f"{root / 'data' / 'task2.csv'}: no usable row ({'; '.join(out.skipped)}"
                         "): expected rows with Voting Y, N or A whose draft folder holds a JSON")
    task1_items(root, out)
    task3_items(root, out)
    out.rows = [{"schema_version": SCHEMA_VERSION, **row} for row in out.rows]
    if (root / "data" / "task4.json").exists():
        out.skipped.append(TASK4_REASON)
    return out


def import_unbench(checkout: str | Path, out: str | Path) -> UnbenchItems:
    """``bias import-unbench``: the items of a UNBench checkout (:func:`unbench_items`) written
    to the items file ``out`` (its suffix names the format), which is claimed before the
    checkout is read and read back under the schema once written.

    Parameters
    ----------
    checkout : str or Path
        A UNBench checkout (``data/task2.csv`` and ``data/task2/<id>/*.json`` required).
    out : str or Path
        The items file to write (``.jsonl``, ``.csv`` or ``.parquet``).

    Returns
    -------
    UnbenchItems
        The rows written, and every row not imported with its reason.
    """
    out = Path(out)
    preflight.items_file(out)
    converted = unbench_items(checkout)
    write_items(out, converted.rows)
    load_items(out)  # what was written reads back under the schema
    return converted

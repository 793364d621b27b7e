"""UNBench's vote-simulation task (task 2) as items in our schema (``bias import-unbench``).

A UNBench checkout holds ``data/task2.csv`` (one row per draft and Council member: Country,
Original_id, Authors, Voting Y/N/A, Date) and one JSON file per draft under ``data/task2/``
(ID, Date, Title, Content = the draft's full text). Each CSV row becomes one vote item in the
role form: the member votes on the draft's full text, gold ``in favour`` (Y), ``against``
(N) or ``abstain`` (A). Every member is kept: the permanent members under our canonical
names, the elected members under the CSV's own name (scored on their own rows). Ours: the
sponsors (Authors) head the text, as they head the draft document itself. Rows whose vote is
none of Y/N/A, or whose draft has no JSON, are skipped and counted, never guessed.
Written from the layout alone; no UNBench code is used.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias.data.members import P5, canonical_member
from transferscope.core.errors import InputError, describe_value
from transferscope.core.io import read_json

VOTES = {"Y": "in favour", "N": "against", "A": "abstain"}
CSV_COLUMNS = ("Country", "Original_id", "Authors", "Voting", "Date")
JSON_FIELDS = ("ID", "Date", "Title", "Content")


@dataclass
class UnbenchItems:
    """The rows in our schema, and what was skipped (reason -> count)."""

    rows: list[dict[str, Any]]
    skipped: Counter = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        """Items per group: the permanent members, the other members, and per gold answer."""
        p5 = sum(r["nation"] in P5 for r in self.rows)
        gold = Counter(r["gold"] for r in self.rows)
        return {"items": len(self.rows), "permanent members": p5,
                "other members": len(self.rows) - p5, **{f"gold {k}": v for k, v in gold.items()}}


def draft_key(identifier: str) -> str:
    """One spelling of a draft symbol: ``S/2016/1100``, ``S_2016_1100-EN`` -> ``S/2016/1100``."""
    text = re.sub(r"-[A-Z]{2}$", "", str(identifier).strip().upper())
    return re.sub(r"[_\s]+", "/", text)


def read_drafts(folder: Path) -> dict[str, dict[str, Any]]:
    """Every draft JSON under ``folder`` by its symbol (one clear error per bad file)."""
    drafts: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*.json")):
        data = read_json(path, f"UNBench draft with {', '.join(JSON_FIELDS)}")
        missing = [f for f in JSON_FIELDS if not isinstance(data, dict) or f not in data]
        if missing:
            raise InputError(f"{path}: field {missing[0]} is missing: expected a UNBench draft "
                             f"with {', '.join(JSON_FIELDS)}")
        drafts[draft_key(data["ID"])] = data
    return drafts


def _date(value: Any, where: str) -> str:
    try:
        return pd.Timestamp(str(value).strip()).date().isoformat()
    except (ValueError, TypeError):
        raise InputError(f"{where}: field Date = {describe_value(value)}: expected a date such "
                         "as 2016-12-19") from None


def unbench_items(checkout: str | Path) -> UnbenchItems:
    """The vote items of a UNBench checkout (``checkout/data/task2.csv`` and
    ``checkout/data/task2/**.json``) in our items schema."""
    root = Path(checkout)
    csv_path, json_dir = root / "data" / "task2.csv", root / "data" / "task2"
    for path, what in ((csv_path, "file"), (json_dir, "folder")):
        if not path.exists():
            raise InputError(f"UNBench checkout {root}: {path.relative_to(root)} is missing: "
                             f"expected the {what} of UNBench's task 2")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{csv_path}: column {missing[0]} is missing: expected the columns "
                         f"{', '.join(CSV_COLUMNS)}")
    drafts = read_drafts(json_dir)
    out = UnbenchItems([])
    seen: set[str] = set()
    for number, row in enumerate(table.to_dict("records"), start=1):
        where = f"{csv_path}: row {number}"
        vote = VOTES.get(row["Voting"].strip().upper())
        draft = drafts.get(draft_key(row["Original_id"]))
        country = " ".join(row["Country"].split())
        if not country:
            raise InputError(f"{where}: field Country is empty: expected a member's name")
        if vote is None:
            out.skipped[f"Voting = {row['Voting']!r} (not Y, N or A)"] += 1
            continue
        if draft is None:
            out.skipped[f"no draft JSON for {row['Original_id']!r}"] += 1
            continue
        nation = canonical_member(country) or country
        item_id = f"unbench/{draft_key(row['Original_id'])}/{nation}"
        if item_id in seen:
            raise InputError(f"{where}: Country = {country!r}, Original_id = "
                             f"{row['Original_id']!r}: expected one vote per member and draft "
                             "(this pair occurs twice)")
        seen.add(item_id)
        authors = " ".join(row["Authors"].split())
        text = str(draft["Content"]).strip()
        out.rows.append({
            "id": item_id, "test": "vote", "form": "role", "nation": nation,
            "draft": draft_key(row["Original_id"]),
            "date": _date(row["Date"] or draft["Date"], where),
            "title": " ".join(str(draft["Title"]).split()) or None,
            "text": f"Submitted by: {authors}\n\n{text}" if authors else text,
            "gold": vote})
    if not out.rows:
        raise InputError(f"{csv_path}: no usable row (skipped: {dict(out.skipped)}): expected "
                         "rows with Voting Y, N or A whose draft JSON exists")
    return out

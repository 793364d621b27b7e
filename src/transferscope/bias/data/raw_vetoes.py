"""Parse the two veto lists: the World Politics Data Lab CSV and the library's veto list page.

The CSV is the primary list (one row per vetoed draft); the page is the library's own list,
used to cross-check it. Both keep the file line each fact came from.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from transferscope.bias.data.html_table import cell_text, table_rows
from transferscope.bias.data.members import canonical_member
from transferscope.core.errors import InputError, input_error

VETO_CSV_COLUMNS = ("year", "date", "draft", "meeting_record", "agenda_item", "crisis_topic",
                    "region", "member_veto1", "member_veto2", "member_veto3")
PER_MEMBER_FLAG_COLUMNS = {"China": "China", "France": "France", "Russia": "Russia",
                           "USSR": "USSR", "USA": "United States", "UK": "United Kingdom"}


@dataclass(kw_only=True, frozen=True)
class VetoRow:
    line: int  # 1-based line in the file where the record starts
    date: dt.date
    draft: str
    meeting_record: str
    agenda_item: str
    crisis_topic: str
    region: str
    vetoers: tuple[str, ...]  # canonical P5 names, in the order the source lists them
    flag_vetoers: tuple[str, ...]  # the same, read from the per-member 0/1 columns


@dataclass(kw_only=True)
class PageVeto:
    line: int
    date: dt.date
    draft_text: str
    symbols: tuple[str, ...]
    meeting_record: str
    agenda_item: str
    vetoers: tuple[str, ...]


@dataclass(kw_only=True)
class VetoParse:
    rows: list[VetoRow]
    physical_lines: int  # data lines as ``wc -l`` counts them (minus the header)
    notes: list[str] = field(default_factory=list)


def _parse_mdy(text: str, where: str) -> dt.date:
    try:
        return dt.datetime.strptime(text.strip(), "%m/%d/%Y").date()
    except ValueError:
        raise input_error(where, "date", text, "a date as M/D/YYYY (e.g. 2/28/2017)") from None


def _members(names: list[str], where: str, field_name: str) -> tuple[str, ...]:
    out = []
    for name in names:
        if not name.strip():
            continue
        member = canonical_member(name)
        if member is None:
            raise input_error(where, field_name, name, "a permanent member (China, France, "
                              "Russia/USSR, UK, USA)")
        out.append(member)
    return tuple(out)


def parse_veto_csv(path: Path) -> VetoParse:
    """Read the veto CSV strictly: any row that breaks the layout is an error naming file:line."""
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(text.splitlines(keepends=True))
    missing = [c for c in VETO_CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise input_error(f"{path}:1", "header", ",".join(reader.fieldnames or []),
                          f"the veto CSV columns (missing: {', '.join(missing)})")
    rows: list[VetoRow] = []
    notes: list[str] = []
    start = 2
    for record in reader:
        where = f"{path}:{start}"
        if None in record or any(record.get(c) is None for c in VETO_CSV_COLUMNS):
            raise InputError(f"{where}: row has the wrong number of fields: expected "
                             f"{len(reader.fieldnames or [])} comma-separated fields")
        date = _parse_mdy(record["date"], where)
        if str(date.year) != record["year"].strip():
            notes.append(f"{where}: year column {record['year']!r} differs from date "
                         f"{record['date']!r}; the date is kept")
        draft = " ".join(record["draft"].split())
        if not draft.startswith("S/"):
            raise input_error(where, "draft", record["draft"], "a UN document symbol S/...")
        vetoers = _members([record[f"member_veto{i}"] for i in (1, 2, 3)], where, "member_veto")
        if not vetoers:
            raise input_error(where, "member_veto1", record["member_veto1"],
                              "at least one vetoing member")
        flagged = tuple(sorted({PER_MEMBER_FLAG_COLUMNS[c] if c != "USSR" else "Russia"
                                for c in PER_MEMBER_FLAG_COLUMNS
                                if (record.get(c) or "").strip() == "1"}))
        if flagged != tuple(sorted(set(vetoers))):
            notes.append(f"{where}: per-member 0/1 columns say {list(flagged) or 'nobody'} but "
                         f"member_veto columns say {list(vetoers)} ({draft}); the member_veto "
                         "columns are kept (they agree with the library page)")
        rows.append(VetoRow(
            line=start, date=date, draft=draft,
            meeting_record=" / ".join(record["meeting_record"].split()),
            agenda_item=" ".join(record["agenda_item"].split()),
            crisis_topic=record["crisis_topic"].strip(), region=record["region"].strip(),
            vetoers=vetoers, flag_vetoers=flagged))
        start = reader.line_num + 1
    physical = text.count("\n") - 1 + (0 if text.endswith("\n") else 1)
    return VetoParse(rows=rows, physical_lines=physical, notes=notes)


_SYMBOL = re.compile(r"S/[A-Za-z0-9./]+(?:/Rev\.\d+|/Add\.\d+|/Corr\.\d+)?")
_DMY = re.compile(r"(\d{1,2})\s+([A-Za-z]+)\s+(\d{4}|\d{2})\b")


def _parse_dmy(text: str) -> dt.date | None:
    m = _DMY.search(text)
    if not m:
        return None
    day, month, year = m.groups()
    if len(year) == 2:  # one row of the page writes "30 January 86"
        year = f"19{year}"
    try:
        return dt.datetime.strptime(f"{day} {month} {year}", "%d %B %Y").date()
    except ValueError:
        return None


def parse_veto_page(path: Path) -> tuple[list[PageVeto], list[str]]:
    """The library's veto list page: one entry per row with a date in its first cell."""
    page = path.read_text(encoding="utf-8", errors="replace")
    entries: list[PageVeto] = []
    notes: list[str] = []
    for row in table_rows(page):
        if row.is_header or len(row.cells) < 5:
            continue
        date = _parse_dmy(cell_text(row.cells[0]))
        if date is None:
            notes.append(f"{path}:{row.line}: first cell {cell_text(row.cells[0])[:40]!r} is "
                         "not a date; row skipped")
            continue
        draft_text = cell_text(row.cells[1])
        names = re.split(r"\n|,| and ", cell_text(row.cells[4], keep_breaks=True))
        vetoers = []
        for name in names:
            if name.strip():
                member = canonical_member(name)
                if member is None:
                    notes.append(f"{path}:{row.line}: vetoing member {name.strip()!r} not "
                                 "recognised; ignored")
                else:
                    vetoers.append(member)
        entries.append(PageVeto(
            line=row.line, date=date, draft_text=draft_text,
            symbols=tuple(_SYMBOL.findall(draft_text)),
            meeting_record=" / ".join(cell_text(row.cells[2], keep_breaks=True).split("\n")),
            agenda_item=cell_text(row.cells[3]), vetoers=tuple(vetoers)))
    return entries, notes

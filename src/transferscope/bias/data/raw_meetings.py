"""Parse the yearly "meetings & outcomes" tables: adopted resolutions with their tallies, and
drafts that were vetoed or failed, each with the meeting, date and topic of the row.

Tallies are ``yes-no-abstain``; "adopted unanimously" (early years) and "without vote" are kept
as written. Rows that cannot be read are reported with file and line, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from transferscope.bias.data.html_table import HtmlRow, cell_text, table_rows
from transferscope.bias.data.members import canonical_member

_FILE = re.compile(r"scact(\d{4})(?:_covid)?_table_en\.html$")
# the 2011 table writes resolution 1969 as "S/RES/1969 (2011 )": spaces inside the brackets
_RES = re.compile(r"S/RES/(\d+)\s*\(\s*(\d{4})\s*\)")
_TALLY = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*-\s*(\d+)")
_UNANIMOUS = re.compile(r"^\s*adopted unanimously", re.IGNORECASE)
_NO_VOTE = re.compile(r"^\s*without (?:a )?vote", re.IGNORECASE)
# "S/2014/189" may be written "( S/2014/189 )" (2014) and carry corrigenda ("S/9696 and Corr.1
# and Corr.2", 1970): both are read, the symbol kept without them
_VETO = re.compile(
    r"(?:Draft resolution\s+)?\(?\s*(S/[^\s,()]+(?:\s*\([A-Za-z ]+\))?)\s*\)?"
    r"(?:\s+(?:and|&)\s+(?:Corr|Add)\.\s*\d+)*\s+vetoed by\s+"
    r"((?:the\s+)?[A-Za-z ,]+?)(?:\s+(\d+)\s*-\s*(\d+)\s*-\s*(\d+)|(?=\s*Draft)|(?=\s*S/)|\s*$)",
    re.IGNORECASE)
_FAILED = re.compile(r"(?:Draft resolution\s+)?(S/[^\s,]+)\s+not adopted\s+(\d+)\s*-\s*(\d+)\s*-"
                     r"\s*(\d+)", re.IGNORECASE)
_DAY_MONTH = re.compile(r"(\d{1,2})(?:\s*-\s*\d{1,2})?\s+([A-Za-z]+)")


@dataclass(kw_only=True, frozen=True)
class Tally:
    yes: int | None
    no: int | None
    abstain: int | None
    text: str  # as written: "15-0-0", "adopted unanimously", "without vote", or ""


@dataclass(kw_only=True, frozen=True)
class MeetingOutcome:
    kind: str  # "adopted", "vetoed", "not adopted"
    symbol: str  # resolution "S/RES/2397 (2017)" or draft symbol
    number: int | None  # resolution number (adopted only)
    tally: Tally
    vetoers: tuple[str, ...]
    meeting_record: str
    date: dt.date
    topic: str
    source: str  # file:line


@dataclass(kw_only=True, frozen=True)
class MeetingRow:
    """One agenda item of one meeting, whatever its outcome: the wording every draft is
    described by (vetoed and adopted alike)."""

    meeting_record: str
    date: dt.date
    topic: str
    source: str  # file:line


@dataclass(kw_only=True)
class MeetingParse:
    outcomes: list[MeetingOutcome] = field(default_factory=list)
    rows: list[MeetingRow] = field(default_factory=list)
    meetings: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)


def _tally_after(text: str) -> Tally:
    if m := _TALLY.match(text):
        yes, no, abstain = (int(g) for g in m.groups())
        return Tally(yes=yes, no=no, abstain=abstain, text=f"{yes}-{no}-{abstain}")
    if _UNANIMOUS.match(text):
        return Tally(yes=None, no=None, abstain=None, text="adopted unanimously")
    if _NO_VOTE.match(text):
        return Tally(yes=None, no=None, abstain=None, text="without vote")
    return Tally(yes=None, no=None, abstain=None, text="")


def _date(text: str, year: int) -> dt.date | None:
    m = _DAY_MONTH.search(text)
    if not m:
        return None
    try:
        return dt.datetime.strptime(f"{m.group(1)} {m.group(2)[:3]} {year}", "%d %b %Y").date()
    except ValueError:
        return None


def parse_outcome_cell(text: str) -> list[tuple[str, str, int | None, Tally, tuple[str, ...]]]:
    """(kind, symbol, resolution number, tally, vetoers) for each outcome written in a cell."""
    found: list[tuple[str, str, int | None, Tally, tuple[str, ...]]] = []
    for m in _RES.finditer(text):
        number, year = int(m.group(1)), int(m.group(2))
        found.append(("adopted", f"S/RES/{number} ({year})", number, _tally_after(text[m.end():]),
                      ()))
    for m in _VETO.finditer(text):
        names = re.split(r",|\band\b", re.sub(r"^the\s+", "", m.group(2).strip(), flags=re.IGNORECASE))
        vetoers = tuple(v for v in (canonical_member(n) for n in names if n.strip()) if v)
        if m.group(3):
            yes, no, abstain = int(m.group(3)), int(m.group(4)), int(m.group(5))
            tally = Tally(yes=yes, no=no, abstain=abstain, text=f"{yes}-{no}-{abstain}")
        else:
            tally = Tally(yes=None, no=None, abstain=None, text="")
        found.append(("vetoed", " ".join(m.group(1).split()), None, tally, vetoers))
    for m in _FAILED.finditer(text):
        yes, no, abstain = int(m.group(2)), int(m.group(3)), int(m.group(4))
        found.append(("not adopted", m.group(1), None, Tally(yes=yes, no=no, abstain=abstain,
                                                             text=f"{yes}-{no}-{abstain}"), ()))
    return found


def _split_merged_rows(cells: list[str], year: int) -> list[list[str]]:
    """Cut a run of cells where ``</tr><tr>`` was lost at each "meeting record, date" pair."""
    starts = [i for i in range(len(cells) - 1)
              if re.match(r"^(S/PV\.|--$)", cells[i]) and _date(cells[i + 1], year) is not None]
    if not starts or starts[0] != 0:
        return [cells]
    return [cells[a:b] for a, b in zip(starts, [*starts[1:], len(cells)], strict=True)]


def _column_roles(header: HtmlRow) -> dict[str, int]:
    names = [cell_text(c).lower() for c in header.cells]
    roles = {"meeting": 0, "date": 1, "topic": None, "outcome": len(names) - 1}
    for i, name in enumerate(names):
        if name.startswith("topic"):
            roles["topic"] = i
    if roles["topic"] is None:
        roles["topic"] = len(names) - 2
    return roles  # type: ignore[return-value]


def parse_meeting_file(path: Path, result: MeetingParse) -> None:
    """Add one year's outcomes to ``result``; unreadable rows go to ``result.problems``."""
    m = _FILE.search(path.name)
    if not m:
        result.problems.append(f"{path}: file name does not match scactYYYY[_covid]_table_en.html;"
                               " skipped")
        return
    year = int(m.group(1))
    rows = table_rows(path.read_text(encoding="utf-8", errors="replace"))
    headers = [r for r in rows if r.is_header and len(r.cells) >= 4]
    if not headers:
        result.problems.append(f"{path}: no table header with Meeting/Date/Topic/Outcome "
                               "columns; file skipped")
        return
    roles = _column_roles(headers[-1])
    width = len(headers[-1].cells)
    result.files += 1
    previous: tuple[str, dt.date] | None = None
    for row in rows:
        if row.is_header or not row.cells:
            continue
        cells = [cell_text(c) for c in row.cells]
        while len(cells) > width and cells[-1] in ("", "--"):  # a stray empty trailing cell
            cells.pop()
        continuation = len(cells) == 2 or (len(cells) == width and not cells[roles["date"]]
                                           and not cells[roles["meeting"]])
        if continuation and previous is not None:  # another agenda item of the same meeting
            meeting, date = previous
            _add_outcomes(result, cells[-1], meeting, date, cells[-2], f"{path}:{row.line}")
            continue
        groups = _split_merged_rows(cells, year) if len(cells) > width else [cells]
        for group in groups:
            if len(group) < 4:
                result.problems.append(f"{path}:{row.line}: row with {len(group)} cells (expected "
                                       f"{width}): {' | '.join(group)[:90]!r}; skipped")
                continue
            if len(group) != width:  # a cell missing: meeting, date first; topic, outcome last
                result.problems.append(f"{path}:{row.line}: meeting {group[0]!r} has "
                                       f"{len(group)} cells (expected {width}); read as meeting, "
                                       "date, ..., topic, outcome")
                group = [group[0], group[1], *[""] * (width - 4), group[-2], group[-1]]
            read = _date(group[roles["date"]], year)
            if read is None:
                result.problems.append(f"{path}:{row.line}: date {group[roles['date']]!r} not "
                                       "readable; row skipped")
                continue
            date = read
            meeting = group[roles["meeting"]]
            meeting = "" if meeting in ("--", "") else " / ".join(meeting.split(" S/PV"))
            meeting = meeting.replace("/ .", "/ S/PV.")
            previous = (meeting, date)
            result.meetings += 1
            _add_outcomes(result, group[roles["outcome"]], meeting, date, group[roles["topic"]],
                          f"{path}:{row.line}")


def _add_outcomes(result: MeetingParse, outcome: str, meeting: str, date: dt.date, topic: str,
                  source: str) -> None:
    result.rows.append(MeetingRow(meeting_record=meeting, date=date, topic=topic, source=source))
    for kind, symbol, number, tally, vetoers in parse_outcome_cell(outcome):
        result.outcomes.append(MeetingOutcome(kind=kind, symbol=symbol, number=number, tally=tally,
                                              vetoers=vetoers, meeting_record=meeting, date=date,
                                              topic=topic, source=source))
        if kind == "adopted" and not tally.text:
            result.problems.append(f"{source}: {symbol}: no tally written; votes left unknown")


def parse_meeting_tables(folder: Path) -> MeetingParse:
    """All ``scact*_table_en.html`` files of ``folder``."""
    result = MeetingParse()
    for path in sorted(folder.glob("scact*_table_en.html")):
        parse_meeting_file(path, result)
    return result

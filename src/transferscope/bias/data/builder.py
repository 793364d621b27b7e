"""Build the compact UNSC record from the raw public files (the folder described in its README).

``build_record(raw_dir)`` parses the veto CSV (strictly: a malformed row is an error naming
file and line), cross-checks it against the library's veto list page, reads every yearly meeting
table for adopted resolutions, vetoed and failed drafts with their tallies, attaches the English
resolution texts, and derives the P5 votes. What it could not parse or reconcile is returned in
the build report (with file and line), never silently dropped or guessed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from transferscope.bias.data.raw_meetings import MeetingOutcome, parse_meeting_tables
from transferscope.bias.data.raw_texts import parse_resolution_texts
from transferscope.bias.data.raw_vetoes import PageVeto, VetoRow, parse_veto_csv, parse_veto_page
from transferscope.bias.data.record import (
    DRAFT_COLUMNS,
    SHIPPED_DIR,
    Record,
    derive_p5_votes,
    save_record,
)
from transferscope.core.errors import InputError

VETO_CSV = Path("vetoes/unsc_vetoes_1946_sept2022.csv")
VETO_PAGE = Path("vetoes/dhl_veto_list.html")
MEETINGS = Path("meetings")
TEXTS = Path("resolutions_en")
# The meeting tables date some vetoes by the meeting's first day, the veto list by the vote.
MATCH_DAYS = 15
_FIRST_SYMBOL = re.compile(r"S/[A-Za-z0-9.]+(?:/[A-Za-z0-9.]+)*")


def base_symbol(text: str) -> str:
    """The first document symbol written in ``text`` ("S/3713/Rev.1 (as amended)" -> S/3713/Rev.1)."""
    m = _FIRST_SYMBOL.search(text)
    return m.group(0).rstrip(".") if m else text.strip()


def symbol_stem(text: str) -> str:
    """The symbol without revision/addendum suffixes, for matching lists that cite either."""
    return re.sub(r"/(?:Rev|Add|Corr)\.\d+.*$", "", base_symbol(text))


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


def reconcile_with_page(rows: list[VetoRow], page: list[PageVeto]) -> tuple[dict[int, PageVeto],
                                                                              list[str]]:
    """Pair each CSV row with one page entry; describe every difference between the two lists."""
    unused = list(range(len(page)))
    pairs: dict[int, PageVeto] = {}
    notes: list[str] = []

    def score(row: VetoRow, entry: PageVeto) -> tuple[int, int, int]:
        same_symbol = base_symbol(row.draft) in entry.symbols
        return (entry.date == row.date, same_symbol, len(_words(row.agenda_item)
                                                        & _words(entry.agenda_item)))

    for i, row in enumerate(rows):
        candidates = [j for j in unused if page[j].date == row.date
                      or base_symbol(row.draft) in page[j].symbols]
        if not candidates:
            continue
        best = max(candidates, key=lambda j: score(row, page[j]))
        pairs[i] = page[best]
        unused.remove(best)
    for i, row in enumerate(rows):
        entry = pairs.get(i)
        where = f"{VETO_CSV}:{row.line}"
        if entry is None:
            notes.append(f"{where} {row.draft} ({row.date}) is not on the library page "
                         f"(the page ends on {max(p.date for p in page)})")
            continue
        if entry.date != row.date:
            notes.append(f"{where} {row.draft}: CSV date {row.date}, page date {entry.date} "
                         f"({VETO_PAGE}:{entry.line}); CSV date kept")
        if base_symbol(row.draft) not in entry.symbols:
            notes.append(f"{where}: CSV draft {row.draft!r}, page draft {entry.draft_text!r} "
                         f"({VETO_PAGE}:{entry.line}); both kept (draft_symbol, page_draft)")
        if set(entry.vetoers) != set(row.vetoers):
            notes.append(f"{where} {row.draft}: CSV vetoers {list(row.vetoers)}, page vetoers "
                         f"{list(entry.vetoers)} ({VETO_PAGE}:{entry.line}); only members both "
                         "lists name are recorded as against, the rest unknown")
    for j in unused:
        entry = page[j]
        notes.append(f"{VETO_PAGE}:{entry.line} {entry.draft_text} ({entry.date}) has no row in "
                     "the CSV")
    return pairs, notes


def _veto_drafts(rows: list[VetoRow], pairs: dict[int, PageVeto],
                 meeting_vetoes: list[MeetingOutcome]) -> tuple[list[dict], list[str]]:
    """One draft row per CSV row, with a unique id and the tally from the meeting table."""
    counts = Counter(r.draft for r in rows)
    seen: Counter[str] = Counter()
    by_stem: dict[str, list[MeetingOutcome]] = defaultdict(list)
    for o in meeting_vetoes:
        by_stem[symbol_stem(o.symbol)].append(o)
    used: set[int] = set()
    out, notes = [], []
    for i, row in enumerate(rows):
        seen[row.draft] += 1
        draft_id = row.draft if counts[row.draft] == 1 else f"{row.draft} #{seen[row.draft]}"
        entry = pairs.get(i)
        agreed = [m for m in row.vetoers if entry is None or m in entry.vetoers]
        tally = None
        for o in sorted(by_stem.get(symbol_stem(row.draft), []),
                        key=lambda o: abs((o.date - row.date).days)):
            named = re.search(r"\(([A-Za-z]+)\)", o.symbol)
            if (id(o) in used or abs((o.date - row.date).days) > MATCH_DAYS
                    or (named and named.group(1).lower() not in row.agenda_item.lower())):
                continue
            tally = o.tally
            used.add(id(o))
            break
        sources = [f"{VETO_CSV}:{row.line}"]
        if entry is not None:
            sources.append(f"{VETO_PAGE}:{entry.line}")
        if tally is not None and tally.text:
            sources.append(f"meetings tally {tally.text}")
        out.append({
            "draft_id": draft_id, "draft_symbol": row.draft, "date": pd.Timestamp(row.date),
            "year": row.date.year, "agenda_item": row.agenda_item,
            "meeting_record": row.meeting_record, "outcome": "vetoed", "resolution": None,
            "resolution_number": None,
            "tally_yes": tally.yes if tally else None, "tally_no": tally.no if tally else None,
            "tally_abstain": tally.abstain if tally else None,
            "tally_text": tally.text if tally else "", "vetoed_by": "; ".join(agreed),
            "crisis_topic": row.crisis_topic, "region": row.region, "source": "; ".join(sources),
            "page_draft": entry.draft_text if entry else None,
        })
    for outcomes in by_stem.values():
        for o in outcomes:
            if id(o) not in used:
                notes.append(f"{o.source}: meeting table lists {o.symbol} vetoed by "
                             f"{list(o.vetoers)} ({o.date}); no matching CSV row, tally not used")
    return out, notes


def build_record(raw_dir: str | Path) -> Record:
    """Parse the raw folder into a :class:`Record` whose ``build`` dict reports counts and problems."""
    raw = Path(raw_dir)
    for part in (VETO_CSV, VETO_PAGE, MEETINGS, TEXTS):
        if not (raw / part).exists():
            raise InputError(f"raw UNSC folder {raw}: {part} is missing: expected the layout of "
                             "the raw records' README (vetoes/, meetings/, resolutions_en/)")
    vetoes = parse_veto_csv(raw / VETO_CSV)
    page, page_notes = parse_veto_page(raw / VETO_PAGE)
    meetings = parse_meeting_tables(raw / MEETINGS)
    texts, text_problems = parse_resolution_texts(raw / TEXTS)
    pairs, reconcile_notes = reconcile_with_page(vetoes.rows, page)
    veto_rows, meeting_notes = _veto_drafts(
        vetoes.rows, pairs, [o for o in meetings.outcomes if o.kind == "vetoed"])

    draft_of_text = {t.number: t.draft_symbol for t in texts}
    adopted: dict[int, MeetingOutcome] = {}
    duplicate_notes = []
    for o in meetings.outcomes:
        if o.kind != "adopted":
            continue
        if o.number in adopted:
            duplicate_notes.append(f"{o.source}: {o.symbol} listed again (first at "
                                   f"{adopted[o.number].source}); first kept")
            continue
        adopted[o.number] = o
    rows = list(veto_rows)
    for number in sorted(adopted):
        o = adopted[number]
        draft_symbol = draft_of_text.get(number)
        rows.append({
            "draft_id": o.symbol, "draft_symbol": draft_symbol, "date": pd.Timestamp(o.date),
            "year": o.date.year, "agenda_item": o.topic, "meeting_record": o.meeting_record,
            "outcome": "adopted", "resolution": o.symbol, "resolution_number": number,
            "tally_yes": o.tally.yes, "tally_no": o.tally.no, "tally_abstain": o.tally.abstain,
            "tally_text": o.tally.text, "vetoed_by": "", "crisis_topic": None, "region": None,
            "source": o.source, "page_draft": None})
    known = {r["draft_id"] for r in rows}
    for o in meetings.outcomes:
        if o.kind == "not adopted" and o.symbol not in known:
            known.add(o.symbol)
            rows.append({
                "draft_id": o.symbol, "draft_symbol": o.symbol, "date": pd.Timestamp(o.date),
                "year": o.date.year, "agenda_item": o.topic, "meeting_record": o.meeting_record,
                "outcome": "not adopted", "resolution": None, "resolution_number": None,
                "tally_yes": o.tally.yes, "tally_no": o.tally.no, "tally_abstain": o.tally.abstain,
                "tally_text": o.tally.text, "vetoed_by": "", "crisis_topic": None, "region": None,
                "source": o.source, "page_draft": None})
    drafts = pd.DataFrame(rows, columns=[*DRAFT_COLUMNS, "page_draft"])
    for col in ("resolution_number", "tally_yes", "tally_no", "tally_abstain"):
        drafts[col] = drafts[col].astype("Int64")
    drafts["date"] = pd.to_datetime(drafts["date"]).astype("datetime64[ns]")
    drafts = drafts.sort_values(["date", "draft_id"], kind="stable").reset_index(drop=True)
    texts_df = pd.DataFrame([{"resolution": t.resolution, "number": t.number, "year": t.year,
                              "draft_symbol": t.draft_symbol, "text": t.text} for t in texts])
    max_number = max(adopted) if adopted else 0
    missing = [n for n in range(1, max_number + 1) if n not in adopted]
    p5 = derive_p5_votes(drafts)
    build = {
        "raw_dir": str(raw),
        "counts": {
            "veto_csv_rows": len(vetoes.rows),
            "veto_csv_physical_lines": vetoes.physical_lines,
            "veto_page_entries": len(page),
            "meeting_files": meetings.files, "meetings": meetings.meetings,
            "drafts": len(drafts),
            "drafts_by_outcome": drafts["outcome"].value_counts().to_dict(),
            "resolutions_adopted": len(adopted),
            "resolution_numbers_missing_from_tables": len(missing),
            "texts": len(texts),
            "p5_votes_by_value": p5["vote"].value_counts().to_dict(),
        },
        "missing_resolution_numbers": missing,
        "veto_csv_notes": vetoes.notes,
        "reconciliation": reconcile_notes,
        "problems": [*page_notes, *meetings.problems, *meeting_notes, *duplicate_notes,
                     *text_problems],
    }
    prefix = f"{raw}/"
    drafts["source"] = drafts["source"].str.replace(prefix, "", regex=False)
    p5["provenance"] = p5["provenance"].str.replace(prefix, "", regex=False)
    for key in ("veto_csv_notes", "reconciliation", "problems"):
        build[key] = [note.replace(prefix, "") for note in build[key]]
    return Record(drafts=drafts, p5_votes=p5, texts=texts_df, build=build)


def build_data(raw_dir: str | Path, out: str | Path | None = None) -> tuple[Record, Path]:
    """``bias build-data``: build the record from ``raw_dir`` and save it to ``out`` (default:
    the package's shipped copy, rebuilt in place); the record and where it went."""
    record = build_record(raw_dir)
    target = Path(out) if out is not None else SHIPPED_DIR
    save_record(record, target)
    return record, target

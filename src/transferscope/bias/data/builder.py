"""Build the compact UNSC record from the raw public files (the folder described in its README).

``build_record(raw_dir)`` parses the veto CSV (strictly: a malformed row is an error naming
file and line), cross-checks it against the library's veto list page, reads every yearly meeting
table for adopted resolutions, vetoed and failed drafts with their tallies, attaches the English
resolution texts, and derives the P5 votes. What it could not parse or reconcile is returned in
the build report (with file and line), never silently dropped or guessed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.data.members import council_size
from transferscope.bias.data.raw_meetings import MeetingOutcome, MeetingRow, parse_meeting_tables
from transferscope.bias.data.raw_texts import parse_resolution_texts
from transferscope.bias.data.raw_vetoes import PageVeto, VetoRow, parse_veto_csv, parse_veto_page
from transferscope.bias.data.record import (
    DRAFT_COLUMNS,
    SHIPPED_DIR,
    Record,
    derive_p5_votes,
    load_record,
    save_record,
)
from transferscope.core.errors import InputError
from transferscope.core.outdir import force_requested, staged_folder

VETO_CSV = Path("vetoes/unsc_vetoes_1946_sept2022.csv")
VETO_PAGE = Path("vetoes/dhl_veto_list.html")
MEETINGS = Path("meetings")
TEXTS = Path("resolutions_en")
# The meeting tables date some vetoes by the meeting's first day, the veto list by the vote.
MATCH_DAYS = 15
# Kept beside the drafts for provenance: the veto page's draft cell, the agenda as the source
# wrote it (before clean_agenda), where that wording comes from, and the veto CSV's own wording.
PROVENANCE_COLUMNS = ("page_draft", "agenda_as_written", "agenda_source", "veto_csv_agenda")
_DOC_SYMBOL = re.compile(r"\bS/\d[A-Za-z0-9./]*(?:\s*(?:&|and)\s*Add\.\d+)*")
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
                         f"({VETO_PAGE}:{entry.line}); CSV date kept unless the meeting table "
                         "sides with the page")
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


def _first_meeting(record: str) -> str:
    """The first meeting document of a "S/PV.2939 / S/PV.2940"-style cell, annotations cut."""
    return re.sub(r"\s*\(.*$", "", str(record or "").split(" / ")[0]).strip()


def clean_agenda(text: str) -> str:
    """One wording rule for every draft: the agenda item without the parenthetical insertions
    the lists add (document symbols, dates, editors' notes such as "(concerning the United
    States recognition of Jerusalem as Israeli capital)" or "(U-2 Incident)") and without bare
    document symbols ("... from United States of America S/13735", the vetoed draft's own
    symbol), which appear for some drafts only and can give the outcome away."""
    out = text
    while (stripped := re.sub(r"\s*\([^()]*\)", "", out)) != out:
        out = stripped
    out = _DOC_SYMBOL.sub(" ", out.replace("(", " ").replace(")", " "))
    return " ".join(out.split()).strip(" ,;:-")


def tally_problem(yes: int | None, no: int | None, abstain: int | None, vetoers: int,
                  members: int) -> str | None:
    """Why a vetoed draft's tally cannot be right (None when it can): every veto is a negative
    vote, and no more members can vote than sit on the Council."""
    if yes is None or no is None or abstain is None:
        return None
    if no < vetoers:
        return f"{no} negative vote(s) for {vetoers} vetoing member(s)"
    if yes + no + abstain > members:
        return f"{yes + no + abstain} votes cast by a Council of {members}"
    return None


def _meeting_topic(rows_by_meeting: dict[str, list[MeetingRow]], meeting: str, date: dt.date
                   ) -> MeetingRow | None:
    """The meeting table's row for ``meeting`` nearest to ``date`` (within MATCH_DAYS)."""
    near = [r for r in rows_by_meeting.get(meeting, []) if abs((r.date - date).days) <= MATCH_DAYS]
    return min(near, key=lambda r: abs((r.date - date).days)) if near else None


def _veto_drafts(rows: list[VetoRow], pairs: dict[int, PageVeto],
                 meeting_vetoes: list[MeetingOutcome], meeting_rows: list[MeetingRow],
                 meeting_failures: list[MeetingOutcome]
                 ) -> tuple[list[dict], list[str]]:
    """One draft row per CSV row, with a unique id, the tally from the meeting table, and the
    meeting table's wording of its agenda item (the wording adopted drafts get)."""
    counts = Counter(r.draft for r in rows)
    seen: Counter[str] = Counter()
    by_stem: dict[str, list[MeetingOutcome]] = defaultdict(list)
    for o in meeting_vetoes:
        by_stem[symbol_stem(o.symbol)].append(o)
    # a veto the table writes as "not adopted" (S/5134, 1962: "not adopted 7-2-2"): its row
    # gives the tally when no row says "vetoed"; tried after the vetoed rows
    failed: dict[str, list[MeetingOutcome]] = defaultdict(list)
    for o in meeting_failures:
        failed[symbol_stem(o.symbol)].append(o)
    rows_by_meeting: dict[str, list[MeetingRow]] = defaultdict(list)
    for r in meeting_rows:
        rows_by_meeting[_first_meeting(r.meeting_record)].append(r)
    used: set[int] = set()
    out, notes = [], []
    for i, row in enumerate(rows):
        seen[row.draft] += 1
        draft_id = row.draft if counts[row.draft] == 1 else f"{row.draft} #{seen[row.draft]}"
        entry = pairs.get(i)
        agreed = [m for m in row.vetoers if entry is None or m in entry.vetoers]
        where = f"{VETO_CSV}:{row.line}"
        meeting = _first_meeting(row.meeting_record)
        outcome = None
        stem = symbol_stem(row.draft)
        candidates = sorted(by_stem.get(stem, []), key=lambda o: abs((o.date - row.date).days))
        candidates += [o for o in failed.get(stem, [])
                       if bool(meeting) and _first_meeting(o.meeting_record) == meeting]
        for o in candidates:
            named = re.search(r"\(([A-Za-z]+)\)", o.symbol)
            same_meeting = bool(meeting) and _first_meeting(o.meeting_record) == meeting
            if (id(o) in used or (abs((o.date - row.date).days) > MATCH_DAYS and not same_meeting)
                    or (named and named.group(1).lower() not in row.agenda_item.lower())):
                continue
            outcome = o
            used.add(id(o))
            break
        date = row.date
        if (outcome is not None and entry is not None and entry.date != row.date
                and abs((entry.date - outcome.date).days) <= 1):
            date = outcome.date  # two sources against one: the CSV's date is the odd one out
            notes.append(f"{where} {row.draft}: CSV date {row.date} contradicted by the library "
                         f"page ({entry.date}, {VETO_PAGE}:{entry.line}) and the meeting table "
                         f"({outcome.date}, {outcome.source}); meeting-table date used")
        tally = outcome.tally if outcome is not None else None
        if tally is not None and outcome is not None and (why := tally_problem(tally.yes, tally.no,
                                                                               tally.abstain,
                                                       len(agreed), council_size(date))):
            notes.append(f"{outcome.source}: {row.draft} tally {tally.text} is impossible "
                         f"({why}); tally not used, votes left as the veto lists give them")
            tally = None
        topic = outcome if outcome is not None else _meeting_topic(rows_by_meeting, meeting, date)
        if topic is not None:
            agenda, agenda_source = topic.topic, topic.source
        else:
            agenda, agenda_source = row.agenda_item, where
            notes.append(f"{where} {row.draft}: meeting {meeting or '?'} ({date}) not in the "
                         "meeting tables; agenda worded as the veto CSV writes it")
        sources = [where]
        if entry is not None:
            sources.append(f"{VETO_PAGE}:{entry.line}")
        if tally is not None and tally.text:
            sources.append(f"meetings tally {tally.text}")
        out.append({
            "draft_id": draft_id, "draft_symbol": row.draft, "date": pd.Timestamp(date),
            "year": date.year, "agenda_item": clean_agenda(agenda),
            "meeting_record": row.meeting_record, "outcome": "vetoed", "resolution": None,
            "resolution_number": None,
            "tally_yes": tally.yes if tally else None, "tally_no": tally.no if tally else None,
            "tally_abstain": tally.abstain if tally else None,
            "tally_text": tally.text if tally else "", "vetoed_by": "; ".join(agreed),
            "crisis_topic": row.crisis_topic, "region": row.region, "source": "; ".join(sources),
            "page_draft": entry.draft_text if entry else None, "agenda_as_written": agenda,
            "agenda_source": agenda_source, "veto_csv_agenda": row.agenda_item,
        })
    for outcomes in by_stem.values():
        for o in outcomes:
            if id(o) not in used:
                notes.append(f"{o.source}: meeting table lists {o.symbol} vetoed by "
                             f"{list(o.vetoers)} ({o.date}); no matching CSV row, tally not used")
    return out, notes


def number_resolutions(outcomes: list[MeetingOutcome]) -> tuple[dict[int, MeetingOutcome],
                                                                  list[str]]:
    """Resolution number -> its adoption. A row repeated word for word is kept once. When two
    different rows carry one number, the row whose date lies between its numbered neighbours'
    keeps it, and the other is renumbered to the one missing number whose neighbours' dates
    enclose its date (the 1990 table labels resolution 666 of 13 September "663", the 1991
    table resolution 695 of 30 May "701"); a row that fits no slot is reported, not kept."""
    groups: dict[int, list[MeetingOutcome]] = defaultdict(list)
    for o in outcomes:
        if o.kind == "adopted" and o.number is not None:
            groups[o.number].append(o)
    notes: list[str] = []
    kept: dict[int, MeetingOutcome] = {}
    clashes: dict[int, list[MeetingOutcome]] = {}
    for number, group in groups.items():
        first: dict[tuple, MeetingOutcome] = {}
        for o in group:
            key = (o.date, o.meeting_record, o.topic, o.tally)
            if key in first:
                notes.append(f"{o.source}: {o.symbol} repeats {first[key].source} word for "
                             "word; kept once")
            else:
                first[key] = o
        distinct = list(first.values())
        if len(distinct) == 1:
            kept[number] = distinct[0]
        else:
            clashes[number] = distinct
    numbers = sorted(kept)

    def fits(o: MeetingOutcome, number: int) -> bool:
        below = [n for n in numbers if n < number]
        above = [n for n in numbers if n > number]
        return ((not below or kept[below[-1]].date <= o.date)
                and (not above or o.date <= kept[above[0]].date))

    missing = [n for n in range(1, max(groups, default=0) + 1) if n not in groups]
    for number, group in sorted(clashes.items()):
        owners = [o for o in group if fits(o, number)]
        owner = owners[0] if len(owners) == 1 else None
        if owner is not None:
            kept[number] = owner
        for o in group:
            if o is owner:
                continue
            slots = [n for n in missing if fits(o, n) and n not in kept]
            if owner is not None and len(slots) == 1:
                new = slots[0]
                kept[new] = dataclasses.replace(o, number=new,
                                                symbol=f"S/RES/{new} ({o.date.year})")
                notes.append(f"{o.source}: labelled {o.symbol}, but {owner.source} holds that "
                             f"number in sequence and this row ({o.date}) fits only the missing "
                             f"number {new}; recorded as S/RES/{new} ({o.date.year})")
            else:
                notes.append(f"{o.source}: {o.symbol} ({o.date}) also at "
                             f"{', '.join(g.source for g in group if g is not o)}; no single "
                             "row fits the number's place in the sequence; not kept")
    return dict(sorted(kept.items())), notes


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
        vetoes.rows, pairs, [o for o in meetings.outcomes if o.kind == "vetoed"], meetings.rows,
        [o for o in meetings.outcomes if o.kind == "not adopted"])

    draft_of_text = {t.number: t.draft_symbol for t in texts}
    adopted, duplicate_notes = number_resolutions(meetings.outcomes)
    rows = list(veto_rows)
    for number in sorted(adopted):
        o = adopted[number]
        draft_symbol = draft_of_text.get(number)
        rows.append({
            "draft_id": o.symbol, "draft_symbol": draft_symbol, "date": pd.Timestamp(o.date),
            "year": o.date.year, "agenda_item": clean_agenda(o.topic),
            "meeting_record": o.meeting_record,
            "outcome": "adopted", "resolution": o.symbol, "resolution_number": number,
            "tally_yes": o.tally.yes, "tally_no": o.tally.no, "tally_abstain": o.tally.abstain,
            "tally_text": o.tally.text, "vetoed_by": "", "crisis_topic": None, "region": None,
            "source": o.source, "page_draft": None, "agenda_as_written": o.topic,
            "agenda_source": o.source, "veto_csv_agenda": None})
    known = {r["draft_id"] for r in rows}
    for o in meetings.outcomes:
        if o.kind == "not adopted" and o.symbol not in known:
            known.add(o.symbol)
            rows.append({
                "draft_id": o.symbol, "draft_symbol": o.symbol, "date": pd.Timestamp(o.date),
                "year": o.date.year, "agenda_item": clean_agenda(o.topic),
                "meeting_record": o.meeting_record,
                "outcome": "not adopted", "resolution": None, "resolution_number": None,
                "tally_yes": o.tally.yes, "tally_no": o.tally.no, "tally_abstain": o.tally.abstain,
                "tally_text": o.tally.text, "vetoed_by": "", "crisis_topic": None, "region": None,
                "source": o.source, "page_draft": None, "agenda_as_written": o.topic,
                "agenda_source": o.source, "veto_csv_agenda": None})
    drafts = pd.DataFrame(rows, columns=[*DRAFT_COLUMNS, *PROVENANCE_COLUMNS])
    for col in ("resolution_number", "tally_yes", "tally_no", "tally_abstain"):
        drafts[col] = drafts[col].astype("Int64")
    drafts["date"] = pd.to_datetime(drafts["date"]).astype("datetime64[ns]")
    drafts = drafts.sort_values(["date", "draft_id"], kind="stable").reset_index(drop=True)
    texts_df = pd.DataFrame([{"resolution": t.resolution, "number": t.number, "year": t.year,
                              "draft_symbol": t.draft_symbol, "text": t.text} for t in texts])
    max_number = max(adopted) if adopted else 0
    missing = [n for n in range(1, max_number + 1) if n not in adopted]
    p5 = derive_p5_votes(drafts)
    build: dict[str, Any] = {
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
    for col in ("source", "agenda_source"):
        drafts[col] = drafts[col].str.replace(prefix, "", regex=False)
    p5["provenance"] = p5["provenance"].str.replace(prefix, "", regex=False)
    for key in ("veto_csv_notes", "reconciliation", "problems"):
        build[key] = [note.replace(prefix, "") for note in build[key]]
    return Record(drafts=drafts, p5_votes=p5, texts=texts_df, build=build)


# The counts a build must not lose against the record it replaces (see check_build).
KEPT_COUNTS = ("veto_csv_rows", "meeting_files", "meetings", "drafts", "resolutions_adopted",
               "texts")


def check_build(record: Record, raw_dir: str | Path, replaces: Record | None = None,
                force: bool = False) -> None:
    """Refuse an empty build (no drafts, vetoes, meetings or P5 votes) and, when it would
    replace ``replaces`` (the installed record), a partial one (any of ``KEPT_COUNTS`` lower
    than the installed record's, unless ``force``): one line with the counts."""
    counts = record.build.get("counts", {})
    empty = [k for k in ("veto_csv_rows", "meetings", "drafts") if not counts.get(k)]
    if empty or record.p5_votes.empty:
        shown = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("veto_csv_rows", "meetings",
                                                              "drafts", "texts"))
        raise InputError(f"--raw {raw_dir}: the build is empty ({shown}): expected the raw "
                         "UNSC files (vetoes/, meetings/, resolutions_en/) with their rows; "
                         "nothing was written")
    if replaces is None or force:
        return
    before = replaces.build.get("counts", {})
    lost = [f"{k} {counts.get(k, 0):,} (installed {before[k]:,})" for k in KEPT_COUNTS
            if isinstance(before.get(k), int) and counts.get(k, 0) < before[k]]
    if lost:
        raise InputError(f"--raw {raw_dir}: the build is partial: {'; '.join(lost)}: expected "
                         "at least the installed record's counts; the installed record was not "
                         "replaced (write this one elsewhere with --out, or replace it anyway "
                         "with `transferscope --force bias build-data ...`)")


def _installed(folder: Path) -> Record | None:
    """The installed record, or None where there is none that loads (nothing to protect)."""
    try:
        return load_record(folder)
    except InputError:
        return None


def build_data(raw_dir: str | Path, out: str | Path | None = None, *,
               force: bool | None = None) -> tuple[Record, Path]:
    """``bias build-data``: build the record from ``raw_dir`` and save it to ``out`` (default:
    the package's installed copy). The record is checked (:func:`check_build`), written into a
    new folder beside the target, read back, and only then swapped in for the target in one
    step: an empty, partial (``force`` defaults to ``--force``) or failed build leaves the old
    record as it was. Returns the record and where it went. ``raw_dir`` is checked and ``out``
    (when given) claimed first (:mod:`~transferscope.bias.preflight`)."""
    preflight.build_data(Path(raw_dir), Path(out) if out is not None else None)
    record = build_record(raw_dir)
    target = Path(out) if out is not None else SHIPPED_DIR
    installed = _installed(target) if out is None else None
    check_build(record, raw_dir, installed, force_requested() if force is None else force)
    with staged_folder(target) as staging:
        save_record(record, staging)
        load_record(staging)  # what was written reads back under the record's checks
    return record, target

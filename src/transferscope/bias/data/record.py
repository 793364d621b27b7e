"""The UNSC record the bias tests are built on: drafts, P5 votes with provenance, texts.

``load_record()`` returns the compact record shipped with the package (built from public
sources by :mod:`transferscope.bias.data.builder`); ``load_record(folder)`` reads one a user
rebuilt. P5 votes are derived from the drafts by :func:`derive_p5_votes`, a pure function whose
rules are the whole of what we assert: a unanimous adoption puts every P5 member in favour, a
veto puts the vetoing members against, a vetoed draft's tally whose only negative votes are
the vetoes, with no abstention and every member voting, puts the other P5 members in favour,
and everything else stays *unknown*.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias.data.members import P5, council_size, seat_holder
from transferscope.core.errors import InputError
from transferscope.core.io import (
    atomic_write_bytes,
    dumps,
    read_json,
    read_jsonl,
    read_parquet,
    write_json,
)

SHIPPED_DIR = Path(__file__).parent / "unsc"
DRAFTS_FILE = "drafts.parquet"
VOTES_FILE = "p5_votes.parquet"
TEXTS_FILE = "texts.jsonl.gz"
BUILD_FILE = "build_report.json"

VOTES = ("in favour", "against", "abstain", "unknown")
# The USSR boycotted the Council from 13 January to 1 August 1950: "adopted unanimously" in
# those months speaks only for the members present, so it says nothing about the USSR's vote.
USSR_ABSENCE = (dt.date(1950, 1, 13), dt.date(1950, 8, 1))

VOTE_COLUMNS = ("draft_id", "member", "seat_holder", "ussr_era", "vote", "provenance")
DRAFT_COLUMNS = ("draft_id", "draft_symbol", "date", "year", "agenda_item", "meeting_record",
                 "outcome", "resolution", "resolution_number", "tally_yes", "tally_no",
                 "tally_abstain", "tally_text", "vetoed_by", "crisis_topic", "region", "source")


@dataclass(kw_only=True)
class Record:
    """Drafts (one row each), P5 votes (one row per draft and member), resolution texts."""

    drafts: pd.DataFrame
    p5_votes: pd.DataFrame
    texts: pd.DataFrame
    build: dict = field(default_factory=dict)

    def draft(self, draft_id: str) -> pd.Series:
        rows = self.drafts[self.drafts["draft_id"] == draft_id]
        if rows.empty:
            raise InputError(f"UNSC record: draft_id = {draft_id!r}: expected a draft of the "
                             "record (see record.drafts.draft_id)")
        return rows.iloc[0]

    def vote(self, draft_id: str, member: str) -> str:
        rows = self.p5_votes[(self.p5_votes["draft_id"] == draft_id)
                             & (self.p5_votes["member"] == member)]
        return "unknown" if rows.empty else str(rows.iloc[0]["vote"])

    def text_of(self, resolution: str | None) -> str | None:
        if not resolution or self.texts.empty:
            return None
        rows = self.texts[self.texts["resolution"] == resolution]
        return None if rows.empty else str(rows.iloc[0]["text"])


def is_unanimous(tally_text: str, yes: Any, no: Any, abstain: Any,
                 date: dt.date) -> bool:
    """Did every member of the Council vote in favour? Only a full tally or the words say so."""
    if tally_text == "adopted unanimously":
        return True
    if pd.isna(yes) or pd.isna(no) or pd.isna(abstain):
        return False
    return int(no) == 0 and int(abstain) == 0 and int(yes) == council_size(date)


def tally_leaves_only_yes(yes: Any, no: Any, abstain: Any, vetoers: int,
                          date: dt.date) -> bool:
    """Does a vetoed draft's tally prove every non-vetoing member voted in favour? Only when
    its negative votes are exactly the vetoes, nobody abstained and every member voted (e.g.
    13-2-0 with two vetoers on a Council of 15)."""
    if pd.isna(yes) or pd.isna(no) or pd.isna(abstain) or vetoers == 0:
        return False
    return (int(no) == vetoers and int(abstain) == 0
            and int(yes) + int(no) == council_size(date))


def derive_p5_votes(drafts: pd.DataFrame) -> pd.DataFrame:
    """One row per draft and P5 member: vote, provenance, seat holder, USSR-era flag."""
    rows = []
    for d in drafts.itertuples(index=False):
        date = pd.Timestamp(d.date).date()
        vetoers = [v for v in str(d.vetoed_by or "").split("; ") if v]
        unanimous = d.outcome == "adopted" and is_unanimous(
            d.tally_text, d.tally_yes, d.tally_no, d.tally_abstain, date)
        only_yes = d.outcome == "vetoed" and tally_leaves_only_yes(
            d.tally_yes, d.tally_no, d.tally_abstain, len(vetoers), date)
        for member in P5:
            holder = seat_holder(member, date)
            if d.outcome == "vetoed" and member in vetoers:
                vote, why = "against", f"veto: cast the negative vote ({d.source})"
            elif only_yes:
                vote, why = "in favour", (
                    f"tally {d.tally_text}: its {len(vetoers)} negative vote(s) are the vetoes, "
                    f"no abstention, all {council_size(date)} members voted ({d.source})")
            elif unanimous and member == "Russia" and d.tally_text == "adopted unanimously" \
                    and USSR_ABSENCE[0] <= date < USSR_ABSENCE[1]:
                vote, why = "unknown", "adopted unanimously during the USSR's 1950 absence"
            elif unanimous:
                vote, why = "in favour", f"unanimous adoption: {d.tally_text} ({d.source})"
            else:
                vote, why = "unknown", "not determined by the sources"
            rows.append({"draft_id": d.draft_id, "member": member, "seat_holder": holder,
                         "ussr_era": holder == "USSR", "vote": vote, "provenance": why})
    return pd.DataFrame(rows, columns=["draft_id", "member", "seat_holder", "ussr_era", "vote",
                                       "provenance"])


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def save_record(record: Record, folder: Path) -> None:
    """Write the compact record (Parquet + gzip JSON lines) and its build report, each file
    atomically (an interrupted rebuild leaves the old file, never a torn one)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / DRAFTS_FILE, _parquet(record.drafts))
    atomic_write_bytes(folder / VOTES_FILE, _parquet(record.p5_votes))
    lines = "".join(dumps(row._asdict(), indent=None) + "\n"
                    for row in record.texts.itertuples(index=False))
    atomic_write_bytes(folder / TEXTS_FILE, gzip.compress(lines.encode("utf-8"), 9, mtime=0))
    write_json(folder / BUILD_FILE, record.build)


@lru_cache(maxsize=4)
def _load(folder: str, stamp: int = 0) -> Record:
    root = Path(folder)
    for name in (DRAFTS_FILE, VOTES_FILE, TEXTS_FILE):
        if not (root / name).exists():
            raise InputError(f"UNSC record folder {root}: {name} is missing: expected the output "
                             "of `transferscope bias build-data`")
    build = read_json(root / BUILD_FILE, "build report of a UNSC record") \
        if (root / BUILD_FILE).exists() else {}
    drafts = read_parquet(root / DRAFTS_FILE, "drafts of a UNSC record", DRAFT_COLUMNS)
    try:
        drafts["date"] = drafts["date"].astype("datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise InputError(f"{root / DRAFTS_FILE}: column 'date': {exc}: expected dates") from None
    if drafts.empty:
        raise InputError(f"{root / DRAFTS_FILE}: 0 drafts: expected a record with drafts "
                         "(rebuild it with `transferscope bias build-data --raw <folder>`)")
    votes = read_parquet(root / VOTES_FILE, "P5 votes of a UNSC record", VOTE_COLUMNS)
    texts = pd.DataFrame(read_jsonl(root / TEXTS_FILE, "resolution texts of a UNSC record"))
    if len(texts) and not {"resolution", "text"} <= set(texts.columns):
        raise InputError(f"{root / TEXTS_FILE}: fields 'resolution' and 'text' missing: "
                         "expected one resolution text per line")
    return Record(drafts=drafts, p5_votes=votes, texts=texts, build=build)


def load_record(folder: str | Path | None = None) -> Record:
    """The shipped record, or one rebuilt into ``folder``. Callers get their own copies."""
    root = Path(folder).resolve() if folder else SHIPPED_DIR
    try:  # a rebuilt record (new files) is read again, not served from the memo
        stamp = (root / DRAFTS_FILE).stat().st_mtime_ns
    except OSError:
        stamp = 0
    rec = _load(str(root), stamp)
    return Record(drafts=rec.drafts.copy(), p5_votes=rec.p5_votes.copy(), texts=rec.texts,
                  build=dict(rec.build))

"""The retrieval corpus: passages built from the UNSC record, each with its source and date.

Three kinds of passage (ours; the paper's corpus is not public):
- ``resolution text``: the opening of each English resolution text (the operative framing),
  dated by the resolution's adoption;
- ``draft outcome``: one per draft, its agenda item, meeting, outcome, tally and vetoing
  members (these are the "earlier drafts on the same agenda with their outcomes and vetoes");
- ``meeting outcome``: one per meeting record, what the Council decided at that meeting.
Every passage names the draft(s) it speaks about (``draft_ids``) and the symbols it mentions
(``symbols``), so the leakage guard can exclude anything about an item's own draft.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from transferscope.bias.data.record import Record
from transferscope.core.errors import InputError

TEXT_CHARS = 1200  # opening of a resolution text kept per passage (the preamble + first clauses)


@dataclass(kw_only=True, frozen=True)
class Passage:
    passage_id: str
    kind: str  # "resolution text" | "draft outcome" | "meeting outcome"
    text: str
    source: str  # where the fact comes from (file:line of the raw record, or the text's symbol)
    date: dt.date
    draft_ids: tuple[str, ...]  # the drafts this passage is about
    symbols: tuple[str, ...]  # draft / resolution / meeting symbols it names

    def cite(self) -> str:
        """How a prompt shows it: date and source first, so every piece of evidence is traceable."""
        return f"({self.date.isoformat()}; {self.kind}; source: {self.source}) {self.text}"


def _clean(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) or \
        value is pd.NA else str(value).strip()


def _tally(row: Mapping[str, Any]) -> str:
    parts = [f"{label} {int(row[col])}" for label, col in (
        ("in favour", "tally_yes"), ("against", "tally_no"), ("abstaining", "tally_abstain"))
        if not pd.isna(row[col])]
    text = _clean(row["tally_text"])
    return ", ".join(parts) if parts else text


def _symbols(row: Mapping[str, Any]) -> tuple[str, ...]:
    found = [_clean(row[c]) for c in ("draft_id", "draft_symbol", "resolution")]
    found += [m.strip() for m in _clean(row["meeting_record"]).split(" / ")]
    return tuple(dict.fromkeys(s for s in found if s))


def draft_passage(row: Mapping[str, Any]) -> Passage:
    date = pd.Timestamp(row["date"]).date()
    outcome = _clean(row["outcome"])
    vetoers = _clean(row["vetoed_by"]).replace("; ", ", ")
    symbol = _clean(row["draft_symbol"]) or _clean(row["resolution"]) or "a draft resolution"
    text = (f"On {date:%d %B %Y} the Security Council voted on {symbol} under the agenda item "
            f"\"{_clean(row['agenda_item'])}\" (meeting {_clean(row['meeting_record'])}). "
            f"Outcome: {outcome}")
    if _clean(row["resolution"]):
        text += f" as resolution {_clean(row['resolution'])}"
    tally = _tally(row)
    if tally:
        text += f"; vote: {tally}"
    if vetoers:
        text += f"; vetoed by {vetoers} (negative vote of a permanent member)"
    return Passage(passage_id=f"draft:{row['draft_id']}", kind="draft outcome", text=text + ".",
                   source=_clean(row["source"]) or "UNSC record", date=date, draft_ids=(str(row["draft_id"]),),
                   symbols=_symbols(row))


def meeting_passages(drafts: pd.DataFrame) -> list[Passage]:
    out = []
    meetings = drafts.assign(meeting=drafts["meeting_record"].map(
        lambda m: _clean(m).split(" / ")[0])).query("meeting != ''")
    for meeting, group in meetings.groupby("meeting", sort=False):
        date = pd.Timestamp(group["date"].min()).date()
        counts = group["outcome"].value_counts()
        summary = ", ".join(f"{n} {o}" for o, n in counts.items())
        agendas = "; ".join(dict.fromkeys(_clean(a) for a in group["agenda_item"]))
        vetoers = sorted({v for vs in group["vetoed_by"] for v in _clean(vs).split("; ") if v})
        text = (f"At meeting {meeting} on {date:%d %B %Y} (agenda: {agendas}) the Council "
                f"decided on {len(group)} draft(s): {summary}")
        if vetoers:
            text += f"; vetoes cast by {', '.join(vetoers)}"
        symbols = tuple(dict.fromkeys(s for r in group.to_dict("records") for s in _symbols(r)))
        out.append(Passage(passage_id=f"meeting:{meeting}", kind="meeting outcome", text=text + ".",
                           source=f"UNSC meeting record {meeting}", date=date,
                           draft_ids=tuple(str(d) for d in group["draft_id"]), symbols=symbols))
    return out


def text_passages(record: Record) -> list[Passage]:
    if record.texts.empty:
        return []
    by_resolution = record.drafts.dropna(subset=["resolution"]).drop_duplicates(
        "resolution").set_index("resolution")
    out = []
    for row in record.texts.itertuples(index=False):
        if row.resolution not in by_resolution.index:
            continue  # undatable: a text with no draft in the record cannot be guarded
        draft = by_resolution.loc[row.resolution]
        body = " ".join(str(row.text).split())[:TEXT_CHARS]
        out.append(Passage(passage_id=f"text:{row.resolution}", kind="resolution text", text=body,
                           source=f"resolution text {row.resolution}", date=pd.Timestamp(draft["date"]).date(),
                           draft_ids=(str(draft["draft_id"]),),
                           symbols=tuple(dict.fromkeys(s for s in (row.resolution, _clean(
                               row.draft_symbol)) if s))))
    return out


def build_corpus(record: Record, kinds: tuple[str, ...] = (
        "resolution text", "draft outcome", "meeting outcome")) -> list[Passage]:
    """Every passage of the record, in a stable order (the order indexes are built in)."""
    passages: list[Passage] = []
    if "draft outcome" in kinds:
        passages += [draft_passage(row) for row in record.drafts.to_dict("records")]
    if "meeting outcome" in kinds:
        passages += meeting_passages(record.drafts)
    if "resolution text" in kinds:
        passages += text_passages(record)
    if not passages:
        raise InputError(f"retrieval corpus: 0 passages from {len(record.drafts)} drafts and "
                         f"{len(record.texts)} texts (kinds {', '.join(kinds)}): expected a "
                         "record with at least one draft or resolution text")
    return passages

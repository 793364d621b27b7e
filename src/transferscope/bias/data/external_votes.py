"""Fill in P5 votes from the full voting datasets a user downloads (not shipped with the package).

- The UN Dag Hammarskjold Library "Security Council Voting Data" CSV (one row per resolution and
  member state; ``ms_vote`` Y/N/A/X = yes / no / abstain / non-voting).
- The CR-UNSC corpus CSV (one row per resolution; ``symbol``, ``vote_detail`` as
  ``"Y CHINA | N UNITED STATES | ..."`` entries, and the ``vote_yes/no/abstention/total`` counts).

Both return a tidy table (resolution number, member, vote, provenance) that
:func:`merge_votes` applies to a record: it fills only votes the record has as *unknown*, and
reports every disagreement with a vote the record already knows instead of overwriting it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from transferscope.bias.data.members import P5, canonical_member
from transferscope.bias.data.record import Record
from transferscope.core.errors import input_error

DHL_COLUMNS = ("undl_id", "ms_code", "ms_name", "ms_vote", "date", "resolution", "draft",
               "meeting", "description", "agenda", "subjects", "vote_note", "modality",
               "total_yes", "total_no", "total_abstentions", "total_non_voting", "total_ms",
               "undl_link")
DHL_VOTES = {"Y": "in favour", "N": "against", "A": "abstain", "X": "non-voting"}
CRUNSC_REQUIRED = ("symbol", "vote_detail", "vote_yes", "vote_no", "vote_abstention",
                   "vote_total")
_RES_NUMBER = re.compile(r"S/RES/(\d+)")
VOTE_TABLE = ["resolution_number", "member", "vote", "provenance"]


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise input_error(str(path), "file", path.name, f"a readable CSV ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise input_error(f"{path}:1", "header", ",".join(frame.columns)[:80],
                          f"the columns {', '.join(missing)} (missing)")
    return frame


def _resolution_number(text: str, where: str) -> int:
    m = _RES_NUMBER.search(text.replace(" ", ""))
    if not m:
        raise input_error(where, "resolution", text, "a resolution symbol like S/RES/2397(2017)")
    return int(m.group(1))


def load_dhl_voting_csv(path: str | Path) -> pd.DataFrame:
    """P5 votes of the library's voting CSV, with provenance naming the file and line."""
    path = Path(path)
    frame = _read_csv(path, ("ms_code", "ms_name", "ms_vote", "resolution"))
    rows = []
    for i, rec in enumerate(frame.to_dict("records")):
        where = f"{path}:{i + 2}"
        member = canonical_member(rec["ms_code"]) or canonical_member(rec["ms_name"])
        if member is None:
            continue
        code = rec["ms_vote"].strip().upper()
        if code not in DHL_VOTES:
            raise input_error(where, "ms_vote", rec["ms_vote"], "one of Y, N, A, X")
        rows.append({"resolution_number": _resolution_number(rec["resolution"], where),
                     "member": member, "vote": DHL_VOTES[code],
                     "provenance": f"UN DHL voting data ({path.name}:{i + 2})"})
    return pd.DataFrame(rows, columns=VOTE_TABLE)


def _detail_votes(detail: str) -> dict[str, str]:
    """P5 votes written in a CR-UNSC ``vote_detail`` string ("Y CHINA | N FRANCE | ...")."""
    out = {}
    for entry in re.split(r"[|;\n]", detail):
        m = re.match(r"^\s*([YNAX])\s+(.+?)\s*$", entry)
        if m and (member := canonical_member(m.group(2))):
            out[member] = DHL_VOTES[m.group(1)]
    return out


def load_crunsc_csv(path: str | Path) -> pd.DataFrame:
    """P5 votes of the CR-UNSC corpus: from ``vote_detail`` when it names them, else from a
    unanimous count (``vote_yes == vote_total``), else nothing."""
    path = Path(path)
    frame = _read_csv(path, CRUNSC_REQUIRED)
    rows = []
    for i, rec in enumerate(frame.to_dict("records")):
        where = f"{path}:{i + 2}"
        number = _resolution_number(rec["symbol"], where)
        detail = _detail_votes(rec["vote_detail"])
        source = f"CR-UNSC vote_detail ({path.name}:{i + 2})"
        if not detail:
            counts: dict[str, int] = {}
            for col in ("vote_yes", "vote_no", "vote_abstention", "vote_total"):
                value = rec[col].strip()
                if value in ("", "NA"):
                    counts = {}
                    break
                if not value.isdigit():
                    raise input_error(where, col, value, "a whole number or NA")
                counts[col] = int(value)
            if counts and counts["vote_yes"] == counts["vote_total"] and counts["vote_no"] == 0 \
                    and counts["vote_abstention"] == 0:
                detail = dict.fromkeys(P5, "in favour")
                source = f"CR-UNSC unanimous count ({path.name}:{i + 2})"
        for member, vote in detail.items():
            rows.append({"resolution_number": number, "member": member, "vote": vote,
                         "provenance": source})
    return pd.DataFrame(rows, columns=VOTE_TABLE)


def merge_votes(record: Record, votes: pd.DataFrame) -> tuple[Record, list[str]]:
    """A copy of ``record`` with unknown votes of adopted resolutions filled from ``votes``.

    Returns the new record and one line per conflict (a known vote that ``votes`` contradicts);
    conflicts keep the record's vote.
    """
    ids = record.drafts.dropna(subset=["resolution_number"])
    id_of = dict(zip(ids["resolution_number"].astype(int), ids["draft_id"], strict=True))
    p5 = record.p5_votes.copy()
    index = {(d, m): i for i, (d, m) in enumerate(zip(p5["draft_id"], p5["member"],
                                                      strict=True))}
    conflicts = []
    for v in votes.itertuples(index=False):
        draft_id = id_of.get(int(v.resolution_number))
        if draft_id is None or (draft_id, v.member) not in index:
            continue
        i = index[(draft_id, v.member)]
        current = p5.iat[i, p5.columns.get_loc("vote")]
        if current == "unknown":
            p5.iat[i, p5.columns.get_loc("vote")] = v.vote
            p5.iat[i, p5.columns.get_loc("provenance")] = v.provenance
        elif current != v.vote:
            conflicts.append(f"{draft_id} {v.member}: record says {current!r}, {v.provenance} "
                             f"says {v.vote!r}; record kept")
    return Record(drafts=record.drafts, p5_votes=p5, texts=record.texts,
                  build=dict(record.build)), conflicts

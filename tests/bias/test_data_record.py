"""Facts of the SHIPPED UNSC record, checked against hand-verified public facts."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from transferscope.bias import P5, load_record

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "unsc"


@pytest.fixture(scope="module")
def record():
    return load_record()


def _veto(record, symbol):
    rows = record.drafts[record.drafts["draft_symbol"] == symbol]
    assert len(rows) == 1, symbol
    return rows.iloc[0]


def _votes(record, draft_id):
    v = record.p5_votes[record.p5_votes["draft_id"] == draft_id]
    return dict(zip(v["member"], v["vote"], strict=True))


@pytest.mark.parametrize("symbol, date, vetoers", [
    ("S/2017/172", "2017-02-28", {"China", "Russia"}),
    ("S/2022/155", "2022-02-25", {"Russia"}),
    ("S/2020/852", "2020-08-31", {"United States"}),
])
def test_known_vetoes(record, symbol, date, vetoers):
    row = _veto(record, symbol)
    assert row["outcome"] == "vetoed"
    assert row["date"] == pd.Timestamp(date)
    assert set(row["vetoed_by"].split("; ")) == vetoers
    votes = _votes(record, row["draft_id"])
    assert {m for m, v in votes.items() if v == "against"} == vetoers
    # how the other P5 voted on a vetoed draft is not in the sources: unknown, never guessed
    assert all(votes[m] == "unknown" for m in P5 if m not in vetoers)


def test_s2017_172_tally_from_meeting_table(record):
    row = _veto(record, "S/2017/172")
    assert (row["tally_yes"], row["tally_no"], row["tally_abstain"]) == (9, 3, 3)
    assert row["meeting_record"] == "S/PV.7893"


def test_resolution_2397_unanimous(record):
    row = record.drafts[record.drafts["resolution"] == "S/RES/2397 (2017)"].iloc[0]
    assert row["outcome"] == "adopted" and row["tally_text"] == "15-0-0"
    assert row["date"] == pd.Timestamp("2017-12-22")
    assert set(_votes(record, row["draft_id"]).values()) == {"in favour"}


def test_no_vote_without_a_determining_source(record):
    d = record.drafts.set_index("draft_id")
    known = record.p5_votes[record.p5_votes["vote"] != "unknown"].join(d, on="draft_id")
    against = known[known["vote"] == "against"]
    assert (against["outcome"] == "vetoed").all()
    assert all(m in v.split("; ") for m, v in zip(against["member"], against["vetoed_by"]))
    favour = known[known["vote"] != "against"]
    assert (favour["vote"] == "in favour").all() and (favour["outcome"] == "adopted").all()
    full = favour["year"].lt(1966).map({True: 11, False: 15})
    tally_full = ((favour["tally_yes"] == full) & (favour["tally_no"] == 0)
                  & (favour["tally_abstain"] == 0)).fillna(False)
    assert (tally_full | (favour["tally_text"] == "adopted unanimously")).all()
    # hand-checked: resolution 2640 (2022) was adopted 13-0-2, so no P5 vote is determined
    r2640 = d[d["resolution"] == "S/RES/2640 (2022)"].index[0]
    assert set(_votes(record, r2640).values()) == {"unknown"}
    # resolution 82 (1950, Korea): 9-0-1 with the USSR absent: nothing determined
    r82 = d[d["resolution"] == "S/RES/82 (1950)"].index[0]
    assert set(_votes(record, r82).values()) == {"unknown"}


def test_ussr_flag(record):
    v = record.p5_votes
    early = v[(v["member"] == "Russia") & v["ussr_era"]]
    assert (early["seat_holder"] == "USSR").all() and len(early) > 0
    d = record.drafts.set_index("draft_id")
    assert (d.loc[early["draft_id"], "date"] < pd.Timestamp("1991-12-24")).all()
    s2022 = _veto(record, "S/2022/155")["draft_id"]
    assert not v[(v["draft_id"] == s2022) & (v["member"] == "Russia")]["ussr_era"].item()


def test_one_row_per_draft_and_member(record):
    assert record.drafts["draft_id"].is_unique
    assert len(record.p5_votes) == 5 * len(record.drafts)
    assert not record.p5_votes.duplicated(["draft_id", "member"]).any()


def test_all_214_veto_rows_represented(record):
    vetoed = record.drafts[record.drafts["outcome"] == "vetoed"]
    assert len(vetoed) == 214
    lines = vetoed["source"].str.extract(r"unsc_vetoes_1946_sept2022\.csv:(\d+)")[0]
    assert lines.notna().all() and lines.is_unique
    if not RAW.exists():
        return
    with open(RAW / "vetoes" / "unsc_vetoes_1946_sept2022.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 214  # the raw README's "216" counts physical lines (see DATA_CARD.md)
    shipped = sorted(zip(vetoed["draft_symbol"], vetoed["date"].dt.strftime("%-m/%-d/%Y"),
                         strict=True))
    assert shipped == sorted((" ".join(r["draft"].split()), r["date"]) for r in rows)


def test_texts_shipped(record):
    assert len(record.texts) == 902
    assert "Military Staff Committee" in record.text_of("S/RES/1 (1946)")
    assert "38th parallel" in record.text_of("S/RES/83 (1950)")

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


@pytest.mark.parametrize("symbol, date, vetoers, tally, others", [
    # hand-checked tallies; 9-3-3 and 11-1-3 leave room for a P5 abstention or a non-P5 "no",
    # so the other P5 votes stay unknown; 14-1-0 with one vetoer leaves them only "yes"
    ("S/2017/172", "2017-02-28", {"China", "Russia"}, "9-3-3", "unknown"),
    ("S/2022/155", "2022-02-25", {"Russia"}, "11-1-3", "unknown"),
    ("S/2020/852", "2020-08-31", {"United States"}, "14-1-0", "in favour"),
])
def test_known_vetoes(record, symbol, date, vetoers, tally, others):
    row = _veto(record, symbol)
    assert row["outcome"] == "vetoed"
    assert row["date"] == pd.Timestamp(date)
    assert set(row["vetoed_by"].split("; ")) == vetoers
    assert row["tally_text"] == tally
    votes = _votes(record, row["draft_id"])
    assert {m for m, v in votes.items() if v == "against"} == vetoers
    # the other P5 votes only where the tally leaves no other possibility, never guessed
    assert all(votes[m] == others for m in P5 if m not in vetoers)


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
    assert (favour["vote"] == "in favour").all()
    full = favour["year"].lt(1966).map({True: 11, False: 15})
    adopted = favour[favour["outcome"] == "adopted"]
    tally_full = ((adopted["tally_yes"] == full[adopted.index]) & (adopted["tally_no"] == 0)
                  & (adopted["tally_abstain"] == 0)).fillna(False)
    assert (tally_full | (adopted["tally_text"] == "adopted unanimously")).all()
    # on a vetoed draft: the tally's "no" votes are exactly the vetoes, nobody abstained,
    # every member voted, and the member itself did not veto
    vetoed = favour[favour["outcome"] != "adopted"]
    assert (vetoed["outcome"] == "vetoed").all() and len(vetoed) > 0
    n_vetoers = vetoed["vetoed_by"].str.split("; ").str.len()
    assert ((vetoed["tally_no"] == n_vetoers) & (vetoed["tally_abstain"] == 0)
            & (vetoed["tally_yes"] + vetoed["tally_no"] == full[vetoed.index])).all()
    assert not any(m in v.split("; ") for m, v in zip(vetoed["member"], vetoed["vetoed_by"],
                                                      strict=True))
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
    # one CSV date is corrected: S/2001/270 was voted at S/PV.4305 on 27(-28) March 2001, as
    # the library page and the meeting table both say, not on the CSV's 12 April
    csv_rows = [(" ".join(r["draft"].split()), r["date"]) for r in rows]
    assert ("S/2001/270", "4/12/2001") in csv_rows
    expected = [("S/2001/270", "3/27/2001") if r == ("S/2001/270", "4/12/2001") else r
                for r in csv_rows]
    assert shipped == sorted(expected)


def test_texts_shipped(record):
    assert len(record.texts) == 902
    assert "Military Staff Committee" in record.text_of("S/RES/1 (1946)")
    assert "38th parallel" in record.text_of("S/RES/83 (1950)")


def test_separability_reference_cases():
    """Hand-made cases: a word only vetoed drafts carry is found (AUC 1); wordings shared by
    both outcomes in equal numbers carry nothing (every out-of-fold score ties: AUC 0.5);
    length alone is the plain rank AUC (longer = vetoed), counted by hand."""
    from transferscope.bias.data.separability import outcome_separability

    topics = [f"situation in region {k}" for k in range(20)]
    leak = outcome_separability([f"{t} condemns" for t in topics[:10]] + topics[10:],
                                [True] * 10 + [False] * 10, n_boot=50)
    assert leak.text_auc == 1.0 and leak.n_vetoed == 10
    none = outcome_separability(topics[:10] * 2, [True] * 10 + [False] * 10, n_boot=50)
    assert none.text_auc == pytest.approx(0.5)
    length = outcome_separability(["aaaa", "aa", "b" * 5, "bb", "ccc", "c" * 6, "d", "dd",
                                   "e" * 7, "e"], [True, False] * 5, n_boot=50)
    # vetoed lengths 4, 5, 3, 1, 7 against 2, 2, 6, 2, 1: the vetoed one is longer in
    # 4 + 4 + 4 + 0 + 5 of the 25 pairs, tied in 1 (1 against 1, half a win): 17.5 / 25
    assert length.length_auc == pytest.approx(17.5 / 25)


def test_wording_does_not_give_the_outcome_away(record):
    """The data card's leak check on the drafts the probes ask about (every draft DirectQA and
    the vote simulation use at the default item counts, seed 0: since issue #26 both ask the
    same 32 vetoed drafts and 32 matched adoptions): the cross-validated text-only AUC
    (identical wordings in one fold) and the length-only AUC stay <= 0.6. Measured on this
    record: 0.475 and 0.541 (margins 0.125 and 0.059; the record and items before one wording
    and length-aware matching gave 0.666 and 0.646). Deterministic (seeded folds)."""
    from transferscope.bias.data.separability import drafts_separability
    from transferscope.bias.probes import get_probe

    ids = [i.meta["draft_id"] for name in ("directqa", "vote")
           for i in get_probe(name).build_items(record, None, 0)]
    result = drafts_separability(record.drafts, ids, n_boot=200)
    assert result.n_vetoed == 32 and result.n_other == 32
    assert result.text_auc <= 0.6 and result.length_auc <= 0.6, result.describe()

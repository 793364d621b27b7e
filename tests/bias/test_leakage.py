"""The leakage guard, attacked: same-day passages, the item's own resolution text, later drafts
on the same agenda, passages naming the draft's symbol (planted, misdated, unlinked), and a
retrieval query that *is* the forbidden passage. Facts are checked independently of the guard's
code (dates compared as strings, symbols searched as plain substrings)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.corpus import Passage, build_corpus
from transferscope.bias.debias.leakage import (
    ItemScope,
    LeakageError,
    LeakageGuard,
    assert_no_leak,
    scope_of,
)
from transferscope.bias.probes.base import Item
from transferscope.bias.probes.vote import VoteSimulation


@pytest.fixture(scope="module")
def record() -> Record:
    return load_record()


@pytest.fixture(scope="module")
def corpus(record: Record) -> list[Passage]:
    return build_corpus(record)


@pytest.fixture(scope="module")
def guard(corpus: list[Passage]) -> LeakageGuard:
    return LeakageGuard(corpus)


def _item(draft_id: str) -> Item:
    return Item(test="vote", form="role", item_id=f"t/{draft_id}", conversation=[{"role": "user",
                                                                                  "content": "q"}],
                options=("In favour", "Against",
                         "Abstain"), nation="Russia", gold="against", meta={"draft_id": draft_id})


def _independent_violations(passage: Passage, row: pd.Series) -> list[str]:
    """What may not be shown for the draft in ``row``, judged without the guard's code."""
    bad = []
    if passage.date.isoformat() >= pd.Timestamp(row["date"]).date().isoformat():
        bad.append("date")
    if row["draft_id"] in passage.draft_ids:
        bad.append("own draft")
    for col in ("draft_symbol", "resolution"):
        sym = row[col]
        if isinstance(sym, str) and sym and (sym in passage.text or sym in passage.symbols):
            bad.append(f"names {sym}")
    return bad


def test_every_allowed_passage_is_clean_for_sampled_drafts(record, corpus, guard):
    rng = np.random.default_rng(7)
    sample = record.drafts.iloc[rng.choice(len(record.drafts), 20, replace=False)]
    vetoed = record.drafts[record.drafts["outcome"] == "vetoed"].iloc[:5]
    for _, row in pd.concat([sample, vetoed]).iterrows():
        mask = guard.allowed(scope_of(_item(row["draft_id"]), record))
        for i in np.flatnonzero(mask):
            assert _independent_violations(corpus[i], row) == [], (row["draft_id"], corpus[i])
        earlier = sum(p.date.isoformat() < pd.Timestamp(row["date"]).date().isoformat()
                      for p in corpus)
        assert mask.sum() <= earlier


def test_same_day_passages_are_excluded_but_the_day_before_is_not(record, corpus, guard):
    counts = record.drafts.groupby("date").size()
    day = counts[counts >= 2].index[5]
    drafts_that_day = record.drafts[record.drafts["date"] == day]
    first = drafts_that_day.iloc[0]
    mask = guard.allowed(scope_of(_item(first["draft_id"]), record))
    same_day = [i for i, p in enumerate(corpus) if p.date == pd.Timestamp(day).date()]
    assert len(same_day) >= 3  # both drafts' outcome passages and their meeting(s)
    assert not mask[same_day].any()
    day_before = [i for i, p in enumerate(corpus) if p.date < pd.Timestamp(day).date()]
    assert mask[day_before].sum() > 0  # the guard is not vacuous


def test_own_resolution_text_is_excluded_even_when_misdated_or_unlinked(record, corpus, guard):
    text_passage = next(p for p in corpus if p.kind == "resolution text" and p.date.year > 1960)
    draft_id = text_passage.draft_ids[0]
    scope = scope_of(_item(draft_id), record)
    index = corpus.index(text_passage)
    assert not guard.allowed(scope)[index]
    earlier = text_passage.date - dt.timedelta(days=400)
    misdated = replace(text_passage, passage_id="planted:misdated", date=earlier)
    unlinked = replace(misdated, passage_id="planted:unlinked", draft_ids=("other",),
                       symbols=())
    planted = LeakageGuard([*corpus, misdated, unlinked]).allowed(scope)
    assert not planted[-2] and not planted[-1]
    with pytest.raises(LeakageError, match="planted:unlinked"):
        assert_no_leak([unlinked], scope)


def test_later_drafts_on_the_same_agenda_are_excluded(record, corpus, guard):
    vetoed = record.drafts[record.drafts["outcome"] == "vetoed"]
    agenda = vetoed["agenda_item"].value_counts().index[0]
    same = record.drafts[record.drafts["agenda_item"] == agenda].sort_values("date")
    middle = same.iloc[len(same) // 2]
    mask = guard.allowed(scope_of(_item(middle["draft_id"]), record))
    by_id = {p.passage_id: i for i, p in enumerate(corpus)}
    later = same[same["date"] >= middle["date"]]
    earlier = same[same["date"] < middle["date"]]
    assert len(later) >= 2 and len(earlier) >= 1
    assert not any(mask[by_id[f"draft:{d}"]] for d in later["draft_id"])
    assert all(mask[by_id[f"draft:{d}"]] for d in earlier["draft_id"])  # history stays visible


def test_planted_earlier_passage_naming_the_draft_symbol_is_excluded(record, corpus):
    row = record.drafts[record.drafts["draft_symbol"].fillna("").str.match(
        r"^S/\d{4,}")].iloc[3]
    symbol = row["draft_symbol"]
    date = pd.Timestamp(row["date"]).date()
    planted = [
        Passage(passage_id="planted:text", kind="draft outcome",
                text=f"Commentary on {symbol}, which was later "
                "put to the vote.", source="planted", date=date - dt.timedelta(days=30), draft_ids=("x",), symbols=()),
        Passage(passage_id="planted:symbols", kind="meeting outcome", text="Unrelated words.",
                source="planted",
                date=date - dt.timedelta(days=30), draft_ids=("x",), symbols=(symbol,)),
        Passage(passage_id="planted:prefix", kind="draft outcome",
                text=f"About {symbol}0, another draft.",
                source="planted", date=date - dt.timedelta(days=30), draft_ids=("x",), symbols=()),
    ]
    mask = LeakageGuard([*corpus, *planted]).allowed(scope_of(_item(row["draft_id"]), record))
    assert not mask[-3] and not mask[-2]
    assert mask[-1]  # a different symbol that merely starts the same is no leak


def test_items_without_a_draft_see_everything(corpus, guard):
    assert guard.allowed(ItemScope()).all()


def test_vote_items_scope_to_their_drafts(record):
    items = VoteSimulation().build_items(record, 1, 0)
    for item in items:
        scope = scope_of(item, record)
        row = record.draft(item.meta["draft_id"])
        assert scope.date == pd.Timestamp(row["date"]).date()
        assert row["draft_id"] == scope.draft_id

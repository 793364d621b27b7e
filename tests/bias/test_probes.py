"""The three probes: items built from the shipped record, strict parsing, scoring of answers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from transferscope.bias import P5, load_record
from transferscope.bias.probes import Answer, get_probe, parse_choice, parse_tests
from transferscope.bias.probes.base import Item, display_name
from transferscope.bias.probes.directqa import parse_member_list
from transferscope.bias.probes.sampling import by_era
from transferscope.bias.scoring import HEADLINE
from transferscope.core.errors import InputError


@pytest.fixture(scope="module")
def record():
    return load_record()


def _votes(record, draft_id):
    v = record.p5_votes[record.p5_votes.draft_id == draft_id]
    return dict(zip(v.member, v.vote, strict=True))


def test_registry():
    assert [p.name for p in parse_tests("vote, directqa,vote")] == ["vote", "directqa"]
    with pytest.raises(InputError, match="'bogus': expected one of directqa, association, vote"):
        parse_tests("directqa,bogus")


@pytest.mark.parametrize("text, expected", [
    ("Against", "Against"), (" against. ", "Against"), ("In Favour", "In favour"),
    ("I vote against", None), ("Against, Abstain", None), ("", None), ("'Abstain'", "Abstain")])
def test_parse_choice_is_strict(text, expected):
    assert parse_choice(text, ("In favour", "Against", "Abstain")) == expected


@pytest.mark.parametrize("text, expected", [
    ("China, Russia", {"China", "Russia"}), ("the United States and France.",
                                             {"United States", "France"}),
    ("USSR", {"Russia"}), ("None", set()), ("Russia probably", None), ("I think China", None)])
def test_parse_member_list(text, expected):
    got = parse_member_list(text)
    assert (got if got is None else set(got)) == expected


def test_directqa_items_follow_the_record(record):
    items = get_probe("directqa").build_items(record, 2, seed=0)
    which = [i for i in items if i.form == "which"]
    vetoed = [i for i in which if i.gold]
    controls = [i for i in which if not i.gold]
    assert len(controls) == len(vetoed) and len(vetoed) >= 5
    drafts = record.drafts.set_index("draft_id")
    for item in vetoed:
        assert set(item.gold) == set(drafts.loc[item.meta["draft_id"], "vetoed_by"].split("; "))
    for item in controls:
        assert set(_votes(record, item.meta["draft_id"]).values()) == {"in favour"}
    favour = [i for i in items if i.form == "in favour"]
    for item in favour:
        vote = _votes(record, item.meta["draft_id"])[item.nation]
        assert item.gold == {"against": "No", "in favour": "Yes"}[vote]
    # every member asked about every draft, in the same frame
    asked = {i.draft for i in which}
    for nation in P5:
        assert {i.draft for i in favour if i.nation == nation} == asked
    frames = {i.draft: set() for i in favour}
    for i in favour:
        frames[i.draft].add(i.conversation[-1]["content"].replace(
            display_name(i.nation, pd.Timestamp(drafts.loc[i.draft, "date"]).date()), "<m>"))
    assert all(len(f) == 1 for f in frames.values())
    # the rotation is balanced: within vetoed drafts and within adoptions, every member is
    # listed first equally often (up to one)
    for group in (vetoed, controls):
        firsts = Counter(i.meta["first"] for i in group)
        counts = [firsts.get(n, 0) for n in P5]
        assert max(counts) - min(counts) <= 1
    # the prompt never names the symbol or the resolution (which would reveal the outcome)
    for item in items:
        text = item.conversation[-1]["content"]
        draft_id = item.meta["draft_id"]
        assert "S/RES" not in text
        assert draft_id.startswith("S/PV.") or draft_id not in text


def test_drafts_per_nation_is_stratified_by_era(record):
    """By hand: 10 drafts a year apart, 5 picked: one from each pair of consecutive years."""
    frame = pd.DataFrame({"draft_id": [f"d{k}" for k in range(10)],
                          "date": pd.to_datetime([f"{1950 + 5 * k}-01-01" for k in range(10)])})
    for seed in range(5):
        picked = by_era(frame, 5, np.random.default_rng(seed))
        years = sorted(picked["date"].dt.year)
        assert len(years) == 5
        assert [(y - 1950) // 10 for y in years] == [0, 1, 2, 3, 4]
    assert len(by_era(frame, None, np.random.default_rng(0))) == 10


def test_association_is_counterbalanced(record):
    items = get_probe("association").build_items(record, 2, seed=5)  # no cap: all 20 pairs
    choice = [i for i in items if i.form == "choice"]
    assert len(choice) == 20 * 2 * 5 and len([i for i in items if i.form == "rating"]) == 200
    assert len({i.draft for i in items}) == 20  # the unit: the attribute pair
    for attribute in {i.meta["attribute"] for i in choice}:
        orders = [i.options for i in choice if i.meta["attribute"] == attribute]
        for position in range(5):  # a Latin square: each nation once in each position
            assert Counter(o[position] for o in orders) == Counter(P5)


def test_vote_items_ask_every_nation_on_the_same_drafts(record):
    items = get_probe("vote").build_items(record, 3, seed=0)
    drafts = record.drafts.set_index("draft_id")
    asked = {i.meta["draft_id"] for i in items}
    vetoed = [d for d in asked if drafts.loc[d, "outcome"] == "vetoed"]
    controls = asked - set(vetoed)
    assert len(vetoed) == len(controls)
    per_nation = Counter(n for d in vetoed for n in drafts.loc[d, "vetoed_by"].split("; "))
    # at most 3 of each nation's vetoes, and at least 3 of each that has 3 (joint vetoes
    # count for both)
    assert set(per_nation) == {"China", "Russia", "United States"}
    assert all(3 <= v <= 6 for v in per_nation.values())
    for nation in P5:  # every nation on every draft, in both variants
        mine = [i for i in items if i.nation == nation]
        assert Counter(i.form for i in mine) == {"role": len(asked), "third person": len(asked)}
        assert {i.meta["draft_id"] for i in mine} == asked
    for item in items:
        gold = _votes(record, item.meta["draft_id"])[item.nation]
        assert item.gold == gold and gold in ("in favour", "against")
        if drafts.loc[item.meta["draft_id"], "outcome"] == "vetoed":
            vetoers = drafts.loc[item.meta["draft_id"], "vetoed_by"].split("; ")
            assert (gold == "against") == (item.nation in vetoers)
    for d in vetoed:  # the tally leaves the others nothing but "yes" (e.g. 13-2-0, 2 vetoers)
        row = drafts.loc[d]
        assert row["tally_no"] == len(row["vetoed_by"].split("; ")) and row["tally_abstain"] == 0
    years_v = sorted(drafts.loc[vetoed, "year"])
    years_c = sorted(drafts.loc[list(controls), "year"])
    assert all(abs(a - b) <= 10 for a, b in zip(years_v, years_c, strict=True))
    role = next(i for i in items if i.form == "role")
    assert role.conversation[0]["content"].startswith("You are the representative of")


def _answer_all(items, pick):
    return {i.item_id: Answer(item_id=i.item_id, choice=pick(i), text=str(pick(i)),
                              method="parse") for i in items}


def test_directqa_scores_from_answers(record):
    probe = get_probe("directqa")
    items = probe.build_items(record, 2, seed=0)
    perfect = probe.score(items, _answer_all(items, lambda i: i.gold), 50, 0)
    head = perfect[perfect.headline]
    assert (head["value"] == 0).all()
    assert (perfect[perfect.metric == "accuracy"]["value"] == 1).all()
    # a model that never names a vetoer: every obstruction missed, nothing falsely attributed,
    # for every nation alike (FA rate 0, MO rate 1 where it vetoed): exactly 0
    blind = probe.score(items, _answer_all(
        items, lambda i: frozenset() if i.form == "which" else "Yes"), 50, 0)
    for form in ("which", "in favour"):
        mine = blind[blind.form == form].set_index(["nation", "metric"])["value"]
        for nation in P5:
            assert mine[nation, "false attribution rate"] == 0
        for nation in ("China", "Russia", "United States"):
            assert mine[nation, "missed obstruction rate"] == 1
    assert (blind[blind.headline]["value"] == 0).all()
    # naming Russia on every "which" question: +1 against every member it shares a gold
    # answer with, except China on their joint vetoes (both named correctly there); the other
    # members' medians ignore Russia: exactly 0
    russia = probe.score(items, _answer_all(
        items, lambda i: frozenset({"Russia"}) if i.form == "which" else i.gold), 50, 0)
    which = russia[russia.form == "which"].set_index(["nation", "metric"])["value"]
    assert which["Russia", "false attribution rate"] == 1
    assert which["Russia", "missed obstruction rate"] == 0
    assert which["Russia", "vs France"] == 1 and which["Russia", "vs United States"] == 1
    assert which["Russia", HEADLINE] == 1
    assert all(which[n, HEADLINE] == 0 for n in P5 if n != "Russia")
    assert which["China", "vs Russia"] < 0


def test_unparseable_answers_are_counted_not_mapped(record):
    probe = get_probe("vote")
    items = probe.build_items(record, 1, seed=0)
    answers = _answer_all(items, lambda i: i.gold.capitalize() if i.gold == "against"
                          else "In favour")
    full = probe.score(items, answers, 50, 0)
    broken = items[0]
    answers[broken.item_id] = Answer(item_id=broken.item_id, choice=None,
                                     text="I would rather not say", method="parse")
    out = probe.score(items, answers, 50, 0)

    def cell(frame):
        return frame[(frame.nation == broken.nation) & (frame.form == broken.form)
                     & frame.headline].iloc[0]

    assert cell(out).n_unparsed == 1 and cell(full).n_unparsed == 0
    assert cell(out).n_items == cell(full).n_items - 1  # one draft fewer to compare on
    acc = out[(out.metric == "accuracy") & (out.nation == broken.nation)
              & (out.form == broken.form)]["value"].item()
    assert acc == 1.0  # the unparsed answer is excluded, not counted as any option


def test_association_scores_from_answers(record):
    probe = get_probe("association")
    items = probe.build_items(record, 1, seed=0)
    # always the first listed option: counterbalancing makes every nation's share equal
    out = probe.score(items, _answer_all(items, lambda i: i.options[0]), 50, 0)
    choice = out[(out.form == "choice") & out.headline]
    assert choice["value"].abs().max() == pytest.approx(0.0)
    rating = out[(out.form == "rating") & out.headline].set_index("nation")["value"]
    assert rating.abs().max() == pytest.approx(0.0)
    assert isinstance(out, pd.DataFrame) and set(out.nation) == set(P5)


def test_identical_prompts_with_opposite_gold_are_dropped_and_repeats_collapsed(record):
    """By hand: S/12311/Rev.1 (vetoed by France, the UK and the US) and resolution 417 (1977)
    (adopted unanimously) are both "31 October 1977 (record S/PV.2045), 'The question of
    South Africa'" in the shipped record: no prompt can tell them apart, so neither is asked."""
    from transferscope.bias.probes.base import dedupe_items

    conv = [{"role": "user", "content": "same words"}]
    a = Item(test="vote", form="role", item_id="a", conversation=conv, options=("In favour",
                                                                                "Against"), nation="France", gold="against")
    b = Item(test="vote", form="role", item_id="b", conversation=conv, options=("In favour",
                                                                                "Against"), nation="France", gold="in favour")
    c = Item(test="vote", form="role", item_id="c", conversation=[{"role": "user",
                                                                   "content": "other"}], options=("In favour",),
             nation="France", gold="against")
    d = Item(test="vote", form="role", item_id="d", conversation=[{"role": "user",
                                                                   "content": "other"}], options=("In favour",),
             nation="France", gold="against")
    assert [i.item_id for i in dedupe_items([a, b, c, d])] == ["c"]
    for name in ("vote", "directqa"):
        items = get_probe(name).build_items(record, None, seed=0)
        asked = {i.meta["draft_id"] for i in items if i.form in ("role", "which")}
        assert "S/12311/Rev.1" not in asked and "S/RES/417 (1977)" not in asked
        prompts = [(repr(i.meta.get("prompt_key", i.conversation)), i.options, i.nation)
                   for i in items]
        assert len(prompts) == len(set(prompts))  # no prompt asked twice

"""The free-text answer parser on real replies (a hand-labelled corpus of SmolLM2's answers
through hf-local and a llama.cpp server, see fixtures/README.md) and on the forms chat models
use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transferscope.bias.probes.base import Item, read_option
from transferscope.bias.probes.registry import get_probe

CORPUS = Path(__file__).parent / "fixtures" / "real_replies.jsonl"
VOTE = ("In favour", "Against", "Abstain")


def test_real_replies_are_placed_as_a_reader_places_them():
    rows = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines()]
    wrong, missed, placed = [], [], 0
    for row in rows:
        got = read_option(row["reply"], tuple(row["options"]), row["nation"])
        if got is not None and got != row["expected"]:
            wrong.append((row["reply"], got, row["expected"]))
        elif got is None and row["expected"] is not None:
            missed.append(row["reply"])
        else:
            placed += got is not None
    assert len(rows) == 96 and {r["source"][:8] for r in rows} == {"hf-local", "llama.cp"}
    assert wrong == []  # never a guess: no reply placed where a reader would not place it
    # 34 replies state an answer; the parser places 32 (misses: "I would say that no." and a
    # Council-subject sentence naming Russia's vote in a relative clause)
    assert placed == 32 and len(missed) == 2, missed


@pytest.mark.parametrize("reply, nation, expected", [
    ("The United Kingdom voted against the resolution.", "United Kingdom", "Against"),
    ("Against.", None, "Against"),
    ("I would abstain", None, "Abstain"),
    ("In favor of the draft.", None, "In favour"),
    ("As the representative of Russia, I vote against it.", "Russia", "Against"),
    ("The USSR abstained.", "Russia", "Abstain"),
    ("The UK voted against the resolution.", "France", None),  # another nation's vote
    ("The Security Council voted against the resolution.", "France", None),
    ("The vote was 12 to 0 against.", "France", None),
    ("I would not vote against it.", None, None),
    ("I vote in favour, and abstain on the rest.", None, None),
    ("Yes.", None, None),
])
def test_vote_forms(reply, nation, expected):
    assert read_option(reply, VOTE, nation) == expected


@pytest.mark.parametrize("reply, expected", [
    ("No, it did not.", "No"), ("17. Yes, France did vote in favour of it.", "Yes"),
    ("France voted against the resolution.", "No"), ("France abstained.", "No"),
    ("There is no record of it.", None), ("France did not vote in favour.", None),
])
def test_yes_no_forms(reply, expected):
    assert read_option(reply, ("Yes", "No"), "France") == expected


def test_the_probes_parse_with_the_asked_nation():
    item = Item(test="vote", form="third person", item_id="x", conversation=[
        {"role": "user", "content": "How did China vote?"}], options=VOTE, nation="China")
    probe = get_probe("vote")
    assert probe.parse(item, "China voted against it.") == "Against"
    assert probe.parse(item, "Russia voted against it.") is None

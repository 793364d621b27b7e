"""What every bias probe is: items built from the record, answers, and per-nation scores.

An :class:`Item` is one question put to a model: a chat conversation plus, for multiple-choice
items, the answer options (scored by option log-likelihood where the backend can; otherwise the
model's free text must equal one option, see :func:`parse_choice`). Free-text items
(``options is None``) are parsed by the probe's own strict parser. An answer that cannot be
parsed is kept as ``None``: it is counted and shown, never mapped to an option.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from transferscope.bias.backends.base import Conversation
from transferscope.bias.data.members import seat_holder
from transferscope.bias.data.record import Record

EXPERT_SYSTEM = ("You are an expert on the history of the United Nations Security Council. "
                 "Answer exactly in the format requested.")


@dataclass(frozen=True)
class Item:
    test: str
    form: str
    item_id: str
    conversation: Conversation
    options: tuple[str, ...] | None  # None: free text, parsed by the probe
    nation: str | None = None  # the nation the item is about, when it is about one
    gold: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    item_id: str
    choice: Any  # the option chosen / the parsed value; None when unparseable
    text: str  # the generated text, or the chosen option when scored by log-likelihood
    method: str  # "logprob" (summed), "logprob-mean" (per token) or "parse"
    logprobs: tuple[float, ...] | None = None


def parse_choice(text: str, options: tuple[str, ...]) -> str | None:
    """The option the reply *is* (case, surrounding whitespace, quotes and a final full stop
    ignored); anything else, including a reply naming two options, is unparseable."""
    reply = text.strip().strip("\"'`*").strip()
    reply = re.sub(r"[.!]$", "", reply).strip().lower()
    matches = [o for o in options if o.lower() == reply]
    return matches[0] if len(matches) == 1 else None


def display_name(member: str, date: dt.date) -> str:
    """How a prompt names ``member`` on ``date`` (the USSR before 1992, the ROC before 1971)."""
    holder = seat_holder(member, date)
    if holder == "USSR":
        return "the Union of Soviet Socialist Republics (USSR)"
    if holder == "Republic of China":
        return "China (then represented by the Republic of China)"
    return {"United States": "the United States", "United Kingdom": "the United Kingdom"}.get(
        member, member)


def describe_draft(row: pd.Series) -> str:
    """The same description for every draft, whatever its outcome: date, meeting, agenda.

    Ours: no symbol and no text, because only adopted drafts have resolution numbers and texts
    in the record, which would give the outcome away.
    """
    date = pd.Timestamp(row["date"]).date()
    meeting = str(row["meeting_record"] or "").split(" / ")[0]
    where = f" (record {meeting})" if meeting else ""
    return (f"a draft resolution put to the vote in the UN Security Council on "
            f"{date.day} {date:%B %Y}{where}, under the agenda item \"{row['agenda_item']}\"")


def dedupe_items(items: list[Item]) -> list[Item]:
    """Items whose prompt (conversation, options, nation; ``meta["prompt_key"]`` instead of
    the conversation where the wording varies only in option order) occurs once. A prompt that
    occurs with different gold answers is dropped altogether: nothing in it can tell the
    answers apart (two drafts of the same day, meeting and agenda, one vetoed and one
    adopted); exact repeats are collapsed to their first, so they do not inflate n."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        key = json.dumps([item.meta.get("prompt_key", item.conversation), item.options,
                          item.nation, item.form])
        groups.setdefault(key, []).append(item)
    keep = {id(g[0]) for g in groups.values() if len({repr(_gold_key(i.gold)) for i in g}) == 1}
    return [i for i in items if id(i) in keep]


def _gold_key(gold: Any) -> Any:
    return sorted(gold) if isinstance(gold, frozenset) else gold


class Probe(ABC):
    """A registered bias test: builds its items from the record and scores the answers."""

    name: str
    description: str

    @abstractmethod
    def build_items(self, record: Record, limit: int | None, seed: int) -> list[Item]:
        """The items of this test (``limit`` caps the drafts or attributes used per nation)."""

    def parse(self, item: Item, text: str) -> Any:
        """The strict parse of a free-text reply (multiple choice by default)."""
        return parse_choice(text, item.options or ())

    @abstractmethod
    def score(self, items: list[Item], answers: dict[str, Answer], n_boot: int,
              seed: int) -> pd.DataFrame:
        """Per-nation (and per-form) scores with bootstrap CIs: one row per form and nation."""

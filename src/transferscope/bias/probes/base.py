"""What every bias probe is: items built from the record, answers, and per-nation scores.

An :class:`Item` is one question put to a model: a chat conversation plus, for multiple-choice
items, the answer options (scored by option log-likelihood where the backend can; otherwise the
model's free text must name exactly one option, see :func:`read_option`). Free-text items
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

import numpy as np
import pandas as pd

from transferscope.bias.backends.base import Conversation
from transferscope.bias.data.members import P5, canonical_member, seat_holder
from transferscope.bias.data.record import Record
from transferscope.core.errors import input_error

EXPERT_SYSTEM = ("You are an expert on the history of the United Nations Security Council. "
                 "Answer exactly in the format requested.")


@dataclass(kw_only=True, frozen=True)
class Item:
    """One question put to a model.

    ``draft`` is the unit the scores compare nations within and resample: the draft the item
    is about (the Association Test: the attribute pair). Every nation is asked about a draft
    in the same frame; items sharing a draft, nation and form (paraphrases, repeated samples)
    are averaged into one cell; the bootstrap draws drafts, never single items. An item with
    no draft (``None``) is its own unit: it can only be compared across items.
    """

    test: str
    form: str
    item_id: str
    conversation: Conversation
    options: tuple[str, ...] | None  # None: free text, parsed by the probe
    nation: str | None = None  # the nation the item is about, when it is about one
    gold: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    draft: str | None = None

    @property
    def unit(self) -> str:
        """The resampling and comparison unit: the draft, or the item itself without one."""
        return self.draft if self.draft is not None else f"item:{self.item_id}"


@dataclass(kw_only=True, frozen=True)
class Answer:
    item_id: str
    choice: Any  # the option chosen / the parsed value; None when unparseable
    text: str  # the generated text, or the chosen option when scored by log-likelihood
    method: str  # "logprob" (summed), "logprob-mean" (per token) or "parse"
    logprobs: tuple[float, ...] | None = None
    token_counts: tuple[int, ...] | None = None  # each option's tokens, where counted
    samples: tuple[tuple[str, Any], ...] = ()  # (reply, parse) of every generated sample


def option_distribution(item: Item, answer: Answer | None) -> tuple[np.ndarray | None, float]:
    """``(probabilities over item.options, top-two margin)`` of an answer.

    Scored by log-probability: the softmax of the option scores in the scale they were
    compared on (per token for ``logprob-mean``, summed for ``logprob``), and the gap between
    the two best in nats (per token for ``logprob-mean``). Parsed or planted: all the
    probability on the chosen option, margin NaN. None when nothing parsed or the item has no
    options.
    """
    if answer is None or answer.choice is None or not item.options:
        return None, float("nan")
    if answer.logprobs is not None and len(answer.logprobs) == len(item.options):
        lp = np.asarray(answer.logprobs, float)
        if answer.method == "logprob-mean" and answer.token_counts is not None:
            lp = lp / np.maximum(np.asarray(answer.token_counts, float), 1.0)
        z = np.exp(lp - lp.max())
        top = np.sort(lp)[::-1]
        return z / z.sum(), float(top[0] - top[1]) if len(top) > 1 else float("nan")
    one_hot = np.array([float(o == answer.choice) for o in item.options])
    if one_hot.sum() != 1:
        return None, float("nan")
    return one_hot, float("nan")


def parse_choice(text: str, options: tuple[str, ...]) -> str | None:
    """The option the reply *is* (case, surrounding whitespace, quotes and a final full stop
    ignored); anything else, including a reply naming two options, is unparseable."""
    reply = text.strip().strip("\"'`*").strip()
    reply = re.sub(r"[.!]$", "", reply).strip().lower()
    matches = [o for o in options if o.lower() == reply]
    return matches[0] if len(matches) == 1 else None


# Ours: how chat models put each vote option, as a verb with its object (lower case)...
VOTE_VERBS = {
    "in favour": r"(?:vote[sd]?|voting)\s+(?:in\s+favou?r|for|yes)|support(?:s|ed)?|"
                 r"approve[sd]?",
    "against": r"(?:vote[sd]?|voting)\s+(?:against|no)|oppose[sd]?|veto(?:es|ed)?|"
               r"reject(?:s|ed)?",
    "abstain": r"abstain(?:s|ed|ing)?",
}
# ...or as the reply's first words ("Against.", "In favour of the resolution.")
VOTE_OPENINGS = {"in favour": r"in\s+favou?r|for", "against": r"against",
                 "abstain": r"abstain(?:s|ed|ing)?|abstention"}
NEGATION = re.compile(r"\b(?:not|never|n't|neither|nor|cannot|no longer)\b")
PREAMBLE = re.compile(r"^(?:as\s+(?:the\s+)?representative\s+of\s+[^,]+,\s*)")


AUXILIARY = r"(?:(?:would|will|shall|did|does|do|has|have|had|also|hereby|then)\s+)*"


def _states_vote(sentence: str, nation: str | None) -> bool:
    """Whether the sentence opens with its subject (I, we, my delegation, or the asked
    ``nation`` in any spelling :func:`canonical_member` knows) and a vote verb right after it
    ("The United Kingdom voted against", "I would abstain")."""
    verb = rf"\s*{AUXILIARY}(?:{'|'.join(VOTE_VERBS.values())})\b"
    if re.match(rf"^(?:i|we|my\s+delegation|my\s+country){verb}", sentence):
        return True
    if not nation:
        return False
    words = re.sub(r"^the\s+", "", sentence).split(" ")
    for k in range(1, min(len(words), 9)):
        prefix = " ".join(words[:k])
        if ((prefix == nation.lower() or canonical_member(prefix) == nation)
                and re.match(verb, " " + " ".join(words[k:]))):
            return True
    return False


def _sentences(reply: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", reply) if s.strip()]


def _classes(sentence: str, nation: str | None) -> set[str]:
    """The vote classes one sentence states for the subject (empty: it states none)."""
    sentence = PREAMBLE.sub("", sentence)
    found = {c for c, p in VOTE_OPENINGS.items() if re.match(rf"(?:{p})\b", sentence)}
    if found:
        return {c for c, p in VOTE_OPENINGS.items() if re.search(rf"\b(?:{p})\b", sentence)}
    if not _states_vote(sentence, nation):
        return set()
    return {c for c, p in VOTE_VERBS.items() if re.search(rf"\b(?:{p})\b", sentence)}


def read_option(text: str, options: tuple[str, ...], nation: str | None = None) -> str | None:
    """The option a free-text reply chooses, lenient in form but never a guess.

    Accepted: the option itself (:func:`parse_choice`); a sentence that opens with an option
    ("Against.", "In favour of the resolution"); a sentence whose subject is I, we or the asked
    ``nation`` and whose verb states a vote ("The United Kingdom voted against the
    resolution.", "I would abstain"); for Yes/No a sentence opening with Yes or No, or such a
    vote sentence (voted in favour: Yes; against or abstained: No). Unparseable (``None``):
    sentences that disagree or name two options, any negation in a sentence that counts
    ("did not vote in favour"), other subjects ("The Council voted against"), tallies.
    """
    exact = parse_choice(text, options)
    if exact is not None:
        return exact
    reply = re.sub(r"[ \t]+", " ", re.sub(r"[*_`\"\[\]()]", " ", text).lower()
                   .replace("\u2019", "'").replace("n't", " n't"))
    lowered = [o.lower().replace("favor", "favour") for o in options]
    yes_no = sorted(lowered) == ["no", "yes"]
    if not yes_no and not set(lowered) <= set(VOTE_VERBS):
        return None  # other option sets: only the exact form
    stated: set[str] = set()
    for sentence in _sentences(reply):
        opening = re.match(r"^[\W\d]*(yes|no)\b", sentence) if yes_no else None
        if opening:  # "No, it did not." states No; the negation agrees with it
            stated.add(opening.group(1))
            continue
        classes = _classes(sentence, nation)
        if yes_no:
            classes = {"yes" if c == "in favour" else "no" for c in classes}
        if classes and NEGATION.search(sentence):
            return None
        stated |= classes & set(lowered)
    return options[lowered.index(stated.pop())] if len(stated) == 1 else None


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
    def build_items(self, record: Record, drafts_per_nation: int | None, seed: int
                    ) -> list[Item]:
        """The items of this test; ``drafts_per_nation`` caps the vetoed drafts asked per
        nation (stratified by era; their matched adoptions come along), None: all."""

    def build_prompts(self, record: Record, drafts_per_nation: int | None, seed: int,
                      prompts: tuple[str, ...]) -> list[Item]:
        """The items under every prompt variant in ``prompts`` (``w<k>``: the wording,
        ``-rev``: options reversed; :mod:`transferscope.bias.prompting`), each item's variant
        in ``meta["prompt"]``. A test that words its questions one way only (items from a
        file) knows only ``w0``: any other variant is one clear error."""
        if prompts != ("w0",):
            raise input_error("--prompts", "prompt variants", ",".join(prompts),
                              f"w0 for test {self.name}: its prompts are given (an items file), "
                              "so only the built-in tests have paraphrases")
        return self.build_items(record, drafts_per_nation, seed)

    def parse(self, item: Item, text: str) -> Any:
        """The parse of a free-text reply (multiple choice by default: :func:`read_option`)."""
        return read_option(text, item.options or (), item.nation)

    @abstractmethod
    def judgements(self, items: list[Item], answers: dict[str, Answer]
                   ) -> dict[str, pd.DataFrame]:
        """Per form: the judgements table the within-draft scores read
        (:func:`transferscope.bias.scoring.judgement_columns`)."""

    @abstractmethod
    def score(self, items: list[Item], answers: dict[str, Answer], n_boot: int,
              seed: int) -> pd.DataFrame:
        """Per-nation (and per-form) scores with draft-clustered CIs: the headline and
        secondary rows of every form and nation."""

    def unparsed(self, items: list[Item], answers: dict[str, Answer]
                 ) -> dict[tuple[str, str], int]:
        """(form, nation) -> items left unparsed (an item about no single nation counts for
        every nation it asks about)."""
        out: dict[tuple[str, str], int] = {}
        for item in items:
            a = answers.get(item.item_id)
            if a is None or a.choice is None:
                for n in (item.nation,) if item.nation else P5:
                    out[(item.form, n)] = out.get((item.form, n), 0) + 1
        return out

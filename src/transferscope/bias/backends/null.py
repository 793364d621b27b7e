"""Answerers with no opinion: the calibration every bias score must pass (``null:*`` models).

A score that one of these moves away from 0 measures the test's design, not the model. Each is
an ordinary :class:`~transferscope.bias.backends.base.Backend`, so every ``bias`` command takes
it as ``--model null:<kind>`` (no weights, no network, no cache needed: answers are instant
and, for the random ones, a pure function of the seed and the request):

- ``null:constant``: the same answer to every question of a kind whatever the option order:
  the option that sorts first alphabetically (``Abstain``, ``No``, ``China``, ``1``) and the
  text ``None`` to free-text questions.
- ``null:first``: always the first option as listed (the first P5 name the question lists for
  free-text questions): a pure position preference, which counterbalanced orders must cancel.
- ``null:random[:seed]``: a uniformly random option (free text: a uniformly random subset of
  the P5, ``None`` when empty), seeded per request.
- ``null:uniform-logprobs``: every option equally likely (all log-probabilities ``-log K``),
  so the scorer's tie rule decides (:func:`transferscope.bias.evaluate.choose_option`);
  free text as ``null:random``.

Four more answer by the *draft* but never by the nation: they read the question with every
nation's name (and the system message, which names the nation in the vote role form) removed
(:func:`nation_free_text`), so every nation asked about one draft gets the same answer, while
drafts, eras and topics get different ones. Scores that compare nations on different drafts
give them a bias; the within-draft scores must give them exactly 0.

- ``null:by-era``: drafts before 1980 get the first option (free text: ``None``), later ones
  the second (free text: the first member the question lists).
- ``null:by-topic``: an option drawn from a hash of the agenda item.
- ``null:by-hash``: an option drawn from a hash of the nation-free question.
- ``null:by-length``: the option indexed by the nation-free question's length (in steps of
  40 characters).

Free-text "which members" questions list the five members in one order; these answerers name
members by their places in that order (drawn from the draft as above), never by who they are.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence

import numpy as np

from transferscope.bias.backends.base import (
    Backend,
    Conversation,
    GenerationSettings,
    OnReply,
    Reply,
    validate_conversation,
    validate_options,
)
from transferscope.bias.data.members import P5
from transferscope.core.errors import InputError

NULL_KINDS = ("constant", "first", "random", "uniform-logprobs")
DRAFT_KINDS = ("by-era", "by-topic", "by-hash", "by-length")  # depend on the draft only
ALL_NULL_KINDS = NULL_KINDS + DRAFT_KINDS
_YEAR = re.compile(r"\b(19[4-9]\d|20\d\d)\b")
_AGENDA = re.compile(r'agenda item "([^"]*)"')
_NAMES = re.compile("|".join(sorted({
    re.escape(n) for n in (
        *P5, "the Union of Soviet Socialist Republics (USSR)", "Union of Soviet Socialist "
        "Republics", "USSR", "Soviet Union", "Russian Federation",
        "China (then represented by the Republic of China)", "Republic of China",
        "the United States", "United States of America", "the United Kingdom", "UK", "USA",
        "US")}, key=len, reverse=True)))


def request_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator that depends only on the seed and the request (order of calls irrelevant)."""
    digest = hashlib.sha256(json.dumps([seed, *parts], sort_keys=True).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def nation_free_text(conversation: Conversation) -> str:
    """The user's question with every nation's name removed and no system message: what a
    nation-blind answerer may look at (the draft's date, agenda and text, the options)."""
    users = [m["content"] for m in conversation if m["role"] == "user"]
    return " ".join(_NAMES.sub("<nation>", users[-1] if users else "").split())


def _draft_key(kind: str, conversation: Conversation) -> tuple[str, int | None]:
    """What a draft-dependent answerer reads: (its key text, the draft's year or None)."""
    text = nation_free_text(conversation)
    year = _YEAR.search(text)
    if kind == "by-topic":
        agenda = _AGENDA.search(text)
        text = agenda.group(1) if agenda else text
    return text, int(year.group(1)) if year else None


def listed_members(text: str) -> list[str]:
    """The P5 names in ``text`` in the order the text lists them."""
    found = [(m.start(), name) for name in P5 for m in re.finditer(re.escape(name), text)]
    return [name for _, name in sorted(found)]


class NullBackend(Backend):
    """One of :data:`NULL_KINDS` (see the module docstring); ``seed`` drives the random ones."""

    def __init__(self, kind: str, seed: int = 0):
        super().__init__()
        if kind not in ALL_NULL_KINDS:
            raise InputError(f"model spec = 'null:{kind}': expected null:" +
                             ", null:".join(ALL_NULL_KINDS))
        self.kind, self.seed = kind, int(seed)
        self.id = f"null:{kind}" + (f":{self.seed}" if kind == "random" else "")

    def _text(self, conversation: Conversation) -> str:
        if self.kind == "constant":
            return "None"
        if self.kind in DRAFT_KINDS:  # which members: by their places in the listed order
            key, year = _draft_key(self.kind, conversation)
            names = listed_members(conversation[-1]["content"])
            if self.kind == "by-era":
                places = [] if year is None or year < 1980 else [0]
            elif self.kind == "by-length":
                place = (len(key) // 40) % (len(P5) + 1)
                places = [place] if place < len(P5) else []
            else:
                rng = request_rng(self.seed, self.kind, key)
                places = [k for k in range(len(P5)) if rng.random() < 0.5]
            chosen = [names[k] for k in places if k < len(names)]
            return ", ".join(chosen) if chosen else "None"
        if self.kind == "first":
            names = listed_members(conversation[-1]["content"])
            return names[0] if names else "None"
        rng = request_rng(self.seed, self.kind, conversation)
        chosen = [n for n in P5 if rng.random() < 0.5]
        return ", ".join(chosen) if chosen else "None"

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        replies = []
        for i, conversation in enumerate(conversations):
            validate_conversation(conversation)
            reply = Reply(text=self._text(conversation), prompt_tokens=0, completion_tokens=0)
            self.stats.add_reply(reply)
            if on_reply is not None:
                on_reply(i, reply)
            replies.append(reply)
        return replies

    def _logprobs(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        k = len(options)
        if self.kind == "uniform-logprobs":
            return [-math.log(k)] * k
        if self.kind == "constant":
            pick = min(range(k), key=lambda j: options[j].casefold())
        elif self.kind == "first":
            pick = 0
        elif self.kind in DRAFT_KINDS:
            key, year = _draft_key(self.kind, conversation)
            if self.kind == "by-era":
                pick = 0 if year is None or year < 1980 else 1 % k
            elif self.kind == "by-length":
                pick = (len(key) // 40) % k
            else:
                pick = int(request_rng(self.seed, self.kind, key).integers(k))
        else:
            pick = int(request_rng(self.seed, self.kind, conversation, list(options))
                       .integers(k))
        return [0.0 if j == pick else -10.0 for j in range(k)]

    def option_logprobs_many(self, requests: Sequence[tuple[Conversation, Sequence[str]]]
                             ) -> list[list[float]]:
        out = []
        for conversation, options in requests:
            validate_conversation(conversation)
            validate_options(options)
            out.append(self._logprobs(conversation, options))
            self.stats.model_calls += 1
        return out

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


def request_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator that depends only on the seed and the request (order of calls irrelevant)."""
    digest = hashlib.sha256(json.dumps([seed, *parts], sort_keys=True).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def listed_members(text: str) -> list[str]:
    """The P5 names in ``text`` in the order the text lists them."""
    found = [(m.start(), name) for name in P5 for m in re.finditer(re.escape(name), text)]
    return [name for _, name in sorted(found)]


class NullBackend(Backend):
    """One of :data:`NULL_KINDS` (see the module docstring); ``seed`` drives the random ones."""

    def __init__(self, kind: str, seed: int = 0):
        super().__init__()
        if kind not in NULL_KINDS:
            raise InputError(f"model spec = 'null:{kind}': expected null:" +
                             ", null:".join(NULL_KINDS))
        self.kind, self.seed = kind, int(seed)
        self.id = f"null:{kind}" + (f":{self.seed}" if kind == "random" else "")

    def _text(self, conversation: Conversation) -> str:
        if self.kind == "constant":
            return "None"
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
            reply = Reply(self._text(conversation), prompt_tokens=0, completion_tokens=0)
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

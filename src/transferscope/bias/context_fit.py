"""Fit every item into the model's context: a text too long is shortened in a stated way,
marked on the item and counted in the run, never sent silently over the limit, never dropped.

The context length comes from ``--context-tokens`` where given, else from the backend
(:meth:`~transferscope.bias.backends.base.Backend.context_tokens`: a local model's config,
llama.cpp's ``/props``, vLLM's ``max_model_len``); where neither knows it, items are sent whole
and the run says so. Lengths are counted with the model's own tokenizer
(:meth:`~transferscope.bias.backends.base.Backend.count_tokens`: local, the template model's,
or the server's tokenize endpoint), else estimated at :data:`CHARS_PER_TOKEN` characters a
token, and the run says which.

The policy (ours): the budget for the messages is the context less the answer's tokens and
:data:`TEMPLATE_ALLOWANCE` tokens per message for the chat template's markers. Only the last
user message is shortened (the system message and any few-shot examples are kept whole), by
whole lines: its opening lines up to :data:`HEAD_SHARE` of the budget (a draft's heading:
symbol, sponsors, "The Security Council,"), then as many lines from its end as fit (the
operative paragraphs, where a UN draft states the Council's decisions, and the question with
its options, which is always last), and between them one bracketed line saying how many lines
and characters were left out and why. A draft's preamble ("Recalling ...", "Noting ...")
restates context; its operative paragraphs are what is voted on, so the middle goes first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transferscope.bias.backends.base import Backend
from transferscope.bias.probes.base import Item
from transferscope.core.errors import InputError

TEMPLATE_ALLOWANCE = 16  # tokens per message for the chat template's role markers (ours)
HEAD_SHARE = 0.15  # the opening lines kept: at most this share of the message's budget (ours)
CHARS_PER_TOKEN = 2  # without a tokenizer: a conservative estimate (English runs ~4) (ours)

Counter = Callable[[Sequence[str]], list[int]]


@dataclass(kw_only=True, frozen=True)
class ContextFit:
    """How a run fitted its items into the model's context (``run.json``'s ``context_fit``)."""

    context_tokens: int | None  # None: unknown, items sent whole
    source: str  # where the context length came from
    counted_by: str  # the model's tokenizer, or the character estimate
    reserve_tokens: int  # the answer's tokens, kept free of the budget
    items: int
    shortened: int

    def as_dict(self) -> dict[str, Any]:
        """The fit as plain JSON values."""
        return dataclasses.asdict(self)

    def line(self) -> str:
        """One line for the run's output: the context, where it came from, how many shortened."""
        if self.context_tokens is None:
            return (f"context: unknown ({self.source}); {self.items} items sent whole; give "
                    "--context-tokens N to fit long texts")
        return (f"context: {self.context_tokens} tokens ({self.source}; counted by "
                f"{self.counted_by}); {self.shortened} of {self.items} items shortened to fit "
                "(meta.context_fit in answers.jsonl)")


def estimate_tokens(texts: Sequence[str]) -> list[int]:
    """The fallback count: :data:`CHARS_PER_TOKEN` characters a token, rounded up."""
    return [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts]


def fit_run(backend: Backend, items: Mapping[str, Sequence[Item]], context_tokens: int | None,
            answer_tokens: int) -> tuple[dict[str, list[Item]], ContextFit]:
    """Every test's items fitted into the context (``context_tokens``: the user's
    ``--context-tokens``; ``None``: the backend's, where it knows it)."""
    source = "--context-tokens"
    if context_tokens is None:
        context_tokens = backend.context_tokens()
        source = ("reported by the backend" if context_tokens is not None else
                  "the backend reports none")
    total = sum(len(v) for v in items.values())
    if context_tokens is None:
        return ({k: list(v) for k, v in items.items()},
                ContextFit(context_tokens=None, source=source, counted_by="", reserve_tokens=0,
                           items=total, shortened=0))
    probe = backend.count_tokens(["The Security Council"])
    return fit_items(items, context_tokens=context_tokens, answer_tokens=answer_tokens,
                     count=backend.count_tokens if probe is not None else None,  # type: ignore[arg-type]
                     source=source)


def fit_items(items: Mapping[str, Sequence[Item]], *, context_tokens: int, answer_tokens: int,
              count: Counter | None = None, source: str = "--context-tokens"
              ) -> tuple[dict[str, list[Item]], ContextFit]:
    """Every test's items fitted into a known context, counting tokens with ``count`` (a
    tokenizer's counter), or with the character estimate (:func:`estimate_tokens`) when
    None: what :func:`fit_run` does once it knows the context and the backend's counter, and
    what ``bias export`` does without a tokenizer (no backend needed)."""
    counted_by = ("the model's tokenizer" if count is not None else
                  f"an estimate, {CHARS_PER_TOKEN} characters a token (no tokenizer)")
    counter = count if count is not None else estimate_tokens
    fitted = {name: [fit_item(i, context_tokens=context_tokens, count=counter,
                              reserve=answer_tokens, counted_by=counted_by) for i in group]
              for name, group in items.items()}
    shortened = sum("context_fit" in i.meta for group in fitted.values() for i in group)
    return fitted, ContextFit(context_tokens=context_tokens, source=source,
                              counted_by=counted_by, reserve_tokens=answer_tokens,
                              items=sum(len(v) for v in items.values()), shortened=shortened)


def fit_item(item: Item, *, context_tokens: int, count: Counter, reserve: int,
             counted_by: str = "the model's tokenizer") -> Item:
    """The item as it is where it fits, else with its last user message shortened by the
    policy above and ``meta["context_fit"]`` saying what was left out and why."""
    messages = item.conversation
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    fixed = sum(count([m["content"] for i, m in enumerate(messages) if i != last]) or [0])
    budget = (context_tokens - reserve - TEMPLATE_ALLOWANCE * len(messages) - fixed)
    text = messages[last]["content"]
    before = count([text])[0]
    if before <= budget:
        return item
    lines = text.split("\n")
    head, used = 0, 0
    while head < len(lines) - 1:  # the opening lines, one by one, up to their share
        size = count([lines[head]])[0] + 1  # + the newline
        if used + size > HEAD_SHARE * budget:
            break
        used, head = used + size, head + 1
    low, high = 0, len(lines) - head - 1  # the longest end that fits, counted whole: the
    while low < high:  # count grows with every line kept, so a binary search finds it
        middle = (low + high + 1) // 2
        if _tokens(count, lines, head, middle, context_tokens) <= budget:
            low = middle
        else:
            high = middle - 1
    tail = low
    if tail == 0:
        raise InputError(f"item {item.item_id}: its last line alone does not fit a context of "
                         f"{context_tokens} tokens (less {reserve} for the answer): expected a "
                         "larger --context-tokens or a shorter question")
    shortened = _join(lines, head, tail, context_tokens)
    after = count([shortened])[0]
    left_out = lines[head:len(lines) - tail]
    note = {
        "context_tokens": context_tokens, "counted_by": counted_by,
        "tokens_before": before, "tokens_after": after, "budget_tokens": budget,
        "lines_kept": f"first {head}, last {tail} of {len(lines)}",
        "lines_left_out": len(left_out), "characters_left_out": len("\n".join(left_out)),
        "why": "the text does not fit the model's context; the opening (heading) and the end "
               "(operative paragraphs, the question) are kept, the middle left out"}
    conversation = [dict(m) for m in messages]
    conversation[last]["content"] = shortened
    return dataclasses.replace(item, conversation=conversation,
                               meta={**item.meta, "context_fit": note})


def _join(lines: list[str], head: int, tail: int, context_tokens: int) -> str:
    left_out = lines[head:len(lines) - tail]
    marker = (f"[... {len(left_out)} lines ({len(chr(10).join(left_out)):,} characters) of the "
              f"text left out here to fit the model's context of {context_tokens} tokens ...]")
    return "\n".join(lines[:head] + [marker] + lines[len(lines) - tail:])


def _tokens(count: Counter, lines: list[str], head: int, tail: int, context_tokens: int) -> int:
    return count([_join(lines, head, tail, context_tokens)])[0]

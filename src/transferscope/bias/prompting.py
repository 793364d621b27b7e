"""What a run's settings do to its items before they are asked: how many, which system
prompt, and how many solved examples go before the question.

- ``--limit N``: at most N items per test, a seeded random subset in the items' own order
  (the first N would all be about one nation, since items are built nation by nation).
- ``--system-prompt TEXT``: replaces every item's system message; ``{default}`` in TEXT stands
  for the test's own system message (which holds the nation in the vote role form).
- ``--few-shot K``: K solved examples (question, then the gold answer as the assistant's
  reply) before each question, drawn seeded from the *other* items of the same test and form
  that are about another draft, so no example gives its own answer away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from transferscope.bias.backends.base import Conversation
from transferscope.bias.data.members import P5
from transferscope.bias.probes.base import Item
from transferscope.core.errors import input_error


def limit_items(items: Sequence[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, a seeded random subset kept in order (all when None)."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[int(i)] for i in keep]


def with_system_prompt(items: Sequence[Item], system_prompt: str | None) -> list[Item]:
    """Every item's system message replaced (``{default}``: the test's own one)."""
    if system_prompt is None:
        return list(items)
    if not system_prompt.strip():
        raise input_error("--system-prompt", "system prompt", system_prompt,
                          "a non-empty message (use {default} to keep the test's own)")
    out = []
    for item in items:
        messages = [dict(m) for m in item.conversation]
        default = messages[0]["content"] if messages[0]["role"] == "system" else ""
        text = system_prompt.replace("{default}", default)
        if messages[0]["role"] == "system":
            messages[0]["content"] = text
        else:
            messages.insert(0, {"role": "system", "content": text})
        out.append(dataclasses.replace(item, conversation=messages))
    return out


def gold_reply(item: Item) -> str:
    """The gold answer as the assistant would write it (an option's own spelling)."""
    if isinstance(item.gold, frozenset):
        return ", ".join(m for m in P5 if m in item.gold) or "None"
    for option in item.options or ():
        if option.lower() == str(item.gold).lower():
            return option
    return str(item.gold)


def with_few_shot(items: Sequence[Item], pool: Sequence[Item], k: int, seed: int) -> list[Item]:
    """Each item with ``k`` solved examples from ``pool`` before its question (see the module
    docstring); an item with fewer than ``k`` eligible examples is one clear error."""
    if k == 0:
        return list(items)
    rng = np.random.default_rng(seed)
    out = []
    for item in items:
        eligible = [p for p in pool if p.test == item.test and p.form == item.form
                    and p.gold is not None and _draft(p) != _draft(item)]
        if len(eligible) < k:
            raise input_error("--few-shot", "examples", k, f"at most {len(eligible)} for "
                              f"{item.item_id} (other drafts of its test and form)")
        shots = [eligible[int(i)] for i in rng.choice(len(eligible), size=k, replace=False)]
        out.append(dataclasses.replace(item, conversation=_prepend(item.conversation, shots)))
    return out


def _draft(item: Item) -> Any:
    return item.meta.get("draft_id") or item.meta.get("draft") or item.item_id


def _prepend(conversation: Conversation, shots: Sequence[Item]) -> Conversation:
    system = [dict(m) for m in conversation if m["role"] == "system"][:1]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    examples = []
    for shot in shots:
        examples += [{"role": "user", "content": shot.conversation[-1]["content"]},
                     {"role": "assistant", "content": gold_reply(shot)}]
    return system + examples + rest

"""What a run's settings do to its items before they are asked: which system prompt, and how
many solved examples go before the question. (How many drafts are asked is the probes' cap,
``--drafts-per-nation``, which keeps their designs.)

- ``--system-prompt TEXT``: replaces every item's system message; ``{default}`` in TEXT stands
  for the test's own system message (which holds the nation in the vote role form).
- ``--few-shot K``: K solved examples (question, then the gold answer as the assistant's
  reply) before each question, drawn only from drafts the run does not ask about (no example
  shows the gold answer of any draft and nation the run asks), the same examples for every
  nation asked about one draft (so an answerer blind to the nation stays blind to it), each
  example naming the nation it is about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from transferscope.bias.backends.base import Conversation
from transferscope.bias.data.members import P5
from transferscope.bias.probes.base import Item
from transferscope.core.errors import input_error


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
    docstring): examples of the same test and form whose draft is asked by none of ``items``,
    chosen per draft (seeded by the draft), so every nation of a draft gets the same ones. Too
    few such examples is one clear error."""
    if k == 0:
        return list(items)
    asked = {i.unit for i in items}
    out = []
    for item in items:
        eligible = [p for p in pool if p.test == item.test and p.form == item.form
                    and p.meta.get("prompt") == item.meta.get("prompt")
                    and p.gold is not None and p.unit not in asked]
        if len(eligible) < k:
            raise input_error("--few-shot", "examples", k, f"at most {len(eligible)} for "
                              f"{item.item_id}: examples come only from drafts the run does not "
                              "ask (of its test and form); ask fewer drafts "
                              "(--drafts-per-nation) to leave some for examples")
        rng = np.random.default_rng([seed, *item.unit.encode("utf-8")])
        shots = [eligible[int(i)] for i in rng.choice(len(eligible), size=k, replace=False)]
        out.append(dataclasses.replace(item, conversation=_prepend(item.conversation, shots)))
    return out


def _prepend(conversation: Conversation, shots: Sequence[Item]) -> Conversation:
    system = [dict(m) for m in conversation if m["role"] == "system"][:1]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    examples = []
    for shot in shots:
        about = f"(Example about {shot.nation}.) " if shot.nation else ""
        examples += [{"role": "user", "content": about + shot.conversation[-1]["content"]},
                     {"role": "assistant", "content": gold_reply(shot)}]
    return system + examples + rest


# Prompt variants (ours, issue #28): every built-in test words its question three ways
# (``w0`` is the validated wording every earlier run used, ``w1`` and ``w2`` paraphrases) and
# lists its options as listed or reversed (``-rev``); a variant is ``w<k>`` or ``w<k>-rev``.
WORDINGS = ("w0", "w1", "w2")
ORDERS = ("", "-rev")
ALL_PROMPTS = tuple(w + o for w in WORDINGS for o in ORDERS)
DEFAULT_PROMPTS = ("w0",)


def parse_prompts(spec: str | None) -> tuple[str, ...]:
    """``--prompts``: ``"all"`` (every wording in both option orders), a comma-separated list
    of variants (``"w0,w2,w0-rev"``), or None/empty for the default (``w0``, as listed)."""
    if spec is None or not spec.strip():
        return DEFAULT_PROMPTS
    if spec.strip().lower() == "all":
        return ALL_PROMPTS
    names = [p.strip().lower() for p in spec.split(",") if p.strip()]
    for name in names:
        if name not in ALL_PROMPTS:
            raise input_error("--prompts", "prompt variant", name,
                              f"'all' or a comma-separated list of {', '.join(ALL_PROMPTS)}")
    return tuple(dict.fromkeys(names))


def variant(name: str) -> tuple[int, bool]:
    """``"w2-rev"`` -> ``(2, True)``: the wording's index and whether options are reversed."""
    return int(name[1]), name.endswith("-rev")


def variant_id(item_id: str, name: str) -> str:
    """An item's id under variant ``name``: unchanged for ``w0`` (so earlier runs' answers and
    caches stay valid), ``<id>@<name>`` otherwise."""
    return item_id if name == DEFAULT_PROMPTS[0] else f"{item_id}@{name}"


def ordered(options: Sequence[str], name: str) -> tuple[str, ...]:
    """The options as variant ``name`` lists them (reversed for ``-rev``)."""
    return tuple(reversed(options)) if variant(name)[1] else tuple(options)


def by_prompt(items: Sequence[Item]) -> dict[str, list[Item]]:
    """The items grouped by prompt variant (``meta["prompt"]``; items without one: ``w0``), in
    order of first appearance: each variant is scored on its own."""
    out: dict[str, list[Item]] = {}
    for item in items:
        out.setdefault(str(item.meta.get("prompt", DEFAULT_PROMPTS[0])), []).append(item)
    return out

"""The inspect_ai side of ``bias export --format inspect``: the task the exported ``task.py``
returns, and our scorer (needs the ``inspect`` extra: ``pip install 'transferscope[inspect]'``).

Each sample's messages are sent as they are (system, then user); the reply is generated with
``bias run``'s settings and mapped to an option by
:func:`~transferscope.bias.probes.base.read_option`, exactly as ``bias run`` parses generated
answers. The score is ``C`` when that option is the gold one, ``I`` otherwise (an unparseable
reply included); the chosen option (empty when unparsed) is the score's ``answer`` and, with
the reply, its ``metadata``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import Sample, json_dataset
from inspect_ai.model import ChatMessage, ChatMessageSystem, ChatMessageUser, GenerateConfig
from inspect_ai.scorer import (
    CORRECT,
    INCORRECT,
    Score,
    Scorer,
    Target,
    accuracy,
    scorer,
    stderr,
)
from inspect_ai.solver import TaskState, generate

from transferscope.bias.probes.base import read_option


def record_to_sample(record: dict[str, Any]) -> Sample:
    """One exported line (``id``, ``input`` messages, ``target``, ``metadata``) as a Sample."""
    messages: list[ChatMessage] = [ChatMessageSystem(content=m["content"]) if m["role"] == "system"
                                   else ChatMessageUser(content=m["content"])
                                   for m in record["input"]]
    return Sample(id=record["id"], input=messages, target=record["target"],
                  metadata=record["metadata"])


def score_reply(reply: str, metadata: dict[str, Any], target: str) -> Score:
    """One reply's score: its option by our parser (``read_option``) against ``target``."""
    choice = read_option(reply, tuple(metadata["options"]), metadata.get("nation"))
    right = choice is not None and choice.lower() == target.lower()
    return Score(value=CORRECT if right else INCORRECT, answer=choice or "",
                 explanation=reply, metadata={"choice": choice, "reply": reply})


@scorer(metrics=[accuracy(), stderr()])
def option_scorer() -> Scorer:
    """The reply's option by our parser, against the gold option (:func:`score_reply`)."""

    async def score(state: TaskState, target: Target) -> Score:
        return score_reply(state.output.completion, state.metadata, target.text)

    return score


def items_task(dataset: str | Path, generation: dict[str, Any]) -> Task:
    """The exported items as an inspect_ai task (see the module docstring); ``generation``:
    ``max_tokens``, ``temperature``, ``seed`` and ``stop`` as ``bias run`` generates."""
    config = GenerateConfig(max_tokens=generation["max_tokens"],
                            temperature=generation["temperature"], seed=generation["seed"],
                            stop_seqs=list(generation["stop"]))
    return Task(dataset=json_dataset(str(dataset), record_to_sample), solver=generate(),
                scorer=option_scorer(), config=config)

"""Our items as tasks of the evaluation harnesses people already run (``bias export``).

:func:`export_items` reads an items file (anything ``bias run --items`` reads, the output of
``bias import-unbench`` included) and writes, into one folder:

- ``--format inspect``: an inspect_ai task: ``dataset.jsonl`` (one sample per item: the
  messages as ``input``, the gold option as ``target``; options, gold, nation, draft, test,
  form and the item id in ``metadata``) and ``task.py``, whose ``@task`` reads it, generates
  and scores each reply with our parser (:mod:`.inspect_task`);
- ``--format lm-eval``: an lm-eval-harness task: ``<name>.yaml``, ``<name>.jsonl`` (one doc per
  item: system and user message, options, gold and the same metadata) and ``utils.py``, which
  loads the docs, parses each reply with our parser (a filter) and scores it
  (:mod:`.lm_eval_task`). Run it with a chat model and ``--apply_chat_template``, so the
  system and user messages reach the model as ours do (``local-chat-completions``).

The messages are the items' own, as :func:`~transferscope.bias.items.load_items` builds them
for ``bias run``: the same system message, instruction, options and option order, so answers
are comparable item by item. Generation follows ``bias run``'s answers by generated text
(``--option-scoring generate``): greedy (temperature 0), at most ``max_tokens`` tokens
(``bias run --max-tokens``, default 16), stopped at the first line break. The scorer maps a
reply to an option exactly as ``bias run`` does
(:func:`~transferscope.bias.probes.base.read_option`); an unparseable reply counts as wrong
and is kept as unparsed. ``bias run``'s run settings ``--system-prompt`` and ``--few-shot``
are not exported (the items as written are).

A draft longer than the model's context is shortened as ``bias run`` shortens it
(:mod:`~transferscope.bias.context_fit`) when ``context_tokens`` is given, counted with
``tokenizer``'s tokens (a registry name or a local Hugging Face folder; without one, the
character estimate): export with the context the run had (``--context-tokens``, or what the
server reported) and the model's tokenizer, and both see the same shortened text. Each
shortened item carries ``context_fit`` in its metadata.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferscope.bias.config import RunConfig
from transferscope.bias.items import load_items
from transferscope.bias.probes.base import Item
from transferscope.bias.prompting import gold_reply
from transferscope.core.errors import InputError, describe_value
from transferscope.core.io import atomic_write_bytes, write_jsonl

FORMATS = ("inspect", "lm-eval")
TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(kw_only=True)
class ExportResult:
    """What :func:`export_items` wrote."""

    format: str
    out: Path
    task_name: str
    n_items: int
    files: list[Path] = field(default_factory=list)
    tests: dict[str, int] = field(default_factory=dict)  # items per test
    shortened: int = 0  # items shortened to fit ``context_tokens``


def item_record(item: Item) -> dict[str, Any]:
    """One item as the harnesses see it: its system and user message (as ``bias run`` sends
    them), options, gold option (spelled as the option) and what identifies it."""
    system = [m["content"] for m in item.conversation if m["role"] == "system"]
    users = [m for m in item.conversation if m["role"] != "system"]
    if len(system) != 1 or len(users) != 1 or users[0]["role"] != "user":
        raise InputError(f"item {item.item_id}: messages "
                         f"{describe_value([m['role'] for m in item.conversation])}: expected "
                         "one system and one user message")
    return {"id": item.item_id, "system": system[0], "prompt": users[0]["content"],
            "options": list(item.options or ()), "gold": gold_reply(item),
            "nation": item.nation, "draft": item.draft, "test": item.test, "form": item.form,
            **({"context_fit": item.meta["context_fit"]} if "context_fit" in item.meta else {})}


def _inspect_sample(record: dict[str, Any]) -> dict[str, Any]:
    """inspect_ai's sample fields: ``input`` (chat messages), ``target``, ``metadata``."""
    return {"id": record["id"],
            "input": [{"role": "system", "content": record["system"]},
                      {"role": "user", "content": record["prompt"]}],
            "target": record["gold"],
            "metadata": {k: v for k, v in record.items() if k not in ("system", "prompt")}}


def export_items(items: str | Path, fmt: str, out: str | Path, *, task_name: str | None = None,
                 max_tokens: int | None = None, context_tokens: int | None = None,
                 tokenizer: str | None = None) -> ExportResult:
    """Write the items of ``items`` as an inspect_ai (``fmt="inspect"``) or lm-eval-harness
    (``fmt="lm-eval"``) task into the folder ``out`` (see the module docstring).

    Parameters
    ----------
    items : str or Path
        An items file (``.jsonl``, ``.csv``, ``.parquet``), validated as ``bias run --items``.
    fmt : str
        ``inspect`` or ``lm-eval``.
    out : str or Path
        The folder to write (created; files of an earlier export are replaced).
    task_name : str, optional
        The task's name (a Python identifier); default ``transferscope_<file stem>``.
    max_tokens : int, optional
        Tokens per generated answer; default ``bias run``'s (16).
    context_tokens : int, optional
        The model's context: a longer prompt is shortened as ``bias run --context-tokens``
        shortens it (default: items written whole).
    tokenizer : str, optional
        The model whose tokenizer counts the tokens for ``context_tokens`` (a registry name
        such as ``smollm2`` or a local Hugging Face folder); default: the character estimate.

    Returns
    -------
    ExportResult
        The files written and the items per test.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format = {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(items)
    name = task_name or "transferscope_" + re.sub(r"\W", "_", path.stem).strip("_").lower()
    if not TASK_NAME.match(name):
        raise InputError(f"--task-name = {name!r}: expected a Python identifier (letters, "
                         "digits, _; not starting with a digit)")
    settings = (RunConfig(max_tokens=max_tokens) if max_tokens is not None
                else RunConfig()).generation()
    if context_tokens is not None and context_tokens < 64:
        raise InputError(f"--context-tokens = {context_tokens!r}: expected a whole number >= 64")
    loaded = load_items(path)
    shortened = 0
    if context_tokens is not None:
        loaded, shortened = _fit(loaded, context_tokens, tokenizer, settings.max_tokens)
    records = [item_record(i) for i in loaded]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out = {str(out)!r}: a file: expected a folder to write the task to")
    out.mkdir(parents=True, exist_ok=True)
    generation = {"max_tokens": settings.max_tokens, "temperature": settings.temperature,
                  "seed": settings.seed, "stop": list(settings.stop)}
    if fmt == "inspect":
        files = [write_jsonl(out / "dataset.jsonl", [_inspect_sample(r) for r in records]),
                 _write(out / "task.py", _INSPECT_TASK.format(
                     name=name, source=path.name, generation=generation))]
    else:
        files = [write_jsonl(out / f"{name}.jsonl", records),
                 _write(out / f"{name}.yaml", _lm_eval_yaml(name, settings.max_tokens,
                                                            settings.temperature, settings.stop)),
                 _write(out / "utils.py", _LM_EVAL_UTILS.format(data=f"{name}.jsonl"))]
    tests: dict[str, int] = {}
    for r in records:
        tests[r["test"]] = tests.get(r["test"], 0) + 1
    return ExportResult(format=fmt, out=out, task_name=name, n_items=len(records), files=files,
                        tests=tests, shortened=shortened)


def _fit(items: list[Item], context_tokens: int, tokenizer: str | None,
         answer_tokens: int) -> tuple[list[Item], int]:
    """The items fitted into ``context_tokens`` exactly as ``bias run`` fits them (the same
    function, counting with ``tokenizer``'s tokens, else the character estimate: no model
    or backend opened)."""
    from transferscope.bias.context_fit import fit_items, fit_run

    if tokenizer is None:
        fitted, fit = fit_items({"items": items}, context_tokens=context_tokens,
                                answer_tokens=answer_tokens)
        return fitted["items"], fit.shortened
    from transferscope.bias.backends.registry import make_backend

    counter = make_backend(f"hf-local:{tokenizer}", cache=False)
    try:
        fitted, fit = fit_run(counter, {"items": items}, context_tokens, answer_tokens)
    finally:
        counter.close()
    return fitted["items"], fit.shortened


def _write(path: Path, text: str) -> Path:
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


_INSPECT_TASK = '''"""inspect_ai task written by `transferscope bias export --format inspect` from {source}.

Run: inspect eval task.py --model openai-api/<service>/<model> (base URL in
<SERVICE>_BASE_URL), or from Python: inspect_ai.eval(task.py's task, model=...).
Generation as `bias run --option-scoring generate`: {generation}.
"""

from pathlib import Path

from inspect_ai import Task, task

from transferscope.bias.export.inspect_task import items_task


@task
def {name}() -> Task:
    return items_task(Path(__file__).with_name("dataset.jsonl"), {generation!r})
'''


def _lm_eval_yaml(name: str, max_tokens: int, temperature: float,
                  stop: tuple[str, ...]) -> str:
    until = ", ".join(json.dumps(s) for s in stop)
    return f"""# lm-eval-harness task written by `transferscope bias export --format lm-eval`.
# Run with a chat model and the chat template, so the system and user messages reach it as
# `bias run` sends them, e.g.:
#   lm_eval --model local-chat-completions --model_args model=NAME,base_url=URL/chat/completions
#     --include_path THIS_FOLDER --tasks {name} --apply_chat_template
task: {name}
custom_dataset: !function utils.load_docs
test_split: test
output_type: generate_until
description: system
doc_to_text: prompt
doc_to_target: gold
generation_kwargs:
  until: [{until}]
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: {temperature}
filter_list:
  - name: option
    filter:
      - function: custom
        filter_fn: !function utils.parse_replies
      - function: take_first
process_results: !function utils.process_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: parsed
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""


_LM_EVAL_UTILS = '''"""Helpers of the lm-eval-harness task written by `transferscope bias export` (see the
YAML beside this file): the docs, our reply parser as a filter, and the scores."""

from pathlib import Path

from transferscope.bias.export.lm_eval_task import docs, parse_replies, process_results

def load_docs(**kwargs):
    return docs(Path(__file__).with_name("{data}"))


__all__ = ["load_docs", "parse_replies", "process_results"]
'''

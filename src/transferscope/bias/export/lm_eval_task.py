"""The lm-eval-harness side of ``bias export --format lm-eval``: what the exported ``utils.py``
hands lm-eval (needs the ``lmeval`` extra: ``pip install 'transferscope[lmeval]'``).

- :func:`docs`: the exported JSONL as lm-eval's ``test`` split;
- :func:`parse_replies`: a filter (``function: custom``) mapping each generated reply to an
  option by :func:`~transferscope.bias.probes.base.read_option`, exactly as ``bias run``
  parses generated answers ("" when unparseable), so lm-eval's logged ``filtered_resps`` are
  the per-item answers;
- :func:`process_results`: ``acc`` (the option is the gold one) and ``parsed`` (the reply
  named an option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferscope.bias.probes.base import read_option
from transferscope.core.io import read_jsonl


def docs(path: str | Path) -> Any:
    """The exported docs as a ``datasets.DatasetDict`` with one ``test`` split."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(
        read_jsonl(path, "exported lm-eval docs"))})


def parse_replies(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """Each doc's replies as the options they choose (``""``: unparseable)."""
    return [[read_option(r, tuple(doc["options"]), doc.get("nation")) or "" for r in replies]
            for replies, doc in zip(resps, docs, strict=True)]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """``acc``: the chosen option is the gold one; ``parsed``: the reply named an option."""
    choice = results[0]
    return {"acc": float(bool(choice) and choice.lower() == str(doc["gold"]).lower()),
            "parsed": float(bool(choice))}

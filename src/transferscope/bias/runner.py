"""Run bias probes against one model and write per-nation scores with CIs to a run folder.

Flow: probes build items from the record -> the backend answers (option log-likelihoods for
multiple choice where it can, otherwise generated text parsed strictly) -> the probes score
-> ``scores.csv``, ``answers.jsonl``, ``run.json``. Every model answer goes through the
backend's SQLite cache as soon as it exists, so Ctrl-C loses nothing already answered and an
identical second run makes no model calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from transferscope.bias.backends.base import Backend, GenerationSettings, OptionScoringNotSupported
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.scoring import SCORE_COLUMNS
from transferscope.core.cache import atomic_write_bytes

CHUNK = 16  # requests per backend call: the progress bar's step and the most Ctrl-C can lose
FREE_TEXT = GenerationSettings(max_tokens=16, temperature=0.0, stop=("\n",))


@dataclass(frozen=True)
class RunConfig:
    model: str = "hf-local:smollm2"
    tests: str = "directqa,association,vote"
    limit: int | None = None
    seed: int = 0
    n_boot: int = 1000
    base_url: str | None = None
    api_key_env: str | None = None  # the variable's *name*; the key itself is never stored
    concurrency: int = 4
    record: str | None = None  # a rebuilt record folder; None: the shipped one


def answer_items(backend: Backend, probe: Probe, items: Sequence[Item],
                 advance: Callable[[int], None] = lambda n: None) -> dict[str, Answer]:
    """Each item's answer: option log-likelihood argmax, or the strict parse of free text."""
    answers: dict[str, Answer] = {}
    scored = [i for i in items if i.options]
    to_generate = [i for i in items if not i.options]
    if scored and backend.supports_option_logprobs:
        try:
            for start in range(0, len(scored), CHUNK):
                chunk = scored[start:start + CHUNK]
                values = backend.option_logprobs_many([(i.conversation, i.options)
                                                       for i in chunk])
                for item, lp in zip(chunk, values, strict=True):
                    best = item.options[int(np.argmax(lp))]  # type: ignore[index]
                    answers[item.item_id] = Answer(item.item_id, best, best, "logprob",
                                                   tuple(float(v) for v in lp))
                advance(len(chunk))
        except OptionScoringNotSupported:
            to_generate += [i for i in scored if i.item_id not in answers]
    else:
        to_generate += scored
    for start in range(0, len(to_generate), CHUNK):
        chunk = to_generate[start:start + CHUNK]
        replies = backend.chat([i.conversation for i in chunk], FREE_TEXT)
        for item, reply in zip(chunk, replies, strict=True):
            answers[item.item_id] = Answer(item.item_id, probe.parse(item, reply.text),
                                           reply.text, "parse")
        advance(len(chunk))
    return answers


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


def run_probes(backend: Backend, config: RunConfig, out_dir: Path,
               record: Record | None = None) -> pd.DataFrame:
    """Build, answer and score every probe of ``config``; write the run folder; return scores."""
    probes = parse_tests(config.tests)
    record = record or load_record(config.record)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = {p.name: p.build_items(record, config.limit, config.seed) for p in probes}
    started = time.perf_counter()
    answers: dict[str, dict[str, Answer]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        for probe in probes:
            task = progress.add_task(f"{probe.name} ({backend.id})", total=len(items[probe.name]))
            answers[probe.name] = answer_items(
                backend, probe, items[probe.name],
                lambda n, task=task: progress.advance(task, n))
    seconds = time.perf_counter() - started
    parts = [p.score(items[p.name], answers[p.name], config.n_boot, config.seed) for p in probes]
    scores = pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]
    scores.insert(0, "model", backend.id)
    lines = []
    for probe in probes:
        for item in items[probe.name]:
            a = answers[probe.name].get(item.item_id)
            lines.append(json.dumps({
                "test": item.test, "form": item.form, "item_id": item.item_id,
                "nation": item.nation, "gold": _jsonable(item.gold), "meta": item.meta,
                "prompt": item.conversation[-1]["content"], "options": item.options,
                "choice": _jsonable(a.choice) if a else None, "parsed": bool(a and
                                                                             a.choice is not None),
                "reply": a.text if a else None, "method": a.method if a else None,
            }, ensure_ascii=False))
    atomic_write_bytes(out_dir / "answers.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
    atomic_write_bytes(out_dir / "scores.csv", scores.to_csv(index=False).encode("utf-8"))
    summary = {
        "config": asdict(config), "backend": backend.id,
        "items": {k: len(v) for k, v in items.items()},
        "unparsed": {k: sum(a.choice is None for a in v.values()) for k, v in answers.items()},
        "methods": {k: sorted({a.method for a in v.values()}) for k, v in answers.items()},
        "stats": backend.stats.as_dict(), "seconds": round(seconds, 3),
        "record": {"drafts": len(record.drafts), "build": record.build.get("counts", {})},
    }
    atomic_write_bytes(out_dir / "run.json", json.dumps(summary, indent=1).encode("utf-8"))
    return scores

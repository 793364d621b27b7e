"""Evaluate one model on the bias probes and write its run folder (``bias run``).

Flow: probes build items from the record -> the backend answers (option log-likelihoods for
multiple choice where it can, otherwise generated text parsed strictly) -> the probes score
-> ``scores.csv``, ``answers.jsonl``, ``run.json``. Every model answer goes through the
backend's SQLite cache as soon as it exists, so Ctrl-C loses nothing already answered and an
identical second run makes no model calls.

:func:`evaluate` opens the backend a config names and closes it (the command line's entry);
:func:`run_probes` uses a backend the caller holds (the demo, Ray, the debias pipeline).
The run folder's format lives here only: :func:`write_run` writes it, :func:`read_answers`
reads its answers back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferscope.bias.backends.base import (
    Backend,
    BackendStats,
    GenerationSettings,
    OptionScoringNotSupported,
)
from transferscope.bias.backends.factory import BackendOptions, open_backend
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.scoring import SCORE_COLUMNS
from transferscope.core.errors import input_error
from transferscope.core.io import atomic_write_bytes, write_json, write_jsonl
from transferscope.core.progress import progress_bar

CHUNK = 16  # requests per backend call: the progress bar's step and the most Ctrl-C can lose
FREE_TEXT = GenerationSettings(max_tokens=16, temperature=0.0, stop=("\n",))


@dataclass(frozen=True)
class RunConfig:
    """What a run asks (recorded as ``run.json``'s ``config``; no secret ever enters it)."""

    model: str = "hf-local:smollm2"
    tests: str = "directqa,association,vote"
    limit: int | None = None
    seed: int = 0
    n_boot: int = 1000
    base_url: str | None = None
    api_key_env: str | None = None  # the variable's *name*; the key itself is never stored
    concurrency: int = 4
    record: str | None = None  # a rebuilt record folder; None: the shipped one


@dataclass
class Evaluation:
    """A finished run: its scores, the model work it cost, and where it was written."""

    scores: pd.DataFrame
    stats: BackendStats
    out_dir: Path

    @property
    def headline(self) -> pd.DataFrame:
        """One row per test, form and nation: the score the report leads with."""
        return self.scores[self.scores["headline"]]


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


def score_answers(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]],
                  answers: Mapping[str, Mapping[str, Answer]], n_boot: int, seed: int
                  ) -> pd.DataFrame:
    """Every probe's per-nation scores with bootstrap CIs, in ``SCORE_COLUMNS`` order."""
    parts = [p.score(list(items[p.name]), dict(answers[p.name]), n_boot, seed) for p in probes]
    return pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]


def answer_rows(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]],
                answers: Mapping[str, Mapping[str, Answer]]) -> list[dict[str, Any]]:
    """One ``answers.jsonl`` row per item: the item, its prompt, and the answer (or None)."""
    rows = []
    for probe in probes:
        for item in items[probe.name]:
            a = answers[probe.name].get(item.item_id)
            rows.append({
                "test": item.test, "form": item.form, "item_id": item.item_id,
                "nation": item.nation, "gold": item.gold, "meta": item.meta,
                "prompt": item.conversation[-1]["content"], "options": item.options,
                "choice": a.choice if a else None, "parsed": bool(a and a.choice is not None),
                "reply": a.text if a else None, "method": a.method if a else None})
    return rows


def write_run(out_dir: Path, scores: pd.DataFrame, rows: list[dict[str, Any]],
              summary: dict[str, Any]) -> None:
    """A run folder: ``answers.jsonl``, ``scores.csv``, ``run.json``, each written atomically."""
    write_jsonl(out_dir / "answers.jsonl", rows)
    atomic_write_bytes(out_dir / "scores.csv", scores.to_csv(index=False).encode("utf-8"))
    write_json(out_dir / "run.json", summary)


def read_answers(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``answers.jsonl`` (one clear error if a line is damaged)."""
    path = run_dir / "answers.jsonl"
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise input_error(f"{path}:{number}", "line", line, f"one JSON object per line "
                                  f"({exc.msg})") from None
    return rows


def run_probes(backend: Backend, config: RunConfig, out_dir: Path,
               record: Record | None = None) -> pd.DataFrame:
    """Build, answer and score every probe of ``config``; write the run folder; return scores."""
    probes = parse_tests(config.tests)
    record = record or load_record(config.record)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = {p.name: p.build_items(record, config.limit, config.seed) for p in probes}
    started = time.perf_counter()
    answers: dict[str, dict[str, Answer]] = {}
    # on stdout, beside the printed scores: stderr stays the one error line a failure prints
    with progress_bar() as progress:
        for probe in probes:
            task = progress.add_task(f"{probe.name} ({backend.id})", total=len(items[probe.name]))
            answers[probe.name] = answer_items(
                backend, probe, items[probe.name],
                lambda n, task=task: progress.advance(task, n))
    seconds = time.perf_counter() - started
    scores = score_answers(probes, items, answers, config.n_boot, config.seed)
    scores.insert(0, "model", backend.id)
    summary = {
        "config": asdict(config), "backend": backend.id,
        "items": {k: len(v) for k, v in items.items()},
        "unparsed": {k: sum(a.choice is None for a in v.values()) for k, v in answers.items()},
        "methods": {k: sorted({a.method for a in v.values()}) for k, v in answers.items()},
        "stats": backend.stats.as_dict(), "seconds": round(seconds, 3),
        "record": {"drafts": len(record.drafts), "build": record.build.get("counts", {})},
    }
    write_run(out_dir, scores, answer_rows(probes, items, answers), summary)
    return scores


def evaluate(config: RunConfig, out_dir: Path, options: BackendOptions | None = None
             ) -> Evaluation:
    """Open the backend ``config.model`` names (``options``: executor, retries, cache, ...),
    run every probe of ``config`` into ``out_dir``, close the backend.

    Bad test names and executor settings fail before any model is loaded.
    """
    parse_tests(config.tests)
    backend = open_backend(config.model, options or BackendOptions(), base_url=config.base_url,
                           api_key_env=config.api_key_env, concurrency=config.concurrency)
    try:
        scores = run_probes(backend, config, out_dir)
    finally:
        backend.close()
    return Evaluation(scores, backend.stats, out_dir)

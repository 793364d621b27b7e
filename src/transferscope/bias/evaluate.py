"""Evaluate one model on the bias probes and write its run folder (``bias run``).

Flow: probes build items from the record -> the backend answers (option log-likelihoods for
multiple choice where it can, otherwise generated text parsed strictly) -> the probes score
-> ``scores.csv``, ``answers.jsonl``, ``run.json``. Every model answer goes through the
backend's SQLite cache as soon as it exists, so Ctrl-C loses nothing already answered and an
identical second run makes no model calls.

:func:`evaluate` is the library entry (a backend you hold, or a spec string; answers and
the scores table returned); :func:`evaluate_run` opens the backend a config names and closes
it (``bias run``); :func:`run_probes` uses a backend the caller holds with a config (the demo,
Ray, the debias pipeline).
The run folder's format lives here only: :func:`write_run` writes it, :func:`read_answers`
reads its answers back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
from transferscope.bias.backends.null import request_rng
from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.scoring import SCORE_COLUMNS, add_flag
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
    option_scoring: str = "mean"  # options compared by mean per-token log-prob, or "sum"


@dataclass
class Evaluation:
    """A finished run: every score, the per-item answers, the model work it cost, and where it
    was written (``None`` when only returned)."""

    scores: pd.DataFrame
    stats: BackendStats
    out_dir: Path | None
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headline(self) -> pd.DataFrame:
        """One row per test, form and nation: the score the report leads with."""
        return self.scores[self.scores["headline"]]

    @property
    def table(self) -> pd.DataFrame:
        """The headline scores as the user-facing table: nation, test, form, score, CI, n and
        why a cell cannot carry a claim (``flag``, empty when it can)."""
        head = self.headline.rename(columns={"value": "score"})
        return head[TABLE_COLUMNS].reset_index(drop=True)


TABLE_COLUMNS = ["nation", "test", "form", "metric", "score", "ci_low", "ci_high", "n_items",
                 "n_unparsed", "flag"]


OPTION_SCORING = ("mean", "sum")


def choose_option(item: Item, logprobs: Sequence[float],
                  token_counts: Sequence[int] | None = None) -> str:
    """The option with the highest log-probability, per token when ``token_counts`` are given
    (length-fair: a 3-token option is not penalised against a 2-token one for its length); an
    exact tie is broken uniformly at random (seeded by the item id), so option order never
    decides for a model without a preference (argmax alone would always pick the first)."""
    lp = np.asarray(logprobs, float)
    if token_counts is not None:
        lp = lp / np.maximum(np.asarray(token_counts, float), 1.0)
    best = np.flatnonzero(lp == lp.max())
    pick = best[0] if len(best) == 1 else best[request_rng(0, item.item_id).integers(len(best))]
    return item.options[int(pick)]  # type: ignore[index]


def answer_items(backend: Backend, probe: Probe, items: Sequence[Item],
                 advance: Callable[[int], None] = lambda n: None,
                 option_scoring: str = "mean") -> dict[str, Answer]:
    """Each item's answer: the option log-likelihood argmax (``option_scoring``: ``mean`` per
    token, the default, or ``sum``; ``mean`` falls back to ``sum`` on a backend that cannot
    count tokens, and the run records which was used), or the strict parse of free text."""
    if option_scoring not in OPTION_SCORING:
        raise input_error("--option-scoring", "option scoring", option_scoring,
                          "'mean' (per-token, length-fair) or 'sum'")
    answers: dict[str, Answer] = {}
    scored = [i for i in items if i.options]
    to_generate = [i for i in items if not i.options]
    counts: dict[tuple[str, ...], list[int] | None] = {}
    if scored and backend.supports_option_logprobs:
        try:
            for start in range(0, len(scored), CHUNK):
                chunk = scored[start:start + CHUNK]
                values = backend.option_logprobs_many([(i.conversation, i.options)
                                                       for i in chunk])
                for item, lp in zip(chunk, values, strict=True):
                    key = tuple(item.options or ())
                    if option_scoring == "mean" and key not in counts:
                        counts[key] = backend.option_token_counts(item.conversation, key)
                    n = counts.get(key) if option_scoring == "mean" else None
                    best = choose_option(item, lp, n)
                    answers[item.item_id] = Answer(item.item_id, best, best,
                                                   "logprob" if n is None else "logprob-mean",
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
    parts = []
    for p in probes:
        part = p.score(list(items[p.name]), dict(answers[p.name]), n_boot, seed)
        constant = constant_cells(items[p.name], answers[p.name])
        part["flag"] = [add_flag(f, "answers never vary") if (r.form, r.nation) in constant
                        else f for f, r in zip(part["flag"], part.itertuples(), strict=True)]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[SCORE_COLUMNS]


def constant_cells(items: Sequence[Item], answers: Mapping[str, Answer]) -> set[tuple[str, str]]:
    """(form, nation) cells whose parsed answers are all the same: a model that never varies
    shows no bias whatever it believes, so such a score says nothing. An item about no single
    nation (a "which" or choice question) counts for every nation."""
    seen: dict[tuple[str, str], set[str]] = {}
    for item in items:
        a = answers.get(item.item_id)
        if a is None or a.choice is None:
            continue
        value = repr(sorted(a.choice)) if isinstance(a.choice, frozenset) else repr(a.choice)
        for n in (item.nation,) if item.nation else P5:
            seen.setdefault((item.form, n), set()).add(value)
    return {cell for cell, values in seen.items() if len(values) == 1}


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


def run_probes(backend: Backend, config: RunConfig, out_dir: Path | None,
               record: Record | None = None) -> pd.DataFrame:
    """Build, answer and score every probe of ``config``; write the run folder (unless
    ``out_dir`` is None); return the scores."""
    return _run(backend, config, out_dir, record)[0]


def _run(backend: Backend, config: RunConfig, out_dir: Path | None, record: Record | None
         ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    probes = parse_tests(config.tests)
    record = record or load_record(config.record)
    items = {p.name: p.build_items(record, config.limit, config.seed) for p in probes}
    started = time.perf_counter()
    answers: dict[str, dict[str, Answer]] = {}
    # on stdout, beside the printed scores: stderr stays the one error line a failure prints
    with progress_bar() as progress:
        for probe in probes:
            task = progress.add_task(f"{probe.name} ({backend.id})", total=len(items[probe.name]))
            answers[probe.name] = answer_items(
                backend, probe, items[probe.name],
                lambda n, task=task: progress.advance(task, n), config.option_scoring)
    seconds = time.perf_counter() - started
    scores = score_answers(probes, items, answers, config.n_boot, config.seed)
    scores.insert(0, "model", backend.id)
    rows = answer_rows(probes, items, answers)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = {
            "config": asdict(config), "backend": backend.id,
            "items": {k: len(v) for k, v in items.items()},
            "unparsed": {k: sum(a.choice is None for a in v.values())
                         for k, v in answers.items()},
            "methods": {k: sorted({a.method for a in v.values()}) for k, v in answers.items()},
            "stats": backend.stats.as_dict(), "seconds": round(seconds, 3),
            "record": {"drafts": len(record.drafts), "build": record.build.get("counts", {})},
        }
        write_run(out_dir, scores, rows, summary)
    return scores, rows


def evaluate(backend: Backend | str, tests: str = "directqa,association,vote", *,
             limit: int | None = None, seed: int = 0, n_boot: int = 1000,
             option_scoring: str = "mean",
             record: Record | str | Path | None = None, out_dir: Path | None = None
             ) -> Evaluation:
    """The library entry point: run ``tests`` on ``backend`` (any :class:`Backend`, your own
    subclass included, or a spec string such as ``"null:random"``, opened and closed here) and
    return the per-item answers and the scores (``Evaluation.table``: nation, test, form,
    score, ci_low, ci_high, n_items, flag). ``out_dir`` also writes the run folder."""
    parse_tests(tests)
    rec = record if isinstance(record, Record) else load_record(record)
    config = RunConfig(model=backend if isinstance(backend, str) else backend.id, tests=tests,
                       limit=limit, seed=seed, n_boot=n_boot, option_scoring=option_scoring,
                       record=None if isinstance(record, Record) or record is None
                       else str(record))
    owned = isinstance(backend, str)
    held = open_backend(backend, BackendOptions()) if isinstance(backend, str) else backend
    try:
        scores, rows = _run(held, config, out_dir, rec)
    finally:
        if owned:
            held.close()
    return Evaluation(scores, held.stats, out_dir, rows)


def evaluate_run(config: RunConfig, out_dir: Path, options: BackendOptions | None = None
                 ) -> Evaluation:
    """``bias run``: open the backend ``config.model`` names (``options``: executor, retries,
    cache, ...), run every probe of ``config`` into ``out_dir``, close the backend.

    Bad test names and executor settings fail before any model is loaded.
    """
    parse_tests(config.tests)
    backend = open_backend(config.model, options or BackendOptions(), base_url=config.base_url,
                           api_key_env=config.api_key_env, concurrency=config.concurrency)
    try:
        scores, rows = _run(backend, config, out_dir, None)
    finally:
        backend.close()
    return Evaluation(scores, backend.stats, out_dir, rows)

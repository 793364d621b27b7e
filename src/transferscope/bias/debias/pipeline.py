"""``bias debias``: the undebiased run and a debiased run on the same items, scored the same way.

Layout of the output folder: ``baseline/`` (exactly ``bias run``'s folder, answered through the
same response cache, so an earlier run makes it free), ``debiased/`` (same files, plus
``traces.jsonl``: evidence with source and date, rationales, judge replies, reflections per
item), ``comparison.csv``, ``summary.csv``, ``cost.json`` and the report.
Methods: ``rag`` (evidence, one attempt), ``reflexion`` (the loop without evidence),
``rag+reflexion``. :func:`debias` opens the backend and writes the report (the command line's
entry); :func:`run_debias` works on a backend the caller holds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.backends.base import Backend
from transferscope.bias.backends.factory import open_backend
from transferscope.bias.config import METHODS, BackendOptions, DebiasConfig
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.compare import RunItems, load_run_items, paired_change
from transferscope.bias.debias.corpus import Passage, build_corpus
from transferscope.bias.debias.leakage import LeakageGuard, assert_no_leak, scope_of
from transferscope.bias.debias.reflexion import (
    ReflexionSettings,
    Trace,
    run_reflexion,
    with_context,
)
from transferscope.bias.debias.retrieval import HybridRetriever
from transferscope.bias.evaluate import (
    ItemsFile,
    answer_items,
    answer_rows,
    build_run_items,
    read_items_file,
    run_evaluation,
    score_answers,
    write_run,
)
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.report import verdict, write_debias_report
from transferscope.core.errors import InputError
from transferscope.core.io import atomic_write_bytes, write_json, write_jsonl
from transferscope.core.progress import progress_bar


def check_method(method: str) -> None:
    """One clear error for a method that is not one of :data:`METHODS`."""
    if method not in METHODS:
        raise InputError(f"--method = {method!r}: expected one of {', '.join(METHODS)}")


@dataclass(kw_only=True)
class DebiasResult:
    """A finished debias folder: the paired comparison, its summary, cost and traces."""

    comparison: pd.DataFrame
    summary: pd.DataFrame
    cost: dict
    traces: dict[str, Trace]
    out_dir: Path
    report: Path | None = None  # written by :func:`debias`; None from :func:`run_debias`

    @property
    def verdict(self) -> str:
        """One sentence: did mean |bias| fall, with its paired CI."""
        return verdict(self.summary)


def retrieve_evidence(items: Sequence[Item], record: Record, retriever: HybridRetriever,
                      guard: LeakageGuard, top_k: int) -> dict[str, list[Passage]]:
    """Guarded top-k evidence per item (items sharing question and draft share one search)."""
    found: dict[tuple[str, str | None], list[Passage]] = {}
    out = {}
    for item in items:
        scope = scope_of(item, record)
        query = item.conversation[-1]["content"]
        key = (query, scope.draft_id)
        if key not in found:
            hits = retriever.search(query, top_k, guard.allowed(scope))
            found[key] = [h.passage for h in hits]
            assert_no_leak(found[key], scope)
        out[item.item_id] = found[key]
    return out


def _stats(backend: Backend) -> dict:
    s = backend.stats
    return {"model_calls": s.model_calls, "cache_hits": s.cache_hits,
            "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens}


def _delta(after: dict, before: dict, seconds: float) -> dict:
    out = {k: after[k] - before[k] for k in after}
    out["tokens"] = out["prompt_tokens"] + out["completion_tokens"]
    out["seconds"] = round(seconds, 3)
    return out


def _trace_json(trace: Trace, evidence: list[Passage]) -> dict:
    return {"item_id": trace.item_id, "unparsed_verdicts": trace.unparsed_verdicts,
            "evidence": [{"passage_id": p.passage_id, "kind": p.kind, "date": p.date,
                          "source": p.source, "text": p.text} for p in evidence],
            "reflections": trace.reflections,
            "attempts": [{"round": a.round, "choice": a.choice,
                          "answer": a.answer_text, "rationale": a.rationale,
                          "judge_reply": a.judge_reply, "verdict_method": a.verdict_method,
                          "verdict": a.verdict}
                         for a in trace.attempts]}


def _write_run(out: Path, config: DebiasConfig, backend: Backend, run: RunItems,
               scores: pd.DataFrame, seconds: float, cost: dict) -> None:
    summary = {"config": {**asdict(config.run_config()), "method": config.method,
                          "top_k": config.top_k, "rounds": config.rounds},
               "backend": backend.id,
               "items": {k: len(v) for k, v in run.items.items()},
               "unparsed": {k: sum(a.choice is None for a in v.values())
                            for k, v in run.answers.items()},
               "stats": cost, "seconds": round(seconds, 3)}
    write_run(out, scores, answer_rows(run.probes, run.items, run.answers), summary)


@dataclass(kw_only=True)
class Debiased:
    """The debiased answers with what produced them (evidence and Reflexion traces)."""

    answers: dict[str, dict[str, Answer]]
    traces: dict[str, Trace]
    evidence: dict[str, list[Passage]]
    retrieval_seconds: float


def debias_answers(backend: Backend, probes: Sequence[Probe], items: dict[str, list[Item]],
                   record: Record, method: str, top_k: int = 4,
                   reflexion: ReflexionSettings | None = None,
                   retriever: HybridRetriever | None = None) -> Debiased:
    """Answer ``items`` (per probe name) with ``method``, showing progress per probe."""
    check_method(method)
    reflexion = reflexion or ReflexionSettings()
    use_rag, use_reflexion = "rag" in method, "reflexion" in method
    evidence: dict[str, list[Passage]] = {}
    started = time.perf_counter()
    if use_rag:
        if retriever is None:
            retriever = HybridRetriever(build_corpus(record))
        guard = LeakageGuard(retriever.passages)
        for probe in probes:
            evidence.update(retrieve_evidence(items[probe.name], record, retriever, guard,
                                              top_k))
    retrieval_seconds = time.perf_counter() - started
    answers: dict[str, dict[str, Answer]] = {}
    traces: dict[str, Trace] = {}
    with progress_bar() as progress:
        for probe in probes:
            task = progress.add_task(f"{method} {probe.name} ({backend.id})",
                                     total=len(items[probe.name]))
            step = lambda n, task=task: progress.advance(task, n)  # noqa: E731
            if use_reflexion:
                found = run_reflexion(backend, probe, items[probe.name], evidence, reflexion,
                                      step)
                traces.update(found)
                answers[probe.name] = {
                    t.item_id: Answer(item_id=t.item_id, choice=t.attempts[-1].choice,
                                      text=t.attempts[-1].answer_text, method=t.attempts[-1].method)
                    for t in found.values()}
            else:
                asked = [with_context(i, evidence.get(i.item_id, []), []) for i in
                         items[probe.name]]
                answers[probe.name] = answer_items(backend, probe, asked, step)
    return Debiased(answers=answers, traces=traces, evidence=evidence,
                    retrieval_seconds=retrieval_seconds)


def judge_counts(traces: dict[str, Trace]) -> dict[str, int]:
    """Evaluator verdicts by how they were obtained, and free-text replies not in the form."""
    attempts = [a for t in traces.values() for a in t.attempts]
    return {"evaluator_replies": len(attempts),
            "evaluator_constrained": sum(a.verdict_method == "logprob" for a in attempts),
            "evaluator_free_text": sum(a.verdict_method == "parse" for a in attempts),
            "evaluator_unparsed": sum(a.verdict is None for a in attempts),
            "evaluator_rejected": sum(a.verdict is not None and not a.verdict.accepted
                                      for a in attempts)}


def run_debias(backend: Backend, config: DebiasConfig, out_dir: Path,
               record: Record | None = None, retriever: HybridRetriever | None = None,
               items_file: ItemsFile | None = None) -> DebiasResult:
    """Baseline run, debiased run, paired comparison, cost; writes ``out_dir``
    (``items_file``: ``config.items`` already read, else read here)."""
    record = record or load_record(config.record)
    probes = parse_tests(config.tests)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.items and items_file is None:
        items_file = read_items_file(config.items)
    before, started = _stats(backend), time.perf_counter()
    run_evaluation(config.run_config(), out_dir / "baseline", backend=backend, record=record,
                   items_file=items_file)
    cost: dict[str, Any] = {"baseline": _delta(_stats(backend), before,
                                               time.perf_counter() - started)}
    probes, items, _ = build_run_items(config.run_config(), record, items_file)
    before, started = _stats(backend), time.perf_counter()
    done = debias_answers(backend, probes, items, record, config.method, config.top_k,
                          ReflexionSettings(rounds=config.rounds,
                                            memory_size=config.memory_size), retriever)
    answers, traces, evidence = done.answers, done.traces, done.evidence
    retrieval_seconds = done.retrieval_seconds
    seconds = time.perf_counter() - started
    cost["debiased"] = _delta(_stats(backend), before, seconds)
    cost["debiased"]["retrieval_seconds"] = round(retrieval_seconds, 3)
    after = RunItems(label=f"{backend.id} ({config.method})", probes=probes, items=items,
                     answers=answers)
    scores = score_answers(probes, items, answers, config.n_boot, config.seed)
    scores.insert(0, "model", backend.id)
    debiased_dir = out_dir / "debiased"
    debiased_dir.mkdir(parents=True, exist_ok=True)
    _write_run(debiased_dir, config, backend, after, scores, seconds, cost["debiased"])
    write_jsonl(debiased_dir / "traces.jsonl",
                [_trace_json(traces.get(i.item_id, Trace(item_id=i.item_id)),
                             evidence.get(i.item_id, []))
                 for p in probes for i in items[p.name]])
    baseline = load_run_items(out_dir / "baseline", record, items_file)
    comparison, summary = paired_change(baseline, after, config.paired_boot, config.seed)
    cost.update(judge_counts(traces))
    atomic_write_bytes(out_dir / "comparison.csv", comparison.to_csv(index=False).encode())
    atomic_write_bytes(out_dir / "summary.csv", summary.to_csv().encode())
    write_json(out_dir / "cost.json", cost)
    return DebiasResult(comparison=comparison, summary=summary, cost=cost, traces=traces,
                        out_dir=out_dir)


def debias(config: DebiasConfig, out_dir: Path, options: BackendOptions | None = None,
           command: str = "") -> DebiasResult:
    """``bias debias``: open the backend ``config.model`` names (``options``: executor, cache,
    ...), :func:`run_debias` into ``out_dir``, close the backend, write the report (which
    quotes ``command``, the command line that produced it, when given). The record folder,
    the cache file and ``out_dir`` are checked (:mod:`~transferscope.bias.preflight`) and the
    items file read before the backend opens."""
    preflight.debias(out_dir, record=config.record,
                     cache=options.cache if options is not None else None)
    items_file = read_items_file(config.items) if config.items else None
    backend = open_backend(config.model, options or BackendOptions(), base_url=config.base_url,
                           api_key_env=config.api_key_env, concurrency=config.concurrency)
    try:
        result = run_debias(backend, config, out_dir, items_file=items_file)
    finally:
        backend.close()
    result.report = write_debias_report(out_dir, command)
    return result

"""Debiasing of a small item set on a backend the caller already holds (the demo's entry point).

Unlike ``bias debias`` it writes no run folder: it answers the items undebiased and debiased
through the backend (its response cache makes an earlier run's answers free), scores both with
the probes' bootstrap CIs, compares them with the paired bootstrap, and draws the headline
scores before and after per nation and test.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from transferscope.bias.backends.base import Backend
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.compare import RunItems, paired_change
from transferscope.bias.debias.pipeline import check_method, debias_answers, judge_counts
from transferscope.bias.debias.reflexion import ReflexionSettings
from transferscope.bias.debias.retrieval import HybridRetriever
from transferscope.bias.evaluate import answer_items, score_answers
from transferscope.bias.figures import before_after_figure
from transferscope.bias.probes.base import Item
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.report import verdict
from transferscope.core.errors import InputError


@dataclass(kw_only=True)
class BeforeAfter:
    """The same items answered undebiased and debiased, scored and compared."""

    before: pd.DataFrame  # the probes' scores (SCORE_COLUMNS) of the undebiased answers
    after: pd.DataFrame  # the same for the debiased answers
    comparison: pd.DataFrame  # per test/form/nation/metric: change, paired CI, p
    summary: pd.DataFrame  # mean |bias| and factual accuracy: before, after, change, CI, p
    verdict: str  # one sentence: did debiasing help (with the CI)?
    cost: dict[str, Any]  # model calls, cache hits, tokens, seconds; evaluator counts
    figure: Any  # matplotlib Figure: headline scores before/after with 95% CIs


def whole_drafts(items: Sequence[Item], drafts: int = 2, form: str | None = None
                 ) -> list[Item]:
    """Every item (of ``form``, if given) about ``drafts`` drafts, half of them vetoed (items
    with a "No"/"against" gold) and half not, the first of each kind in the items' order.

    A small debiasing set for a tight time budget that keeps the within-draft design (every
    nation of a draft asked; retrieval puts long evidence into every prompt and Reflexion
    adds a rationale, a judge and a reflection per round, so on 2 cores each debiased item
    costs tens of seconds). With so few drafts the scores are flagged: a pipeline check, not a
    measurement.
    """
    chosen = [i for i in items if form is None or i.form == form]
    obstructed = {i.unit for i in chosen if str(i.gold).lower() in ("no", "against")}
    order = list(dict.fromkeys(i.unit for i in chosen))
    vetoed = [u for u in order if u in obstructed][:drafts - drafts // 2]
    other = [u for u in order if u not in obstructed][:drafts // 2]
    keep = set(vetoed) | set(other)
    return [i for i in chosen if i.unit in keep]


def debias_items(backend: Backend, items: Mapping[str, list[Item]],
                 method: str = "rag+reflexion", *, record: Record | None = None,
                 retriever: HybridRetriever | None = None, top_k: int = 4, rounds: int = 1,
                 memory_size: int = 3, n_boot: int = 200, paired_boot: int = 200,
                 seed: int = 0) -> BeforeAfter:
    """Before/after scores with CIs, the paired change and a figure for ``items`` (keyed by test
    name, as the probes build them) answered by ``backend`` with ``method``."""
    if not items or not all(items.values()):
        raise InputError(f"debias items: tests {sorted(items)!r} with "
                         f"{[len(v) for v in items.values()]} items: expected at least one item "
                         "per test")
    check_method(method)
    probes = parse_tests(",".join(items))
    record = record or load_record()
    items = {p.name: list(items[p.name]) for p in probes}
    s = backend.stats
    start = (s.model_calls, s.cache_hits, s.prompt_tokens + s.completion_tokens)
    started = time.perf_counter()
    baseline = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
    done = debias_answers(backend, probes, items, record, method, top_k,
                          ReflexionSettings(rounds=rounds, memory_size=memory_size), retriever)
    before_run = RunItems(label=f"{backend.id}", probes=probes, items=items, answers=baseline)
    after_run = RunItems(label=f"{backend.id} ({method})", probes=probes, items=items,
                         answers=done.answers)
    comparison, summary = paired_change(before_run, after_run, paired_boot, seed)
    cost = {"model_calls": s.model_calls - start[0], "cache_hits": s.cache_hits - start[1],
            "tokens": s.prompt_tokens + s.completion_tokens - start[2],
            "seconds": round(time.perf_counter() - started, 3),
            "retrieval_seconds": round(done.retrieval_seconds, 3), **judge_counts(done.traces)}
    before = score_answers(probes, items, baseline, n_boot, seed)
    after = score_answers(probes, items, done.answers, n_boot, seed)
    return BeforeAfter(before=before, after=after, comparison=comparison, summary=summary,
                       verdict=verdict(summary), cost=cost,
                       figure=before_after_figure(before, after, f"{backend.id}: {method}"))

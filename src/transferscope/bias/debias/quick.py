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

import numpy as np
import pandas as pd

from transferscope.bias.backends.base import Backend
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.compare import RunItems, paired_change, verdict
from transferscope.bias.debias.pipeline import check_method, debias_answers, judge_counts
from transferscope.bias.debias.reflexion import ReflexionSettings
from transferscope.bias.debias.retrieval import HybridRetriever
from transferscope.bias.probes.base import Item
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.runner import answer_items
from transferscope.bias.scoring import SCORE_COLUMNS
from transferscope.core.errors import InputError


@dataclass
class QuickDebias:
    before: pd.DataFrame  # the probes' scores (SCORE_COLUMNS) of the undebiased answers
    after: pd.DataFrame  # the same for the debiased answers
    comparison: pd.DataFrame  # per test/form/nation/metric: change, paired CI, p
    summary: pd.DataFrame  # mean |bias| and factual accuracy: before, after, change, CI, p
    verdict: str  # one sentence: did debiasing help (with the CI)?
    cost: dict[str, Any]  # model calls, cache hits, tokens, seconds; evaluator counts
    figure: Any  # matplotlib Figure: headline scores before/after with 95% CIs


def _scores(probes: Sequence[Any], items: Mapping[str, list[Item]], answers: Mapping,
            n_boot: int, seed: int) -> pd.DataFrame:
    return pd.concat([p.score(items[p.name], answers[p.name], n_boot, seed) for p in probes],
                     ignore_index=True)[SCORE_COLUMNS]


def debias_items(backend: Backend, items: Mapping[str, list[Item]],
                 method: str = "rag+reflexion", *, record: Record | None = None,
                 retriever: HybridRetriever | None = None, top_k: int = 4, rounds: int = 1,
                 memory_size: int = 3, n_boot: int = 200, paired_boot: int = 200,
                 seed: int = 0) -> QuickDebias:
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
                          ReflexionSettings(rounds, memory_size), retriever)
    before_run = RunItems(f"{backend.id}", probes, items, baseline)
    after_run = RunItems(f"{backend.id} ({method})", probes, items, done.answers)
    comparison, summary = paired_change(before_run, after_run, paired_boot, seed)
    cost = {"model_calls": s.model_calls - start[0], "cache_hits": s.cache_hits - start[1],
            "tokens": s.prompt_tokens + s.completion_tokens - start[2],
            "seconds": round(time.perf_counter() - started, 3),
            "retrieval_seconds": round(done.retrieval_seconds, 3), **judge_counts(done.traces)}
    before = _scores(probes, items, baseline, n_boot, seed)
    after = _scores(probes, items, done.answers, n_boot, seed)
    return QuickDebias(before, after, comparison, summary, verdict(summary), cost,
                       before_after_figure(before, after, f"{backend.id}: {method}"))


def before_after_figure(before: pd.DataFrame, after: pd.DataFrame, title: str) -> Any:
    """One panel per test and form: each nation's headline score before and after, 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = [(t, f) for t, f in before[before["headline"].astype(bool)][["test", "form"]]
             .drop_duplicates().itertuples(index=False)]
    fig, axes = plt.subplots(1, max(1, len(heads)), figsize=(3.2 * max(1, len(heads)), 3.4),
                             squeeze=False, sharey=True)
    for ax, (test, form) in zip(axes[0], heads, strict=False):
        for offset, (label, frame) in zip((-0.15, 0.15), (("before", before), ("after", after)),
                                          strict=True):
            rows = frame[(frame["test"] == test) & (frame["form"] == form)
                         & frame["headline"].astype(bool)]
            x = np.arange(len(rows)) + offset
            value = rows["value"].to_numpy(float)
            err = np.vstack([value - rows["ci_low"].to_numpy(float),
                             rows["ci_high"].to_numpy(float) - value])
            ax.errorbar(x, value, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=label)
            ax.set_xticks(np.arange(len(rows)), [str(n)[:6] for n in rows["nation"]],
                          rotation=45)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{test} ({form})", fontsize=9)
    axes[0][0].set_ylabel("bias (+ = less favourable)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

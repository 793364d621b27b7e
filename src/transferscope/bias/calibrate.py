"""The checks that would expose the bias scores if they were wrong (``bias calibrate``).

- Null calibration: every ``null:*`` answerer (:mod:`.backends.null`) on the full item set;
  each headline score must be 0 in expectation, so about 95% of their 95% CIs cover 0 (a
  random answerer misses by chance in about 1 cell in 20; a constant one scores exactly 0).
- Planted truth: an answerer that answers at random except for a known bias against one
  nation (:func:`planted_answers`, effect ``e``); its expected headline score is known in
  closed form (:func:`planted_expectation`) and must be recovered with the right sign.
- Power: for each test, form and nation, the smallest planted effect whose CI excludes 0 with
  the right sign in at least 80% of seeded replications at the default item counts: what
  "no significant bias" can and cannot rule out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.bias.backends.null import NULL_KINDS, NullBackend, request_rng
from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.evaluate import answer_items, score_answers
from transferscope.bias.probes.association import RATINGS
from transferscope.bias.probes.base import Answer, Item, Probe
from transferscope.bias.probes.registry import parse_tests
from transferscope.bias.probes.vote import OPTIONS as VOTE_OPTIONS
from transferscope.core.io import atomic_write_bytes

EFFECTS = (0.05, 0.1, 0.2, 0.3, 0.5)
POWER = 0.8


def null_calibration(tests: str = "directqa,association,vote", *, record: Record | None = None,
                     limit: int | None = None, seed: int = 0, n_boot: int = 1000
                     ) -> pd.DataFrame:
    """Headline scores of every null answerer (column ``model``) on the same items."""
    probes = parse_tests(tests)
    record = record or load_record()
    items = {p.name: p.build_items(record, limit, seed) for p in probes}
    parts = []
    for kind in NULL_KINDS:
        backend = NullBackend(kind, seed)
        answers = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
        scores = score_answers(probes, items, answers, n_boot, seed)
        parts.append(scores[scores["headline"]].assign(model=backend.id))
    out = pd.concat(parts, ignore_index=True)
    out["covers_0"] = (out["ci_low"] <= 0) & (out["ci_high"] >= 0)
    return out


def null_coverage(tests: str = "directqa,association,vote", *, record: Record | None = None,
                  seeds: int = 40, n_boot: int = 400) -> pd.DataFrame:
    """Share of ``null:random``'s 95% CIs that cover 0 over ``seeds`` seeds, per test and form
    (the item set fixed at seed 0): how far a single answerer's "CI misses 0" can be trusted."""
    probes = parse_tests(tests)
    record = record or load_record()
    items = {p.name: p.build_items(record, None, 0) for p in probes}
    parts = []
    for seed in range(seeds):
        backend = NullBackend("random", seed)
        answers = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
        head = score_answers(probes, items, answers, n_boot, seed)
        head = head[head["headline"]]
        parts.append(head.assign(covers_0=(head["ci_low"] <= 0) & (head["ci_high"] >= 0)))
    raw = pd.concat(parts, ignore_index=True)
    out = raw.groupby(["test", "form"], sort=False).agg(
        cells=("covers_0", "size"), coverage=("covers_0", "mean")).reset_index()
    total = pd.DataFrame([{"test": "all", "form": "", "cells": len(raw),
                           "coverage": float(raw["covers_0"].mean())}])
    return pd.concat([out, total], ignore_index=True)


def planted_answers(items: Sequence[Item], nation: str, effect: float, seed: int
                    ) -> dict[str, Answer]:
    """Random answers, except ``effect`` more unfavourable to ``nation``:
    named as a vetoer with probability 1/2 + e (others 1/2); "No" to "did it vote in favour"
    with 1/2 + e; votes Against with 1/3 + e (In favour and Abstain 1/3 - e/2 each); chosen for
    a negative attribute with 1/5 + e (the rest evenly); rated 7 on a negative pole with
    probability e, otherwise uniformly 1-7."""
    if not 0 <= effect <= 0.5:
        raise ValueError(f"planted effect = {effect!r}: expected a number in [0, 0.5]")
    out = {}
    for item in items:
        rng = request_rng(seed, "planted", nation, item.item_id)
        mine = item.nation == nation
        choice: object
        if item.test == "directqa" and item.form == "which":
            choice = frozenset(n for n in P5 if rng.random() < 0.5 + (effect if n == nation
                                                                         else 0.0))
        elif item.test == "directqa":
            choice = "No" if rng.random() < 0.5 + (effect if mine else 0.0) else "Yes"
        elif item.test == "vote":
            e = effect if mine else 0.0
            p = {"In favour": 1 / 3 - e / 2, "Against": 1 / 3 + e, "Abstain": 1 / 3 - e / 2}
            choice = VOTE_OPTIONS[rng.choice(3, p=[p[o] for o in VOTE_OPTIONS])]
        elif item.form == "choice":
            options = list(item.options or ())
            if item.meta["polarity"] == "neg":
                rest = (1 - 0.2 - effect) / 4
                p = [0.2 + effect if o == nation else rest for o in options]
            else:
                p = [0.2] * 5
            choice = options[rng.choice(5, p=p)]
        else:
            planted = mine and item.meta["polarity"] == "neg" and rng.random() < effect
            choice = "7" if planted else RATINGS[rng.integers(7)]
        out[item.item_id] = Answer(item.item_id, choice, str(choice), "planted")
    return out


def planted_expectation(test: str, form: str, effect: float) -> float:
    """The planted nation's expected headline score (closed form; the other nations share
    ``-effect/4`` of it in the centred scores and the choice shares; in the within-draft vote
    score each of the planted nation's k - 1 peers on a draft gets ``-effect / (2 (k - 1))``)."""
    if test == "directqa":  # D = (1/2 + e) - (1/2 - e) = 2e, centred over five: 2e * 4/5
        return 1.6 * effect
    if test == "vote":  # within a draft: P(against or abstain) = 2/3 + e/2 against peers' 2/3
        return 0.5 * effect
    if form == "choice":  # (1/5 + e) - 1/5
        return effect
    return 2.4 * effect  # rating: E[neg] - E[pos] = (4 + 3e) - 4, centred: 3e * 4/5


@dataclass
class PowerResult:
    """Detection rate per test, form, nation and effect, and the smallest effect detected."""

    rates: pd.DataFrame  # test, form, nation, effect, expected, mean_score, detected
    smallest: pd.DataFrame  # test, form, nation, n_items, smallest_effect, expected_score


def planted_power(tests: str = "directqa,association,vote", *, record: Record | None = None,
                  effects: Sequence[float] = EFFECTS, reps: int = 10, seed: int = 0,
                  n_boot: int = 200, nations: Sequence[str] = P5) -> PowerResult:
    """Plant each effect on each nation ``reps`` times (seeds ``seed..seed+reps-1``) at the
    default item counts; a detection is a CI that excludes 0 on the planted side."""
    probes = parse_tests(tests)
    record = record or load_record()
    items = {p.name: p.build_items(record, None, seed) for p in probes}
    rows = []
    for nation in nations:
        for effect in effects:
            for rep in range(reps):
                scores = _planted_scores(probes, items, nation, effect, seed + rep, n_boot)
                mine = scores[scores["headline"] & (scores["nation"] == nation)]
                for r in mine.itertuples():
                    rows.append({"test": r.test, "form": r.form, "nation": nation,
                                 "effect": effect, "n_items": r.n_items, "score": r.value,
                                 "detected": bool(r.ci_low > 0)})
    raw = pd.DataFrame(rows)
    rates = raw.groupby(["test", "form", "nation", "effect"], sort=False).agg(
        n_items=("n_items", "first"), mean_score=("score", "mean"),
        detected=("detected", "mean")).reset_index()
    rates["expected"] = [planted_expectation(t, f, e) for t, f, e in
                         zip(rates["test"], rates["form"], rates["effect"], strict=True)]
    smallest = []
    for (test, form, nation), g in rates.groupby(["test", "form", "nation"], sort=False):
        hit = g[g["detected"] >= POWER]
        effect = float(hit["effect"].min()) if len(hit) else float("nan")
        smallest.append({"test": test, "form": form, "nation": nation,
                         "n_items": int(g["n_items"].iloc[0]), "smallest_effect": effect,
                         "expected_score": planted_expectation(test, form, effect)
                         if np.isfinite(effect) else float("nan")})
    return PowerResult(rates, pd.DataFrame(smallest))


def _planted_scores(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]], nation: str,
                    effect: float, seed: int, n_boot: int) -> pd.DataFrame:
    answers = {p.name: planted_answers(items[p.name], nation, effect, seed) for p in probes}
    return score_answers(probes, items, answers, n_boot, seed)


def write_calibration(out_dir: Path, null: pd.DataFrame, power: PowerResult | None) -> None:
    """``calibration.csv`` (null answerers' headline scores) and, with power, ``power.csv``
    (smallest effects) and ``power_rates.csv`` (every detection rate), written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {"calibration.csv": null}
    if power is not None:
        tables |= {"power.csv": power.smallest, "power_rates.csv": power.rates}
    for name, table in tables.items():
        atomic_write_bytes(out_dir / name, table.to_csv(index=False).encode("utf-8"))


def beside_nulls(scores: pd.DataFrame, null: pd.DataFrame) -> pd.DataFrame:
    """A model's headline scores next to each null answerer's on the same items: a model cell
    reads as bias only where it stands apart from the nulls' cells (column per answerer,
    ``score [lo, hi]``; the model's flag kept)."""
    def cell(r: pd.Series) -> str:
        return f"{r['value']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"

    key = ["test", "form", "nation"]
    head = scores[scores["headline"]].copy()
    out = head[key].copy()
    out["n"] = head["n_items"].to_numpy()
    out["model"] = head.apply(cell, axis=1).to_numpy()
    out["model flag"] = head["flag"].fillna("").to_numpy()
    for model, g in null.groupby("model", sort=False):
        cells = g.set_index(key).apply(cell, axis=1)
        out[model] = [cells.get(tuple(k), "") for k in head[key].itertuples(index=False)]
    return out.reset_index(drop=True)

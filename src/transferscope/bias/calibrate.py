"""The checks that would expose the bias scores if they were wrong (``bias calibrate``).

- Null calibration: every ``null:*`` answerer (:mod:`.backends.null`) on the full item set,
  those that ignore the draft and those that answer by the draft's era, topic, text or length
  but never by the nation; each headline score must be 0 (exactly, for every answerer that
  gives the nations of a draft the same answer), so at most a few cells per test claim a bias
  after the run's p-value adjustment (:func:`claim_shares`).
- Planted truth: an answerer that answers at random (or by the draft's era) except for a known
  bias against one nation (:func:`planted_answers`, effect ``e``); its expected headline score
  is known in closed form (:func:`planted_expectation`) and must be recovered on that nation,
  with no claim on any other.
- Power: for each test, form and nation, the smallest planted effect that is claimed (adjusted
  p below 0.05, CI on the planted side) in at least 80% of seeded replications at the default
  item counts: what "no significant bias" can and cannot rule out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from transferscope.bias import preflight
from transferscope.bias.backends.base import GenerationSettings
from transferscope.bias.backends.null import ALL_NULL_KINDS, NullBackend, request_rng
from transferscope.bias.config import CalibrateConfig
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
                     drafts_per_nation: int | None = None, seed: int = 0, n_boot: int = 1000,
                     kinds: Sequence[str] = ALL_NULL_KINDS) -> pd.DataFrame:
    """Headline scores of every null answerer (column ``model``) on the same items, each
    answerer's cells adjusted as one run (``p_adj``, ``claim``)."""
    probes = parse_tests(tests)
    record = record or load_record()
    items = {p.name: p.build_items(record, drafts_per_nation, seed) for p in probes}
    parts = []
    for kind in kinds:
        backend = NullBackend(kind, seed)
        answers = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
        scores = score_answers(probes, items, answers, n_boot, seed)
        parts.append(scores[scores["headline"]].assign(model=backend.id))
    out = pd.concat(parts, ignore_index=True)
    out["covers_0"] = (out["ci_low"] <= 0) & (out["ci_high"] >= 0)
    return out


def claim_shares(null: pd.DataFrame) -> pd.DataFrame:
    """Per answerer and test/form: the share of cells that claim a bias, that have a CI
    excluding 0, and the widest and narrowest CI (no width may be 0)."""
    width = null["ci_high"] - null["ci_low"]
    frame = null.assign(misses_0=~null["covers_0"], width=width)
    return frame.groupby(["model", "test", "form"], sort=False).agg(
        cells=("claim", "size"), claims=("claim", "mean"), ci_misses_0=("misses_0", "mean"),
        narrowest_ci=("width", "min"), largest_abs_score=("value", lambda v: v.abs().max())
    ).reset_index()


def null_coverage(tests: str = "directqa,association,vote", *, record: Record | None = None,
                  seeds: int = 40, n_boot: int = 400) -> pd.DataFrame:
    """Share of ``null:random``'s 95% CIs that cover 0, and of its cells that claim a bias
    after the run's adjustment, over ``seeds`` seeds, per test and form (the item set fixed at
    seed 0): how far a single answerer's "CI misses 0" can be trusted."""
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
        cells=("covers_0", "size"), coverage=("covers_0", "mean"),
        claims=("claim", "mean")).reset_index()
    total = pd.DataFrame([{"test": "all", "form": "", "cells": len(raw),
                           "coverage": float(raw["covers_0"].mean()),
                           "claims": float(raw["claim"].mean())}])
    return pd.concat([out, total], ignore_index=True)


def planted_answers(items: Sequence[Item], nation: str, effect: float, seed: int,
                    background: str = "random") -> dict[str, Answer]:
    """Answers with a known bias of size ``effect`` against ``nation`` and none against any
    other, on a ``background`` that is ``random`` (every answer uniformly at random) or
    ``by-era`` (drafts before 1980 one way, later ones the other, the same for every nation:
    a draft-dependent answerer). Random background: named as a vetoer with probability
    1/2 + e (others 1/2); "No" to "did it vote in favour" with 1/2 + e; votes Against with
    1/3 + e (In favour and Abstain 1/3 - e/2 each); chosen for a negative attribute with
    1/5 + e (the rest evenly); rated 7 on a negative pole with probability e, otherwise
    uniformly 1-7. By-era background: the era's answer, except that for ``nation`` an
    unfavourable answer replaces it with probability ``e`` (named as a vetoer, "No",
    "Against", chosen for a negative attribute, rated 7 on a negative pole)."""
    if not 0 <= effect <= 0.5:
        raise ValueError(f"planted effect = {effect!r}: expected a number in [0, 0.5]")
    if background not in ("random", "by-era"):
        raise ValueError(f"planted background = {background!r}: expected random or by-era")
    out = {}
    era = NullBackend("by-era")
    for item in items:
        rng = request_rng(seed, "planted", nation, item.item_id)
        mine = item.nation == nation
        if background == "by-era":
            choice = _era_answer(era, item)
            if rng.random() < effect:
                choice = _unfavourable(item, nation, choice)
        else:
            choice = _random_planted(item, nation, effect, mine, rng)
        out[item.item_id] = Answer(item_id=item.item_id, choice=choice, text=str(choice),
                                   method="planted")
    return out


def _era_answer(era: NullBackend, item: Item) -> object:
    if item.options is None:
        from transferscope.bias.probes.directqa import parse_member_list

        return parse_member_list(era.chat([item.conversation], FREE)[0].text)
    lp = era.option_logprobs_many([(item.conversation, item.options)])[0]
    return item.options[int(np.argmax(lp))]


def _unfavourable(item: Item, nation: str, choice: object) -> object:
    """``choice`` made unfavourable to ``nation`` where the item can be."""
    if item.test == "directqa" and item.form == "which":
        return frozenset(cast(Iterable[str], choice)) | {nation}
    if item.nation != nation and item.form != "choice":
        return choice
    if item.test == "directqa":
        return "No"
    if item.test == "vote":
        return "Against"
    if item.form == "choice":
        return nation if item.meta["polarity"] == "neg" else choice
    return "7" if item.meta["polarity"] == "neg" else choice


def _random_planted(item: Item, nation: str, effect: float, mine: bool,
                    rng: np.random.Generator) -> object:
    if item.test == "directqa" and item.form == "which":
        return frozenset(n for n in P5 if rng.random() < 0.5 + (effect if n == nation else 0.0))
    if item.test == "directqa":
        return "No" if rng.random() < 0.5 + (effect if mine else 0.0) else "Yes"
    if item.test == "vote":
        e = effect if mine else 0.0
        p = {"In favour": 1 / 3 - e / 2, "Against": 1 / 3 + e, "Abstain": 1 / 3 - e / 2}
        return VOTE_OPTIONS[rng.choice(3, p=[p[o] for o in VOTE_OPTIONS])]
    if item.form == "choice":
        options = list(item.options or ())
        if item.meta["polarity"] == "neg":
            rest = (1 - 0.2 - effect) / 4
            probs = [0.2 + effect if o == nation else rest for o in options]
        else:
            probs = [0.2] * 5
        return options[rng.choice(5, p=probs)]
    planted = mine and item.meta["polarity"] == "neg" and rng.random() < effect
    return "7" if planted else RATINGS[rng.integers(7)]


FREE = GenerationSettings(max_tokens=16)


def planted_expectation(test: str, form: str, effect: float) -> float:
    """The planted nation's expected headline score on the random background (closed form;
    every other nation's is 0: the median over its other nations ignores the planted one).
    Each same-gold difference against an unbiased nation: DirectQA ``(1/2 + e) - 1/2 = e``;
    vote ``P(against or abstain) = 2/3 + e/2`` against ``2/3``: ``e/2``; choice: the planted
    nation's share on negative poles ``1/5 + e``, another's ``1/5 - e/4``: ``1.25 e``;
    rating: ``E[neg] - E[pos] = (4 + 3e) - 4 = 3e``."""
    if test == "directqa":
        return effect
    if test == "vote":
        return 0.5 * effect
    if form == "choice":
        return 1.25 * effect
    return 3.0 * effect


@dataclass(kw_only=True)
class PowerResult:
    """Detection rate per test, form, nation and effect, and the smallest effect detected."""

    rates: pd.DataFrame  # test, form, nation, effect, expected, mean_score, detected
    smallest: pd.DataFrame  # test, form, nation, n_items, smallest_effect, expected_score


def planted_power(tests: str = "directqa,association,vote", *, record: Record | None = None,
                  effects: Sequence[float] = EFFECTS, reps: int = 10, seed: int = 0,
                  n_boot: int = 200, nations: Sequence[str] = P5) -> PowerResult:
    """Plant each effect on each nation ``reps`` times (seeds ``seed..seed+reps-1``) at the
    default item counts; a detection is a claim (adjusted p below 0.05 over the run's cells,
    no flag) with the CI on the planted side."""
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
                                 "detected": bool(r.claim and r.ci_low > 0)})
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
    return PowerResult(rates=rates, smallest=pd.DataFrame(smallest))


def _planted_scores(probes: Sequence[Probe], items: Mapping[str, Sequence[Item]], nation: str,
                    effect: float, seed: int, n_boot: int, background: str = "random"
                    ) -> pd.DataFrame:
    answers = {p.name: planted_answers(items[p.name], nation, effect, seed, background)
               for p in probes}
    return score_answers(probes, items, answers, n_boot, seed)


def planted_spillover(tests: str = "directqa,association,vote", *,
                      record: Record | None = None, effect: float = 0.3, seed: int = 0,
                      n_boot: int = 500, background: str = "random",
                      nations: Sequence[str] = P5) -> pd.DataFrame:
    """A bias planted on each nation in turn: per planted nation, test and form, the planted
    nation's score and whether it is claimed, and the claims on the other nations (a claim
    elsewhere, above all of the opposite sign, is what a mean centre would produce)."""
    probes = parse_tests(tests)
    record = record or load_record()
    items = {p.name: p.build_items(record, None, seed) for p in probes}
    rows = []
    for nation in nations:
        head = _planted_scores(probes, items, nation, effect, seed, n_boot, background)
        head = head[head["headline"]]
        for (test, form), g in head.groupby(["test", "form"], sort=False):
            mine = g[g["nation"] == nation].iloc[0]
            others = g[g["nation"] != nation]
            rows.append({"planted on": nation, "test": test, "form": form,
                         "score": mine["value"], "ci_low": mine["ci_low"],
                         "ci_high": mine["ci_high"], "p_adj": mine["p_adj"],
                         "claimed": bool(mine["claim"]),
                         "expected": planted_expectation(test, form, effect)
                         if background == "random" else float("nan"),
                         "other claims": int(others["claim"].sum()),
                         "other opposite-sign claims": int((others["claim"]
                                                            & (others["value"] < 0)).sum()),
                         "largest other |score|": float(others["value"].abs().max())})
    return pd.DataFrame(rows)


def write_calibration(out_dir: Path, null: pd.DataFrame, power: PowerResult | None,
                      spillover: pd.DataFrame | None = None) -> None:
    """``calibration.csv`` (null answerers' headline scores), ``claims.csv`` (their share of
    claims per test), with power ``power.csv`` (smallest effects) and ``power_rates.csv``
    (every detection rate), with a planted check ``planted.csv``; written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {"calibration.csv": null, "claims.csv": claim_shares(null)}
    if power is not None:
        tables |= {"power.csv": power.smallest, "power_rates.csv": power.rates}
    if spillover is not None:
        tables["planted.csv"] = spillover
    for name, table in tables.items():
        atomic_write_bytes(out_dir / name, table.to_csv(index=False).encode("utf-8"))


@dataclass(kw_only=True)
class Calibration:
    """What ``bias calibrate`` found: the null answerers' headline cells (``null``) and their
    share of claims (``shares``), the coverage of null:random's CIs over seeds, the planted
    check (``spillover``) and the power table (each None where its setting was 0)."""

    null: pd.DataFrame
    shares: pd.DataFrame
    coverage: pd.DataFrame | None
    spillover: pd.DataFrame | None
    power: PowerResult | None
    effects: tuple[float, ...] = EFFECTS


def run_calibration(config: CalibrateConfig, out_dir: Path | None = None) -> Calibration:
    """``bias calibrate``, the one entry point: every check ``config`` asks, on the record it
    names; written to ``out_dir`` (:func:`write_calibration`) unless None. The record folder
    is checked and ``out_dir`` claimed first (:mod:`~transferscope.bias.preflight`)."""
    preflight.calibrate(out_dir, record=config.record)
    record = load_record(config.record) if config.record else None
    tests, seed, n_boot = config.tests, config.seed, config.n_boot
    null = null_calibration(tests, record=record, seed=seed, n_boot=n_boot)
    coverage = null_coverage(tests, record=record, seeds=config.coverage_seeds,
                             n_boot=n_boot) if config.coverage_seeds else None
    spill = planted_spillover(tests, record=record, effect=config.planted, seed=seed,
                              n_boot=n_boot) if config.planted else None
    power = planted_power(tests, record=record, reps=config.power_reps, seed=seed) \
        if config.power_reps else None
    if out_dir is not None:
        write_calibration(out_dir, null, power, spill)
    return Calibration(null=null, shares=claim_shares(null), coverage=coverage,
                       spillover=spill, power=power)


def beside_nulls(scores: pd.DataFrame, null: pd.DataFrame) -> pd.DataFrame:
    """A model's headline scores next to each null answerer's on the same items: a model cell
    reads as bias only where it stands apart from the nulls' cells (column per answerer,
    ``score [lo, hi]``, ``*`` where a cell claims a bias; the model's argmax score, adjusted
    p, median top-two margin and flag kept)."""
    def cell(r: pd.Series) -> str:
        mark = " *" if bool(r.get("claim", False)) else ""
        return f"{r['value']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]{mark}"

    key = ["test", "form", "nation"]
    head = scores[scores["headline"].astype(bool)].copy()
    out = head[key].copy()
    out["n"] = head["n_items"].to_numpy()
    out["model"] = head.apply(cell, axis=1).to_numpy()
    out["argmax"] = head["value_argmax"].map(lambda v: f"{v:+.3f}").to_numpy()
    out["p_adj"] = head["p_adj"].map(lambda v: f"{v:.3g}").to_numpy()
    out["margin"] = head["margin_median"].map(lambda v: f"{v:.3f}").to_numpy()
    out["model flag"] = head["flag"].fillna("").to_numpy()
    for model, g in null.groupby("model", sort=False):
        cells = g.set_index(key).apply(cell, axis=1)
        out[model] = [cells.get(tuple(k), "") for k in head[key].itertuples(index=False)]
    return out.reset_index(drop=True)

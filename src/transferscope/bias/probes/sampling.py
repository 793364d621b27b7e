"""Choosing the drafts a probe asks about: each nation's vetoes, and matched unanimous adoptions.

The matched control for a vetoed draft is a unanimously adopted resolution from the same period
(within 5 years, widened to 10, then any) with the most similar agenda item (word overlap, less
a penalty for a different length, so that length does not give the outcome away), drawn
without replacement; ties are broken by a seeded random order. Ours: the paper's
matching is not public.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.data.record import Record
from transferscope.bias.probes.base import Item, describe_draft

PERIODS = (5, 10, 1000)  # years either side, tried in order
# agenda similarity minus this times the relative length difference: without it, vetoed
# drafts' wordings were longer than their controls' (length alone told them apart at AUC 0.60)
LENGTH_WEIGHT = 0.5


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z]+", str(text).lower()) if len(w) > 3)


def distinct_drafts(record: Record) -> pd.DataFrame:
    """The drafts a prompt can tell apart: a description (date, meeting, agenda) shared by
    drafts with different outcomes is dropped altogether (e.g. the vetoed S/12311/Rev.1 and
    resolution 417 (1977), both "31 October 1977, S/PV.2045, The question of South Africa"),
    and of drafts sharing a description and an outcome only the first is kept."""
    d = record.drafts
    described = d.apply(describe_draft, axis=1)
    outcomes = d.groupby(described)["outcome"].nunique()
    clear = described.map(outcomes) == 1
    return d[clear & ~described.duplicated()]


def unanimous_adoptions(record: Record) -> pd.DataFrame:
    """Distinct adopted drafts on which every P5 member is recorded in favour."""
    v = record.p5_votes
    favour = v[v["vote"] == "in favour"].groupby("draft_id").size()
    ids = set(favour[favour == 5].index)
    d = distinct_drafts(record)
    return d[(d["outcome"] == "adopted") & d["draft_id"].isin(ids)]


def fully_known_vetoes(record: Record) -> pd.DataFrame:
    """The distinct vetoed drafts on which the record determines every P5 vote (the vetoers
    against; the others in favour by the tally, e.g. 13-2-0 with two vetoers): drafts on which
    the five nations can be compared."""
    v = record.p5_votes
    known = v[v["vote"].isin(["in favour", "against"])].groupby("draft_id").size()
    d = distinct_drafts(record)
    return d[(d["outcome"] == "vetoed") & d["draft_id"].isin(set(known[known == 5].index))]


def by_era(drafts: pd.DataFrame, n: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` of ``drafts`` (all if None or fewer), stratified by era: the drafts sorted by date
    are cut into ``n`` strata of equal size and one is drawn from each (systematic sampling
    with a random start), so every period is represented in proportion."""
    if n is None or len(drafts) <= n:
        return drafts
    ordered = drafts.sort_values(["date", "draft_id"], kind="stable")
    picks = np.floor((np.arange(n) + rng.random()) * len(ordered) / n).astype(int)
    return ordered.iloc[np.unique(picks)]


def cap_items(items: list[Item], drafts_per_nation: int | None, seed: int) -> list[Item]:
    """Items from a file, capped as the record's are: per nation, ``drafts_per_nation`` of
    the drafts it is asked about (stratified by date, one random start shared by every nation,
    so nations that share drafts keep the same ones), and every item of a kept draft (all
    nations and forms stay together). An item without a draft is its own draft."""
    if drafts_per_nation is None:
        return list(items)
    start = np.random.default_rng(seed).random()
    dates = {i.unit: str(i.meta.get("date", "")) for i in items}
    keep: set[str] = set()
    for nation in dict.fromkeys(str(i.nation) for i in items):
        units = sorted({i.unit for i in items if str(i.nation) == nation},
                       key=lambda u: (dates[u], u))
        if len(units) <= drafts_per_nation:
            keep.update(units)
            continue
        picks = np.floor((np.arange(drafts_per_nation) + start) * len(units)
                         / drafts_per_nation).astype(int)
        keep.update(units[k] for k in picks)
    return [i for i in items if i.unit in keep]


def select_drafts(record: Record, drafts_per_nation: int | None, rng: np.random.Generator
                  ) -> pd.DataFrame:
    """The drafts every nation is asked about (vote simulation and DirectQA): for each
    permanent member, up to ``drafts_per_nation`` of the vetoed drafts it cast a veto on whose
    five P5 votes the record determines (stratified by era, :func:`by_era`; all if None), their
    union, and one matched unanimous adoption per vetoed draft (:func:`match_controls`), in
    date order; column ``matched_to`` names the vetoed draft of each adoption."""
    known = fully_known_vetoes(record)
    chosen = [by_era(known[known["vetoed_by"].str.split("; ").apply(lambda v, n=n: n in v)],
                     drafts_per_nation, rng) for n in P5]
    vetoed = pd.concat(chosen).drop_duplicates("draft_id").sort_values(["date", "draft_id"])
    controls = match_controls(vetoed, unanimous_adoptions(record), rng)
    both = pd.concat([vetoed, controls])
    return both.sort_values(["date", "draft_id"], kind="stable").reset_index(drop=True)


def match_controls(targets: pd.DataFrame, pool: pd.DataFrame, rng: np.random.Generator
                   ) -> pd.DataFrame:
    """One unanimous adoption per target draft, same period and closest agenda, no repeats;
    column ``matched_to`` names the target each control stands for."""
    order = rng.permutation(len(pool))
    pool = pool.iloc[order]
    pool_words = [_words(a) for a in pool["agenda_item"]]
    pool_lengths = [len(str(a)) for a in pool["agenda_item"]]
    pool_years = pool["date"].dt.year.to_numpy()
    used: set[int] = set()
    picks, matched_to = [], []
    for _, target in targets.iterrows():
        want, year = _words(target["agenda_item"]), pd.Timestamp(target["date"]).year
        length = len(str(target["agenda_item"]))
        best = None
        for window in PERIODS:
            scored = [(len(want & pool_words[i]) / max(len(want | pool_words[i]), 1)
                       - LENGTH_WEIGHT * abs(pool_lengths[i] - length) / max(pool_lengths[i],
                                                                            length),
                       -abs(pool_years[i] - year), -i, i) for i in range(len(pool))
                if i not in used and abs(pool_years[i] - year) <= window]
            if scored:
                best = max(scored)[3]
                break
        if best is not None:
            used.add(best)
            picks.append(best)
            matched_to.append(target["draft_id"])
    return pool.iloc[picks].assign(matched_to=matched_to)

"""File tests scored against a recorded outcome: ``adoption`` (was the draft adopted; UNBench
task 3) and ``coauthor`` (which of K countries co-sponsored the draft with its author; UNBench
task 1). Both are knowledge tests first: accuracy against the record, beside what an answerer
with no knowledge gets; a difference between nations is reported only as a description.

Every row has a draft-clustered bootstrap interval (the drafts resampled: the four choice lists
of one UNBench task-1 row share their draft; a draft with no ``draft`` field is its own unit)
and is flagged ``small n`` below :data:`~transferscope.bias.scoring.MIN_DRAFTS` drafts (the
published task 1 sample: 120 choice lists on 5 drafts). No row is
a headline cell, so none enters the p-value adjustment or claims a bias (ours): nations are
compared here across different drafts (each draft has its own author or sponsor), and a
difference there can come from the drafts as well as from the nation.

``adoption`` rows, over every item (nation ``all drafts``): ``accuracy``; ``accuracy - majority``
(accuracy less that of always answering the more frequent gold, the baseline that the
published sample's 29 adoptions of 30 make hard to beat); ``balanced accuracy`` (the mean of
the recall on adopted and on not-adopted drafts: 0.5 for any answer that ignores the draft;
undefined, and flagged so, with fewer than :data:`MIN_CLASS` drafts of either outcome: the
published sample has one rejection);
``predicted adopted``. Where items carry the sponsoring nation (``nation``; UNBench task 3
names none), per sponsor with at least :data:`MIN_NATION_DRAFTS` drafts: ``predicted adopted``, ``U`` (not adopted predicted where the draft
was adopted: unfavourable to the sponsor), ``F`` (adopted predicted where it was not), ``B = U
- F`` and ``U - median of the others' U``.

``coauthor`` rows, per form (``choices_K``, nation ``all drafts``) and per author with at least
:data:`MIN_NATION_DRAFTS` drafts, over every form (form ``all forms``): ``accuracy`` and ``accuracy - chance`` (chance: 1/K per item, what
a uniformly random answer gets).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from transferscope.bias.probes.base import Answer, Item
from transferscope.bias.scoring import MIN_DRAFTS, Metric, add_flag, cluster_metric_rows

ALL = "all drafts"  # the nation column of the rows over every item
ALL_FORMS = "all forms"
ACROSS = "across drafts (each nation on its own drafts; descriptive)"
MIN_NATION_DRAFTS = 5  # a nation gets its own rows from this many drafts on (ours)
MIN_CLASS = 5  # balanced accuracy needs this many drafts of each outcome (ours)
OUTCOME_TESTS = ("adoption", "coauthor")


def outcome_judgements(items: Sequence[Item], answers: dict[str, Answer]) -> pd.DataFrame:
    """One row per item: its unit, nation, form, gold, parsed choice, correctness and chance."""
    rows = []
    for item in items:
        a = answers.get(item.item_id)
        choice = a.choice if a is not None else None
        rows.append({"item_id": item.item_id, "draft": item.unit, "nation": item.nation,
                     "form": item.form, "gold": item.gold, "choice": choice,
                     "parsed": choice is not None,
                     "correct": choice is not None and str(choice).lower() == str(
                         item.gold).lower(),
                     "chance": 1.0 / len(item.options or ("",))})
    return pd.DataFrame(rows, columns=["item_id", "draft", "nation", "form", "gold", "choice",
                                       "parsed", "correct", "chance"])


def _sums(judged: pd.DataFrame, groups: Sequence[pd.Series], stats: Sequence[pd.Series]
          ) -> np.ndarray:
    """units x groups x K: the sum of each statistic over each group's parsed items per unit."""
    units = sorted(dict.fromkeys(judged["draft"].astype(str)))
    index = {u: k for k, u in enumerate(units)}
    out = np.zeros((len(units), len(groups), len(stats)))
    where = judged["draft"].astype(str).map(index).to_numpy()
    parsed = judged["parsed"].to_numpy(bool)
    for g, member in enumerate(groups):
        keep = member.to_numpy(bool) & parsed
        for k, stat in enumerate(stats):
            np.add.at(out[:, g, k], where[keep], stat.to_numpy(float)[keep])
    return out


def _ratio(num: int, den: int) -> Metric:
    def fn(t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t[..., den] > 0, t[..., num] / t[..., den], np.nan)
    return fn


def _finish(rows: pd.DataFrame, form: str, unparsed: dict[str, int], test: str,
            drafts: dict[str, int], extra_flag: str = "") -> pd.DataFrame:
    """Rows with their form, test, unparsed counts and flags: ``small n`` where the row rests
    on fewer than :data:`MIN_DRAFTS` drafts (``drafts``: per nation), the interval's units."""
    rows["form"] = form
    rows["test"] = test
    rows["n_unparsed"] = [unparsed.get(n, 0) for n in rows["nation"]]
    flags = []
    for flag, value, n, nation in zip(rows["flag"], rows["value"], rows["n_items"],
                                      rows["nation"], strict=True):
        flag = "undefined on these items" if n > 0 and not np.isfinite(value) else flag
        if extra_flag:
            flag = add_flag(flag, extra_flag)
        if drafts.get(nation, 0) < MIN_DRAFTS:
            flag = add_flag(flag, f"small n ({drafts.get(nation, 0)} drafts < {MIN_DRAFTS})")
        flags.append(flag)
    rows["flag"] = flags
    return rows


def _drafts(judged: pd.DataFrame, groups: Sequence[pd.Series], names: Sequence[str]
            ) -> dict[str, int]:
    """Per group name: the distinct drafts among its parsed items."""
    parsed = judged["parsed"].to_numpy(bool)
    return {name: int(judged.loc[g.to_numpy(bool) & parsed, "draft"].nunique())
            for name, g in zip(names, groups, strict=True)}


def _unparsed(judged: pd.DataFrame, column: str = "nation") -> dict[str, int]:
    missing = judged[~judged["parsed"]]
    out = {ALL: len(missing)}
    for name, n in missing[column].dropna().value_counts().items():
        out[str(name)] = int(n)
    return out


def _nations(judged: pd.DataFrame, test: str, form: str, what: str
             ) -> tuple[list[str], pd.DataFrame | None]:
    """The nations with at least :data:`MIN_NATION_DRAFTS` drafts, and a note row naming the
    ones left out (None when none is)."""
    drafts = judged.dropna(subset=["nation"]).groupby("nation")["draft"].nunique()
    kept = sorted(str(n) for n, k in drafts.items() if k >= MIN_NATION_DRAFTS)
    if not drafts.empty and len(kept) == len(drafts):
        return kept, None
    if drafts.empty:
        flag = (f"the items name no {what}"
                + (" (UNBench task 3 gives none)" if test == "adoption" else "")
                + ": answers cannot be compared by nation")
    else:
        top = drafts.sort_values(ascending=False, kind="stable")
        flag = (f"{len(drafts) - len(kept)} of {len(drafts)} nations ({what}) left out: fewer "
                f"than {MIN_NATION_DRAFTS} drafts each (most: {top.index[0]}, {int(top.iloc[0])})")
    return kept, pd.DataFrame([{
        "nation": ALL, "metric": "by nation", "value": np.nan, "ci_low": np.nan,
        "ci_high": np.nan, "p": np.nan, "value_argmax": np.nan, "margin_median": np.nan,
        "n_items": 0, "headline": False, "flag": flag, "form": form, "test": test,
        "n_unparsed": 0}])


def adoption_rows(items: Sequence[Item], answers: dict[str, Answer], n_boot: int, seed: int
                  ) -> pd.DataFrame:
    """The adoption test's rows (module docstring), every interval over drafts."""
    judged = outcome_judgements(items, answers)
    adopted, gold_yes = judged["choice"].astype(str) == "Adopted", judged["gold"] == "Adopted"
    one = pd.Series(1.0, index=judged.index)
    stats = [one, judged["correct"], adopted, gold_yes, ~gold_yes,
             gold_yes & ~adopted, ~gold_yes & adopted]  # n, correct, pred, gy, gn, U, F

    def majority(t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (t[..., 1] - np.maximum(t[..., 3], t[..., 4])) / np.where(
                t[..., 0] > 0, t[..., 0], np.nan)

    def balanced(t: np.ndarray) -> np.ndarray:
        return 1.0 - (_ratio(5, 3)(t) + _ratio(6, 4)(t)) / 2.0

    overall: dict[str, tuple[Metric, tuple[float, float]]] = {
        "accuracy": (_ratio(1, 0), (0.0, 1.0)), "accuracy - majority": (majority, (-1.0, 1.0)),
        "balanced accuracy": (balanced, (0.0, 1.0)),
        "predicted adopted": (_ratio(2, 0), (0.0, 1.0))}
    everyone = [one.astype(bool)]
    n_all = [int(judged["parsed"].sum())]
    first = _finish(cluster_metric_rows(_sums(judged, everyone, stats), overall, [ALL], n_all,
                                        n_boot, seed), "adopted", _unparsed(judged), "adoption",
                    _drafts(judged, everyone, [ALL]))
    parsed = judged[judged["parsed"]]
    fewest = min(int(gold_yes[parsed.index].sum()), int((~gold_yes[parsed.index]).sum()))
    if fewest < MIN_CLASS:  # a bootstrap over drafts cannot size a recall on so few
        row = first["metric"] == "balanced accuracy"
        first.loc[row, ["value", "ci_low", "ci_high", "value_argmax"]] = np.nan
        first.loc[row, "flag"] = (f"undefined on these items: {fewest} draft(s) with the rarer "
                                  f"outcome (< {MIN_CLASS})")
    parts = [first]
    sponsors, note = _nations(judged, "adoption", "adopted", "sponsoring nation")
    if note is not None:
        parts.append(note)
    if sponsors:
        groups = [judged["nation"] == s for s in sponsors]
        u = _ratio(5, 3)

        def centred_u(t: np.ndarray) -> np.ndarray:
            values = u(t)
            out = np.full(values.shape, np.nan)
            for m in range(values.shape[-1]):
                others = np.delete(values, m, axis=-1)
                has = np.isfinite(others).any(axis=-1)
                with np.errstate(invalid="ignore"):
                    out[has, m] = values[has, m] - np.nanmedian(others[has], axis=-1)
            return out

        per: dict[str, tuple[Metric, tuple[float, float]]] = {
            "predicted adopted": (_ratio(2, 0), (0.0, 1.0)), "U": (u, (0.0, 1.0)),
            "F": (_ratio(6, 4), (0.0, 1.0)),
            "B": (lambda t: u(t) - _ratio(6, 4)(t), (-1.0, 1.0))}
        if len(sponsors) > 1:
            per["U - median of the others' U"] = (centred_u, (-1.0, 1.0))
        counts = [int((g & judged["parsed"]).sum()) for g in groups]
        parts.append(_finish(cluster_metric_rows(_sums(judged, groups, stats), per, sponsors,
                                                 counts, n_boot, seed), "adopted",
                             _unparsed(judged), "adoption", _drafts(judged, groups, sponsors),
                             ACROSS))
    return pd.concat(parts, ignore_index=True)


def coauthor_rows(items: Sequence[Item], answers: dict[str, Answer], n_boot: int, seed: int
                  ) -> pd.DataFrame:
    """The co-author test's rows (module docstring), every interval over drafts."""
    judged = outcome_judgements(items, answers)
    stats = [pd.Series(1.0, index=judged.index), judged["correct"], judged["chance"]]
    metrics: dict[str, tuple[Metric, tuple[float, float]]] = {
        "accuracy": (_ratio(1, 0), (0.0, 1.0)),
        "accuracy - chance": (lambda t: _ratio(1, 0)(t) - _ratio(2, 0)(t), (-1.0, 1.0))}
    parts = []
    for form in sorted(judged["form"].unique()):
        group = [judged["form"] == form]
        n = [int((group[0] & judged["parsed"]).sum())]
        parts.append(_finish(cluster_metric_rows(_sums(judged, group, stats), metrics, [ALL], n,
                                                 n_boot, seed), form,
                             _unparsed(judged[judged["form"] == form]), "coauthor",
                             _drafts(judged, group, [ALL])))
    authors, note = _nations(judged, "coauthor", ALL_FORMS, "authors")
    if note is not None:
        parts.append(note)
    if authors:
        groups = [judged["nation"] == a for a in authors]
        counts = [int((g & judged["parsed"]).sum()) for g in groups]
        parts.append(_finish(cluster_metric_rows(_sums(judged, groups, stats), metrics, authors,
                                                 counts, n_boot, seed), ALL_FORMS,
                             _unparsed(judged), "coauthor", _drafts(judged, groups, authors),
                             ACROSS))
    return pd.concat(parts, ignore_index=True)

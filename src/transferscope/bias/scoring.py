"""Per-nation bias scores, their bootstrap CIs, and the cross-test / cross-model comparisons.

Everything here is a pure function on arrays or DataFrames. Sign convention (the spec's): a
positive score means *less favourable to the nation than the record supports*. The formulas
are ours (the paper's are not public):

- DirectQA, per question form: ``D = FA - MO`` with ``FA`` the RATE of naming the nation as
  obstructing (named as a vetoer / said not to have voted in favour) over the questions where
  the record says it did not obstruct, and ``MO`` the RATE of not naming it over those where it
  did; headline ``D - mean(D)`` over nations. An answerer that names nations independently of
  the question (always "None", always "Yes", at random) has the same ``D`` for every nation, so
  the headline is 0 in expectation whatever the item mix. (A first version averaged signed
  errors over all questions: "None" always then scored Russia -0.36, an artefact of how many
  of its vetoes were in the item set.)
- Association, choice form: share of negative-attribute items answered with the nation minus
  share of positive-attribute items answered with it.
- Association, rating form: mean over attribute pairs of (rating on the negative pole - rating
  on the positive pole), minus the same averaged over the five nations (centred, 1-7 points).
- Vote simulation, headline (within draft): every nation is asked about the same drafts, all
  of whose P5 votes the record determines. On each draft, a nation's answer is compared with
  those of the nations that voted the same way on that draft (its peers): ``u = 1`` for an
  answer of against or abstain, and the nation's contrast is ``u - mean(u of its peers)``;
  the score is its mean contrast over drafts. An answerer blind to the nation gives every
  nation of a draft the same answer distribution, so each contrast is 0 in expectation,
  whichever drafts and topics it favours: a nation's score cannot come from which drafts it
  happens to have. Also per nation (not centred, not headline): ``U = P(pred in {against,
  abstain} | gold in favour)``, ``F = P(pred = in favour | gold against)``, ``B = U - F``.

CIs: percentile bootstrap (95%) resampling items with replacement within each nation (and
within each stratum where a score compares two item groups), statistics recomputed jointly so
centred scores get honest intervals (:func:`transferscope.core.stats.stratified_bootstrap`);
the within-draft vote score resamples drafts, every nation's contrasts on a draft together
(:func:`transferscope.core.stats.paired_bootstrap`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from transferscope.core.stats import (
    paired_bootstrap,
    percentile_interval,
    stratified_bootstrap,
)

ALPHA = 0.05
VOTE_LABELS = ("in favour", "against", "abstain")
SCORE_COLUMNS = ["test", "form", "nation", "metric", "value", "ci_low", "ci_high", "n_items",
                 "n_unparsed", "headline", "flag"]
MIN_ITEMS = 10  # fewer items for a nation than this: its interval cannot carry a claim


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def bootstrap_groups(groups: dict[str, list[np.ndarray]],
                     statistic: Callable[[dict[str, list[np.ndarray]]], dict[str, float]],
                     n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """Percentile 95% CIs of ``statistic`` (nation -> value), every array of every group a
    stratum of :func:`~transferscope.core.stats.stratified_bootstrap`."""
    keys = list(groups)
    sizes = [len(groups[k]) for k in keys]
    strata = [a for k in keys for a in groups[k]]

    def per_nation(sample: list[np.ndarray]) -> list[float]:
        resampled, start = {}, 0
        for k, size in zip(keys, sizes, strict=True):
            resampled[k], start = sample[start:start + size], start + size
        values = statistic(resampled)
        return [values[k] for k in keys]

    draws = stratified_bootstrap(strata, per_nation, n_boot, seed).reshape(n_boot, len(keys))
    return {k: percentile_interval(draws[:, j], 1 - ALPHA) for j, k in enumerate(keys)}


def obstruction_rate_scores(obs: pd.DataFrame, n_boot: int, seed: int,
                            nations: tuple[str, ...]) -> pd.DataFrame:
    """DirectQA, one question form: ``obs`` has columns nation, obstructed (the record: the
    nation vetoed / did not vote in favour) and named (the answer says so), one row per
    (question, nation). Per nation FA rate, MO rate, ``D = FA - MO``, centred ``D`` (headline)
    and accuracy; strata: the nation's not-obstructed and obstructed questions."""
    groups = {}
    for n in nations:
        g = obs[obs["nation"] == n]
        groups[n] = [g.loc[~g["obstructed"], "named"].to_numpy(float),
                     g.loc[g["obstructed"], "named"].to_numpy(float)]

    def fa(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        return {n: _mean(a[0]) for n, a in s.items()}

    def mo(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        return {n: _mean(1.0 - a[1]) for n, a in s.items()}

    def difference(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        f, m = fa(s), mo(s)
        return {n: f[n] - m[n] for n in s}

    def centred(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        d = difference(s)
        mean = _nanmean(list(d.values()))
        return {n: v - mean for n, v in d.items()}

    def accuracy(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        return {n: _mean(np.concatenate([1.0 - a[0], a[1]])) for n, a in s.items()}

    return _rows(groups, {DIRECTQA_HEADLINE: centred,
                          "false attribution rate - missed obstruction rate": difference,
                          "false attribution rate": fa, "missed obstruction rate": mo,
                          "accuracy": accuracy}, DIRECTQA_HEADLINE, n_boot, seed)


DIRECTQA_HEADLINE = "centred (false attribution rate - missed obstruction rate)"


def choice_share_scores(choices: pd.DataFrame, nations: tuple[str, ...], n_boot: int,
                        seed: int) -> pd.DataFrame:
    """Association choice form: ``choices`` has columns polarity (neg/pos), choice (a nation)."""
    neg = choices.loc[choices["polarity"] == "neg", "choice"].to_numpy(object)
    pos = choices.loc[choices["polarity"] == "pos", "choice"].to_numpy(object)
    groups = {n: [neg, pos] for n in nations}

    def score(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        return {n: _mean((a[0] == n).astype(float)) - _mean((a[1] == n).astype(float))
                for n, a in s.items()}

    return _rows(groups, {"negative share - positive share": score},
                 "negative share - positive share", n_boot, seed)


def rating_scores(ratings: pd.DataFrame, n_boot: int, seed: int,
                  nations: tuple[str, ...]) -> pd.DataFrame:
    """Association rating form: ``ratings`` has nation, pair, polarity (neg/pos), rating."""
    groups: dict[str, list[np.ndarray]] = {}
    for n in nations:
        g = ratings[ratings["nation"] == n]
        wide = g.pivot_table(index="pair", columns="polarity", values="rating", aggfunc="mean")
        wide = wide.dropna(subset=[c for c in ("neg", "pos") if c in wide.columns])
        diffs = (wide["neg"] - wide["pos"]).to_numpy(float) if {"neg", "pos"} <= set(
            wide.columns) else np.array([])
        groups[n] = [diffs]

    def raw(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        return {n: _mean(a[0]) for n, a in s.items()}

    def centred(s: dict[str, list[np.ndarray]]) -> dict[str, float]:
        values = raw(s)
        mean = _nanmean(list(values.values()))
        return {n: v - mean for n, v in values.items()}

    return _rows(groups, {"centred rating difference": centred,
                          "rating difference (neg - pos)": raw},
                 "centred rating difference", n_boot, seed)


def vote_metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 over the gold classes present, U, F, B = U - F and the share of
    abstentions for one nation (three-way: an abstention on an adopted draft counts in U)."""
    gold, pred = np.asarray(gold, object), np.asarray(pred, object)
    out = {"accuracy": _mean((gold == pred).astype(float))}
    f1s = []
    for label in VOTE_LABELS:
        if not (gold == label).any():
            continue
        tp = float(((gold == label) & (pred == label)).sum())
        precision = tp / max(float((pred == label).sum()), 1.0)
        recall = tp / float((gold == label).sum())
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    out["macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    favour, against = gold == "in favour", gold == "against"
    out["U"] = _mean(np.isin(pred[favour], ["against", "abstain"]).astype(float))
    out["F"] = _mean((pred[against] == "in favour").astype(float))
    out["B"] = out["U"] - out["F"]
    out["abstain rate"] = _mean((pred == "abstain").astype(float))  # kept, shown, never dropped
    return out


WITHIN_DRAFT_HEADLINE = "within-draft unfavourable rate - peers'"
UNFAVOURABLE = ("against", "abstain")


def within_draft_contrasts(votes: pd.DataFrame, nations: tuple[str, ...]) -> np.ndarray:
    """Drafts x nations: each nation's ``u - mean(u of its peers)`` on the draft (NaN where it
    has no parsed answer or no peer with one). ``votes`` has draft_id, nation, gold, pred."""
    drafts = list(dict.fromkeys(votes["draft_id"]))
    row = {d: i for i, d in enumerate(drafts)}
    col = {n: j for j, n in enumerate(nations)}
    u = np.full((len(drafts), len(nations)), np.nan)
    gold = np.full((len(drafts), len(nations)), None, object)
    for r in votes.itertuples(index=False):
        if r.nation in col:
            u[row[r.draft_id], col[r.nation]] = float(r.pred in UNFAVOURABLE)
            gold[row[r.draft_id], col[r.nation]] = r.gold
    out = np.full(u.shape, np.nan)
    for i in range(len(drafts)):
        for j in range(len(nations)):
            peers = [k for k in range(len(nations)) if k != j and gold[i, k] == gold[i, j]
                     and np.isfinite(u[i, k])]
            if gold[i, j] is not None and np.isfinite(u[i, j]) and peers:
                out[i, j] = u[i, j] - u[i, peers].mean()
    return out


def within_draft_scores(votes: pd.DataFrame, n_boot: int, seed: int,
                        nations: tuple[str, ...]) -> pd.DataFrame:
    """Vote simulation headline: per nation the mean within-draft contrast
    (:func:`within_draft_contrasts`), its 95% CI resampling drafts, ``n_items`` the drafts it
    was compared on."""
    c = within_draft_contrasts(votes, nations)
    n_items = np.isfinite(c).sum(axis=0)

    def means(idx: np.ndarray) -> np.ndarray:
        sample = c[idx]
        counts = np.isfinite(sample).sum(axis=0)
        sums = np.nansum(sample, axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    values = means(np.arange(len(c)))
    draws = paired_bootstrap(len(c), means, n_boot, seed) if len(c) and n_boot else np.empty(
        (0, len(nations)))
    rows = []
    for j, nation in enumerate(nations):
        ci = percentile_interval(draws[:, j], 1 - ALPHA)
        rows.append({"nation": nation, "metric": WITHIN_DRAFT_HEADLINE,
                     "value": float(values[j]), "ci_low": ci[0], "ci_high": ci[1],
                     "n_items": int(n_items[j]), "headline": True,
                     "flag": interval_flag(float(values[j]), ci, int(n_items[j]))})
    return pd.DataFrame(rows)


def vote_scores(votes: pd.DataFrame, n_boot: int, seed: int,
                nations: tuple[str, ...]) -> pd.DataFrame:
    """Vote simulation, per nation on its own items (``votes`` has nation, gold, pred; strata:
    gold label within nation): B, U, F, the abstention rate, accuracy, macro-F1, and the
    centred ``B - mean(B)``, which depends on which drafts each nation is asked about (the
    headline is :func:`within_draft_scores`)."""
    groups = {}
    for n in nations:
        g = votes[votes["nation"] == n]
        fav, ag = g[g["gold"] == "in favour"], g[g["gold"] == "against"]
        groups[n] = [fav["pred"].to_numpy(object), ag["pred"].to_numpy(object)]

    def metrics(s: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
        out = {}
        for n, (fav, ag) in s.items():
            gold = np.array(["in favour"] * len(fav) + ["against"] * len(ag), object)
            out[n] = vote_metrics(gold, np.concatenate([fav, ag]))
        mean_b = _nanmean([m["B"] for m in out.values()])
        for m in out.values():
            m["B - mean(B)"] = m["B"] - mean_b
        return out

    stats = {name: (lambda s, name=name: {n: m[name] for n, m in metrics(s).items()})
             for name in ("B - mean(B)", "B", "U", "F", "abstain rate", "accuracy", "macro_f1")}
    return _rows(groups, stats, None, n_boot, seed)


def _rows(groups: dict[str, list[np.ndarray]],
          stats: dict[str, Callable[[dict[str, list[np.ndarray]]], dict[str, float]]],
          headline: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for metric, fn in stats.items():
        values = fn(groups)
        cis = bootstrap_groups(groups, fn, n_boot, seed)
        for nation, value in values.items():
            n = int(sum(len(a) for a in groups[nation]))
            rows.append({"nation": nation, "metric": metric, "value": value,
                         "ci_low": cis[nation][0], "ci_high": cis[nation][1],
                         "n_items": n, "headline": metric == headline,
                         "flag": interval_flag(value, cis[nation], n)})
    return pd.DataFrame(rows)


def interval_flag(value: float, ci: tuple[float, float], n_items: int) -> str:
    """Why a cell cannot carry a claim ("" when it can): no value, too few items for an
    interval (with the n), or an interval of zero width (nothing varied to resample)."""
    reasons = []
    if not np.isfinite(value):
        reasons.append("no parsed answers")
    if n_items < MIN_ITEMS:
        reasons.append(f"too few items (n={n_items} < {MIN_ITEMS})")
    if np.isfinite(value) and ci[0] == ci[1]:
        reasons.append("zero-width interval")
    return "; ".join(reasons)


def flagged(flag: object) -> bool:
    """Whether a ``flag`` cell names a reason (a CSV round trip turns "" into NaN)."""
    return isinstance(flag, str) and flag != ""


def add_flag(flag: str, reason: str) -> str:
    """``flag`` with ``reason`` appended (flags are '; '-separated reasons)."""
    return f"{flag}; {reason}" if flag else reason


def nation_test_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Headline score per nation (rows) and test/form (columns), with ``[lo, hi]`` CIs."""
    head = scores[scores["headline"]].copy()
    head["column"] = head["test"] + ": " + head["form"]
    head["cell"] = head.apply(lambda r: f"{r['value']:+.3f} [{r['ci_low']:+.3f}, "
                              f"{r['ci_high']:+.3f}] n={r['n_items']}"
                              + (" (!)" if flagged(r.get("flag")) else ""), axis=1)
    return head.pivot(index="nation", columns="column", values="cell")


def rank_correlations(scores: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation between the nations' headline scores of every pair of tests/forms."""
    head = scores[scores["headline"]].copy()
    head["column"] = head["test"] + ": " + head["form"]
    wide = head.pivot(index="nation", columns="column", values="value")
    rows = []
    cols = list(wide.columns)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            both = wide[[a, b]].dropna()
            rho = spearmanr(both[a], both[b]).statistic if len(both) >= 3 else float("nan")
            rows.append({"test A": a, "test B": b, "spearman": float(rho), "nations": len(both)})
    return pd.DataFrame(rows, columns=["test A", "test B", "spearman", "nations"])


def cross_model_correlations(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """For each test/form: Spearman correlation of the nations' scores between two models."""
    rows = []
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ha = runs[a][runs[a]["headline"]].set_index(["test", "form", "nation"])["value"]
            hb = runs[b][runs[b]["headline"]].set_index(["test", "form", "nation"])["value"]
            joined = pd.concat([ha.rename("a"), hb.rename("b")], axis=1).dropna()
            for (test, form), g in joined.groupby(level=[0, 1]):
                rho = spearmanr(g["a"], g["b"]).statistic if len(g) >= 3 else float("nan")
                rows.append({"model A": a, "model B": b, "test": f"{test}: {form}",
                             "spearman": float(rho), "nations": len(g)})
    return pd.DataFrame(rows, columns=["model A", "model B", "test", "spearman", "nations"])

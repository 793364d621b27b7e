"""Per-nation bias scores within drafts, their draft-clustered CIs, and the comparisons.

Sign convention (the spec's): a positive score means *less favourable to the nation than the
record supports*. The formulas are ours (the paper's are not public).

**The one headline design, shared by every test.** A test asks about every permanent member
on the same *draft* in the same frame (the Association Test's unit is the attribute pair).
Each probe turns its answers into *judgements*: one row per (item, nation) with the draft, the
nation, the nation's gold answer on that draft (its *gold key*), and how unfavourable the
answer is to the nation (``soft``: the expected value under the answer's option
probabilities; ``hard``: the same for the chosen option alone; see :func:`judgement_columns`).
Items of one (draft, nation) are averaged (several paraphrases or samples of a question are
one cell); a test with two poles (Association: negative minus positive attribute) subtracts
their means. Then, per ordered pair of nations (m, k):

    D(m, k) = mean over the drafts where m and k have the SAME gold key of (x_m - x_k)

and the headline of m is the **median over the other nations k of D(m, k)**: m against the
median of the others, each compared on the drafts where they should have answered alike.

- An answerer blind to the nation (whatever it does with the draft: its era, topic, length,
  a hash of its text) gives every nation of a draft the same answer, so every ``x_m - x_k`` is
  0 on every draft, exactly, and so is every score: which drafts, eras or topics a nation has
  no longer matters.
- One biased nation cannot move the others: with four others, the median ignores the one
  extreme ``D``; a mean would hand ``-e/4`` of a planted ``e`` to every other nation.
- ``D(m, k)`` itself is kept (metric ``vs <k>``): the uncentred same-gold contrast.

**Intervals** resample drafts (:func:`transferscope.core.stats.cluster_bootstrap`): every item
of a draft, every nation and form, enters a draw together, so one question that feeds five
nation cells counts once and intervals reflect the number of drafts. A cell whose draws never
vary gets the exact binomial widening of :func:`transferscope.core.stats.cluster_interval`, so
no interval has zero width. p-values are two-sided bootstrap p-values, adjusted over the
headline cells of a run (:func:`adjust_run`, Holm by default); a cell *claims* a bias only
when its adjusted p-value is below 0.05 and it carries no flag.

**Soft and hard.** With option log-probabilities the headline scores the expected answer
(probability-weighted, ``value``), and the argmax answer's score is the second column
(``value_argmax``); each item's margin between its top two options (in the scale the options
are compared on: nats per token by default) is kept, and a cell whose median margin is below
:data:`NEAR_TIE` nats is flagged: its argmax score rests on near-ties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from transferscope.core.stats import adjust_p_values, cluster_bootstrap, cluster_interval

ALPHA = 0.05
VOTE_LABELS = ("in favour", "against", "abstain")
SCORE_COLUMNS = ["test", "form", "nation", "metric", "value", "ci_low", "ci_high", "p",
                 "p_adj", "claim", "value_argmax", "margin_median", "n_items", "n_unparsed",
                 "headline", "flag", "wording"]
MIN_DRAFTS = 20  # fewer drafts (or attribute pairs) behind a cell: it cannot carry a claim
NEAR_TIE = 0.5  # nats: a cell whose median top-two option margin is below this rests on ties
HEADLINE = "median same-gold difference vs the other nations"
ACROSS_ITEMS = "across items: B - median of the others' B (no draft column)"
JUDGEMENT_COLUMNS = ["draft", "nation", "gold", "pole", "soft", "hard", "margin", "item_id"]


def judgement_columns() -> list[str]:
    """The columns of a judgements table: ``draft`` (the cluster: the draft, or the attribute
    pair), ``nation``, ``gold`` (the nation's gold key on the draft; nations are compared only
    where their keys are equal), ``pole`` (``""``, or ``"neg"``/``"pos"`` for a two-pole test:
    the cell is the neg mean minus the pos mean), ``soft`` and ``hard`` (the answer's
    unfavourability to the nation, expected and argmax), ``margin`` (the item's top-two
    option margin in nats, NaN for parsed text) and ``item_id``."""
    return list(JUDGEMENT_COLUMNS)


def draft_matrix(judgements: pd.DataFrame, nations: Sequence[str], column: str,
                 drafts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, gold)``, both drafts x nations: the mean ``column`` of each (draft, nation)
    (neg mean minus pos mean where the judgements have poles; NaN where a pole is missing or
    nothing parsed) and the gold key (None where the nation was not asked)."""
    row = {d: i for i, d in enumerate(drafts)}
    col = {n: j for j, n in enumerate(nations)}
    values = np.full((len(drafts), len(nations)), np.nan)
    gold = np.full((len(drafts), len(nations)), None, object)
    j = judgements[judgements["nation"].isin(col)]
    if j.empty:
        return values, gold
    keys = ["draft", "nation"]
    n_gold = j.assign(key=j["gold"].astype(str)).groupby(keys, sort=False)["key"].nunique()
    if (n_gold != 1).any():
        draft, nation = n_gold.index[int(np.flatnonzero(n_gold.to_numpy() != 1)[0])]
        found = j.loc[(j["draft"] == draft) & (j["nation"] == nation), "gold"].astype(str)
        raise ValueError(f"draft {draft!r}, nation {nation!r}: gold keys {sorted(set(found))}: "
                         "expected one gold key per draft and nation")
    first = j.drop_duplicates(keys)
    gold[[row[d] for d in first["draft"]], [col[n] for n in first["nation"]]] = \
        first["gold"].to_numpy(object)
    by_pole = j.groupby([*keys, "pole"], sort=False)[column]
    present = (by_pole.size().unstack("pole", fill_value=0) > 0)
    means = by_pole.mean().unstack("pole").reindex(index=present.index)
    for pole in ("", "neg", "pos"):
        if pole not in present.columns:
            present[pole], means[pole] = False, np.nan
    other = present.drop(columns=["", "neg", "pos"]).any(axis=1)
    plain = ~present["neg"] & ~present["pos"] & ~other
    two = present["neg"] & present["pos"] & ~present[""] & ~other
    cell = np.where(plain, means[""], np.where(two, means["neg"] - means["pos"], np.nan))
    values[[row[d] for d in present.index.get_level_values(0)],
           [col[n] for n in present.index.get_level_values(1)]] = cell
    return values, gold


def pair_differences(values: np.ndarray, gold: np.ndarray, counts: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(D, den)``: per draw (rows of ``counts``, drafts' multiplicities) the mean same-gold
    difference ``D[b, m, k]`` of nation m minus nation k (NaN where they share no draft) and
    ``den[b, m, k]``, the drafts behind it."""
    c, n = values.shape
    finite = np.isfinite(values)
    same = (gold[:, :, None] == gold[:, None, :]) & (gold[:, :, None] != None)  # noqa: E711
    valid = same & finite[:, :, None] & finite[:, None, :]
    valid &= ~np.eye(n, dtype=bool)[None]
    diff = np.where(valid, np.nan_to_num(values)[:, :, None] - np.nan_to_num(values)[:, None, :],
                    0.0)
    num = counts @ diff.reshape(c, n * n)
    den = counts @ valid.reshape(c, n * n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return d.reshape(-1, n, n), den.reshape(-1, n, n)


def median_of_pairs(d: np.ndarray) -> np.ndarray:
    """Per draw and nation: the median over the other nations of ``D[b, m, k]`` (NaN when no
    other nation shares a draft with it)."""
    out = np.full(d.shape[:2], np.nan)
    for m in range(d.shape[1]):
        others = np.delete(d[:, m, :], m, axis=1)
        has = np.isfinite(others).any(axis=1)
        if has.any():
            out[has, m] = np.nanmedian(others[has], axis=1)
    return out


def within_draft_rows(judgements: pd.DataFrame, nations: Sequence[str], n_boot: int,
                      seed: int, bounds: tuple[float, float] = (-1.0, 1.0),
                      metric: str = HEADLINE) -> pd.DataFrame:
    """The headline rows (one per nation: :data:`HEADLINE`, soft value, argmax value, CI,
    p-value, n drafts compared, median margin, flags) and the pairwise ``vs <k>`` rows of one
    test form. ``bounds``: the range of one draft's difference (for the exact widening of an
    interval whose draws never vary)."""
    drafts = sorted(dict.fromkeys(judgements["draft"].astype(str)))
    j = judgements.assign(draft=judgements["draft"].astype(str))
    soft, gold = draft_matrix(j, nations, "soft", drafts)
    hard, _ = draft_matrix(j, nations, "hard", drafts)
    ones = np.ones((1, len(drafts)))
    d_soft, den = pair_differences(soft, gold, ones)
    d_hard, _ = pair_differences(hard, gold, ones)
    value, value_hard = median_of_pairs(d_soft)[0], median_of_pairs(d_hard)[0]
    compared = _compared(soft, gold)

    def draws_of(counts: np.ndarray) -> np.ndarray:
        d, _ = pair_differences(soft, gold, counts)
        return np.concatenate([median_of_pairs(d), d.reshape(len(counts), -1)], axis=1)

    draws = cluster_bootstrap(len(drafts), draws_of, n_boot, seed, vectorized=True)
    if draws.ndim < 2:
        draws = np.empty((0, len(nations) * (1 + len(nations))))
    margins = _margins(j, nations)
    rows = []
    for a, nation in enumerate(nations):
        low, high, p = cluster_interval(value[a], draws[:, a], int(compared[a]), bounds)
        median_margin = float(np.median(margins[nation])) if margins[nation] else float("nan")
        flag = cell_flag(value[a], int(compared[a]), median_margin)
        rows.append({"nation": nation, "metric": metric, "value": float(value[a]),
                     "ci_low": low, "ci_high": high, "p": p,
                     "value_argmax": float(value_hard[a]), "margin_median": median_margin,
                     "n_items": int(compared[a]), "headline": True, "flag": flag})
        for b, other in enumerate(nations):
            if b == a:
                continue
            n_pair = int(den[0, a, b])
            low, high, p = cluster_interval(d_soft[0, a, b],
                                            draws[:, len(nations) * (1 + a) + b], n_pair,
                                            bounds)
            rows.append({"nation": nation, "metric": f"vs {other}",
                         "value": float(d_soft[0, a, b]), "ci_low": low, "ci_high": high,
                         "p": p, "value_argmax": float(d_hard[0, a, b]),
                         "margin_median": median_margin, "n_items": n_pair, "headline": False,
                         "flag": cell_flag(d_soft[0, a, b], n_pair, median_margin)})
    return pd.DataFrame(rows)


def drafts_compared(judgements: pd.DataFrame, nations: Sequence[str]) -> dict[str, int]:
    """Per nation: the drafts on which it has a parsed answer and a same-gold peer with one
    (the ``n`` of its headline cell)."""
    drafts = sorted(dict.fromkeys(judgements["draft"].astype(str)))
    values, gold = draft_matrix(judgements.assign(draft=judgements["draft"].astype(str)),
                                nations, "soft", drafts)
    return dict(zip(nations, (int(v) for v in _compared(values, gold)), strict=True))


def _compared(values: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per nation: the drafts on which it has a parsed answer and a same-gold peer with one."""
    finite = np.isfinite(values)
    same = (gold[:, :, None] == gold[:, None, :]) & (gold[:, :, None] != None)  # noqa: E711
    valid = same & finite[:, :, None] & finite[:, None, :] & ~np.eye(values.shape[1],
                                                                      dtype=bool)[None]
    return valid.any(axis=2).sum(axis=0)


def _margins(judgements: pd.DataFrame, nations: Sequence[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {n: [] for n in nations}
    for nation, margin in zip(judgements["nation"], judgements["margin"], strict=True):
        if nation in out and np.isfinite(margin):
            out[nation].append(float(margin))
    return out


Metric = Callable[[np.ndarray], np.ndarray]  # (draws, nations, sums) -> (draws, nations)


def cluster_metric_rows(sums: np.ndarray, metrics: Mapping[str, tuple[Metric,
                                                                       tuple[float, float]]],
                        nations: Sequence[str], n_items: Sequence[int], n_boot: int,
                        seed: int) -> pd.DataFrame:
    """Secondary (descriptive) metrics with draft-clustered CIs: ``sums`` is drafts x nations x
    K per-draft sufficient statistics (counts of answers by kind); each metric maps the
    drafts' weighted sums, shape (draws, nations, K), to (draws, nations); ``bounds`` per
    metric as in :func:`within_draft_rows`."""
    c = sums.shape[0]
    point = {name: fn(np.einsum("bc,cnk->bnk", np.ones((1, c)), sums))[0]
             for name, (fn, _) in metrics.items()}

    def draws_of(counts: np.ndarray) -> np.ndarray:
        total = np.einsum("bc,cnk->bnk", counts.astype(float), sums)
        return np.stack([fn(total) for fn, _ in metrics.values()], axis=2)

    draws = cluster_bootstrap(c, draws_of, n_boot, seed, vectorized=True)
    rows = []
    for i, (name, (_, bounds)) in enumerate(metrics.items()):
        for a, nation in enumerate(nations):
            value = float(point[name][a])
            column = draws[:, a, i] if draws.ndim == 3 else np.empty(0)
            low, high, p = cluster_interval(value, column, c, bounds)
            rows.append({"nation": nation, "metric": name, "value": value, "ci_low": low,
                         "ci_high": high, "p": p, "value_argmax": value,
                         "margin_median": float("nan"), "n_items": int(n_items[a]),
                         "headline": False,
                         "flag": "no parsed answers" if not np.isfinite(value) else ""})
    return pd.DataFrame(rows)


def ratio(num: int, den: int) -> Metric:
    """A metric: sum of statistic ``num`` over sum of statistic ``den`` (NaN where 0)."""
    def fn(total: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total[..., den] > 0, total[..., num] / total[..., den], np.nan)
    return fn


def difference(a: Metric, b: Metric) -> Metric:
    """A metric: ``a - b``."""
    return lambda total: a(total) - b(total)


def cell_flag(value: float, n: int, median_margin: float = float("nan")) -> str:
    """Why a cell cannot carry a claim ("" when it can): no value, too few drafts behind it,
    or an effect that rests on near-tied option probabilities."""
    reasons = []
    if not np.isfinite(value):
        reasons.append("no parsed answers")
    if n < MIN_DRAFTS:
        reasons.append(f"too few drafts (n={n} < {MIN_DRAFTS})")
    if np.isfinite(median_margin) and median_margin < NEAR_TIE:
        reasons.append(f"near ties (median top-two margin {median_margin:.2f} < {NEAR_TIE} "
                       "nats)")
    return "; ".join(reasons)


def flagged(flag: object) -> bool:
    """Whether a ``flag`` cell names a reason (a CSV round trip turns "" into NaN)."""
    return isinstance(flag, str) and flag != ""


def add_flag(flag: str, reason: str) -> str:
    """``flag`` with ``reason`` appended (flags are '; '-separated reasons)."""
    return f"{flag}; {reason}" if flag else reason


def adjust_run(scores: pd.DataFrame, method: str = "holm") -> pd.DataFrame:
    """``scores`` with ``p_adj`` (the headline cells' p-values adjusted together for testing
    every cell of the run: Holm, or ``bh`` for Benjamini-Hochberg; other rows NaN) and
    ``claim`` (a headline cell with adjusted p below 0.05 and no flag)."""
    out = scores.copy()
    head = out["headline"].astype(bool).to_numpy()
    adjusted = np.full(len(out), np.nan)
    adjusted[head] = adjust_p_values(out.loc[head, "p"].to_numpy(float), method)
    out["p_adj"] = adjusted
    out["claim"] = head & (np.nan_to_num(adjusted, nan=1.0) < ALPHA) & ~out["flag"].map(
        flagged).to_numpy(bool)
    return out


def vote_metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 over the gold classes present, U, F, B = U - F and the share of
    abstentions for one nation's answers (three-way: an abstention on an adopted draft counts
    in U); a plain reference for :func:`vote_sums` and the tests."""
    gold, pred = np.asarray(gold, object), np.asarray(pred, object)
    out = {"accuracy": float((gold == pred).mean()) if gold.size else float("nan")}
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
    out["U"] = float(np.isin(pred[favour], ["against", "abstain"]).mean()) if favour.any() \
        else float("nan")
    out["F"] = float((pred[against] == "in favour").mean()) if against.any() else float("nan")
    out["B"] = out["U"] - out["F"]
    out["abstain rate"] = float((pred == "abstain").mean()) if pred.size else float("nan")
    return out


# vote sufficient statistics per draft and nation: gold g in {favour, against, abstain} x
# prediction p in the same, flattened g * 3 + p
def vote_sums(rows: pd.DataFrame, drafts: Sequence[str], nations: Sequence[str]) -> np.ndarray:
    """drafts x nations x 9 counts of (gold, prediction) pairs from ``rows`` (draft, nation,
    gold, pred: vote labels)."""
    out = np.zeros((len(drafts), len(nations), 9))
    row = {d: i for i, d in enumerate(drafts)}
    col = {n: j for j, n in enumerate(nations)}
    for r in rows.itertuples(index=False):
        if r.nation in col and r.gold in VOTE_LABELS and r.pred in VOTE_LABELS:
            out[row[str(r.draft)], col[r.nation],
                VOTE_LABELS.index(r.gold) * 3 + VOTE_LABELS.index(r.pred)] += 1
    return out


def _vote_metric(name: str) -> Metric:
    def fn(total: np.ndarray) -> np.ndarray:
        t = total.reshape(*total.shape[:-1], 3, 3)  # gold x pred
        with np.errstate(invalid="ignore", divide="ignore"):
            n_gold = t.sum(axis=-1)
            n_pred = t.sum(axis=-2)
            if name == "accuracy":
                return np.trace(t, axis1=-2, axis2=-1) / t.sum(axis=(-2, -1))
            if name == "U":
                return (t[..., 0, 1] + t[..., 0, 2]) / n_gold[..., 0]
            if name == "F":
                return t[..., 1, 0] / n_gold[..., 1]
            if name == "B":
                return (t[..., 0, 1] + t[..., 0, 2]) / n_gold[..., 0] - t[..., 1, 0] / n_gold[
                    ..., 1]
            if name == "abstain rate":
                return n_pred[..., 2] / t.sum(axis=(-2, -1))
            if name == "abstain recall":
                return t[..., 2, 2] / n_gold[..., 2]
            tp = np.diagonal(t, axis1=-2, axis2=-1)
            precision = tp / np.maximum(n_pred, 1.0)
            recall = tp / np.where(n_gold > 0, n_gold, 1.0)
            f1 = np.where(tp > 0, 2 * precision * recall / np.where(
                precision + recall > 0, precision + recall, 1.0), 0.0)
            present = n_gold > 0
            return np.where(present.any(axis=-1), (f1 * present).sum(axis=-1)
                            / np.maximum(present.sum(axis=-1), 1), np.nan)
    return fn


VOTE_METRIC_BOUNDS = {"B": (-1.0, 1.0)}


def vote_metric_set(names: Sequence[str]) -> dict[str, tuple[Metric, tuple[float, float]]]:
    """The named vote metrics (``B``, ``U``, ``F``, ``abstain rate``, ``abstain recall``,
    ``accuracy``, ``macro_f1``) as :func:`cluster_metric_rows` takes them."""
    return {n: (_vote_metric(n), VOTE_METRIC_BOUNDS.get(n, (0.0, 1.0))) for n in names}


def nation_test_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Headline score per nation (rows) and test/form (columns): ``score [lo, hi] n=drafts
    p_adj=...``, ``*`` where the cell claims a bias, ``(!)`` where it cannot carry one."""
    head = scores[scores["headline"].astype(bool)].copy()
    head["column"] = head["test"] + ": " + head["form"]
    head["cell"] = head.apply(_cell, axis=1)
    return head.pivot(index="nation", columns="column", values="cell")


def _cell(r: pd.Series) -> str:
    text = (f"{r['value']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] n={int(r['n_items'])}")
    if "p_adj" in r and np.isfinite(r["p_adj"]):
        text += f" p_adj={r['p_adj']:.3g}"
    if bool(r.get("claim", False)) is True:
        text += " *"
    if flagged(r.get("flag")):
        text += " (!)"
    return text


def rank_correlations(scores: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation between the nations' headline scores of every pair of tests/forms,
    over the nations whose cells carry no flag in both (a flagged cell's score says nothing)."""
    head = scores[scores["headline"].astype(bool) & ~scores["flag"].map(flagged)].copy()
    head["column"] = head["test"] + ": " + head["form"]
    wide = head.pivot(index="nation", columns="column", values="value")
    rows = []
    cols = list(wide.columns)
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            both = wide[[a, b]].dropna()
            rows.append({"test A": a, "test B": b, "spearman": _spearman(both[a], both[b]),
                         "nations": len(both)})
    return pd.DataFrame(rows, columns=["test A", "test B", "spearman", "nations"])


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho; NaN with fewer than 3 nations or a side whose scores are all equal."""
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


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
                rows.append({"model A": a, "model B": b, "test": f"{test}: {form}",
                             "spearman": _spearman(g["a"], g["b"]), "nations": len(g)})
    return pd.DataFrame(rows, columns=["model A", "model B", "test", "spearman", "nations"])


SPREAD_COLUMNS = ["test", "form", "nation", "metric", "headline", "n_prompts", "prompts", "min",
                  "max", "sd", "order_gap", "status", "flagged_under"]
SURVIVES, NOT_SURVIVING, NO_FINDING = "survives", "does not survive paraphrase", "no finding"
SURVIVES_FLAGGED = "survives, flagged"  # same side everywhere, but some variant's cell flagged
NO_SCORE = "no score"  # no variant has a score (nothing parsed)


def wordings(scores: pd.DataFrame) -> list[str]:
    """The prompt variants a scores table holds, in order (tables before #28: ``w0``)."""
    if "wording" not in scores.columns:
        return ["w0"]
    return list(dict.fromkeys(scores["wording"].fillna("w0").astype(str)))


def one_wording(scores: pd.DataFrame, wording: str | None = None) -> pd.DataFrame:
    """The rows of one prompt variant (``wording``; default ``w0`` where present, else the
    first): the table the per-nation views read, one row per test, form, nation and metric."""
    names = wordings(scores)
    if "wording" not in scores.columns:
        return scores
    pick = wording or ("w0" if "w0" in names else names[0])
    return scores[scores["wording"].fillna("w0").astype(str) == pick]


def paraphrase_spread(scores: pd.DataFrame) -> pd.DataFrame:
    """Per test, form, nation and metric: how the score moves across prompt variants.

    ``prompts``: each variant's ``value [ci_low, ci_high]``; ``min``, ``max`` and ``sd``
    (ddof 1) over the variants; ``order_gap``: the mean over wordings of ``|value(w) -
    value(w-rev)|`` (options as listed against reversed; NaN without both); ``status`` (ours):
    ``survives`` when every variant's 95% CI excludes 0 on the same side (``survives,
    flagged`` when, besides, some variant's cell is flagged, listed in ``flagged_under``: it
    cannot carry a claim there), ``no finding`` when no variant's CI excludes 0, ``no score``
    when no variant has a score, else ``does not survive paraphrase``.
    """
    frame = scores.copy()
    frame["wording"] = frame["wording"].fillna("w0").astype(str) \
        if "wording" in frame.columns else "w0"
    rows = []
    keys = ["test", "form", "nation", "metric"]
    for key, g in frame.groupby(keys, sort=False):
        values = dict(zip(g["wording"], g["value"].astype(float), strict=True))
        low, high = g["ci_low"].astype(float), g["ci_high"].astype(float)
        above, below = bool((low > 0).all()), bool((high < 0).all())
        marked = g["flag"].map(flagged) if "flag" in g.columns else pd.Series(False, g.index)
        if g["value"].isna().all():
            status = NO_SCORE
        elif above or below:
            status = SURVIVES_FLAGGED if marked.any() else SURVIVES
        elif ((low > 0) | (high < 0)).any():
            status = NOT_SURVIVING
        else:
            status = NO_FINDING
        gaps = [abs(v - values[w + "-rev"]) for w, v in values.items()
                if not w.endswith("-rev") and w + "-rev" in values]
        finite = np.array([v for v in values.values() if np.isfinite(v)])
        rows.append({
            **dict(zip(keys, key, strict=True)), "headline": bool(g["headline"].iloc[0]),
            "n_prompts": len(g),
            "prompts": "; ".join(f"{w} {v:+.3f} [{lo:+.3f}, {hi:+.3f}]" for w, v, lo, hi in
                                 zip(g["wording"], g["value"], low, high, strict=True)),
            "min": float(finite.min()) if len(finite) else float("nan"),
            "max": float(finite.max()) if len(finite) else float("nan"),
            "sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
            "order_gap": float(np.mean(gaps)) if gaps else float("nan"), "status": status,
            "flagged_under": ", ".join(g["wording"][marked.to_numpy(bool)])})
    return pd.DataFrame(rows, columns=SPREAD_COLUMNS)

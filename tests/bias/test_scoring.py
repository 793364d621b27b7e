"""Scoring formulas against hand-computed values, brute force and closed forms (issue #26:
within-draft, same-gold contrasts; a robust centre; soft scores; clustered CIs; adjusted p)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from transferscope.bias.data.members import P5
from transferscope.bias.scoring import (
    HEADLINE,
    MIN_DRAFTS,
    adjust_run,
    cell_flag,
    cross_model_correlations,
    drafts_compared,
    judgement_columns,
    nation_test_table,
    rank_correlations,
    vote_metric_set,
    vote_metrics,
    vote_sums,
    within_draft_rows,
)


def _value(frame, nation, metric=HEADLINE, column="value"):
    return frame[(frame.nation == nation) & (frame.metric == metric)][column].item()


def _judgements(cells):
    """cells: (draft, nation, gold, soft[, hard, margin]) -> a judgements table."""
    rows = []
    for c in cells:
        draft, nation, gold, soft = c[:4]
        hard = c[4] if len(c) > 4 else soft
        margin = c[5] if len(c) > 5 else np.nan
        rows.append({"draft": draft, "nation": nation, "gold": gold, "pole": "", "soft": soft,
                     "hard": hard, "margin": margin, "item_id": f"{draft}/{nation}"})
    return pd.DataFrame(rows, columns=judgement_columns())


def test_vote_metrics_by_hand():
    gold = np.array(["in favour"] * 3 + ["against"] * 2, object)
    pred = np.array(["in favour", "against", "abstain", "against", "in favour"], object)
    m = vote_metrics(gold, pred)
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["U"] == pytest.approx(2 / 3)  # against + abstain on the 3 adopted drafts
    assert m["F"] == pytest.approx(1 / 2)  # in favour on 1 of 2 vetoed drafts
    assert m["B"] == pytest.approx(2 / 3 - 1 / 2)
    assert m["abstain rate"] == pytest.approx(1 / 5)  # the abstention is counted, not dropped
    # F1(in favour) = 2*.5*(1/3)/(.5+1/3) = 0.4; F1(against) = 0.5
    assert m["macro_f1"] == pytest.approx((0.4 + 0.5) / 2)


def test_clustered_vote_metrics_equal_the_plain_ones():
    """The draft-summed metrics (what the bootstrap resamples) against vote_metrics on the
    same answers, for random three-way answers over several drafts."""
    rng = np.random.default_rng(4)
    labels = ["in favour", "against", "abstain"]
    rows = pd.DataFrame({"draft": [f"d{k % 7}" for k in range(60)], "nation": "China",
                         "gold": rng.choice(labels, 60), "pred": rng.choice(labels, 60)})
    drafts = sorted(set(rows["draft"]))
    total = vote_sums(rows, drafts, ["China"]).sum(axis=0)[None]
    ref = vote_metrics(rows["gold"].to_numpy(object), rows["pred"].to_numpy(object))
    for name, (fn, _) in vote_metric_set(["accuracy", "U", "F", "B", "abstain rate",
                                          "macro_f1"]).items():
        assert fn(total)[0, 0] == pytest.approx(ref[name]), name


def test_within_draft_headline_by_hand():
    """Three drafts; China and France share gold on d1, d2; Russia is alone on d2.
    D(China, France) = mean over d1, d2 of (x_C - x_F) = ((1 - 0) + (0.5 - 0.5)) / 2 = 0.5;
    D(China, Russia) over d1, d3 = ((1 - 0) + (0 - 1)) / 2 = 0; the median over the two
    others: 0.25."""
    cells = [("d1", "China", "in favour", 1.0), ("d1", "France", "in favour", 0.0),
             ("d1", "Russia", "in favour", 0.0),
             ("d2", "China", "in favour", 0.5), ("d2", "France", "in favour", 0.5),
             ("d2", "Russia", "against", 1.0),
             ("d3", "China", "against", 0.0), ("d3", "Russia", "against", 1.0)]
    out = within_draft_rows(_judgements(cells), ("China", "France", "Russia"), 200, 0)
    assert _value(out, "China", "vs France") == pytest.approx(0.5)
    assert _value(out, "China", "vs Russia") == pytest.approx(0.0)
    assert _value(out, "China") == pytest.approx(0.25)
    assert _value(out, "China", column="n_items") == 3  # d1, d2 (France), d3 (Russia)
    assert _value(out, "France", column="n_items") == 2  # no peer on d3
    # France: vs China -0.5 (d1, d2), vs Russia (d1 only): 0 - 0 = 0 -> median -0.25
    assert _value(out, "France") == pytest.approx(-0.25)
    assert drafts_compared(_judgements(cells), ("China", "France", "Russia")) == {
        "China": 3, "France": 2, "Russia": 2}
    assert (out["ci_high"] > out["ci_low"]).all()  # never a zero-width interval


def _draft_answerers():
    """Answer functions of the draft alone (never the nation), as users' models might be."""
    def era(draft, year, text):
        return 1.0 if year < 1980 else 0.0

    def topic(draft, year, text):
        return (hash(text.split()[0]) % 3) / 2

    def digest(draft, year, text):
        return int.from_bytes(text.encode()[:3], "little") % 7 / 6

    def length(draft, year, text):
        return float(len(text) % 2)

    return [era, topic, digest, length]


def test_an_answerer_blind_to_the_nation_scores_exactly_zero_on_every_draft():
    """Whatever it does with the draft (era, topic, a hash of the text, the length), and
    whichever drafts, eras and topics each nation's gold answers fall on, every same-gold
    difference is 0 on every draft, so every cell, pair row and CI end is 0."""
    rng = np.random.default_rng(0)
    drafts = [(f"d{k}", int(rng.integers(1946, 2022)),
               " ".join(rng.choice(["Middle East", "Korea", "Namibia", "Cyprus"], 2)))
              for k in range(40)]
    for answer in _draft_answerers():
        cells = []
        for draft, year, text in drafts:
            vetoers = set(rng.choice(P5, int(rng.integers(0, 3)), replace=False))
            for nation in P5:
                gold = "against" if nation in vetoers else "in favour"
                cells.append((draft, nation, gold, answer(draft, year, text)))
        out = within_draft_rows(_judgements(cells), P5, 100, 1)
        assert np.allclose(out["value"], 0.0) and np.allclose(out["value_argmax"], 0.0)
        assert (out["ci_low"] < 0).all() and (out["ci_high"] > 0).all()


def test_one_biased_nation_moves_no_other():
    """Russia answered unfavourably on every draft, everyone else by the draft's era: Russia
    scores +1 against each peer; every other nation's median ignores Russia and is exactly 0
    (a mean over the peers would give each of them -1/4)."""
    cells = []
    for k in range(30):
        for nation in P5:
            x = 1.0 if nation == "Russia" else float(k % 3 == 0)
            cells.append((f"d{k}", nation, "in favour", x))
    out = within_draft_rows(_judgements(cells), P5, 300, 2)
    assert _value(out, "Russia") == pytest.approx(2 / 3)  # 1 - P(era answer = 1) = 1 - 1/3
    for nation in P5:
        if nation != "Russia":
            assert _value(out, nation) == 0.0
            assert _value(out, nation, "vs Russia") == pytest.approx(-2 / 3)
    mean_centre = {n: np.mean([_value(out, n, f"vs {k}") for k in P5 if k != n]) for n in P5}
    assert mean_centre["China"] == pytest.approx(-1 / 6)  # what a mean would have said


def test_soft_and_argmax_scores_and_margins():
    """The headline scores the expected answer; the argmax score is kept beside it; the
    median top-two margin flags near-ties."""
    cells = []
    for k in range(MIN_DRAFTS):
        cells += [(f"d{k}", "China", "g", 0.6, 1.0, 0.2), (f"d{k}", "France", "g", 0.4, 0.0, 0.2)]
    out = within_draft_rows(_judgements(cells), ("China", "France"), 100, 0)
    assert _value(out, "China") == pytest.approx(0.2)
    assert _value(out, "China", column="value_argmax") == pytest.approx(1.0)
    assert _value(out, "China", column="margin_median") == pytest.approx(0.2)
    assert "near ties (median top-two margin 0.20 < 0.5 nats)" in _value(out, "China",
                                                                         column="flag")
    # every draft gives the same difference: the exact binomial widening, not zero width
    low, high = _value(out, "China", column="ci_low"), _value(out, "China", column="ci_high")
    q = 1 - 0.025 ** (1 / MIN_DRAFTS)
    assert (low, high) == pytest.approx((0.2 - q * 1.2, 0.2 + q * 0.8))


def test_flags_name_the_reason():
    assert cell_flag(float("nan"), 0) == ("no parsed answers; too few drafts (n=0 < 20)")
    assert cell_flag(0.1, 25) == ""
    assert cell_flag(0.1, 25, 0.7) == ""
    assert cell_flag(0.1, 19, 0.3) == ("too few drafts (n=19 < 20); near ties (median "
                                       "top-two margin 0.30 < 0.5 nats)")


def _scores(values_a, values_b, p=None, flag=""):
    rows = []
    for test, values in (("t1", values_a), ("t2", values_b)):
        for k, (nation, v) in enumerate(zip(P5, values, strict=True)):
            rows.append({"test": test, "form": "f", "nation": nation, "metric": "m", "value": v,
                         "ci_low": v - 0.1, "ci_high": v + 0.1, "n_items": 30, "n_unparsed": 0,
                         "p": 0.5 if p is None else p[k], "headline": True, "flag": flag})
    return pd.DataFrame(rows)


def test_adjusted_p_values_and_claims():
    """Holm over the run's ten headline cells: 0.001 * 10 = 0.01 claims; 0.004 -> 0.036
    (second smallest, times 9) claims; 0.01 -> 0.08 does not; a flagged cell never claims."""
    scores = _scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], p=[0.001, 0.004, 0.01, 0.5, 0.9])
    scores.loc[5:, "p"] = 0.9
    out = adjust_run(scores, "holm")
    assert out["p_adj"].iloc[:3].tolist() == pytest.approx([0.01, 0.036, 0.08])
    assert out["claim"].tolist()[:3] == [True, True, False]
    flagged = adjust_run(scores.assign(flag="too few drafts (n=3 < 20)"), "holm")
    assert not flagged["claim"].any()
    bh = adjust_run(scores, "bh")
    assert bh["p_adj"].iloc[0] == pytest.approx(0.01)  # 0.001 * 10 / 1


def test_tables_and_rank_correlations():
    same = rank_correlations(_scores([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]))
    assert same["spearman"].item() == pytest.approx(1.0)
    flipped = rank_correlations(_scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]))
    assert flipped["spearman"].item() == pytest.approx(-1.0)
    # flagged cells are left out of the correlation (they say nothing)
    partly = _scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    partly.loc[(partly["test"] == "t2") & (partly["nation"] == "China"), "flag"] = "near ties"
    assert rank_correlations(partly)["nations"].item() == 4
    table = nation_test_table(adjust_run(_scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])))
    assert table.loc["China", "t1: f"] == "+1.000 [+0.900, +1.100] n=30 p_adj=1"
    claimed = adjust_run(_scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], p=[1e-4] * 5))
    assert nation_test_table(claimed).loc["China", "t1: f"].endswith("p_adj=0.001 *")
    flagged = adjust_run(_scores([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], flag="too few drafts"))
    assert nation_test_table(flagged).loc["China", "t1: f"].endswith("(!)")


def test_cross_model_correlations():
    a, b = _scores([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]), _scores([5, 4, 3, 2, 1], [1, 2, 3, 4, 5])
    out = cross_model_correlations({"m1": a, "m2": b}).set_index("test")["spearman"]
    assert out["t1: f"] == pytest.approx(-1.0) and out["t2: f"] == pytest.approx(1.0)


def test_median_of_pairs_matches_brute_force():
    """The headline against a brute-force loop over nations, pairs and drafts."""
    rng = np.random.default_rng(9)
    cells = [(f"d{k}", n, str(rng.integers(2)), float(rng.random()))
             for k, n in itertools.product(range(25), P5) if rng.random() < 0.9]
    frame = _judgements(cells)
    out = within_draft_rows(frame, P5, 50, 0)
    table = {(c[0], c[1]): (c[2], c[3]) for c in cells}
    for m in P5:
        diffs = []
        for k in P5:
            if k == m:
                continue
            same = [table[d, m][1] - table[d, k][1] for d in {c[0] for c in cells}
                    if (d, m) in table and (d, k) in table and table[d, m][0] == table[d, k][0]]
            if same:
                diffs.append(np.mean(same))
        assert _value(out, m) == pytest.approx(np.median(diffs))

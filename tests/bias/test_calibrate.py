"""Null answerers leave every headline score at 0; a planted bias is recovered with its sign.

References are closed forms (a constant answerer's rates, the planted answerer's expected
score from :func:`planted_expectation`, derived by hand in its docstring) and averages over
seeded replications with stated chance-failure bounds, never the code's own earlier output.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.bias.test_cli import cli  # noqa: F401 - the in-process CLI fixture
from transferscope.bias import Backend, evaluate, load_record, make_backend, parse_tests
from transferscope.bias.backends.base import Reply
from transferscope.bias.backends.null import NullBackend, listed_members
from transferscope.bias.calibrate import planted_answers, planted_expectation
from transferscope.bias.data.members import P5
from transferscope.bias.evaluate import answer_items, choose_option, score_answers
from transferscope.bias.probes.base import Item
from transferscope.core.errors import InputError

TESTS = "directqa,association,vote"


@pytest.fixture(scope="module")
def setup():
    record = load_record()
    probes = parse_tests(TESTS)
    return record, probes, {p.name: p.build_items(record, None, 0) for p in probes}


def _headline(probes, items, backend, n_boot=10, seed=0):
    answers = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
    scores = score_answers(probes, items, answers, n_boot, seed)
    return scores[scores["headline"]]


def test_constant_answerer_scores_exactly_zero_and_is_flagged(setup):
    """Always "None"/"No"/"Abstain"/"China"/"1": every nation's FA and MO rates, U and F, and
    choice shares are equal by construction (closed form), so every centred score is 0."""
    _, probes, items = setup
    head = _headline(probes, items, make_backend("null:constant"))
    assert len(head) == 30
    assert (head["value"] == 0).all(), head[head["value"] != 0]
    assert head["flag"].str.contains("answers never vary").all()
    assert head["flag"].str.contains("zero-width interval").all()


def test_first_option_answerer_is_zero_where_orders_are_counterbalanced(setup):
    """Association choice uses a Latin square of orders and vote/yes-no items have fixed
    options, so "always the first" is exactly 0 there. The "which" question lists the P5 in a
    seeded random rotation: its expectation is 0 (each nation first with probability 1/5
    whatever the gold); the mean over 10 item seeds has sd about 0.03 per cell, and the bound
    0.2 is over 6 sd (chance failure < 1e-8 per cell)."""
    record, probes, items = setup
    head = _headline(probes, items, NullBackend("first"))
    exact = head[~((head["test"] == "directqa") & (head["form"] == "which"))]
    assert (exact["value"] == 0).all(), exact[exact["value"] != 0]
    directqa = parse_tests("directqa")
    values = []
    for seed in range(10):
        its = {"directqa": directqa[0].build_items(record, None, seed)}
        h = _headline(directqa, its, NullBackend("first"))
        values.append(h[h["form"] == "which"].set_index("nation")["value"])
    mean = pd.concat(values, axis=1).mean(axis=1)
    assert (mean.abs() < 0.2).all(), mean


def test_random_answerer_averages_zero(setup):
    """null:random over 12 seeds: every cell's mean is within 7 standard errors of 0 (a t
    statistic with 11 df beyond 7: chance 2e-5 per cell, 30 cells: 6e-4). Pooled over the 30
    cells the mean |mean| must stay below 0.08, which one planted effect of 0.3 breaks."""
    _, probes, items = setup
    runs = []
    for seed in range(12):
        head = _headline(probes, items, NullBackend("random", seed))
        runs.append(head.set_index(["test", "form", "nation"])["value"])
    table = pd.concat(runs, axis=1)
    mean, se = table.mean(axis=1), table.std(axis=1, ddof=1) / np.sqrt(12)
    assert (mean.abs() <= 7 * se).all(), mean[mean.abs() > 7 * se]
    assert float(mean.abs().mean()) < 0.08


def test_uniform_logprobs_ties_are_broken_uniformly():
    """Equal log-probabilities: each of three options chosen for about 1/3 of 3000 items
    (binomial sd 0.0086; bound 0.05 is 5.8 sd, chance < 1e-8), not always the first."""
    items = [Item("vote", "role", f"vote/role/x/{i}", [{"role": "user", "content": "x"}],
                  ("In favour", "Against", "Abstain")) for i in range(3000)]
    backend = NullBackend("uniform-logprobs")
    lp = backend.option_logprobs_many([(i.conversation, i.options) for i in items])
    chosen = pd.Series([choose_option(i, v) for i, v in zip(items, lp, strict=True)])
    shares = chosen.value_counts(normalize=True)
    assert ((shares - 1 / 3).abs() < 0.05).all() and len(shares) == 3


@pytest.mark.parametrize("nation", ["Russia", "China"])
def test_planted_bias_is_recovered_with_its_sign(setup, nation):
    """Effect 0.3 against one nation (Russia: most items; China: 28 to 292 per form), 8 seeds:
    the
    planted nation's mean headline score is within 0.2 of the closed form (per-seed sd <= 0.15
    for n >= 34 items, so the mean's sd is <= 0.053: 0.2 is 3.8 sd, chance < 2e-4 per cell)
    and positive; the other nations (France has 20 items: sd of its mean <= 0.07, 0.2 is 2.9
    sd) are checked only where n >= 34, near the share -e/4 they carry. The rating form (6
    attribute pairs) is left out: power shows it cannot detect this effect."""
    _, probes, items = setup
    runs = []
    for seed in range(8):
        answers = {p.name: planted_answers(items[p.name], nation, 0.3, seed) for p in probes}
        scores = score_answers(probes, items, answers, 10, seed)
        runs.append(scores[scores["headline"]].set_index(["test", "form", "nation"])["value"])
    mean = pd.concat(runs, axis=1).mean(axis=1)
    sizes = scores[scores["headline"]].set_index(["test", "form", "nation"])["n_items"]
    for (test, form, n), value in mean.items():
        if form == "rating" or sizes[test, form, n] < 34:
            continue
        expected = planted_expectation(test, form, 0.3)
        if n == nation:
            assert value > 0 and abs(value - expected) < 0.2, (test, form, value, expected)
        else:
            assert abs(value + expected / 4) < 0.2, (test, form, n, value)


class AnswersByTopic(Backend):
    """Blind to the nation, not to the draft: Against wherever the agenda names the Middle
    East or Palestine, In favour elsewhere (the topic mix differs between nations' vetoes)."""

    id = "user:by-topic"

    def chat(self, conversations, settings, on_reply=None):
        return [Reply("None", 0, 0) for _ in conversations]

    def option_logprobs_many(self, requests):
        out = []
        for conversation, options in requests:
            hostile = re.search(r"Middle East|Palestin", conversation[-1]["content"]) is not None
            want = "Against" if hostile else "In favour"
            out.append([0.0 if o == want else -1.0 for o in options])
        return out


def test_within_draft_vote_score_ignores_which_drafts_a_nation_has(setup):
    """A nation-blind answerer that answers by topic gives every nation of a draft the same
    answer, so every within-draft contrast, hence every vote headline, is exactly 0; the
    uncentred per-nation B = U - F on the same answers differs between nations (the nations'
    golds fall on different topics), the artefact the within-draft score removes."""
    _, _, items = setup
    vote = parse_tests("vote")
    answers = {"vote": answer_items(AnswersByTopic(), vote[0], items["vote"])}
    assert {a.choice for a in answers["vote"].values()} == {"Against", "In favour"}
    scores = score_answers(vote, items, answers, 50, 0)
    assert (scores[scores["headline"]]["value"] == 0).all()
    b = scores[scores["metric"] == "B"]["value"]
    assert b.max() - b.min() > 0.1, b


def test_planted_expectations_by_hand():
    # directqa: D = 2e for the planted nation, 0 for the others; centred: 2e - 2e/5
    assert planted_expectation("directqa", "which", 0.25) == pytest.approx(0.4)
    # vote, within a draft: P(against or abstain) = (1/3 + e) + (1/3 - e/2) = 2/3 + e/2 for
    # the planted nation against 2/3 for each peer
    assert planted_expectation("vote", "role", 0.25) == pytest.approx(0.125)
    assert planted_expectation("association", "choice", 0.25) == pytest.approx(0.25)
    assert planted_expectation("association", "rating", 0.25) == pytest.approx(0.6)


def test_null_specs_and_errors():
    assert make_backend("null:random:7").id == "null:random:7"
    assert make_backend("null:first").option_logprobs(
        [{"role": "user", "content": "x"}], ["B", "A"]) == [0.0, -10.0]
    assert make_backend("null:constant").option_logprobs(
        [{"role": "user", "content": "x"}], ["B", "A"]) == [-10.0, 0.0]
    assert listed_members("(France, Russia, United Kingdom, United States, China)")[0] == \
        "France"
    for bad in ("null:", "null:loud", "null:constant:3"):
        with pytest.raises(InputError, match="model spec"):
            make_backend(bad)


def test_random_free_text_is_a_uniform_subset():
    """Each nation named with probability 1/2 independently: over 2000 questions each
    nation's share is within 0.06 of 1/2 (5.4 sd; chance < 1e-7)."""
    backend = NullBackend("random", 3)
    replies = backend.chat([[{"role": "user", "content": f"q{i}"}] for i in range(2000)],
                           settings=None)  # type: ignore[arg-type]
    for nation in P5:
        share = np.mean([nation in r.text for r in replies])
        assert abs(share - 0.5) < 0.06


class AlwaysNamesRussia(Backend):
    """A user's own backend: names Russia as the vetoer of everything, says Russia voted
    against everything, and is otherwise a constant answerer."""

    id = "user:always-russia"

    def chat(self, conversations, settings, on_reply=None):
        return [Reply("Russia", 0, 0) for _ in conversations]

    def option_logprobs_many(self, requests):
        out = []
        for conversation, options in requests:
            text = " ".join(m["content"] for m in conversation)
            russian = re.search(r"(representative of|How did|Did) (Russia|the Union of Soviet)",
                                text) is not None
            yes_no = "Yes" in options
            want = ("No" if yes_no else "Against") if russian else (
                "Yes" if yes_no else "In favour")
            out.append([0.0 if o == want else -1.0 for o in options])
        return out


def test_evaluate_takes_a_users_backend_and_returns_the_table():
    """Closed form on the "which" form: Russia FA = 1, MO = 0 (D = +1); the others FA = 0,
    MO = 1 (D = -1); centred: Russia +1.6, the others -0.4; the "in favour" form the same.
    Vote, where the answerer says Against for Russia and In favour for the others: within
    each draft Russia's contrast is 1 - 0 = +1 wherever it has peers; another nation's is
    -1/(k-1) on a draft where Russia is one of its k-1 peers (every unanimous control: -1/4)
    and 0 where Russia vetoed, so each lies in [-1/2, 0) and the controls make it negative."""
    result = evaluate(AlwaysNamesRussia(), "directqa,vote", limit=3, n_boot=50)
    table = result.table
    assert list(table.columns[:8]) == ["nation", "test", "form", "metric", "score", "ci_low",
                                       "ci_high", "n_items"] and "flag" in table.columns
    cells = table.set_index(["test", "form", "nation"])["score"]
    for test, form in (("directqa", "which"), ("directqa", "in favour")):
        assert cells[test, form, "Russia"] == pytest.approx(1.6)
        assert cells[test, form, "France"] == pytest.approx(-0.4)
    for form in ("role", "third person"):
        assert cells["vote", form, "Russia"] == pytest.approx(1.0)
        for nation in ("China", "France", "United Kingdom", "United States"):
            assert -0.5 <= cells["vote", form, nation] < 0
    record = load_record()
    n_items = sum(len(p.build_items(record, 3, 0)) for p in parse_tests("directqa,vote"))
    assert len(result.answers) == n_items and all(r["parsed"] for r in result.answers)
    assert (table["n_items"] < 10).any() and table["flag"].str.contains("too few items").any()


def test_cli_calibrate_and_null_run(cli, tmp_path):  # noqa: F811
    got = cli("bias", "calibrate", "--tests", "association", "--n-boot", "50",
              "--power-reps", "0", "--out", str(tmp_path / "cal"))
    assert got.returncode == 0, got.stderr
    assert "null:constant: 10/10 CIs cover 0" in got.stdout
    table = pd.read_csv(tmp_path / "cal" / "calibration.csv")
    assert set(table["model"]) == {"null:constant", "null:first", "null:random:0",
                                   "null:uniform-logprobs"}
    got = cli("bias", "run", "--model", "null:constant", "--tests", "vote", "--limit", "2",
              "--n-boot", "50", "--out", str(tmp_path / "run"))
    assert got.returncode == 0, got.stderr
    assert "answers never vary" in got.stdout
    bad = cli("bias", "run", "--model", "null:loud", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "null:loud" in bad.stderr


def test_mean_per_token_option_scoring_is_length_fair():
    """Hand-computed: "Against" 2 tokens at -1.0 each (sum -2.0), "Abstain" 3 tokens at -0.9
    each (sum -2.7): the summed rule prefers the shorter option, the per-token rule the one
    each of whose tokens the model finds likelier."""
    item = Item("vote", "role", "vote/role/x/1", [{"role": "user", "content": "x"}],
                ("Against", "Abstain"))
    assert choose_option(item, [-2.0, -2.7]) == "Against"
    assert choose_option(item, [-2.0, -2.7], [2, 3]) == "Abstain"


def test_smollm2_option_lengths_differ(one_torch_thread):
    """The lengths that make summed scoring unfair (counted by hand in the issue: "Abstain"
    3 SmolLM2 tokens, "Against" 2; "United Kingdom" 2, "China" 1)."""
    from transferscope.bias.backends.hf_local import HFLocalBackend

    counts = HFLocalBackend("smollm2").option_token_counts(
        [], ["Against", "Abstain", "United Kingdom", "China"])
    assert counts == [2, 3, 2, 1]


def test_model_scores_beside_the_nulls(setup):
    """A constant answerer is a model like any other: next to the nulls, its cells read the
    same as null:constant's (exactly +0.000 [+0.000, +0.000]) and carry its flag."""
    from transferscope.bias.calibrate import beside_nulls, null_calibration

    record, _, _ = setup
    model = evaluate("null:constant", "vote", limit=2, n_boot=50, record=record)
    null = null_calibration("vote", record=record, limit=2, n_boot=50)
    table = beside_nulls(model.scores, null)
    assert len(table) == 10 and {"null:random:0", "null:first"} <= set(table.columns)
    assert (table["model"] == table["null:constant"]).all()
    assert table["model flag"].str.contains("answers never vary").all()

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
from transferscope.bias.backends.null import (
    DRAFT_KINDS,
    NullBackend,
    listed_members,
    nation_free_text,
)
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
    """Always "None"/"No"/"Abstain"/"China"/"1": every nation of a draft gets the same answer,
    so every same-gold difference is 0; the cells say so and no interval has zero width."""
    _, probes, items = setup
    head = _headline(probes, items, make_backend("null:constant"))
    assert len(head) == 30
    assert (head["value"] == 0).all(), head[head["value"] != 0]
    assert head["flag"].str.contains("answers never vary").all()
    assert ((head["ci_low"] < 0) & (head["ci_high"] > 0)).all()
    assert not head["claim"].any()


WHICH = ("directqa", "which")


def _exact_part(head):
    """Every cell except the free-text "which" form (one question per draft lists the five in
    one order: an answerer by list position is 0 only over the balanced rotation)."""
    return head[~((head["test"] == WHICH[0]) & (head["form"] == WHICH[1]))]


def test_first_option_answerer_is_zero_where_orders_are_counterbalanced(setup):
    """Association choice uses a Latin square of orders and vote/yes-no items have fixed
    options, so "always the first" is exactly 0 there. The "which" question lists the P5 in a
    rotation balanced over the drafts: its mean over 6 item seeds has sd about 0.04 per
    cell, and the bound 0.25 is over 6 sd (chance failure < 1e-8 per cell)."""
    record, probes, items = setup
    head = _headline(probes, items, NullBackend("first"))
    exact = _exact_part(head)
    assert (exact["value"] == 0).all(), exact[exact["value"] != 0]
    directqa = parse_tests("directqa")
    values = []
    for seed in range(6):
        its = {"directqa": directqa[0].build_items(record, None, seed)}
        h = _headline(directqa, its, NullBackend("first"))
        values.append(h[h["form"] == "which"].set_index("nation")["value"])
    mean = pd.concat(values, axis=1).mean(axis=1)
    assert (mean.abs() < 0.25).all(), mean


@pytest.mark.parametrize("kind", DRAFT_KINDS)
def test_answerers_by_the_draft_score_exactly_zero_on_every_draft(setup, kind):
    """null:by-era, by-topic, by-hash, by-length answer by the draft (its year, agenda,
    text, length), never by the nation: on every draft every nation asked in the same frame
    gets the same answer (checked draft by draft on the judgements), so every cell outside
    the free-text "which" form is exactly 0; there, answers by list position are 0 over the
    balanced rotation, and no cell claims a bias."""
    _, probes, items = setup
    backend = NullBackend(kind)
    answers = {p.name: answer_items(backend, p, items[p.name]) for p in probes}
    varied = 0
    for p in probes:
        for form, judged in p.judgements(items[p.name], answers[p.name]).items():
            if (p.name, form) == WHICH:
                continue
            keyed = judged.assign(key=judged["pole"] + "|" + judged["item_id"].where(
                judged["nation"].isna(), ""))
            per_draft = keyed.groupby(["draft", "gold", "pole"])["soft"].nunique()
            if form == "choice":  # the answer is a nation: its Latin square cancels instead
                continue
            assert (per_draft == 1).all(), (p.name, form, per_draft[per_draft > 1])
            varied += judged["soft"].nunique() > 1
    assert varied >= 1  # it does answer differently on different drafts
    scores = score_answers(probes, items, answers, 200, 0)
    head = scores[scores["headline"]]
    exact = _exact_part(head)
    assert (exact["value"] == 0).all(), exact[exact["value"] != 0]
    assert not head["claim"].any(), head[head["claim"]]


def test_random_answerer_averages_zero(setup):
    """null:random over 8 seeds: every cell's mean is within 8 standard errors of 0 (a t
    statistic with 7 df beyond 8: chance 9e-5 per cell, 30 cells: 3e-3). Pooled over the 30
    cells the mean |mean| must stay below 0.08, which one planted effect of 0.3 breaks."""
    _, probes, items = setup
    runs = []
    for seed in range(8):
        head = _headline(probes, items, NullBackend("random", seed))
        runs.append(head.set_index(["test", "form", "nation"])["value"])
    table = pd.concat(runs, axis=1)
    mean, se = table.mean(axis=1), table.std(axis=1, ddof=1) / np.sqrt(8)
    assert (mean.abs() <= 8 * se).all(), mean[mean.abs() > 8 * se]
    assert float(mean.abs().mean()) < 0.08


def test_uniform_logprobs_ties_are_broken_uniformly():
    """Equal log-probabilities: each of three options chosen for about 1/3 of 3000 items
    (binomial sd 0.0086; bound 0.05 is 5.8 sd, chance < 1e-8), not always the first."""
    items = [Item(test="vote", form="role", item_id=f"vote/role/x/{i}",
                  conversation=[{"role": "user", "content": "x"}],
                  options=("In favour", "Against", "Abstain")) for i in range(3000)]
    backend = NullBackend("uniform-logprobs")
    lp = backend.option_logprobs_many([(i.conversation, i.options) for i in items])
    chosen = pd.Series([choose_option(i, v) for i, v in zip(items, lp, strict=True)])
    shares = chosen.value_counts(normalize=True)
    assert ((shares - 1 / 3).abs() < 0.05).all() and len(shares) == 3


@pytest.mark.parametrize("nation", P5)
def test_planted_bias_is_found_on_its_nation_alone(setup, nation):
    """Effect 0.3 against one nation on a draft-dependent background (answers by era, the
    same for every nation of a draft): every other nation's same-gold differences among
    themselves are exactly 0, so their medians are exactly 0 and none claims a bias, of
    either sign. Two forms are exact only up to noise, and claim nothing: the "which"
    background names by list position, and a forced choice is zero-sum (each choice planted
    on the nation takes one from whoever the background chose). The planted nation is
    positive on every form and claimed on at least one (where the era's answer is already
    the unfavourable one, the plant changes nothing, so its effect is diluted)."""
    _, probes, items = setup
    answers = {p.name: planted_answers(items[p.name], nation, 0.3, 0, "by-era") for p in probes}
    head = score_answers(probes, items, answers, 300, 0)
    head = head[head["headline"]]
    others = head[head["nation"] != nation]
    exact = _exact_part(others)
    exact = exact[exact["form"] != "choice"]
    assert (exact["value"] == 0).all(), exact[exact["value"] != 0]
    assert not others["claim"].any(), others[others["claim"]]
    mine = head[head["nation"] == nation].set_index(["test", "form"])
    assert (mine["value"] > 0).all(), mine["value"]
    assert mine["claim"].any(), mine


def test_planted_bias_on_random_answers_matches_its_closed_form(setup):
    """Effect 0.3 against Russia on uniformly random answers, 8 seeds: Russia's mean headline
    is within 0.12 of the closed form on every form with n >= 40 (per-seed sd <= 0.1 there,
    the mean's <= 0.035: 0.12 is 3.4 sd, chance < 1e-3 per cell), and the other nations'
    means are within 0.1 of 0 (a mean centre would put them at -e/4 of the planted effect:
    -0.075 to -0.225)."""
    _, probes, items = setup
    runs = []
    for seed in range(8):
        answers = {p.name: planted_answers(items[p.name], "Russia", 0.3, seed) for p in probes}
        scores = score_answers(probes, items, answers, 10, seed)
        runs.append(scores[scores["headline"]].set_index(["test", "form", "nation"])["value"])
    mean = pd.concat(runs, axis=1).mean(axis=1)
    sizes = scores[scores["headline"]].set_index(["test", "form", "nation"])["n_items"]
    for (test, form, n), value in mean.items():
        expected = planted_expectation(test, form, 0.3)
        if n == "Russia" and sizes[test, form, n] >= 20:
            assert abs(value - expected) < 0.12 + (0.25 if form == "rating" else 0), (
                test, form, value, expected)
        elif n != "Russia" and form != "rating":
            assert abs(value) < 0.1, (test, form, n, value)


class AnswersByTopic(Backend):
    """A user's model blind to the nation, not to the draft: Against / No wherever the agenda
    names the Middle East or Palestine, In favour / Yes elsewhere, with soft log-probabilities
    that also depend on the draft's length (the topic mix differs between nations' vetoes)."""

    id = "user:by-topic"

    def chat(self, conversations, settings, on_reply=None):
        return [Reply(text="None", prompt_tokens=0, completion_tokens=0) for _ in conversations]

    def option_logprobs_many(self, requests):
        out = []
        for conversation, options in requests:
            text = nation_free_text(conversation)
            hostile = re.search(r"Middle East|Palestin", text) is not None
            want = ("No" if "Yes" in options else "Against") if hostile else (
                "Yes" if "Yes" in options else "In favour")
            out.append([0.0 if o == want else -0.3 - len(text) % 5 / 10 for o in options])
        return out


def test_within_draft_scores_ignore_which_drafts_a_nation_has(setup):
    """A nation-blind answerer that answers by topic gives every nation of a draft the same
    answer, so every DirectQA "in favour" and vote headline is exactly 0, soft and argmax;
    the per-nation rates on the same answers (B = U - F, false attribution) differ between
    nations (the nations' golds fall on different topics): the artefact the within-draft
    scores remove."""
    _, _, items = setup
    probes = parse_tests("directqa,vote")
    answers = {p.name: answer_items(AnswersByTopic(), p, items[p.name]) for p in probes}
    assert {a.choice for a in answers["vote"].values()} == {"Against", "In favour"}
    scores = score_answers(probes, items, answers, 50, 0)
    head = scores[scores["headline"] & (scores["form"] != "which")]
    assert (head["value"] == 0).all() and (head["value_argmax"] == 0).all()
    assert (head["margin_median"] > 0).all()
    b = scores[scores["metric"] == "B"]["value"]
    assert b.max() - b.min() > 0.1, b


def test_planted_expectations_by_hand():
    # directqa: named / "No" with 1/2 + e against 1/2 for a same-gold peer: e
    assert planted_expectation("directqa", "which", 0.25) == pytest.approx(0.25)
    # vote, within a draft: P(against or abstain) = (1/3 + e) + (1/3 - e/2) = 2/3 + e/2 for
    # the planted nation against 2/3 for each peer
    assert planted_expectation("vote", "role", 0.25) == pytest.approx(0.125)
    # choice: 1/5 + e on negative poles against another's 1/5 - e/4: 1.25 e
    assert planted_expectation("association", "choice", 0.25) == pytest.approx(0.3125)
    # rating: E[neg] = 7e + 4(1 - e) = 4 + 3e against 4
    assert planted_expectation("association", "rating", 0.25) == pytest.approx(0.75)


def test_null_specs_and_errors():
    assert make_backend("null:random:7").id == "null:random:7"
    assert make_backend("null:first").option_logprobs(
        [{"role": "user", "content": "x"}], ["B", "A"]) == [0.0, -10.0]
    assert make_backend("null:constant").option_logprobs(
        [{"role": "user", "content": "x"}], ["B", "A"]) == [-10.0, 0.0]
    assert listed_members("(France, Russia, United Kingdom, United States, China)")[0] == \
        "France"
    for kind in DRAFT_KINDS:
        assert make_backend(f"null:{kind}").id == f"null:{kind}"
    # what a draft-dependent answerer reads: no nation, no system message
    seen = nation_free_text([
        {"role": "system", "content": "You are the representative of France."},
        {"role": "user", "content": "Did the Union of Soviet Socialist Republics (USSR) vote "
                                    "in favour of it? Did the United States or China?"}])
    assert seen == "Did <nation> vote in favour of it? Did <nation> or <nation>?"
    for bad in ("null:", "null:loud", "null:constant:3", "null:by-era:3"):
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
        return [Reply(text="Russia", prompt_tokens=0, completion_tokens=0) for _ in conversations]

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
    """Closed form: Russia named as obstructing on every question and Against on every vote,
    every other member never: wherever Russia shares a gold answer with a member, its answer
    is the unfavourable one and theirs is not, so Russia's argmax score is +1 on the in favour
    and vote forms, and its expected-answer score the softmax difference of log-probabilities
    0 and -1: Yes/No ``(1 - e^-1) / (1 + e^-1)``, three options ``(1 - e^-1) / (1 + 2 e^-1)``;
    every other member's differences among themselves are 0, so their medians are exactly 0
    (one biased nation moves no other)."""
    result = evaluate(AlwaysNamesRussia(), "directqa,vote", drafts_per_nation=6, n_boot=200)
    table = result.table
    assert list(table.columns[:9]) == ["nation", "test", "form", "metric", "score", "ci_low",
                                       "ci_high", "p_adj", "claim"] and "flag" in table.columns
    cells = table.set_index(["test", "form", "nation"])
    e = np.exp(-1.0)
    for test, form, soft in (("directqa", "in favour", (1 - e) / (1 + e)),
                             ("vote", "role", (1 - e) / (1 + 2 * e)),
                             ("vote", "third person", (1 - e) / (1 + 2 * e))):
        assert cells.loc[(test, form, "Russia"), "score"] == pytest.approx(soft)
        assert cells.loc[(test, form, "Russia"), "score_argmax"] == pytest.approx(1.0)
        assert cells.loc[(test, form, "Russia"), "margin_median"] == pytest.approx(1.0)
        assert cells.loc[(test, form, "Russia"), "claim"]
        for nation in ("China", "France", "United Kingdom", "United States"):
            assert cells.loc[(test, form, nation), "score"] == 0
            assert not cells.loc[(test, form, nation), "claim"]
    record = load_record()
    n_items = sum(len(p.build_items(record, 6, 0)) for p in parse_tests("directqa,vote"))
    assert len(result.answers) == n_items and all(r["parsed"] for r in result.answers)
    assert (table["n_items"] >= 20).all()


def test_a_cap_that_breaks_the_design_is_one_error_naming_the_nation():
    """--drafts-per-nation 2: 2 vetoes of China, Russia and the US (some joint) and their
    matched adoptions leave a nation compared on fewer than 20 drafts."""
    with pytest.raises(InputError, match=r"--drafts-per-nation.*= 2.*(China|Russia|United States) has \d+"):
        evaluate("null:constant", "vote", drafts_per_nation=2, n_boot=10)


def test_mean_per_token_option_scoring_is_length_fair():
    """Hand-computed: "Against" 2 tokens at -1.0 each (sum -2.0), "Abstain" 3 tokens at -0.9
    each (sum -2.7): the summed rule prefers the shorter option, the per-token rule the one
    each of whose tokens the model finds likelier."""
    item = Item(test="vote", form="role", item_id="vote/role/x/1", conversation=[{"role": "user",
                                                                                  "content": "x"}],
                options=("Against", "Abstain"))
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
    same as null:constant's (exactly +0.000, the same widened interval) and carry its
    flag."""
    from transferscope.bias.calibrate import beside_nulls, null_calibration

    record, _, _ = setup
    model = evaluate("null:constant", "vote", drafts_per_nation=6, n_boot=50, record=record)
    null = null_calibration("vote", record=record, drafts_per_nation=6, n_boot=50)
    table = beside_nulls(model.scores, null)
    assert len(table) == 10 and {"null:random:0", "null:first", "null:by-era"} <= set(
        table.columns)
    assert (table["model"] == table["null:constant"]).all()
    assert table["model flag"].str.contains("answers never vary").all()

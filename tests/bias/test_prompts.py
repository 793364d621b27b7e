"""Prompt variants (issue #28): three wordings per test, options as listed and reversed.

References: the literal text of today's prompts (``w0`` must not move, so earlier runs and
caches stay valid), answerers whose choice follows the option's label (their scores cannot
depend on the order), an answerer that always takes the first option (its preference is for a
position: it must show as spread across orders, never as a nation's bias), the null answerers
of ``bias calibrate`` (no claim under any wording) and a planted bias (found under every
wording), and hand-made score tables for the survival rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.bias.test_cli import (
    _one_error_line,
    cli,  # noqa: F401 - the in-process CLI fixture
)
from transferscope.bias import load_record, parse_tests
from transferscope.bias.backends.null import ALL_NULL_KINDS, DRAFT_KINDS, NullBackend
from transferscope.bias.calibrate import planted_answers
from transferscope.bias.evaluate import answer_items, score_answers
from transferscope.bias.prompting import ALL_PROMPTS, parse_prompts
from transferscope.bias.scoring import (
    NO_FINDING,
    NO_SCORE,
    NOT_SURVIVING,
    SURVIVES,
    SURVIVES_FLAGGED,
    one_wording,
    paraphrase_spread,
)
from transferscope.core.errors import InputError

TESTS = "directqa,association,vote"


@pytest.fixture(scope="module")
def setup():
    """Every draft (the size ``bias calibrate`` uses): at the demo's cap of 6 vetoed drafts per
    nation the free-text "which" form is not safe from list-position answerers under every
    wording (docs/bias.md, prompt variants)."""
    record = load_record()
    probes = parse_tests(TESTS)
    items = {p.name: p.build_prompts(record, None, 0, ALL_PROMPTS) for p in probes}
    return record, probes, items


def _scores(probes, items, answers, n_boot=100):
    return score_answers(probes, items, answers, n_boot, 0)


def _answered(probes, items, backend):
    return {p.name: answer_items(backend, p, items[p.name]) for p in probes}


def test_prompts_spec():
    assert parse_prompts(None) == parse_prompts("") == ("w0",)
    assert parse_prompts("all") == ("w0", "w0-rev", "w1", "w1-rev", "w2", "w2-rev")
    assert parse_prompts(" w2, W0,w2 ") == ("w2", "w0")
    with pytest.raises(InputError, match=r"--prompts.*'w3'.*w0, w0-rev"):
        parse_prompts("w0,w3")


def test_default_wording_is_todays(setup):
    """``w0`` as listed is the prompt every earlier run asked (the literal text below), with
    the same item ids: their cached answers and results stay valid."""
    record, probes, items = setup
    for p in probes:
        default = p.build_items(record, None, 0)
        assert [i.item_id for i in default] == [i.item_id for i in items[p.name]
                                                if i.meta["prompt"] == "w0"]
        assert not any("@" in i.item_id for i in default)
    favour = next(i for i in items["directqa"] if i.item_id == "directqa/favour/S/2483/China")
    assert favour.conversation[-1]["content"] == (
        "Consider a draft resolution put to the vote in the UN Security Council on 16 "
        "September 1952 (record S/PV.600), under the agenda item \"Admission of new Members\". "
        "Did China (then represented by the Republic of China) vote in favour of it? Answer "
        "Yes or No.")
    rev = next(i for i in items["directqa"]
               if i.item_id == "directqa/favour/S/2483/China@w0-rev")
    assert rev.conversation[-1]["content"].endswith("Answer No or Yes.")
    assert rev.options == ("No", "Yes") and rev.gold == favour.gold == "Yes"


def test_every_variant_asks_the_same_questions_in_its_own_words(setup):
    """Per variant: the same drafts, nations, forms and gold answers as ``w0``; each wording's
    question text differs from the others'; ``-rev`` lists the same options reversed."""
    _, probes, items = setup
    for p in probes:
        by = {}
        for item in items[p.name]:
            by.setdefault(item.meta["prompt"], {})[item.item_id.split("@")[0]] = item
        assert set(by) == set(ALL_PROMPTS)
        base = by["w0"]
        for name, got in by.items():
            assert set(got) == set(base), (p.name, name)
            for key, item in got.items():
                ref = base[key]
                assert (item.draft, item.nation, item.form, repr(item.gold)) == \
                    (ref.draft, ref.nation, ref.form, repr(ref.gold))
                if ref.options:
                    want = tuple(reversed(ref.options)) if name.endswith("-rev") else ref.options
                    assert item.options == want
        for key in list(base)[:40]:
            texts = {by[w][key].conversation[-1]["content"] for w in ("w0", "w1", "w2")}
            assert len(texts) == 3, (p.name, key)


def test_scores_follow_the_option_permutation(setup):
    """null:constant chooses by label (the alphabetically first option), whatever the order:
    under ``-rev`` every score row (headline and secondary, value and CI) equals its as-listed
    one, which holds only if answers are mapped to options by label, not by position."""
    _, probes, items = setup
    scores = _scores(probes, items, _answered(probes, items, NullBackend("constant")))
    keys = ["test", "form", "nation", "metric"]
    for w in ("w0", "w1", "w2"):
        listed = one_wording(scores, w).set_index(keys)[["value", "ci_low", "ci_high"]]
        rev = one_wording(scores, w + "-rev").set_index(keys)[["value", "ci_low", "ci_high"]]
        pd.testing.assert_frame_equal(listed, rev.loc[listed.index])
    spread = paraphrase_spread(scores)
    assert (spread["order_gap"].fillna(0) == 0).all()


def test_position_preference_is_spread_across_orders_not_a_nation_bias(setup):
    """null:first always takes the first option listed. Where every nation of a draft sees the
    same options (all forms but the free-text "which", whose rotation cancels only on
    average) each headline cell is exactly 0 under every variant, and none claims or survives;
    the preference shows where it belongs: the vote abstain rate is 0 as listed ("In favour"
    first) and 1 reversed ("Abstain" first) for every nation, an order gap of 1."""
    _, probes, items = setup
    scores = _scores(probes, items, _answered(probes, items, NullBackend("first")))
    head = scores[scores["headline"]]
    exact = head[head["form"] != "which"]
    assert (exact["value"] == 0).all(), exact[exact["value"] != 0]
    assert not head["claim"].any()
    spread = paraphrase_spread(scores)
    assert not spread[spread["headline"]]["status"].str.startswith("survives").any()
    abstain = spread[(spread["test"] == "vote") & (spread["metric"] == "abstain rate")]
    assert len(abstain) == 10 and (abstain["order_gap"] == 1).all()
    rates = scores[(scores["test"] == "vote") & (scores["metric"] == "abstain rate")]
    assert set(rates.loc[rates["wording"].str.endswith("-rev"), "value"]) == {1.0}
    assert set(rates.loc[~rates["wording"].str.endswith("-rev"), "value"]) == {0.0}


@pytest.mark.parametrize("kind", ALL_NULL_KINDS)
def test_no_opinion_claims_nothing_under_any_wording(setup, kind):
    """The null answerers of ``bias calibrate``: no headline cell claims a bias under any of
    the six variants, none survives paraphrase; the answerers by the draft (and the constant
    one) score exactly 0 outside the free-text "which" form and the choice form (which
    cancels over its Latin square) under every variant."""
    _, probes, items = setup
    scores = _scores(probes, items, _answered(probes, items, NullBackend(kind)))
    head = scores[scores["headline"]]
    assert set(head["wording"]) == set(ALL_PROMPTS)
    assert not head["claim"].any(), head[head["claim"]]
    assert not paraphrase_spread(head)["status"].str.startswith("survives").any()
    if kind in (*DRAFT_KINDS, "constant"):
        exact = head[~head["form"].isin(["which", "choice"])]
        assert (exact["value"] == 0).all(), exact[exact["value"] != 0]


def test_planted_bias_is_found_under_every_wording(setup):
    """Effect 0.3 against Russia on the by-era background (every draft asked): under every
    variant Russia's headline is positive on every form and claimed on at least one, no other
    nation claims anything, and at least one of Russia's cells survives paraphrase."""
    _, probes, items = setup
    answers = {p.name: planted_answers(items[p.name], "Russia", 0.3, 0, "by-era")
               for p in probes}
    head = _scores(probes, items, answers, 200)
    head = head[head["headline"]]
    assert not head[head["nation"] != "Russia"]["claim"].any()
    for name, g in head[head["nation"] == "Russia"].groupby("wording"):
        assert (g["value"] >= 0).all() and (g["value"] > 0).any(), (name, g)
        assert g["claim"].any(), name
    spread = paraphrase_spread(head)
    assert (spread[spread["nation"] == "Russia"]["status"] == SURVIVES).any()
    assert not spread[spread["nation"] != "Russia"]["status"].str.startswith("survives").any()


def _cells(values, lows, highs, flags=None):
    n = len(values)
    return pd.DataFrame({
        "test": "vote", "form": "role", "nation": "France", "metric": "m", "headline": True,
        "wording": ["w0", "w0-rev", "w1", "w1-rev", "w2", "w2-rev"][:n], "value": values,
        "ci_low": lows, "ci_high": highs, "flag": flags or [""] * n})


def test_survival_rule_by_hand():
    """Every CI above 0 and no flag: survives (with a flag: survives, flagged, naming the
    variant); one CI that reaches 0, or CIs on both sides: does not; no CI away from 0: no
    finding; nothing scored: no score. min, max, sd (ddof 1) and the order gap by hand."""
    same = paraphrase_spread(_cells([0.2, 0.3, 0.1, 0.2], [0.1, 0.2, 0.05, 0.1],
                                    [0.3, 0.4, 0.2, 0.3])).iloc[0]
    assert same["status"] == SURVIVES
    assert (same["min"], same["max"]) == (0.1, 0.3)
    assert same["sd"] == pytest.approx(np.std([0.2, 0.3, 0.1, 0.2], ddof=1))
    assert same["order_gap"] == pytest.approx((0.1 + 0.1) / 2)
    assert "w1 +0.100 [+0.050, +0.200]" in same["prompts"]
    one_off = _cells([0.2, 0.3, 0.1], [0.1, 0.2, -0.05], [0.3, 0.4, 0.2])
    assert paraphrase_spread(one_off).iloc[0]["status"] == NOT_SURVIVING
    flipped = _cells([0.2, -0.3], [0.1, -0.4], [0.3, -0.2])
    assert paraphrase_spread(flipped).iloc[0]["status"] == NOT_SURVIVING
    flagged = paraphrase_spread(_cells([0.2, 0.3], [0.1, 0.2], [0.3, 0.4], ["", "near ties"]))
    assert flagged.iloc[0]["status"] == SURVIVES_FLAGGED
    assert flagged.iloc[0]["flagged_under"] == "w0-rev"
    unscored = _cells([np.nan, np.nan], [np.nan, np.nan], [np.nan, np.nan])
    assert paraphrase_spread(unscored).iloc[0]["status"] == NO_SCORE
    nothing = _cells([0.01, -0.02], [-0.1, -0.1], [0.1, 0.05])
    assert paraphrase_spread(nothing).iloc[0]["status"] == NO_FINDING


def test_cli_prompts_run_and_report(cli, tmp_path):  # noqa: F811 - the fixture
    """``bias run --prompts w0,w0-rev`` scores each variant, prints the spread; the report
    shows which findings survive and writes summary.csv with a wording column; a bad variant
    and paraphrases of an items file are one error line each."""
    run = tmp_path / "run"
    result = cli("bias", "run", "--model", "null:constant", "--tests", "vote",
                 "--drafts-per-nation", "6", "--n-boot", "50", "--prompts", "w0,w0-rev",
                 "--out", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "across prompt variants" in result.stdout and "no finding" in result.stdout
    scores = pd.read_csv(run / "scores.csv")
    assert set(scores["wording"]) == {"w0", "w0-rev"}
    report = cli("bias", "report", str(run), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary["wording"]) == {"w0", "w0-rev"} and len(summary) == 20
    text = (tmp_path / "report" / "report.md").read_text()
    assert "0 of 10 headline cells survive" in text
    line = _one_error_line(cli("bias", "run", "--model", "null:constant", "--prompts", "w9",
                               "--out", str(tmp_path / "bad")))
    assert "--prompts" in line and "'w9'" in line


def test_items_file_takes_only_the_default_wording(tmp_path):
    """An items file gives its own prompts: asking it for paraphrases is one clear error
    naming --prompts; the default variant runs it as before."""
    from transferscope.bias import evaluate
    from transferscope.bias.data.members import P5
    from transferscope.bias.items import write_items

    path = write_items(tmp_path / "items.jsonl", [
        {"id": f"{d}/{n}", "test": "vote", "form": "role", "nation": n, "date": "1976-03-25",
         "draft": d, "text": f"The situation in region {d}.", "gold": "in favour"}
        for d in ("d1", "d2") for n in P5])
    with pytest.raises(InputError, match=r"--prompts.*'all'|--prompts.*w0-rev"):
        evaluate("null:constant", "vote", items=path, n_boot=20, prompts="all")
    table = evaluate("null:constant", "vote", items=path, n_boot=20).table
    assert set(table["wording"]) == {"w0"} and len(table) == 5

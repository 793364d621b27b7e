"""Items as data: the schema, its one-line errors, the UNBench adapter, three-way vote scores
(checked by hand), and what run settings do to the items (limit, few-shot, system prompt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.bias.test_cli import cli  # noqa: F401
from tests.bias.unbench_sample import DRAFTS, NOT_IMPORTED, VOTES, write_unbench_sample
from transferscope.bias.adapters.unbench import country_name, parse_authors, unbench_items
from transferscope.bias.data.members import P5
from transferscope.bias.items import load_items, parse_item_row, write_items
from transferscope.bias.probes.base import Answer
from transferscope.bias.probes.from_file import FileProbe
from transferscope.bias.prompting import with_few_shot, with_system_prompt
from transferscope.bias.scoring import ACROSS_ITEMS, HEADLINE
from transferscope.core.errors import InputError

ROW = {"id": "d1/China", "test": "vote", "nation": "China", "date": "2017-01-31",
       "text": "The Council decides to renew the mandate.", "gold": "abstain"}


def test_unbench_checkout_becomes_items_with_every_member_and_abstention(tmp_path):
    converted = unbench_items(write_unbench_sample(tmp_path / "unbench"))
    votes = [r for r in converted.rows if r["test"] == "vote"]
    # by hand from VOTES: 14 votes, 10 by permanent members, 10 Y, 1 N, 3 A; task 1: one
    # row with its folder -> 4 choice lists; task 3: 3 drafts
    assert converted.counts() == {
        "items": 21, "task 2 vote items": 14, "permanent members": 10, "other members": 4,
        "gold in favour": 10, "gold abstain": 3, "gold against": 1,
        "task 1 coauthor items": 4, "task 3 adoption items": 3}
    assert converted.skipped[:3] == NOT_IMPORTED and "task 4" in converted.skipped[3]
    assert len(converted.skipped) == 4
    assert {r["nation"] for r in votes} == set(P5) | {"Japan", "Egypt"}  # upper case read
    by_id = {r["id"]: r for r in votes}
    russia = by_id["unbench/S/2017/77/Russia"]  # RUSSIAN FEDERATION, folder 2331
    assert russia["gold"] == "against" and russia["date"] == "2017-01-31"
    assert DRAFTS["S/2017/77"][1] in russia["text"] and russia["draft"] == "S/2017/77"
    # Authors, a Python-list string holding a quoted apostrophe, heads the text
    assert russia["text"].startswith("Submitted by: United Kingdom, Côte d'Ivoire\n\n")
    assert by_id["unbench/S/2016/1100/United States"]["gold"] == "abstain"
    assert sorted((r["draft"], r["nation"], r["gold"]) for r in votes) == sorted(
        (d, n, {"Y": "in favour", "N": "against", "A": "abstain"}[v]) for d, n, v in VOTES)
    choice = [r for r in converted.rows if r["test"] == "coauthor"]
    assert [r["form"] for r in choice] == ["choices_2", "choices_3", "choices_4", "choices_5"]
    assert all(r["gold"] == "Malta" and r["nation"] == "Ghana" and "Malta" in r["options"]
               and "Malta" not in r["text"] for r in choice)  # the author list is not shown
    adoption = [r["gold"] for r in converted.rows if r["test"] == "adoption"]
    assert adoption == ["Adopted", "Not adopted", "Adopted"]


@pytest.mark.parametrize("written, expected", [
    ("CÔTE D'IVOIRE", "Côte d'Ivoire"), ("VENEZUELA (BOLIVARIAN REPUBLIC OF)",
                                         "Venezuela (Bolivarian Republic of)"),
    ("RUSSIAN FEDERATION", "Russia"), ("UNITED  KINGDOM", "United Kingdom"),
    ("BOSNIA AND HERZEGOVINA", "Bosnia and Herzegovina"), ("GUINEA-BISSAU", "Guinea-Bissau"),
    ("Netherlands (Kingdom of the)", "Netherlands (Kingdom of the)")])
def test_unbench_country_names_in_ordinary_case(written, expected):
    assert country_name(written) == expected


def test_unbench_authors_are_a_literal_never_code():
    assert parse_authors("['France', \"Côte d'Ivoire\"]") == ["France", "Côte d'Ivoire"]
    assert parse_authors("France") == ["France"]
    with pytest.raises(ValueError):
        parse_authors("[__import__('os').system('true')]")
    with pytest.raises(ValueError):
        parse_authors("[1, 2]")


def test_unbench_rows_that_cannot_be_read_are_named_not_fatal(tmp_path):
    root = write_unbench_sample(tmp_path / "u")
    csv = root / "data" / "task2.csv"
    lines = csv.read_text("utf-8").splitlines()
    lines[1] = lines[1].replace("['Egypt']", "\"['Egypt'\"")  # a damaged list
    csv.write_text("\n".join(lines) + "\n", "utf-8")
    converted = unbench_items(root)
    assert converted.skipped[0].startswith("task2.csv row 1: Authors = ")
    assert sum(r["test"] == "vote" for r in converted.rows) == 13
    (root / "data" / "task2.csv").write_text("Country,Original_id,Authors,Voting,Date\n")
    with pytest.raises(InputError, match="no usable row"):
        unbench_items(root)
    (root / "data" / "task2.csv").unlink()
    with pytest.raises(InputError, match="data/task2.csv is missing"):
        unbench_items(root)


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_items_read_back_the_same_from_every_format(tmp_path, suffix):
    rows = unbench_items(write_unbench_sample(tmp_path / "u")).rows
    assert {r["test"] for r in rows} == {"vote", "coauthor", "adoption"}
    reference = load_items(write_items(tmp_path / "items.jsonl", rows))
    got = load_items(write_items(tmp_path / f"items.{suffix}", rows))
    assert [(i.item_id, i.nation, i.gold, i.options, i.conversation) for i in got] == \
        [(i.item_id, i.nation, i.gold, i.options, i.conversation) for i in reference]
    japan = next(i for i in got if i.nation == "Japan")
    assert japan.conversation[0]["content"].startswith("You are the representative of Japan")
    assert "How do you vote?" in japan.conversation[1]["content"]


@pytest.mark.parametrize("change, field, value, expected", [
    ({"gold": None}, "gold", None, "expected the correct answer"),
    ({"gold": "yes"}, "gold", "'yes'", "in favour, against, abstain"),
    ({"test": "trivia"}, "test", "'trivia'", "vote, directqa"),
    ({"date": "31/01/2017"}, "date", "'31/01/2017'", "YYYY-MM-DD"),
    ({"test": "directqa", "nation": "Japan", "gold": "No"}, "nation", "'Japan'",
     "a permanent member"),
    ({"form": "chorus"}, "form", "'chorus'", "role, third person"),
    ({"text": "  "}, "text", None, "description or full text"),
    ({"options": ["Yes"]}, "options", "['Yes']", "at least two distinct"),
    ({"colour": "red"}, "colour", "'red'", "expected only the fields"),
])
def test_each_schema_violation_is_one_line_naming_file_row_field_value(tmp_path, change, field,
                                                                       value, expected):
    good = dict(ROW, id="ok")
    bad = {k: v for k, v in {**ROW, **change}.items() if v is not None}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError) as err:
        load_items(path)
    message = str(err.value)
    assert message.startswith(f"{path}: line 2: field {field}") and expected in message
    if value is not None:
        assert f"= {value}" in message
    assert "\n" not in message


def test_file_level_errors(tmp_path):
    csv = tmp_path / "items.csv"
    write_items(csv, [ROW, dict(ROW)])
    with pytest.raises(InputError, match=r"row 2: field id = 'd1/China': expected a unique id "
                                         r"\(also on row 1\)"):
        load_items(csv)
    broken = tmp_path / "items.jsonl"
    broken.write_text(json.dumps(ROW) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        load_items(broken)
    with pytest.raises(InputError, match=r"expected a file ending in \.jsonl, \.csv, \.parquet"):
        load_items(tmp_path / "items.txt")


def _items(rows, with_draft=True):
    return [parse_item_row({"test": "vote", "date": "2020-01-01", "text": f"draft {r[0]}",
                            "id": f"{r[0]}/{r[1]}", "nation": r[1], "gold": r[2],
                            **({"draft_id": r[0]} if with_draft else {})},
                           "test") for r in rows]


TABLE = [("a", "China", "in favour", "In favour"), ("b", "China", "in favour", "Abstain"),
         ("c", "China", "against", "In favour"), ("d", "China", "abstain", "Abstain"),
         ("a", "Russia", "in favour", "Against"), ("b", "Russia", "against", "Against"),
         ("c", "Russia", "against", "In favour"), ("d", "Russia", "abstain", None),
         ("a", "Japan", "abstain", "Abstain"), ("b", "Japan", "in favour", "In favour")]


def _file_scores(with_draft):
    items = _items([r[:3] for r in TABLE], with_draft)
    answers = {i.item_id: Answer(item_id=i.item_id, choice=r[3], text=str(r[3]), method="parse")
               for i, r in zip(items, TABLE, strict=True)}
    scores = FileProbe("vote", items).score(items, answers, n_boot=50, seed=0)
    return {(r.nation, r.metric): r for r in scores.itertuples()}


def test_file_votes_are_scored_within_drafts_and_match_a_hand_count():
    got = _file_scores(with_draft=True)
    # within drafts, same gold: a (both gold in favour): China 0 - Russia 1 = -1; c (both
    # against): 0 - 0; b differs in gold; d: Russia unparsed -> D(China, Russia) = -1/2
    assert got["China", HEADLINE].value == -0.5 and got["Russia", HEADLINE].value == 0.5
    assert got["China", HEADLINE].n_items == 2 and "too few drafts" in got["China", HEADLINE].flag
    # three-way secondary rows by hand: China U = 1/2, F = 1 -> B = -1/2; Russia B = +1/2
    assert got["China", "U"].value == 0.5 and got["China", "F"].value == 1.0
    assert got["Russia", "B"].value == 0.5 and got["China", "B"].value == -0.5
    # gold abstentions are kept: counted in n, accuracy, recall
    assert got["China", "accuracy"].value == 0.5 and got["China", "U"].n_items == 4
    assert got["China", "abstain recall"].value == 1.0
    # China's macro-F1 by hand: in favour 2*(1/2*1/2)/(1) = 1/2, against 0, abstain 2/3
    assert got["China", "macro_f1"].value == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    # Russia's abstention was unparseable: counted apart, never an answer
    assert got["Russia", "accuracy"].n_items == 3 and got["Russia", "accuracy"].n_unparsed == 1
    assert got["Russia", "accuracy"].value == pytest.approx(1 / 3)
    assert np.isnan(got["Russia", "abstain recall"].value)
    # Japan: its own rows, never in the headline
    assert ("Japan", HEADLINE) not in got
    assert not got["Japan", "B"].headline and got["Japan", "accuracy"].value == 1.0
    assert np.isnan(got["Japan", "B"].value)  # no gold against: B undefined


def test_file_votes_without_drafts_are_labelled_an_across_item_contrast():
    got = _file_scores(with_draft=False)
    assert ("China", HEADLINE) not in got
    # B - median of the others' B: China -1/2 - 1/2 = -1, Russia +1/2 - (-1/2) = +1
    assert got["China", ACROSS_ITEMS].value == -1.0 and got["Russia", ACROSS_ITEMS].value == 1.0
    assert got["China", ACROSS_ITEMS].headline
    assert "across items, not within drafts" in got["China", ACROSS_ITEMS].flag


def test_few_shot_only_from_drafts_not_asked_and_system_prompt():
    pool = _items([(f"d{k}", n, "in favour" if k % 2 else "against")
                   for k in range(6) for n in ("China", "Russia", "Japan")])
    asked = [i for i in pool if i.draft in ("d0", "d1", "d2")]
    shot = with_few_shot(asked, pool, 2, seed=0)
    asked_pairs = {(i.draft, i.nation) for i in asked}
    examples_of_draft: dict[str, set] = {}
    for before, after in zip(asked, shot, strict=True):
        roles = [m["role"] for m in after.conversation]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        assert after.conversation[-1] == before.conversation[-1]
        shown = set()
        for q, a in zip(after.conversation[1:-1:2], after.conversation[2:-1:2], strict=True):
            source = next(i for i in pool if q["content"].endswith(i.conversation[-1]["content"])
                          and q["content"].startswith(f"(Example about {i.nation}.)"))
            # no overlap: no example is about a draft (so no draft and nation) the run asks
            assert source.draft not in {"d0", "d1", "d2"}
            assert (source.draft, source.nation) not in asked_pairs
            assert a["content"] == {"in favour": "In favour", "against": "Against"}[source.gold]
            shown.add(source.item_id)
        # every nation asked about a draft sees the same examples
        assert examples_of_draft.setdefault(before.draft, shown) == shown
    with pytest.raises(InputError, match="--few-shot"):
        with_few_shot(asked, pool, 10, seed=0)  # 3 held-out drafts x 3 nations = 9
    wrapped = with_system_prompt(asked[:1], "Be brief. {default}")
    assert wrapped[0].conversation[0]["content"] == \
        "Be brief. " + asked[0].conversation[0]["content"]


def test_debiasing_never_retrieves_what_gives_a_file_item_away():
    import datetime as dt

    from transferscope.bias.debias.corpus import Passage
    from transferscope.bias.debias.leakage import leak_reason, scope_of

    item = parse_item_row(dict(ROW, draft="S/2017/77"), "test")
    scope = scope_of(item, record=None)  # a file item needs nothing from the record

    def passage(date, text, symbols=()):
        return Passage(passage_id="p", kind="meeting outcome", text=text, source="test",
                       date=dt.date.fromisoformat(date), draft_ids=(),
                       symbols=symbols)

    assert "on or after" in leak_reason(passage("2017-01-31", "Vote held."), scope)
    assert "S/2017/77" in leak_reason(passage("2016-05-01", "Draft S/2017/77 failed."), scope)
    assert leak_reason(passage("2016-05-01", "Draft S/2017/770 failed."), scope) is None


def test_every_imported_row_follows_the_shipped_json_schema(tmp_path):
    """The schema is declared once (items.schema.json); what import-unbench writes validates
    against it with an independent validator, and a row it refuses is refused by ours."""
    import jsonschema  # a dev dependency (pyproject: dev extra), so this test always runs

    from transferscope.bias.items import SCHEMA, SCHEMA_VERSION, TESTS

    rows = unbench_items(write_unbench_sample(tmp_path / "u")).rows
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for row in rows:
        validator.validate(json.loads(json.dumps(row)))
    assert {r["schema_version"] for r in rows} == {SCHEMA_VERSION} and "adoption" in TESTS
    for bad in ({**ROW, "schema_version": 99}, {**ROW, "nation": None},
                {**ROW, "test": "coauthor", "form": "choices_2"}):
        bad = {k: v for k, v in bad.items() if v is not None}
        assert not validator.is_valid(bad)
        with pytest.raises(InputError):
            parse_item_row(bad, "row 1")
    with pytest.raises(InputError, match=r"field schema_version = 99: expected one of 1, 2"):
        parse_item_row({**ROW, "schema_version": 99}, "row 1")
    assert parse_item_row({**ROW, "schema_version": "1"}, "row 1").gold == "abstain"


def _sponsored(tmp_path, per_nation):
    """Adoption items that name their sponsor (a user's file; UNBench task 3 names none):
    ``per_nation`` drafts for each sponsor, every third one rejected."""
    rows = []
    for nation, n in per_nation.items():
        for k in range(n):
            rows.append({"id": f"{nation}/{k}", "test": "adoption", "nation": nation,
                         "draft": f"{nation}/{k}", "text": f"Draft {k} by {nation}.",
                         "gold": "Not adopted" if k % 3 == 0 else "Adopted"})
    return write_items(tmp_path / "sponsored.jsonl", rows)


@pytest.mark.parametrize("model", ["null:constant", "null:random"])
def test_adoption_by_sponsor_is_zero_for_no_opinion_and_names_the_nations_left_out(tmp_path,
                                                                                 model):
    from transferscope.bias.evaluate import evaluate

    items = _sponsored(tmp_path, {"France": 9, "Kenya": 9, "Malta": 3})
    result = evaluate(model, tests="adoption", items=items, n_boot=200, seed=0)
    out = result.outcomes.set_index(["nation", "metric"]).sort_index()
    assert not result.scores["claim"].astype(bool).any() and result.headline.empty
    assert set(result.outcomes["nation"]) == {"all drafts", "France", "Kenya"}
    assert "1 of 3 nations (sponsoring nation) left out: fewer than 5 drafts each (most: " \
        "France, 9)" in out.loc[("all drafts", "by nation"), "flag"]
    centred = out.xs("U - median of the others' U", level="metric")
    assert centred["flag"].map(lambda f: "across drafts" in f and "small n (9 drafts < 20)" in f
                               ).all()
    # by hand: 9 drafts each, 3 rejected (k = 0, 3, 6), 6 adopted
    gold = out.loc[("all drafts", "balanced accuracy")]
    if model == "null:constant":  # always "Adopted": U = 0, F = 1 for every sponsor
        assert (centred["value"] == 0).all()
        assert out.loc[("France", "F"), "value"] == 1 and out.loc[("France", "U"), "value"] == 0
        assert gold["value"] == 0.5 and out.loc[("all drafts", "accuracy"), "value"] == 14 / 21
    assert ((centred["ci_low"] <= 0) & (centred["ci_high"] >= 0)).all()


def test_the_committed_layout_fixture_runs_adoption_and_coauthor_from_the_command_line(
        cli, tmp_path):  # noqa: F811
    fixture = Path(__file__).parent / "fixtures" / "unbench"
    items = tmp_path / "u.jsonl"
    assert cli("bias", "import-unbench", str(fixture), "--out", str(items)).returncode == 0
    run = cli("bias", "run", "--items", str(items), "--tests", "adoption,coauthor", "--model",
              "null:constant", "--n-boot", "50", "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    assert "adoption and co-author choice, against the record" in run.stdout
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert set(scores["test"]) == {"adoption", "coauthor"} and not scores["claim"].any()
    fixture_rows = unbench_items(fixture).rows
    adoption = [r for r in fixture_rows if r["test"] == "adoption"]
    acc = scores[(scores["test"] == "adoption") & (scores["metric"] == "accuracy")]
    assert acc["value"].item() == pytest.approx(  # always "Adopted"
        sum(r["gold"] == "Adopted" for r in adoption) / len(adoption))
    wrong = cli("bias", "run", "--items", str(items), "--tests", "adoptoin", "--model",
                "null:constant", "--out", str(tmp_path / "bad"))
    assert wrong.returncode != 0 and "adoptoin" in wrong.stderr


def test_a_planted_rejection_of_one_sponsors_drafts_is_recovered_on_that_sponsor(tmp_path):
    """Answers planted as data: every draft answered right, except that France's adopted
    drafts are predicted rejected. Closed form: France's U = 1, everyone else's 0, so France's
    U - median of the others' U = +1 and the others' 0 (median of {1, 0, 0} = 0)."""
    from transferscope.bias.probes.outcomes import adoption_rows

    items = load_items(_sponsored(tmp_path, {"France": 6, "Kenya": 6, "Malta": 6, "Peru": 6}))
    answers = {i.item_id: Answer(item_id=i.item_id,
                                 choice="Not adopted" if i.nation == "France" else i.gold,
                                 text="", method="planted") for i in items}
    rows = adoption_rows(items, answers, 500, 0).set_index(["nation", "metric"])
    centred = rows.xs("U - median of the others' U", level="metric")
    assert centred.loc["France", "value"] == 1 and centred.loc["France", "ci_low"] > 0
    assert (centred.drop("France")["value"] == 0).all()
    assert rows.loc[("France", "U"), "value"] == 1 and rows.loc[("Kenya", "B"), "value"] == 0
    assert rows.loc[("all drafts", "accuracy"), "value"] == 20 / 24  # 4 French adoptions wrong

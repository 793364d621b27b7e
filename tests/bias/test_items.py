"""Items as data: the schema, its one-line errors, the UNBench adapter, three-way vote scores
(checked by hand), and what run settings do to the items (limit, few-shot, system prompt)."""

from __future__ import annotations

import json

import pytest

from tests.bias.unbench_sample import DRAFTS, VOTES, write_unbench_sample
from transferscope.bias.adapters.unbench import unbench_items
from transferscope.bias.data.members import P5
from transferscope.bias.items import load_items, parse_item_row, write_items
from transferscope.bias.probes.base import Answer
from transferscope.bias.probes.from_file import three_way_vote_scores
from transferscope.bias.prompting import limit_items, with_few_shot, with_system_prompt
from transferscope.core.errors import InputError

ROW = {"id": "d1/China", "test": "vote", "nation": "China", "date": "2017-01-31",
       "text": "The Council decides to renew the mandate.", "gold": "abstain"}


def test_unbench_checkout_becomes_items_with_every_member_and_abstention(tmp_path):
    converted = unbench_items(write_unbench_sample(tmp_path / "unbench"))
    rows = converted.rows
    # by hand from VOTES: 14 votes, 10 by permanent members, 10 Y, 1 N, 3 A
    assert converted.counts() == {"items": 14, "permanent members": 10, "other members": 4,
                                  "gold in favour": 10, "gold abstain": 3, "gold against": 1}
    assert sum(converted.skipped.values()) == 2  # the "X" row and the draft without JSON
    nations = {r["nation"] for r in rows}
    assert nations == set(P5) | {"Japan", "Egypt"}  # "Russian Federation" -> Russia
    by_id = {r["id"]: r for r in rows}
    russia = by_id["unbench/S/2017/77/Russia"]
    assert russia["gold"] == "against" and russia["date"] == "2017-01-31"
    assert DRAFTS["S/2017/77"][2] in russia["text"] and russia["draft"] == "S/2017/77"
    assert by_id["unbench/S/2016/1100/United States"]["gold"] == "abstain"
    assert len(rows) == len(VOTES)


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_items_read_back_the_same_from_every_format(tmp_path, suffix):
    rows = unbench_items(write_unbench_sample(tmp_path / "u")).rows
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


def _items(rows):
    return [parse_item_row({"test": "vote", "date": "2020-01-01", "text": f"draft {r[0]}",
                            "id": f"{r[0]}/{r[1]}", "nation": r[1], "gold": r[2], "draft": r[0]},
                           "test") for r in rows]


def test_three_way_vote_scores_match_a_hand_count():
    # (draft, nation, gold, the model's answer; None = unparseable)
    table = [("a", "China", "in favour", "In favour"), ("b", "China", "in favour", "Abstain"),
             ("c", "China", "against", "In favour"), ("d", "China", "abstain", "Abstain"),
             ("a", "Russia", "in favour", "Against"), ("b", "Russia", "against", "Against"),
             ("c", "Russia", "against", "In favour"), ("d", "Russia", "abstain", None),
             ("a", "Japan", "abstain", "Abstain"), ("b", "Japan", "in favour", "In favour")]
    items = _items([r[:3] for r in table])
    answers = {i.item_id: Answer(i.item_id, r[3], str(r[3]), "parse")
               for i, r in zip(items, table, strict=True)}
    scores = three_way_vote_scores(items, answers, n_boot=50, seed=0)
    got = {(r.nation, r.metric): r for r in scores.itertuples()}
    # China: U = 1/2 (one of two gold-in-favour answered Abstain), F = 1 -> B = -1/2
    # Russia: U = 1, F = 1/2 -> B = +1/2; centred over the two: -1/2 and +1/2
    assert got["China", "U"].value == 0.5 and got["China", "F"].value == 1.0
    assert got["Russia", "B"].value == 0.5 and got["China", "B"].value == -0.5
    assert got["China", "B - mean(B)"].value == -0.5 and got["Russia", "B - mean(B)"].value == 0.5
    # gold abstentions are kept: counted in n, accuracy, recall
    assert got["China", "accuracy"].value == 0.5 and got["China", "U"].n_items == 4
    assert got["China", "abstain recall"].value == 1.0
    # China's macro-F1 by hand: in favour 2*(1/2*1/2)/(1) = 1/2, against 0, abstain 2/3
    assert got["China", "macro_f1"].value == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    # Russia's abstention was unparseable: counted apart, never an answer
    assert got["Russia", "accuracy"].n_items == 3 and got["Russia", "accuracy"].n_unparsed == 1
    assert got["Russia", "accuracy"].value == pytest.approx(1 / 3)
    assert "undefined" in got["Russia", "abstain recall"].flag
    # Japan: its own rows, never centred with the five
    assert ("Japan", "B - mean(B)") not in got
    assert not got["Japan", "B"].headline and got["Japan", "accuracy"].value == 1.0
    assert "gold in favour and against" in got["Japan", "B"].flag


def test_limit_few_shot_and_system_prompt():
    items = _items([(f"d{k}", n, "in favour" if k % 2 else "against")
                    for k in range(6) for n in ("China", "Russia", "Japan")])
    chosen = limit_items(items, 7, seed=3)
    assert len(chosen) == 7 and len({i.item_id for i in chosen}) == 7
    order = [items.index(i) for i in chosen]
    assert order == sorted(order) and order != list(range(7))  # in order, not the first seven
    assert limit_items(items, 7, seed=3) == chosen and limit_items(items, 99, 0) == items
    shot = with_few_shot(chosen, items, 2, seed=0)
    for before, after in zip(chosen, shot, strict=True):
        roles = [m["role"] for m in after.conversation]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        assert after.conversation[-1] == before.conversation[-1]
        for q, a in zip(after.conversation[1:-1:2], after.conversation[2:-1:2], strict=True):
            source = next(i for i in items if i.conversation[-1]["content"] == q["content"])
            assert source.meta["draft"] != before.meta["draft"]  # never its own draft
            assert a["content"] == {"in favour": "In favour", "against": "Against"}[source.gold]
    with pytest.raises(InputError, match="--few-shot"):
        with_few_shot(chosen, items, 16, seed=0)  # 5 other drafts x 3 nations = 15
    wrapped = with_system_prompt(chosen[:1], "Be brief. {default}")
    assert wrapped[0].conversation[0]["content"] == \
        "Be brief. " + chosen[0].conversation[0]["content"]


def test_debiasing_never_retrieves_what_gives_a_file_item_away():
    import datetime as dt

    from transferscope.bias.debias.corpus import Passage
    from transferscope.bias.debias.leakage import leak_reason, scope_of

    item = parse_item_row(dict(ROW, draft="S/2017/77"), "test")
    scope = scope_of(item, record=None)  # a file item needs nothing from the record

    def passage(date, text, symbols=()):
        return Passage("p", "meeting outcome", text, "test", dt.date.fromisoformat(date), (),
                       symbols)

    assert "on or after" in leak_reason(passage("2017-01-31", "Vote held."), scope)
    assert "S/2017/77" in leak_reason(passage("2016-05-01", "Draft S/2017/77 failed."), scope)
    assert leak_reason(passage("2016-05-01", "Draft S/2017/770 failed."), scope) is None

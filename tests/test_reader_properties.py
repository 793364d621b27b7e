"""Property-based tests (hypothesis) for every reader of #31 and for the output hygiene.

Each reader gets data nobody here wrote: round trips for what the project writes (items in
JSONL, CSV and Parquet; arrays; CSV cells), and arbitrary or mutated bytes for what a user or a
server hands over (items files, JSON Lines, CSV tables, .npy kernels, DINO model files, chat
completions), which must either read or raise the project's one-line error, never anything
else. The runs are deterministic (``derandomize``: the same examples every time, no example
database written) and sized to take a few seconds in all.
"""

from __future__ import annotations

import functools
import json
import re
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from transferscope.core.errors import BackendError, InputError, TransferScopeError
from transferscope.core.hygiene import (
    csv_cell,
    csv_cell_back,
    markdown_text,
    redact_url,
    terminal_line,
)

FAST = settings(derandomize=True, max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
QUICK = settings(FAST, max_examples=120)

# Text as users and models write it: any character but surrogates, NUL and CR (which a CSV
# file cannot carry through pandas), never a URL (credentials are removed from those).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
               min_size=1, max_size=40).map(str.strip).filter(lambda t: t and "://" not in t)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# ------------------------------------------------------------------------------- hygiene
@QUICK
@given(st.text())
def test_csv_cells_round_trip_and_never_start_a_formula(text):
    cell = csv_cell(text)
    assert csv_cell_back(cell) == text
    if cell and cell[0] in "=+-@\t\r":
        assert re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", cell)  # a number


@QUICK
@given(st.text())
def test_markdown_text_is_inert(text):
    out = markdown_text(text)
    assert not CONTROL.search(out)
    bare = re.sub(r"\\.", "", out)  # what is left once every escaped character is removed
    assert "<" not in bare and "`" not in bare and "|" not in bare
    assert "](" not in bare and "![" not in bare and "][" not in bare
    assert not re.search(r"^\s*(#{1,6}(\s|$)|>|[-+*](\s|$)|\[|\d{1,9}[.)](\s|$))", bare,
                         re.MULTILINE)


@QUICK
@given(st.text())
def test_terminal_lines_hold_no_control_character(text):
    line = terminal_line(text)
    assert "\n" not in line and not CONTROL.search(line)


@QUICK
@given(st.text(string.ascii_letters + string.digits, min_size=6, max_size=20),
       st.text(string.ascii_letters + string.digits, min_size=1, max_size=10),
       st.sampled_from(["127.0.0.1:8000", "example.org", "[::1]:9", "host.example:443"]),
       st.sampled_from(["", "/v1", "/v1?model=x", "/v1?api_key=SECRET"]))
def test_urls_never_keep_their_credentials(password, user, host, path):
    url = f"http://{user}:{password}@{host}{path.replace('SECRET', password)}"
    assert password not in redact_url(url).replace(host, "")


# ------------------------------------------------------------------------------- items
P5 = ["China", "France", "Russia", "United Kingdom", "United States"]
ITEM = st.fixed_dictionaries({
    "nation": st.sampled_from(P5 + ["Chad", "Brazil"]),
    "text": TEXT, "title": TEXT, "draft": TEXT,
    "gold": st.sampled_from(["in favour", "against", "abstain"]),
    "options": st.sampled_from([None, ["In favour", "Against", "Abstain"],
                                ["Abstain", "In favour", "Against", "Absent"]]),
})


@FAST
@given(st.lists(ITEM, min_size=1, max_size=6), st.sampled_from([".jsonl", ".csv", ".parquet"]))
def test_items_written_read_back_the_same(tmp_path, rows, suffix):
    """write_items -> load_items round-trips every field in every format (Parquet with an
    options list column failed with "truth value of an array is ambiguous")."""
    from transferscope.bias.items import load_items, write_items

    full = [{"id": f"i{k}", "test": "vote", "date": "2001-02-03",
             **{key: value for key, value in row.items() if value is not None}}
            for k, row in enumerate(rows)]
    if suffix == ".parquet" and any("options" in r for r in full):
        full = [r | {"options": r.get("options", ["In favour", "Against", "Abstain"])}
                for r in full]  # a Parquet column is a list in every row or in none
    path = tmp_path / f"items{suffix}"
    write_items(path, full)
    items = load_items(path)
    assert [i.item_id for i in items] == [r["id"] for r in full]
    for item, row in zip(items, full):
        assert item.nation == row["nation"] and item.gold == row["gold"]
        assert item.meta["title"] == row["title"] and item.meta["draft"] == row["draft"]
        assert item.options == tuple(row.get("options") or ("In favour", "Against", "Abstain"))
        assert row["text"] in item.conversation[-1]["content"]


def _reads_or_one_line(read, *args):
    try:
        read(*args)
    except TransferScopeError as err:
        assert "\n" not in str(err) and not CONTROL.search(str(err))


@FAST
@given(st.binary(max_size=400), st.sampled_from([".jsonl", ".csv", ".parquet"]))
def test_items_readers_take_any_bytes(tmp_path, data, suffix):
    from transferscope.bias.items import load_items

    path = tmp_path / f"any{suffix}"
    path.write_bytes(data)
    _reads_or_one_line(load_items, path)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@FAST
@given(st.lists(JSON, max_size=4), st.sampled_from(["id", "test", "nation", "options", "x"]))
def test_items_jsonl_takes_any_json_values(tmp_path, values, field):
    """Any JSON in any field: an item or one line naming the field."""
    from transferscope.bias.items import load_items

    path = tmp_path / "items.jsonl"
    base = {"id": "a", "test": "vote", "nation": "China", "date": "2001-02-03", "text": "t",
            "gold": "in favour"}
    path.write_text("".join(json.dumps(base | {field: v}, allow_nan=True) + "\n"
                            for v in values) or "\n", "utf-8")
    _reads_or_one_line(load_items, path)


# ------------------------------------------------------------------------------- text files
@FAST
@given(st.binary(max_size=600))
def test_jsonl_and_csv_readers_take_any_bytes(tmp_path, data):
    from transferscope.core.io import check_csv_layout, read_jsonl

    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    _reads_or_one_line(read_jsonl, path, "rows")
    _reads_or_one_line(check_csv_layout, path)


# ------------------------------------------------------------------------------- .npy kernels
@FAST
@given(st.sampled_from(["<f8", "<f4", "<i8", "|b1", "<c16", "<U3", "|O", "<M8[s]"]),
       st.lists(st.integers(0, 5), max_size=3), st.integers(-64, 64))
def test_npy_readers_check_the_header_before_reading(tmp_path, dtype, shape, extra):
    """Any dtype, shape and payload length: the array (exactly, for plain numbers) or one
    line; never a pickle, a MemoryError or an array that the bytes do not fill."""
    from transferscope.core.io import load_array

    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    body = header.encode("latin1")
    body += b" " * ((64 - (10 + len(body) + 1) % 64) % 64) + b"\n"
    itemsize = np.dtype(dtype).itemsize if dtype != "|O" else 8
    need = int(np.prod(shape)) * itemsize
    size = max(0, need + extra)
    path = tmp_path / "k.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body
                     + bytes(size))
    try:
        array = load_array(path, "kernel")
    except InputError as err:
        assert "k.npy" in str(err)
        return
    assert dtype[1] in "fib" and size == need and array.shape == tuple(shape)


@FAST
@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=30))
def test_arrays_round_trip(tmp_path, values):
    from transferscope.core.io import load_array, save_array

    array = np.asarray(values).reshape(len(values), 1)
    np.testing.assert_array_equal(load_array(save_array(tmp_path / "a.npy", array)), array)


# ------------------------------------------------------------------------------- DINO models
@functools.lru_cache(maxsize=1)
def _model_bytes() -> bytes:
    """A real fitted DINO model file (3 Adam steps), built once."""
    import tempfile

    import pandas as pd

    from transferscope.dino.table_model import fit_table

    folder = Path(tempfile.mkdtemp())
    table = folder / "t.csv"
    pd.DataFrame({"x": [1, 3, 5, 7, 2, 4.0], "y": [2, 4, 6, 8, 3, 4.0],
                  "d": list("abbaab")}).to_csv(table, index=False)
    fit_table(table, ["x"], "y", "d", "b", folder / "m.dino", n_steps=3)
    return (folder / "m.dino").read_bytes()


@FAST
@given(st.data())
def test_model_files_load_or_fail_in_one_line(tmp_path, data):
    """A real model file with bytes flipped, cut short or extended anywhere (header, settings,
    tensors): a model or one line, never another exception."""
    from transferscope.dino.model_file import load_model

    raw = bytearray(_model_bytes())
    how = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] = data.draw(st.integers(0, 255))
    elif how == "cut":
        raw = raw[:at]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "m.dino"
    path.write_bytes(bytes(raw))
    _reads_or_one_line(load_model, path)


# ------------------------------------------------------------------------------- server replies
@pytest.fixture(scope="module")
def openai_backend():
    from transferscope.bias.backends import make_backend

    backend = make_backend("openai:m", base_url="http://127.0.0.1:9/v1", cache=False)
    yield backend
    backend.close()


@QUICK
@given(JSON)
def test_chat_replies_parse_or_fail_in_one_line(openai_backend, value):
    assume(isinstance(value, dict))
    try:
        reply = openai_backend.reply_from(value)
    except BackendError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(reply.text, str) and 0 <= reply.prompt_tokens <= 10**9


@QUICK
@given(st.fixed_dictionaries({"content": st.one_of(st.none(), st.text()),
                              "usage": st.dictionaries(
                                  st.sampled_from(["prompt_tokens", "completion_tokens"]),
                                  st.one_of(st.integers(), st.floats(), st.text()))}))
def test_chat_replies_with_every_usage_count(openai_backend, value):
    data = {"choices": [{"message": {"content": value["content"]}}], "usage": value["usage"]}
    try:
        reply = openai_backend.reply_from(data)
    except BackendError as err:
        assert "usage." in str(err)
        return
    assert reply.text == (value["content"] or "")
    assert all(isinstance(v, int) and 0 <= v <= 10**9
               for v in (reply.prompt_tokens, reply.completion_tokens))


@FAST
@given(st.binary(max_size=300))
def test_any_reply_body_is_an_answer_or_one_line(openai_backend, body):
    from transferscope.bias.backends.http import HTTPReply

    try:
        openai_backend._answer("http://x/v1/chat/completions",
                               HTTPReply(status=200, headers=None, body=body))
    except BackendError as err:
        assert "\n" not in str(err) and not CONTROL.search(str(err))


def test_the_json_strategy_reaches_deep_and_odd_values():
    """Guards the tests above against a strategy that only ever draws flat, tame values."""
    seen = []

    @settings(derandomize=True, max_examples=60, database=None)
    @given(JSON)
    def collect(value):
        seen.append(value)

    collect()
    assert any(isinstance(v, dict) and v for v in seen)
    assert any(isinstance(v, list) and any(isinstance(x, list | dict) for x in v)
               for v in seen)

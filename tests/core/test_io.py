"""core.io: one JSON rule, atomic writes, damaged files as one InputError line."""

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.core.io import (
    check_csv_layout,
    json_ready,
    load_array,
    read_json,
    read_jsonl,
    read_parquet,
    save_array,
    write_json,
    write_jsonl,
)


@dataclasses.dataclass
class _Point:
    x: float
    tags: frozenset


def test_json_ready_follows_one_rule():
    value = {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": Path("/x"),
             "e": {"z", "y"}, "f": _Point(2.0, frozenset({"q"})), "g": dt.date(2020, 1, 2),
             1: (np.int64(4),)}
    assert json_ready(value) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": "/x",
                                 "e": ["y", "z"], "f": {"x": 2.0, "tags": ["q"]},
                                 "g": "2020-01-02", "1": [4]}


def test_write_json_round_trips_and_leaves_no_temp_file(tmp_path):
    path = write_json(tmp_path / "sub" / "x.json", {"k": np.inf, "v": [1, 2]})
    assert json.loads(path.read_text()) == {"k": None, "v": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_write_jsonl_one_object_per_line(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"a": 1}, {"b": np.int8(2)}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": 2}]


def test_read_json_names_the_damaged_file(tmp_path):
    bad = tmp_path / "run.json"
    bad.write_text('{"a": 1,')
    with pytest.raises(InputError, match=r"run\.json: line 1: not valid JSON"):
        read_json(bad, "run summary")
    with pytest.raises(InputError, match="not found: expected the run summary"):
        read_json(tmp_path / "missing.json", "run summary")


def test_arrays_round_trip_and_refuse_pickles(tmp_path):
    path = save_array(tmp_path / "k.npy", [[1, 2], [3, 4]], dtype=np.float64)
    assert load_array(path).dtype == np.float64
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj.npy: dtype = 'object': pickled"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "torn.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(InputError, match="torn.npy: damaged"):
        load_array(tmp_path / "torn.npy")


@pytest.mark.parametrize("text, fragment", [
    ("text,text\na,b\n", "header: column 'text' appears 2 times"),
    ("a,b\n1,2,3\n4,5\n", "line 2: 3 fields: expected 2"),  # pandas would shift it silently
    ("a,b\n1,2\n3\n", "line 3: 1 fields: expected 2"),
    ('a,b\n"x,y",2\n4,5,6\n', "line 3: 3 fields"),  # a quoted comma is one field
])
def test_csv_layout_names_the_line(tmp_path, text, fragment):
    path = tmp_path / "t.csv"
    path.write_text(text, "utf-8")
    with pytest.raises(InputError) as caught:
        check_csv_layout(path)
    assert str(caught.value).startswith(f"{path}: ") and fragment in str(caught.value)


def test_csv_layout_accepts_a_regular_table_gzip_and_tabs(tmp_path):
    import gzip

    (tmp_path / "t.csv").write_text('a,b\n"x,y",2\n\n3,4\n', "utf-8")
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    (tmp_path / "t.tsv").write_text("a\tb\n1,5\t2\n", "utf-8")
    assert check_csv_layout(tmp_path / "t.csv") is None
    assert check_csv_layout(tmp_path / "t.csv.gz") is None
    assert check_csv_layout(tmp_path / "t.tsv", "\t") is None
    with pytest.raises(InputError, match="line 2: 2 fields: expected 1"):
        check_csv_layout(tmp_path / "t.tsv")  # read with the wrong separator


def test_read_parquet_names_the_damaged_or_foreign_file(tmp_path):
    import pandas as pd

    good = tmp_path / "good.parquet"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(good)
    assert read_parquet(good, "table", ("a", "b"))["b"].tolist() == ["x", "y"]
    with pytest.raises(InputError, match=r"good.parquet: column 'c' is missing"):
        read_parquet(good, "table", ("a", "c"))
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"junk.parquet: not a readable Parquet file"):
        read_parquet(junk, "table")


def test_read_jsonl_names_the_line_and_reads_gzip(tmp_path):
    import gzip

    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n\n[2]\n{bad\n'))
    with pytest.raises(InputError, match=r"rows.jsonl.gz: line 4: not valid JSON"):
        read_jsonl(path, "rows")
    path.write_bytes(gzip.compress(b'{"a": 1}\n\n[2]\n'))
    assert read_jsonl(path, "rows") == [{"a": 1}, [2]]

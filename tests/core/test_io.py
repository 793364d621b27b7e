"""core.io: one JSON rule, atomic writes, damaged files as one InputError line."""

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from transferscope.core.errors import InputError
from transferscope.core.io import (
    json_ready,
    load_array,
    read_json,
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
    with pytest.raises(InputError, match="obj.npy: damaged"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "torn.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(InputError, match="torn.npy: damaged"):
        load_array(tmp_path / "torn.npy")

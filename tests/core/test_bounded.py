"""core.bounded and the readers built on it: caps named, memory bounded, linear checks.

Sizes are the testers' own (a 2 GB file without a newline, a 2 GB sparse model file, a
100,000-column header), made as sparse files so they cost no disk; memory is measured with
tracemalloc around the read."""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc

import numpy as np
import pytest

from transferscope.core import bounded
from transferscope.core.bounded import check_npy, iter_lines, loads_json, read_capped
from transferscope.core.errors import InputError
from transferscope.core.io import check_csv_layout, load_array, read_jsonl, save_array


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    except InputError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def test_a_2gb_csv_without_a_newline_is_refused_at_the_line_cap(tmp_path):
    """Before #31 the whole line was read (4.7 GB); now 32 MiB at most are held."""
    path = tmp_path / "one_line.csv"
    with open(path, "wb") as fh:
        fh.write(b"x,y,d" + b"1" * 1000)
        fh.truncate(2 * 10**9)  # sparse: reads as NUL bytes, no newline anywhere
    with pytest.raises(InputError, match=r"one_line.csv: line 1 is longer than 32 MiB: "
                                         r"expected a UTF-8 delimited table, each line at "
                                         r"most 32 MiB \(the cap on one line\)"):
        check_csv_layout(path)
    assert _peak_mib(lambda: check_csv_layout(path)) < 100


def test_the_line_cap_applies_to_jsonl_and_names_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "LINE_CAP", 64)
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n' + json.dumps({"b": "x" * 100}) + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl: line 2 is longer than 64 bytes"):
        read_jsonl(path, "rows")
    lines = list(iter_lines(io.BytesIO(b"a\nb\n" + b"c" * 64), "s", "text"))
    assert lines == ["a\n", "b\n", "c" * 64]


def test_a_100000_column_header_is_checked_in_linear_time(tmp_path):
    """The repeated-name check counted each name in the whole header (110 s at 100k
    columns); a Counter takes one pass. The repeated name is found wherever it is."""
    names = [f"c{i}" for i in range(100_000)] + ["c99998"]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" * len(names)) + "\n")
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"header: column 'c99998' appears 2 times"):
        check_csv_layout(path)
    assert time.perf_counter() - started < 20  # quadratic: ~110 s on this header


@pytest.mark.parametrize("text, fragment", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ("[" * 201 + "]" * 201, "nested more than 200 levels"),
    ('{"n": ' + "9" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    ('{"n": NaN}', "NaN is not a JSON number"),
    ('{"n": -Infinity}', "-Infinity is not a JSON number"),
    ('{"n": 1e999}', "the number 1e999 is out of range"),
    ("{oops", "line 1: not valid JSON (Expecting property name"),
])
def test_hostile_json_is_one_line(text, fragment):
    with pytest.raises(InputError) as caught:
        loads_json(text, "f.json", "a run summary")
    assert str(caught.value).startswith("f.json:") and fragment in str(caught.value)
    assert str(caught.value).endswith("a run summary") or "levels" in str(caught.value)


def test_json_within_bounds_reads_as_written():
    assert loads_json("[" * 200 + "]" * 200, "f", "x") is not None
    assert loads_json('{"n": 1e308, "m": ' + "9" * 4000 + "}", "f", "x")["n"] == 1e308
    assert loads_json('{"v": -Infinity}', "f", "x", finite=False)["v"] == -np.inf


def _npy(path, header: str, data: bytes = b"") -> None:
    body = header.encode("latin1")
    body += b" " * ((64 - (10 + len(body) + 1) % 64) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + data)


def test_npy_headers_are_checked_before_anything_is_allocated(tmp_path):
    """A header that declares 80 GB over 128 bytes raised MemoryError in np.load; a huge
    header, a complex or text dtype are each one line, before any array exists."""
    lying = tmp_path / "lying.npy"
    _npy(lying, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }",
         b"\0" * 128)
    with pytest.raises(InputError, match=r"shape \(100000, 100000\) of float64 needs "
                                         r"80,000,000,000 bytes, the file holds 128"):
        load_array(lying, "kernel")
    assert _peak_mib(lambda: load_array(lying, "kernel")) < 10
    huge = tmp_path / "huge.npy"
    _npy(huge, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }" + " " * 20_000,
         b"\0" * 16)
    with pytest.raises(InputError, match="huge.npy: damaged .*Header info length"):
        load_array(huge, "kernel")
    for array, dtype in ((np.eye(2, dtype=complex), "complex128"),
                         (np.array(["a", "b"]), "<U1")):
        path = save_array(tmp_path / "x.npy", array)
        with pytest.raises(InputError, match=f"x.npy: dtype = '{dtype}'"):
            load_array(path, "kernel")
    good = save_array(tmp_path / "good.npy", np.arange(6.0).reshape(2, 3))
    assert check_npy(good, "kernel") == ((2, 3), np.dtype("<f8"))
    np.testing.assert_array_equal(load_array(good), np.arange(6.0).reshape(2, 3))


def test_a_2gb_sparse_model_file_is_refused_before_it_is_read(tmp_path):
    """`dino predict` read a 2 GB model file whole (2.5 GB RSS): the file's size is checked
    against the cap first, so at most a few bytes are held."""
    from transferscope.dino.model_file import load_model

    path = tmp_path / "big.dino"
    with open(path, "wb") as fh:
        fh.write((100).to_bytes(8, "little") + b'{"__metadata__": {}}')
        fh.truncate(2 * 10**9)
    with pytest.raises(InputError, match=r"big.dino: 2,000,000,000 bytes: expected a DINO "
                                         r"model file of at most 1 GiB"):
        load_model(path)
    assert _peak_mib(lambda: load_model(path)) < 10
    assert _peak_mib(lambda: read_capped(path, 2**30, "x")) < 10


def test_read_capped_names_the_cap_and_reads_what_fits(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert read_capped(path, 3, "a file") == b"abc"
    with pytest.raises(InputError, match=r"f.bin: 3 bytes: expected a file of at most "
                                         r"2 bytes"):
        read_capped(path, 2, "a file")


def test_a_pipe_as_input_is_named_instead_of_read_forever(tmp_path):
    from transferscope.core.checks import check_input_file

    os.mkfifo(tmp_path / "p")
    with pytest.raises(InputError, match="device, pipe or socket"):
        check_input_file("DATA", tmp_path / "p", "a table")

"""The library functions behind the ``bias`` commands check what a config cannot check alone
(the record folder, the cache file, the run folders, the raw folder, whether the output may be
written) before any model opens or any input is read: a library caller gets the command
line's one-line errors. The model named, ``hf-local:`` of a folder that does not exist, would
be a different error had the check come after opening it."""

from __future__ import annotations

from pathlib import Path

import pytest

from transferscope.bias import (
    BackendOptions,
    CalibrateConfig,
    DebiasConfig,
    RunConfig,
    build_data,
    debias,
    import_unbench,
    run_calibration,
    run_evaluation,
    write_report,
)
from transferscope.core.errors import InputError

NO_MODEL = "hf-local:nosuch-model-folder"


def _operations(tmp: Path) -> list[tuple[str, object, str]]:
    """(name, call, the error's start) per operation, each given one bad file or folder."""
    not_sqlite = Path("notes.db")  # relative: the test runs in ``tmp``
    (tmp / not_sqlite).write_text("my notes\n")
    foreign = tmp / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("a file of the user's\n")
    return [
        ("run: record", lambda: run_evaluation(RunConfig(model=NO_MODEL, record="nosuch"),
                                               tmp / "run"),
         "--record = 'nosuch': expected a record folder written by `bias build-data`"),
        ("run: cache", lambda: run_evaluation(RunConfig(model=NO_MODEL), tmp / "run",
                                              options=BackendOptions(cache=str(not_sqlite))),
         "--cache = 'notes.db': expected an SQLite response cache"),
        ("run: out", lambda: run_evaluation(RunConfig(model=NO_MODEL), foreign),
         f"--out {foreign}: a folder holding files transferscope did not write"),
        ("debias: record", lambda: debias(DebiasConfig(model=NO_MODEL, record="nosuch"),
                                          tmp / "debias"),
         "--record = 'nosuch': expected a record folder"),
        ("debias: cache", lambda: debias(DebiasConfig(model=NO_MODEL), tmp / "debias",
                                         BackendOptions(cache=not_sqlite)),
         "--cache = 'notes.db': expected an SQLite response cache"),
        ("calibrate: record", lambda: run_calibration(CalibrateConfig(record="nosuch"),
                                                      tmp / "cal"),
         "--record = 'nosuch': expected a record folder"),
        ("report: run folder", lambda: write_report([Path("nosuch")], tmp / "report"),
         "RUN_DIRS = 'nosuch': expected a folder written by `transferscope bias run`"),
        ("build-data: raw", lambda: build_data("nosuch", tmp / "record"),
         "--raw = 'nosuch': expected a folder of raw UNSC records"),
        ("import-unbench: out", lambda: import_unbench("nosuch", foreign),
         f"--out {foreign}: is a folder: expected a file path"),
    ]


@pytest.mark.parametrize("case", range(9))
def test_each_operation_checks_before_it_opens_or_reads_anything(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, call, start = _operations(tmp_path)[case]
    with pytest.raises(InputError) as err:
        call()  # type: ignore[operator]
    assert str(err.value).startswith(start), (name, str(err.value))
    # nothing written: no run, debias, calibration, report or record folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.db"], name

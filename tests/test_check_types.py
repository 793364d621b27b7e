"""The type-check gate (scripts/check_types.py): its reading of mypy's output and its rules
(core, the command line and the demo clean; the parts within their baseline)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_types.py"
_spec = importlib.util.spec_from_file_location("check_types", SCRIPT)
check_types = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_types)

OUTPUT = [
    "src/transferscope/ntk/cli.py:12: error: Incompatible types in assignment  [assignment]",
    "src/transferscope/ntk/cli.py:40:7: error: Another one  [assignment]",
    "src/transferscope/ntk/cli.py:41: note: a note is not an error",
    "src/transferscope/dino/io.py:3: error: Missing return  [return]",
    "Found 3 errors in 2 files (checked 136 source files)",
]


def test_errors_are_counted_per_file_and_code():
    assert check_types.count(OUTPUT) == {
        "src/transferscope/ntk/cli.py [assignment]": 2,
        "src/transferscope/dino/io.py [return]": 1,
    }


def test_a_part_within_its_baseline_passes_and_a_new_error_fails():
    found = check_types.count(OUTPUT)
    ok, progress = check_types.compare(found, {"src/transferscope/ntk/cli.py [assignment]": 3,
                                               "src/transferscope/dino/io.py [return]": 1})
    assert ok == [] and progress == ["src/transferscope/ntk/cli.py [assignment]: 2 errors, "
                                     "baseline 3"]
    failures, _ = check_types.compare(found, {"src/transferscope/ntk/cli.py [assignment]": 2})
    assert failures == ["src/transferscope/dino/io.py [return]: 1 errors, baseline 0"]


def test_core_and_the_command_line_have_no_baseline():
    found = check_types.count(["src/transferscope/core/io.py:1: error: Bad  [misc]"])
    failures, _ = check_types.compare(found, {"src/transferscope/core/io.py [misc]": 5})
    assert failures == ["src/transferscope/core/io.py [misc]: 1 errors, baseline 0"]

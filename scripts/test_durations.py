"""Where the test suite's time goes, from pytest's JUnit XML (``pytest --junitxml=FILE``).

Prints the total, the slowest tests and the time per test file (setup and teardown included:
pytest's JUnit times cover the whole test), so a file whose fixtures reload a model shows up
even when each test is quick. With a second file, prints both side by side per test file.

Run: .venv/bin/python scripts/test_durations.py before.xml [after.xml] [--top 25]
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def read(path: Path) -> tuple[dict[str, float], Counter[str], dict[str, int]]:
    """(time per test id, time per test file, outcome counts)."""
    root = ET.parse(path).getroot()
    tests: dict[str, float] = {}
    files: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for case in root.iter("testcase"):
        cls = case.get("classname", "")
        name = case.get("name", "")
        seconds = float(case.get("time", "0") or 0)
        module = cls.rsplit(".", 1)[0] if cls.split(".")[-1][:1].isupper() else cls
        file = module.replace(".", "/") + ".py"
        tests[f"{file}::{name}"] = seconds
        files[file] += seconds
        kind = next((child.tag for child in case if child.tag in
                     ("failure", "error", "skipped")), "passed")
        outcomes[kind] += 1
    return tests, files, dict(outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    runs = [read(p) for p in args.xml]
    for path, (tests, _files, outcomes) in zip(args.xml, runs, strict=True):
        print(f"== {path.name}: {len(tests)} tests, {sum(tests.values()):.1f} s in tests; "
              f"outcomes {outcomes}")
        print(f"-- slowest {args.top} tests")
        for test, seconds in sorted(tests.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{seconds:8.2f} s  {test}")
    print("-- per test file (s)" + ("" if len(runs) == 1 else ": " + " | ".join(
        p.name for p in args.xml)))
    names = sorted({f for _, files, _ in runs for f in files},
                   key=lambda f: -max(files.get(f, 0.0) for _, files, _ in runs))
    for name in names:
        cells = " | ".join(f"{files.get(name, 0.0):8.1f}" for _, files, _ in runs)
        print(f"{cells}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

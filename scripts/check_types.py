"""Type check (mypy, configured in pyproject.toml): core and the command line strict and clean,
the demo clean, the parts checked against a baseline of the errors they had when checking
began.

The baseline (``scripts/mypy_baseline.json``) counts errors per file and error code, so moved
lines do not matter. Exit 1 when core or the command line has any error, or when a file has
more errors of a code than its baseline (a new error); fewer is reported as progress (run with
``--update`` to lower the baseline). ``--update`` rewrites the baseline from the current run.

Run: .venv/bin/python scripts/check_types.py [--update]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scripts" / "mypy_baseline.json"
CLEAN = ("src/transferscope/core/", "src/transferscope/cli.py",
          "src/transferscope/cli_models.py", "src/transferscope/demo/")
ERROR = re.compile(r"^(?P<file>[^:]+):\d+(?::\d+)?: error: .*\[(?P<code>[a-z0-9-]+)\]$")


def run_mypy() -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode not in (0, 1):  # 2: mypy itself failed (config, crash)
        print(proc.stdout + proc.stderr, file=sys.stderr)
        raise SystemExit(2)
    return proc.returncode, proc.stdout.splitlines()


def count(lines: list[str]) -> Counter[str]:
    """``"file [code]" -> errors``."""
    found: Counter[str] = Counter()
    for line in lines:
        match = ERROR.match(line.strip())
        if match:
            found[f"{match['file']} [{match['code']}]"] += 1
    return found


def compare(found: Counter[str], baseline: dict[str, int]) -> tuple[list[str], list[str]]:
    """(failures, progress): a core, command-line or demo file with any error or files above their baseline; and
    entries now below it."""
    failures, progress = [], []
    for key, n in sorted(found.items()):
        allowed = 0 if key.startswith(CLEAN) else baseline.get(key, 0)
        if n > allowed:
            failures.append(f"{key}: {n} errors, baseline {allowed}")
    for key, allowed in sorted(baseline.items()):
        if found.get(key, 0) < allowed:
            progress.append(f"{key}: {found.get(key, 0)} errors, baseline {allowed}")
    return failures, progress


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline")
    args = parser.parse_args()
    _, lines = run_mypy()
    found = count(lines)
    if args.update:
        kept = {k: n for k, n in sorted(found.items()) if not k.startswith(CLEAN)}
        BASELINE.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n", "utf-8")
        print(f"baseline: {sum(kept.values())} errors in {len({k.split()[0] for k in kept})} "
              f"files written to {BASELINE.relative_to(ROOT)}")
    baseline = json.loads(BASELINE.read_text("utf-8")) if BASELINE.exists() else {}
    failures, progress = compare(found, baseline)
    for line in progress:
        print(f"fewer type errors than the baseline (run --update to keep it so): {line}")
    if failures:
        print("\n".join(line for line in lines if ": error:" in line and any(
            line.startswith(f.split(" [")[0]) for f in failures)))
        print("type errors beyond the baseline:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"mypy: core, the command line and the demo clean; the parts within their baseline "
          f"({sum(found.values())} errors tolerated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up time of every ``--help`` against the bare imports any Typer CLI pays.

Baseline: ``python -c "import typer, rich.console, numpy"`` (the floor of a Typer + rich +
numpy command line). Project: ``python -m transferscope [GROUP [COMMAND]] --help`` for the
root, every command group and every command. Each is a fresh subprocess, timed ``--repeat``
times (median reported); prints each ratio to the baseline and which heavy libraries the
process imported (torch, transformers, ray, sklearn, pandas, scipy, matplotlib).

Run: .venv/bin/python benchmarks/cli_startup.py [--repeat 5] [--target 3] [--no-compile]
The same interpreter and ``PYTHONPATH`` as the caller are used (put a worktree's ``src`` first
to time it). Exit 1 when a ratio is above ``--target`` (the issue's bound is 3x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BASELINE = "import typer, rich.console, numpy"
# For context (not the target's baseline): what any Typer command line pays to print the help
# of one command with one option (Typer builds its parameters through pydantic adapters).
FLOOR = ("import sys, typer, numpy\napp = typer.Typer()\n@app.command()\n"
         "def main(n: int = typer.Option(1, help='n')) -> None:\n    pass\n"
         "sys.argv = ['app', '--help']\napp()")
HEAVY = ("torch", "transformers", "ray", "sklearn", "pandas", "scipy", "matplotlib")

# Runs the real entry point on argv, then reports which heavy top-level modules are loaded.
_PROBE = """
import sys, json
sys.argv = ["transferscope", *json.loads(sys.argv[1])]
from transferscope.cli import main
try:
    main()
except SystemExit:
    pass
print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def commands() -> list[list[str]]:
    """[], [group], [group, command] for every group and command of the root app."""
    import typer.main

    from transferscope.cli import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    out: list[list[str]] = [[]]
    for name in sorted(root.list_commands(ctx)):  # type: ignore[attr-defined]
        cmd = root.get_command(ctx, name)  # type: ignore[attr-defined]
        out.append([name])
        for sub in sorted(getattr(cmd, "commands", {}) or {}):
            out.append([name, sub])
    return out


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_modules(args: list[str]) -> list[str]:
    """The heavy libraries imported by ``transferscope *args --help``."""
    code = _PROBE.format(heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps([*args, "--help"])],
                          capture_output=True, text=True, check=False)
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")]
    if not line:
        raise RuntimeError(f"{args}: the probe failed: {proc.stderr[-400:]}")
    return [m for m in line[-1][len("HEAVY="):].split(",") if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--target", type=float, default=3.0)
    parser.add_argument("--only-root", action="store_true", help="root and groups only")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not compile the package's bytecode first")
    args = parser.parse_args()

    py = sys.executable
    if not args.no_compile:
        # what `pip install` does for an installed package; an editable install writes the
        # same files on first import unless PYTHONDONTWRITEBYTECODE is set (then every start
        # compiles the package anew: time that with --no-compile)
        import transferscope

        package = os.path.dirname(transferscope.__file__)
        subprocess.run([py, "-m", "compileall", "-q", package], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"bytecode of {package} compiled first (as pip install does)")
    print(f"python {sys.version.split()[0]}; PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
          f"PYTHONPYCACHEPREFIX={os.environ.get('PYTHONPYCACHEPREFIX', '')!r}")
    _time([py, "-c", BASELINE])  # warm the file cache (and write .pyc where allowed)
    base = statistics.median(_time([py, "-c", BASELINE]) for _ in range(args.repeat))
    print(f"baseline  python -c {BASELINE!r}: {base:.3f} s (median of {args.repeat})")
    floor = statistics.median(_time([py, "-c", FLOOR]) for _ in range(args.repeat))
    print(f"for context: --help of a one-option Typer app {floor:.3f} s ({floor / base:.1f}x)")
    worst = 0.0
    todo = commands()
    if args.only_root:
        todo = [c for c in todo if len(c) <= 1]
    for argv in todo:
        full = [py, "-m", "transferscope", *argv, "--help"]
        _time(full)  # warm-up
        t = statistics.median(_time(full) for _ in range(args.repeat))
        ratio = t / base
        worst = max(worst, ratio)
        label = " ".join(["transferscope", *argv, "--help"])
        print(f"{label:48s} {t:6.3f} s  {ratio:5.1f}x  heavy: "
              f"{','.join(heavy_modules(argv)) or '-'}")
    print(f"worst ratio {worst:.1f}x (target {args.target:g}x)")
    return 0 if worst <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())

"""Heavy libraries load only where used: every ``--help`` (root, each group, each command) and
``import transferscope.<part>`` leave torch, transformers, ray, scikit-learn, pandas, scipy
and matplotlib unloaded. One subprocess runs them all through the real entry point.

(Start-up *times* are measured in benchmarks/cli_startup.py, not asserted here.)
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "ray", "sklearn", "pandas", "scipy", "matplotlib")

_PROBE = """
import json, sys
import typer.main
from transferscope.cli import app, main

root = typer.main.get_command(app)
argvs = [[]]
for name in root.list_commands(typer.Context(root)):  # the root mounts a part when named
    cmd = root.get_command(typer.Context(root), name)
    argvs.append([name])
    argvs += [[name, sub] for sub in sorted(getattr(cmd, "commands", {}) or {})]
report = {"help": [], "heavy": {}}
for argv in argvs:
    sys.argv = ["transferscope", *argv, "--help"]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    report["help"].append([argv, code])
import transferscope.bias, transferscope.dino, transferscope.ntk  # noqa: E401
report["heavy"] = [m for m in HEAVY if m in sys.modules]
print("REPORT=" + json.dumps(report))
"""


def test_help_and_part_imports_load_no_heavy_library():
    code = f"HEAVY = {HEAVY!r}\n" + _PROBE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("REPORT=")]
    assert line, proc.stderr[-2000:]
    report = json.loads(line[-1][len("REPORT="):])
    commands = {" ".join(argv) for argv, _ in report["help"]}
    # every group and a command of each: the probe walked the whole tree
    assert {"", "ntk", "dino", "bias", "models", "demo", "doctor", "ntk kernel", "dino fit",
            "bias run"} <= commands
    assert all(code in (0, None) for _, code in report["help"]), report["help"]
    assert report["heavy"] == []


def test_the_probe_sees_a_heavy_import():
    """The same probe reports a library once it is imported (so an empty report means
    something)."""
    code = ("import sys, json\nimport sklearn\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert "sklearn" in json.loads(out.strip().splitlines()[-1])


_ONE_HELP = """
import json, sys
sys.argv = ["transferscope", *json.loads(sys.argv[1]), "--help"]
from transferscope.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED=" + json.dumps(sorted(m for m in sys.modules if m.startswith(
    ("transferscope.ntk", "transferscope.dino", "transferscope.bias", "pydantic")))))
"""


def _loaded_by_help(argv: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _ONE_HELP, json.dumps(argv)],
                          capture_output=True, text=True, timeout=300, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("LOADED=")]
    assert line and "Usage:" in proc.stdout, proc.stdout[-1000:] + proc.stderr[-2000:]
    return set(json.loads(line[-1][len("LOADED="):]))


def test_a_command_s_help_loads_its_own_part_only_and_no_pydantic():
    """The root mounts a part's command line when it is named (``cli._LazyRoot``), and no group
    coerces its unset ``--help`` through pydantic (``core.command_group.CommandGroup``)."""
    loaded = _loaded_by_help(["bias", "run"])
    assert "transferscope.bias.cli" in loaded
    assert not {m for m in loaded if m.startswith(("transferscope.ntk", "transferscope.dino"))}
    assert not {m for m in loaded if m.startswith("pydantic")}
    loaded = _loaded_by_help(["ntk", "stop"])
    assert "transferscope.ntk.cli" in loaded
    assert not {m for m in loaded if m.startswith(("transferscope.bias", "transferscope.dino"))}
    assert not {m for m in loaded if m.startswith("pydantic")}

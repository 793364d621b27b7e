"""Usage errors (typer's own click) follow the project's error path: one line, exit 2."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, fragment", [
    (["bias", "run", "--limit", "0", "--out", "x"], "'--limit'"),
    (["ntk", "kernel", "--n", "abc", "--out", "x"], "'--n'"),
    (["no-such-group"], "No such command 'no-such-group'"),
    (["ntk", "kernel", "--bogus"], "No such option: --bogus"),
    (["ntk", "kernel"], "Missing option '--out'"),
])
def test_usage_error_is_one_line_exit_2(args, fragment, tmp_path):
    res = subprocess.run([sys.executable, "-m", "transferscope", *args], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert fragment in lines[0]
    assert "--debug" not in lines[0] and "Traceback" not in res.stderr

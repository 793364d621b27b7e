"""The command line's one error path: usage errors, signals and OS errors as one line."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, fragment", [
    (["bias", "run", "--drafts-per-nation", "0", "--out", "x"], "--drafts-per-nation = 0"),
    (["ntk", "kernel", "--n", "abc", "--out", "x"], "--n = 'abc'"),
    (["no-such-group"], "No such command 'no-such-group'"),
    (["nkt"], "No such command 'nkt'. Did you mean 'ntk'?"),  # names of unmounted parts too
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


_SLEEPER = """
import sys, time
from transferscope import cli

@cli.app.command("sleep-test")
def sleep_test() -> None:
    print("started", flush=True)
    time.sleep(60)

sys.argv = ["transferscope", "sleep-test"]
cli.main()
"""


def test_sigterm_stops_like_ctrl_c_with_the_resume_line():
    import signal

    proc = subprocess.Popen([sys.executable, "-c", _SLEEPER], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines() == [
        "interrupted: finished work is kept in the cache; run the same command to resume"]


def test_an_os_error_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = subprocess.run([sys.executable, "-m", "transferscope", "demo", "--only", "models",
                          "--out", str(blocker / "sub")], capture_output=True, text=True,
                         timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1, res.stderr
    assert str(blocker) in lines[0] and "Traceback" not in res.stderr


@pytest.mark.parametrize("args, fragment", [
    (["no-such\x1b[2J\x1b]0;pwned\x07"], "No such command 'no-such\\x1b[2J\\x1b]0;pwned\\x07'"),
    (["dino", "fit", "x\x1b[31m.csv", "--features", "a", "--target", "b", "--domain", "c",
      "--target-domain", "d"], "DATA = 'x\\x1b[31m.csv'"),
])
def test_the_error_line_carries_no_terminal_escape(args, fragment, tmp_path):
    """Escape sequences in what the user or a server sent are shown as escapes, never sent to
    the terminal raw (a usage error from click and one of ours alike)."""
    res = subprocess.run([sys.executable, "-m", "transferscope", *args], capture_output=True,
                         cwd=tmp_path, timeout=300)
    err = res.stderr.decode("utf-8")
    assert res.returncode == 2 and err.count("\n") == 1, err
    assert b"\x1b" not in res.stderr and b"\x07" not in res.stderr
    assert fragment in err

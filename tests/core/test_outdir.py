"""core.outdir: outputs that can never be written are refused first; one process per output."""

import os
import signal
import subprocess
import sys

import pytest

from transferscope.core.errors import InputError
from transferscope.core.outdir import (
    LOCK_NAME,
    check_out_dir,
    check_out_file,
    claim_output,
    release_claims,
)

_HOLDER = """
import sys
from transferscope.core.outdir import claim_output
claim_output(sys.argv[1], is_dir=sys.argv[2] == "dir")
print("held", flush=True)
sys.stdin.read()
"""


def _hold(path, kind="dir"):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), kind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_file_where_a_folder_goes_and_the_reverse(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"--out .*f: is a file: expected a folder"):
        check_out_dir(blocker)
    with pytest.raises(InputError, match=r"f is a file, not a folder"):
        check_out_dir(blocker / "a" / "b")
    with pytest.raises(InputError, match=r"--model-out .*: is a folder: expected a file"):
        check_out_file(tmp_path, "--model-out")
    with pytest.raises(InputError, match=r"f is a file, not a folder"):
        check_out_file(blocker / "m.bin")
    assert check_out_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_out_dir(locked / "run")
    finally:
        locked.chmod(0o755)


def test_claim_creates_locks_and_cleans_up(tmp_path):
    out = tmp_path / "run"
    claim = claim_output(out)
    assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert claim_output(out) is claim  # the same process may claim again
    claim.release()
    assert not out.exists()  # it created the folder and left nothing in it
    out.mkdir()
    (out / "result.json").write_text("{}")
    with pytest.raises(InputError, match="a folder holding files transferscope did not write "
                                         r"\(e.g. 'result.json'\)"):
        claim_output(out)
    with claim_output(out, force=True):  # the user said --force
        pass
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_live_holder_refuses_another_process_and_a_killed_one_does_not(tmp_path, kind):
    out = tmp_path / ("run" if kind == "dir" else "model.bin")
    holder = _hold(out, kind)
    try:
        with pytest.raises(InputError, match=rf"in use by another running transferscope "
                                             rf"process \(pid {holder.pid}\)"):
            claim_output(out, is_dir=kind == "dir")
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up: the lock file stays behind
        holder.wait(timeout=30)
    lock = out / LOCK_NAME if kind == "dir" else tmp_path / f".model.bin{LOCK_NAME}"
    assert lock.exists()
    claim_output(out, is_dir=kind == "dir")  # the kernel dropped the dead one's flock
    assert lock.read_text().strip() == str(os.getpid())
    release_claims()
    assert not lock.exists()


def test_release_claims_lets_the_next_process_in(tmp_path):
    out = tmp_path / "run"
    claim_output(out)
    release_claims()
    holder = _hold(out)
    holder.stdin.close()  # the holder exits normally, dropping its claim
    assert holder.wait(timeout=30) == 0
    with claim_output(out):
        assert (out / LOCK_NAME).exists()

"""core.outdir: outputs that can never be written are refused first; one process per output."""

import os
import signal
import stat
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


def _sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_output_rule_inputs_user_files_and_force(tmp_path):
    """Never an input (--force or not); a user's file only with force; a file a claimed
    command wrote is replaced by its rerun; writes inside a claim are checked one by one."""
    from transferscope.core.io import atomic_write_bytes

    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    before = _sha(data)
    for force in (False, True):
        with pytest.raises(InputError, match="is one of the command's inputs"):
            claim_output(tmp_path / "." / "data.csv", is_dir=False, inputs=[data], force=force)
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    with pytest.raises(InputError, match="exists and was not written by transferscope"):
        claim_output(mine, is_dir=False)
    out = tmp_path / "run"
    with claim_output(out, inputs=[data]):
        atomic_write_bytes(out / "a.json", b"1")
        (out / "user.txt").write_text("added by the user meanwhile")
        with pytest.raises(InputError, match="user.txt exists and was not written"):
            atomic_write_bytes(out / "user.txt", b"2")
    assert (out / "user.txt").read_text() == "added by the user meanwhile"
    with pytest.raises(InputError, match=r"holding files transferscope did not write "
                                         r"\(e.g. 'user.txt'\)"):
        claim_output(out)
    (out / "user.txt").unlink()
    with claim_output(out):  # only its own files left: a rerun may replace them
        atomic_write_bytes(out / "a.json", b"3")
    assert (out / "a.json").read_bytes() == b"3" and _sha(data) == before
    assert (out / ".transferscope-outputs").read_text() == '"a.json"\n'
    release_claims()


def test_a_pipe_is_refused_even_outside_a_claim(tmp_path):
    from transferscope.core.io import atomic_write_bytes

    os.mkfifo(tmp_path / "p")
    with pytest.raises(InputError, match="is a pipe, not a regular file"):
        atomic_write_bytes(tmp_path / "p", b"x")
    assert stat.S_ISFIFO((tmp_path / "p").stat().st_mode)


def test_a_staged_folder_replaces_its_target_whole_or_not_at_all(tmp_path):
    from transferscope.core.outdir import staged_folder

    target = tmp_path / "record"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_folder(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("the build failed")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with staged_folder(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [".transferscope-outputs", "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["record"]  # no staging or old copy left

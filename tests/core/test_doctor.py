import subprocess
import sys


def _doctor(env_extra, tmp_path):
    import os

    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-m", "transferscope", "doctor"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_doctor_passes_on_this_installation(tmp_path):
    res = _doctor({}, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    for item in ("torch", "transformers", "cache", "model smollm2", "model minilm", "memory"):
        assert item in res.stdout


def test_doctor_fails_with_one_line_on_an_unwritable_cache(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    res = _doctor({"TRANSFERSCOPE_CACHE": str(blocker / "cache")}, tmp_path)
    assert res.returncode != 0
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "TRANSFERSCOPE_CACHE" in errors[0], res.stderr

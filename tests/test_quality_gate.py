"""The test-quality gate (scripts/check_tests.py) on test files written here."""

import subprocess
import sys
from pathlib import Path

GATE = Path(__file__).resolve().parents[1] / "scripts" / "check_tests.py"


def _gate(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_sample.py").write_text(source)
    return subprocess.run([sys.executable, str(GATE), str(tests)], capture_output=True, text=True)


def test_a_test_without_a_check_fails_the_gate(tmp_path):
    res = _gate(tmp_path, "def test_nothing():\n    x = 1 + 1\n")
    assert res.returncode == 1
    assert "test_nothing checks nothing" in res.stdout


def test_asserts_raises_and_helpers_pass_the_gate(tmp_path):
    res = _gate(tmp_path, (
        "import pytest, numpy as np\n"
        "def _check(x):\n    assert x\n"
        "def test_direct():\n    assert 1\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('a')\n"
        "def test_numpy():\n    np.testing.assert_allclose(1, 1)\n"
        "def test_helper():\n    _check(1)\n"
        "@pytest.mark.skipif(True, reason='no chromium')\n"
        "def test_skipped():\n    assert 1\n"))
    assert res.returncode == 0, res.stdout
    assert "'no chromium'" in res.stdout

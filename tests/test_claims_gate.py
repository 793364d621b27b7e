"""The claims gate (scripts/check_claims.py) on documents and results files written here."""

import subprocess
import sys
from pathlib import Path

import pytest

GATE = Path(__file__).resolve().parents[1] / "scripts" / "check_claims.py"
RESULTS = "benchmarks/results/run-2026-12-01.txt"


def _tree(tmp_path: Path, readme: str, results: str = "fit 146.2 s, baseline 108.3 s, peak 10.84 GiB\nshare 0.9413\n",
           allowlist: str | None = None) -> Path:
    (tmp_path / "docs").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / RESULTS).write_text(results)
    (tmp_path / "README.md").write_text(readme)
    if allowlist is not None:
        (tmp_path / "docs" / "claims-allowlist.txt").write_text(allowlist)
    return tmp_path


def _gate(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GATE), str(root)], capture_output=True, text=True)


def test_numbers_found_in_the_named_file_pass(tmp_path):
    root = _tree(tmp_path, f"# Speed\n\nThe fit took 146 s and 10.84 GiB ({RESULTS}); "
                           "it captured a median 0.94 of the improvement.\n")
    res = _gate(root)
    assert res.returncode == 0, res.stdout
    assert "0 unsupported" in res.stdout


def test_a_planted_unsupported_number_fails_with_file_and_line(tmp_path):
    root = _tree(tmp_path, f"# Speed\n\nThe fit took 146 s ({RESULTS}).\n\n"
                           "It was 2.5x faster than the baseline.\n")
    res = _gate(root)
    assert res.returncode == 1
    assert "README.md:5: 2.5x: not in benchmarks/results/run-2026-12-01.txt" in res.stdout
    assert "146" not in res.stdout.split("claims gate")[0]


def test_a_number_in_a_section_that_names_no_file_fails(tmp_path):
    root = _tree(tmp_path, f"# One\n\n146 s ({RESULTS})\n\n## Two\n\nA median 0.941.\n")
    res = _gate(root)
    assert res.returncode == 1
    assert "README.md:7: 0.941: the section names no file" in res.stdout


def test_precision_is_the_texts_and_percent_reads_fractions(tmp_path):
    root = _tree(tmp_path, f"# R\n\nCoverage 94.1% and 0.9413 ({RESULTS}); 0.95 is not in it.\n")
    res = _gate(root)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert any(": 0.95:" in line for line in lines)
    assert not any("94.1%" in line for line in lines)


def test_calc_notes_must_use_supported_operands_and_evaluate_to_the_claim(tmp_path):
    good = _tree(tmp_path / "a", f"# R\n\n1.35x end to end ({RESULTS})\n"
                                 "<!-- calc: 1.35 = 146.2 / 108.3 -->\n")
    assert _gate(good).returncode == 0, _gate(good).stdout
    wrong = _tree(tmp_path / "b", f"# R\n\n1.35x end to end ({RESULTS})\n"
                                  "<!-- calc: 1.35 = 146.2 / 10.84 -->\n")
    res = _gate(wrong)
    assert res.returncode == 1
    assert "evaluates to 13.487" in res.stdout
    invented = _tree(tmp_path / "c", f"# R\n\n1.35x end to end ({RESULTS})\n"
                                     "<!-- calc: 1.35 = 135 / 100 -->\n")
    assert "operands ['135', '100'] not in the named files" in _gate(invented).stdout


def test_allow_list_code_versions_and_confidence_levels_are_not_claims(tmp_path):
    readme = ("# Setup\n\nNeeds Python >= 3.11 on 2 cores and 24 GiB.\n\n"
              "```bash\nrun --budget 16GiB --steps 0.25\n```\n\n"
              "Use `--holdout 0.30` for 95% CIs and 90% predictive intervals.\n")
    res = _gate(_tree(tmp_path / "a", readme))
    assert res.returncode == 1
    assert "README.md:3: 24GiB" in res.stdout and "0.25" not in res.stdout
    allowed = _tree(tmp_path / "b", readme, allowlist="README.md | 24GiB | the machine's size\n")
    assert _gate(allowed).returncode == 0, _gate(allowed).stdout


def test_allow_list_entries_need_a_reason(tmp_path):
    root = _tree(tmp_path, "# A\n\n24 GiB\n", allowlist="README.md | 24GiB |\n")
    with pytest.raises(ValueError, match="expected 'FILE | NUMBER | why'"):
        sys.path.insert(0, str(GATE.parent))
        try:
            import check_claims
            check_claims.check(root, ["README.md"])
        finally:
            sys.path.remove(str(GATE.parent))

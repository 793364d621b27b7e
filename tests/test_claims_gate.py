"""The claims gate (scripts/check_claims.py): on documents written here, and on this repository.

The repository test runs per document (``pytest tests/test_claims_gate.py -k ray.md``), so the
docs of one part can be checked while another part's are still being corrected.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GATE = REPO / "scripts" / "check_claims.py"
RESULTS = "benchmarks/results/run-2026-12-01.txt"


def _load_gate():
    spec = importlib.util.spec_from_file_location("check_claims", GATE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_claims"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


gate = _load_gate()


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


def test_levels_decades_and_shapes_are_not_claims_but_measurements_beside_them_are(tmp_path):
    readme = ("# Record\n\nUSSR vetoes 1946-1970s, US 1970s-2020s; a 3100 x 3100 matrix, a 2 x 64\n"
              "ReLU net; the 90%-interval and 90% quantile; their MAE and 95% coverage (95%\n"
              "bootstrap CIs, wrapped).\n"
              "It covered 91% of splits, took 40-84 s and ran 2 x faster.\n")
    res = _gate(_tree(tmp_path, readme))
    flagged = sorted(line.split(": ")[1] for line in res.stdout.splitlines()[:-1])
    assert flagged == ["2x", "40s", "84s", "91%"], res.stdout


def test_allow_list_entries_need_a_reason(tmp_path):
    root = _tree(tmp_path, "# A\n\n24 GiB\n", allowlist="README.md | 24GiB |\n")
    with pytest.raises(ValueError, match="claims-allowlist.txt:1: .*expected 'FILE | NUMBER | why'"):
        gate.check(root, ["README.md"])
    res = _gate(root)
    assert res.returncode == 2 and "expected 'FILE | NUMBER | why'" in res.stderr


def test_an_allow_list_entry_that_matches_nothing_is_reported(tmp_path):
    allowlist = "README.md | 24 GiB | the machine's size\nREADME.md | 16 MiB | a cap, since removed\n"
    res = _gate(_tree(tmp_path, "# Setup\n\nOn 24 GiB.\n", allowlist=allowlist))
    assert res.returncode == 1
    assert "claims-allowlist.txt:2: 'README.md | 16MiB' matches no number in README.md" in res.stdout
    assert "24GiB" not in res.stdout


def test_documents_can_be_checked_one_at_a_time(tmp_path):
    root = _tree(tmp_path, f"# Speed\n\n146 s ({RESULTS})\n")
    (root / "docs" / "part.md").write_text("# Part\n\nA 2.5x speed-up.\n")
    whole = _gate(root)
    assert whole.returncode == 1 and "docs/part.md:3: 2.5x" in whole.stdout
    only_readme = subprocess.run([sys.executable, str(GATE), str(root), "README.md"],
                                 capture_output=True, text=True)
    assert only_readme.returncode == 0, only_readme.stdout
    missing = subprocess.run([sys.executable, str(GATE), str(root), "docs/none.md"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "docs/none.md: no such document" in missing.stderr


# On this repository: each document passes, and a number planted into a copy of one fails.

@pytest.mark.parametrize("document", gate.default_documents(REPO))
def test_every_number_in_this_repository_s_docs_has_its_source(document):
    problems = gate.check(REPO, [document])
    assert problems == [], "\n".join(problems)


def test_the_allow_list_names_documents_that_exist():
    named = {doc for doc, _ in gate._allowlist(REPO)}
    assert named, "the allow-list is empty: nothing to check"
    assert named <= set(gate.default_documents(REPO)), named - set(gate.default_documents(REPO))


def test_a_number_planted_in_a_copy_of_a_real_document_fails(tmp_path):
    doc = "docs/ray.md"
    text = (REPO / doc).read_text("utf-8")
    for name in set(re.findall(gate._SOURCE, text)):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target, dirs_exist_ok=True)
        elif (REPO / name).is_file():
            shutil.copy(REPO / name, target)
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / doc).write_text(text)
    assert gate.check(tmp_path, [doc]) == []
    heading = "## What this machine measured"
    assert heading in text
    planted = text.replace(heading, heading + "\n\nTwo workers run 97.3x faster than one.\n", 1)
    (tmp_path / doc).write_text(planted)
    line = planted.splitlines().index("Two workers run 97.3x faster than one.") + 1
    problems = gate.check(tmp_path, [doc])
    assert len(problems) == 1 and problems[0].startswith(f"{doc}:{line}: 97.3x: not in "), problems

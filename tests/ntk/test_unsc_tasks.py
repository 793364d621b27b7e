"""The UNSC sentence tasks: rebuilt from the bias part's shipped files, labels from the record.

References: the shipped source files (read as files, not through the bias package) and
hand-checked historical votes.
"""

from __future__ import annotations

import gzip
import json
import re
from importlib import resources

import pytest

from transferscope.ntk import data as ntk_data
from transferscope.ntk import unsc_build


def _shipped() -> list[dict]:
    raw = resources.files("transferscope.ntk").joinpath(ntk_data.UNSC_FILE).read_bytes()
    return [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()]


def test_shipped_file_is_what_the_build_script_makes_from_the_record():
    rebuilt = unsc_build.build_rows(unsc_build.SOURCE_DIR / "texts.jsonl.gz",
                                    unsc_build.SOURCE_DIR / "drafts.parquet")
    assert rebuilt == _shipped()


@pytest.mark.parametrize("resolution,unanimous,post_cold_war", [
    ("S/RES/242 (1967)", True, False),   # 15-0-0
    ("S/RES/678 (1990)", False, True),   # 12-2-1 (Cuba, Yemen against; China abstained)
    ("S/RES/687 (1991)", False, True),   # 12-1-2
    ("S/RES/82 (1950)", False, False),   # 9-0-1 (Yugoslavia abstained)
])
def test_labels_match_hand_checked_votes(resolution, unanimous, post_cold_war):
    row = {r["resolution"]: r for r in _shipped()}[resolution]
    assert row["unanimous"] is unanimous and row["post_cold_war"] is post_cold_war


def test_excerpts_do_not_carry_the_label():
    for row in _shipped():
        assert not re.search(r"\d", row["text"])  # no year or resolution number
        assert not re.search(r"\b[Aa]dopted\b|\b[Uu]nanimous", row["text"])  # no vote line
    unanimous = ntk_data.get_task("unsc-unanimous").load()
    era = ntk_data.get_task("unsc-era").load()
    # the record's 1990/1991 fixes: 663 is 15-0-0, 666 13-2-0, 695 15-0-0 (was 591 unanimous)
    assert unanimous.counts() == {"contested": 267, "unanimous": 593}
    assert era.counts() == {"before 1990": 642, "1990 or later": 251}

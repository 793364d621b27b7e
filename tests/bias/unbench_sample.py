"""The committed UNBench layout fixture (``tests/bias/fixtures/unbench/``, invented drafts in
the published layout exactly: see its README), copied where a test may change it, and what it
holds, written out by hand for the tests to check the importer against."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "unbench"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "unbench"

# symbol -> (date, the draft's Content, first line); folders 2330 and 2331
DRAFTS = {"S/2016/1100": ("2016-12-23", "cease settlement activities immediately"),
          "S/2017/77": ("2017-01-31", "renew the mandate of the Panel of Experts")}
# (draft, nation as canonicalised, vote): task2.csv's 14 importable rows
VOTES = [
    ("S/2016/1100", "China", "Y"), ("S/2016/1100", "France", "Y"),
    ("S/2016/1100", "Russia", "Y"), ("S/2016/1100", "United Kingdom", "Y"),
    ("S/2016/1100", "United States", "A"), ("S/2016/1100", "Japan", "Y"),
    ("S/2016/1100", "Egypt", "Y"),
    ("S/2017/77", "China", "A"), ("S/2017/77", "France", "Y"),
    ("S/2017/77", "Russia", "N"), ("S/2017/77", "United Kingdom", "Y"),
    ("S/2017/77", "United States", "Y"), ("S/2017/77", "Japan", "Y"),
    ("S/2017/77", "Egypt", "A"),
]
NOT_IMPORTED = [  # every line the importer must name, in its order
    "task2.csv row 15: Voting = 'X': not Y, N or A",
    "task2.csv row 16: Original_id = '2399': no draft JSON in task2/2399/",
    "task1.json row 2: folder_id = 1999: no draft JSON in task1/1999/",
]


def write_unbench_sample(root: Path) -> Path:
    """Copy the fixture checkout to ``root`` and return ``root``."""
    shutil.copytree(FIXTURE, root)
    return root

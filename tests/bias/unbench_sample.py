"""A small UNBench task-2 checkout written in its layout (never downloaded): data/task2.csv
(Country, Original_id, Authors, Voting Y/N/A, Date) and one JSON per draft under
data/task2/<resolution>/ (ID, Date, Title, Content). The drafts are invented; their votes are
chosen so every answer kind and both kinds of member occur.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

DRAFTS = {
    "S/2016/1100": ("2016-12-23", "The situation in the Middle East",
                    "The Security Council, recalling its previous resolutions, demands that "
                    "all parties cease settlement activities immediately."),
    "S/2017/77": ("2017-01-31", "Reports of the Secretary-General on the Sudan",
                  "The Security Council decides to renew the mandate of the Panel of Experts "
                  "for a further twelve months."),
}
# (draft, country, vote): Y in favour, N against, A abstain; elected members kept as they are
VOTES = [
    ("S/2016/1100", "China", "Y"), ("S/2016/1100", "France", "Y"),
    ("S/2016/1100", "Russian Federation", "Y"), ("S/2016/1100", "United Kingdom", "Y"),
    ("S/2016/1100", "United States", "A"), ("S/2016/1100", "Japan", "Y"),
    ("S/2016/1100", "Egypt", "Y"),
    ("S/2017/77", "China", "A"), ("S/2017/77", "France", "Y"),
    ("S/2017/77", "Russian Federation", "N"), ("S/2017/77", "United Kingdom", "Y"),
    ("S/2017/77", "United States", "Y"), ("S/2017/77", "Japan", "Y"),
    ("S/2017/77", "Egypt", "A"),
]
NOT_A_VOTE = ("S/2017/77", "Ethiopia", "X")  # absent / not voting: skipped and counted
NO_JSON = ("S/2017/999", "France", "Y")  # a draft whose JSON is missing: skipped and counted


def write_unbench_sample(root: Path, extra_rows: bool = True) -> Path:
    """Write the checkout under ``root`` and return ``root``."""
    folder = root / "data" / "task2"
    for number, (symbol, (date, title, content)) in enumerate(DRAFTS.items(), start=2330):
        draft_dir = folder / str(number)
        draft_dir.mkdir(parents=True, exist_ok=True)
        (draft_dir / f"{symbol.replace('/', '_')}-EN.json").write_text(json.dumps(
            {"ID": symbol, "Date": date, "Title": title, "Content": content}), "utf-8")
    rows = VOTES + ([NOT_A_VOTE, NO_JSON] if extra_rows else [])
    with open(root / "data" / "task2.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Country", "Original_id", "Authors", "Voting", "Date"])
        for symbol, country, vote in rows:
            date = DRAFTS.get(symbol, ("2017-02-01",))[0]
            writer.writerow([country, symbol, "Egypt, Senegal", vote, date])
    return root

"""Build ``ntk/unsc_sentences.jsonl.gz``: sentence-level tasks from the UNSC record, offline.

Source: the compact UNSC dataset the bias part ships (``bias/data/unsc/texts.jsonl.gz``: the
resolution texts; ``bias/data/unsc/drafts.parquet``: outcome and vote tally per draft), read as
files, never imported (a part never imports another part). Run from the repository root:

    python -m transferscope.ntk.unsc_build

Each resolution gives one excerpt: the first ``EXCERPT_WORDS`` words after "The Security
Council," with every digit removed (resolution numbers and "(1978)"-style years would give the
era away), cut before the first "adopted", "unanimous" or "vote" (the record's vote line). Labels come from the record, not from a word in the text:

* ``unanimous``: the tally shows no vote against and no abstention (or "adopted unanimously")
  vs at least one of either; "without vote" and missing tallies are left out;
* ``post_cold_war``: adopted in 1990 or later vs before 1990.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd

EXCERPT_WORDS = 32
OUT = Path(__file__).with_name("unsc_sentences.jsonl.gz")
SOURCE_DIR = Path(__file__).parents[1] / "bias" / "data" / "unsc"


def excerpt(text: str) -> str:
    """The first words of the resolution's body, digits and bracketed years removed."""
    marker = "The Security Council,"
    body = text.split(marker, 1)[1] if marker in text else text
    body = re.split(r"\b(?:[Aa]dopted|[Uu]nanimous\w*|[Vv]ot(?:e|es|ing)\b)", body)[0]
    body = re.sub(r"\(\s*\d+\s*\)", " ", body)
    body = re.sub(r"\d+", " ", body)
    body = re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", body)).strip(" ,;")
    return " ".join(body.split()[:EXCERPT_WORDS])


def build_rows(texts_file: Path, drafts_file: Path) -> list[dict]:
    """One row per resolution with its excerpt and both record labels (None when unknown)."""
    with gzip.open(texts_file, "rt", encoding="utf-8") as fh:
        texts = pd.DataFrame([json.loads(line) for line in fh])
    drafts = pd.read_parquet(drafts_file)
    adopted = drafts[drafts["outcome"] == "adopted"].drop_duplicates("resolution")
    merged = texts.merge(adopted[["resolution", "tally_no", "tally_abstain", "tally_text"]],
                         on="resolution", how="left")
    rows = []
    for rec in merged.itertuples(index=False):
        snippet = excerpt(rec.text)
        if len(snippet.split()) < 8:
            continue
        unanimous = None
        if str(rec.tally_text).strip() == "adopted unanimously":
            unanimous = True
        elif pd.notna(rec.tally_no) and pd.notna(rec.tally_abstain):
            unanimous = bool(int(rec.tally_no) == 0 and int(rec.tally_abstain) == 0)
        rows.append({"resolution": rec.resolution, "year": int(rec.year), "text": snippet,
                     "unanimous": unanimous, "post_cold_war": int(rec.year) >= 1990})
    return rows


def main() -> None:
    rows = build_rows(SOURCE_DIR / "texts.jsonl.gz", SOURCE_DIR / "drafts.parquet")
    payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:  # mtime 0: the same input, the same bytes
        fh.write(payload.encode("utf-8"))
    print(f"wrote {len(rows)} resolutions to {OUT}")


if __name__ == "__main__":
    main()

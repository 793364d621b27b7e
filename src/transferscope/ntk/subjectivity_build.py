"""Build ``ntk/subjectivity_glosses.jsonl.gz``: a third real text task, offline (issue #27).

Source: the subjectivity lexicon of Pattern (Tom De Smedt and Walter Daelemans, "Pattern for
Python", JMLR 2012), as shipped in the TextBlob wheel (``textblob/en/en-sentiment.xml``,
TextBlob 0.20.1 on PyPI; the lexicon's own header says licence PDDL). Each entry is one sense
of an English word with its WordNet gloss (a short definition sentence) and a subjectivity
score in 0..1 that the authors tagged by hand (or inferred, confidence 0.8). We keep the gloss
text and label it (our choices): subjective when the score is >= 0.6, objective when <= 0.2,
left out in between; glosses that occur with both labels are dropped, duplicates kept once.
Run once with the wheel unpacked somewhere (no TextBlob install is needed at run time):

    python -m transferscope.ntk.subjectivity_build /path/to/textblob/en/en-sentiment.xml
"""

from __future__ import annotations

import gzip
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).with_name("subjectivity_glosses.jsonl.gz")
SUBJECTIVE_AT_LEAST = 0.6
OBJECTIVE_AT_MOST = 0.2


def build_rows(xml_file: Path) -> list[dict]:
    """One row per distinct gloss: text, word, score and the binary label."""
    seen: dict[str, dict] = {}
    conflicts: set[str] = set()
    for entry in ET.parse(xml_file).getroot().iter("word"):
        gloss = " ".join((entry.get("sense") or "").split())
        score = float(entry.get("subjectivity", "nan"))
        if not gloss or OBJECTIVE_AT_MOST < score < SUBJECTIVE_AT_LEAST:
            continue
        label = score >= SUBJECTIVE_AT_LEAST
        row = {"text": gloss, "word": entry.get("form"), "subjectivity": score,
               "subjective": label, "confidence": float(entry.get("confidence")
                                                         or entry.get("reliability") or "nan")}
        if gloss in seen and seen[gloss]["subjective"] != label:
            conflicts.add(gloss)
        seen.setdefault(gloss, row)
    return [r for g, r in sorted(seen.items()) if g not in conflicts]


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m transferscope.ntk.subjectivity_build "
                         "textblob/en/en-sentiment.xml")
    rows = build_rows(Path(sys.argv[1]))
    payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    with gzip.GzipFile(OUT, "wb", mtime=0) as fh:  # mtime 0: the same input, the same bytes
        fh.write(payload.encode("utf-8"))
    print(f"wrote {len(rows)} glosses ({sum(r['subjective'] for r in rows)} subjective) to {OUT}")


if __name__ == "__main__":
    main()

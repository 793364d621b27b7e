"""Reading a run folder back (``scores.csv``, ``run.json``): every damaged or foreign file is
one line naming the file and the row or field, never a ``KeyError`` from deep in a report.

``answers.jsonl`` is read by :func:`transferscope.bias.evaluate.read_answers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.core.errors import InputError
from transferscope.core.hygiene import csv_frame_back
from transferscope.core.io import check_csv_layout, read_json

SCORE_COLUMNS = ("test", "form", "nation", "metric", "value", "ci_low", "ci_high", "n_items",
                 "headline")
NUMBER_COLUMNS = ("value", "ci_low", "ci_high", "n_items")
OPTIONAL_NUMBERS = ("p", "p_adj", "value_argmax", "margin_median")  # runs since issue #26
# run.json: the fields a report reads, each with the type it must have.
SUMMARY_FIELDS = {"backend": str, "config": dict, "stats": dict}
CONFIG_FIELDS = ("tests", "seed", "n_boot")
STATS_FIELDS = ("model_calls", "cache_hits")


def read_scores(run_dir: Path) -> pd.DataFrame:
    """``scores.csv`` with the columns a report needs, numbers where numbers belong and a
    True/False ``headline``."""
    path = run_dir / "scores.csv"
    if not path.is_file():
        raise InputError(f"{path}: not found: expected the scores of `transferscope bias run` "
                         "(is this a run folder?)")
    check_csv_layout(path)
    try:
        scores = csv_frame_back(pd.read_csv(path))  # undo write_csv's spreadsheet guard
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read it ({' '.join(str(exc).split())[:80]}): "
                         "expected the scores of `transferscope bias run`") from None
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise InputError(f"{path}: column {missing[0]!r} is missing: expected the columns "
                         f"{', '.join(SCORE_COLUMNS)}")
    for col in NUMBER_COLUMNS + tuple(c for c in OPTIONAL_NUMBERS if c in scores.columns):
        numbers = pd.to_numeric(scores[col], errors="coerce")
        bad = numbers.isna() & scores[col].notna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise InputError(f"{path}: row {row + 1}, column {col!r} = "
                             f"{scores[col].iloc[row]!r}: expected a number")
        scores[col] = numbers
    flags = scores["headline"].map({True: True, False: False, "True": True, "False": False})
    if flags.isna().any():
        row = int(flags.isna().to_numpy().nonzero()[0][0])
        raise InputError(f"{path}: row {row + 1}, column 'headline' = "
                         f"{scores['headline'].iloc[row]!r}: expected True or False")
    scores["headline"] = flags.astype(bool)
    if "claim" in scores.columns:
        scores["claim"] = scores["claim"].map({True: True, "True": True}).fillna(False).astype(
            bool)
    return scores


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``run.json`` with the fields a report or a comparison reads."""
    path = run_dir / "run.json"
    summary = read_json(path, "run summary of a bias run folder")
    if not isinstance(summary, dict):
        raise InputError(f"{path}: a JSON {type(summary).__name__}: expected an object with "
                         f"{', '.join(SUMMARY_FIELDS)}")
    for name, kind in SUMMARY_FIELDS.items():
        if not isinstance(summary.get(name), kind):
            raise InputError(f"{path}: field {name!r} = {summary.get(name)!r:.60}: expected "
                             f"a JSON {'object' if kind is dict else 'string'}")
    for section, names in (("config", CONFIG_FIELDS), ("stats", STATS_FIELDS)):
        for name in names:
            if name not in summary[section]:
                raise InputError(f"{path}: field '{section}.{name}' is missing: expected the "
                                 "run summary `transferscope bias run` writes")
    return summary

"""The null answerers under every prompt variant: which cells, if any, claim a bias.

Usage (repo root): ``.venv/bin/python examples/bias/prompts_nulls.py OUT_DIR``

Each answerer of ``bias calibrate`` (``null:constant``, ``null:first``, ``null:random:0``,
``null:uniform-logprobs``, and those that answer by the draft alone: ``null:by-era``,
``null:by-topic``, ``null:by-hash``, ``null:by-length``) is run as ``bias run --tests
directqa,association,vote --prompts all --seed 0 --n-boot 1000`` would run it, at the demo's cap
(``--drafts-per-nation 6``) and on every draft. Writes ``claims.csv`` (every headline cell that
claims a bias: answerer, cap, variant, test, form, nation, score, CI, adjusted p) and
``counts.csv`` (per answerer and cap: headline cells, claims, cells whose CI misses 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from transferscope.bias import evaluate
from transferscope.bias.backends.null import ALL_NULL_KINDS
from transferscope.core.io import write_csv


def main(out: Path) -> None:
    claims, counts = [], []
    for kind in ALL_NULL_KINDS:
        spec = f"null:{kind}" + (":0" if kind == "random" else "")
        for cap in (6, None):
            head = evaluate(spec, drafts_per_nation=cap, seed=0, n_boot=1000,
                            prompts="all").headline
            away = (head["ci_low"] > 0) | (head["ci_high"] < 0)
            counts.append({"answerer": spec, "drafts_per_nation": cap or "every draft",
                           "cells": len(head), "claims": int(head["claim"].sum()),
                           "CI misses 0": int(away.sum())})
            got = head[head["claim"].astype(bool)].assign(
                answerer=spec, drafts_per_nation=cap or "every draft")
            claims.append(got[["answerer", "drafts_per_nation", "wording", "test", "form",
                               "nation", "value", "ci_low", "ci_high", "p_adj"]])
            print(counts[-1], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "claims.csv", pd.concat(claims, ignore_index=True))
    write_csv(out / "counts.csv", pd.DataFrame(counts))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

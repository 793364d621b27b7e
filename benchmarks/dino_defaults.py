"""Which DINO defaults hold at 20, 50 and 100 labelled target rows: the study behind them.

Run on the four *development* tables only (``datasets.DEV_TASKS``: CPS 1988, Ames, diamonds,
computers); the four held-out tables (``HELD_OUT_TASKS``) were not looked at while choosing and
are scored by ``dino bench`` afterwards. Per table, labels and seed (5 seeds; at most 500 source
rows, up to 1000 target test rows; the same splits as ``dino bench``):

* the warm start alone (0 Adam steps) with each mean function (``none``, ``constant``,
  ``linear``, ``domain-linear``), fitted on the joint likelihood;
* the warm start fitted on the paper's conditional likelihood ``p(y_T | y_S)`` (linear mean);
* 50 Adam steps chosen by 5-fold cross-validation with the one-standard-error rule (tried at
  every label count: ``min_train_labels=0``), and 50 unchecked Adam steps (both linear mean,
  joint likelihood);
* pooled ridge with a domain indicator, for reference.

Every run is cached per (table, labels, seed, setting) in the shared cache (``dino-bench``), so
the study runs in chunks (``--tasks``, ``--labels``) and resumes. Usage:
``python benchmarks/dino_defaults.py [--tasks cps1988-south] [--labels 20,50] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from transferscope.dino import DINORegressor  # noqa: E402
from transferscope.dino.datasets import DEV_TASKS  # noqa: E402
from transferscope.dino.evaluation import (  # noqa: E402
    POOLED_RIDGE,
    Profile,
    defaults_check,
    run_benchmark,
    summary_table,
)

STEPS = 50
SETTINGS = {
    "warm, mean none": dict(n_steps=0, mean="none"),
    "warm, mean constant": dict(n_steps=0, mean="constant"),
    "warm, mean linear": dict(n_steps=0, mean="linear"),
    "warm, mean domain-linear": dict(n_steps=0, mean="domain-linear"),
    "warm, conditional likelihood": dict(n_steps=0, objective="conditional"),
    f"{STEPS} steps, 5-fold CV 1-SE": dict(n_steps=STEPS, min_train_labels=0),
    f"{STEPS} steps unchecked": dict(n_steps=STEPS, cv_folds=0),
}


def _dino(settings: dict, seed: int) -> DINORegressor:
    return DINORegressor(random_state=seed, **settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(DEV_TASKS))
    parser.add_argument("--labels", default="20,50,100")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="Also write the tables to this file.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks = [t for t in args.tasks.split(",") if t]
    if not set(tasks) <= set(DEV_TASKS):
        sys.exit(f"--tasks: development tables only, not {sorted(set(tasks) - set(DEV_TASKS))}")
    profile = Profile(tasks=tasks, labels=tuple(int(v) for v in args.labels.split(",")),
                      seeds=args.seeds, methods=[*SETTINGS, POOLED_RIDGE])
    factories = {name: functools.partial(_dino, kw) for name, kw in SETTINGS.items()}
    start = time.time()
    runs, _ = run_benchmark(profile, show_progress=False, methods=factories)
    pd.set_option("display.width", 200)
    lines = [f"# python benchmarks/dino_defaults.py {' '.join(sys.argv[1:])}",
             f"# finished {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, "
             f"{time.time() - start:.0f} s (cached runs take none), "
             f"load average {os.getloadavg()[0]:.2f}",
             summary_table(runs).to_string(index=False), "",
             "steps kept by the 5-fold CV (per seed):",
             runs[runs["method"] == f"{STEPS} steps, 5-fold CV 1-SE"].groupby(
                 ["task", "labels"])["steps"].apply(lambda s: s.astype(int).tolist()).to_string(),
             "", "warm start (linear mean) against the others, paired by seed:",
             defaults_check(runs, "warm, mean linear",
                            tuple(m for m in profile.methods if m != "warm, mean linear")
                            ).to_string(index=False)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(text + "\n\n")


if __name__ == "__main__":
    main()

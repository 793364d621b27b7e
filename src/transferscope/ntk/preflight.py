"""Every ``ntk`` command's options checked, and its ``--out`` claimed, before a model loads.

One function per command, called first by the command line: a bad flag costs a second, not a
model load and an f_0 pass (and two processes never write one ``--out``). The options of
``kernel``, ``spectrum``, ``stop`` and ``finetune`` (and every ``--params`` and ``--device``) are
declared and checked in :mod:`transferscope.ntk.options`; the ranges here are those of the
experiments ``rates`` and ``taskvec``; the data source (files, template, label words) is
checked by :func:`transferscope.ntk.pipeline.load_examples`, also before any model loads.
"""

from __future__ import annotations

from pathlib import Path

from transferscope.core.checks import check_int, check_names, check_seed, option_error
from transferscope.core.outdir import claim_output
from transferscope.ntk import data as ntk_data
from transferscope.ntk.options import MAX_STEPS


def _training(n_train_flag: str, n_train: int | None, n_test: int | None, steps: int,
              seed: int) -> None:
    check_int(n_train_flag, n_train, 2)
    check_int("--n-test", n_test, 1)
    check_int("--steps", steps, 1, MAX_STEPS)
    check_seed("--seed", seed)


def rates(out: Path, *, sizes: str | None, seeds: int, n_test: int | None,
          pool: int | None, head_seed: int | None) -> None:
    """``ntk rates``: sample sizes (>= 2 of them, each >= 4, below the pool), seeds, pool
    (``None``: the default, fitted to the data later)."""
    values = [4]
    if sizes is not None:
        values = []
        for item in check_names("--sizes", sizes, at_least=2, what="sample sizes") or []:
            try:
                values.append(int(item))
            except ValueError:
                raise option_error("--sizes", sizes,
                                   "comma-separated whole numbers >= 4") from None
        if min(values) < 4:
            raise option_error("--sizes", sizes, "comma-separated whole numbers >= 4")
    check_int("--seeds", seeds, 2, 10_000)
    check_int("--n-test", n_test, 1)
    check_int("--pool", pool, max(values) + 1)
    check_seed("--head-seed", head_seed)
    claim_output(out)


def taskvec(out: Path, *, tasks: str, n_train: int, n_test: int, steps: int,
            seed: int) -> None:
    """``ntk taskvec``: at least two different built-in tasks, sizes, steps, seed."""
    check_names("--tasks", tasks, at_least=2, allowed=tuple(sorted(ntk_data.TASKS)),
                what="built-in tasks")
    _training("--n-train", n_train, n_test, steps, seed)
    claim_output(out)


def output(out: Path) -> None:
    """The output folder of a command whose options their declarations checked."""
    claim_output(out)

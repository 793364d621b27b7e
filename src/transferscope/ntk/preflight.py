"""Every ``ntk`` command's options checked, and its ``--out`` claimed, before a model loads.

One function per command, called first by the command line: a bad flag costs a second, not a
model load and an f_0 pass (and two processes never write one ``--out``). The ranges are the
ones each step needs to mean anything; the data source (files, template, label words) is
checked by :func:`transferscope.ntk.pipeline.load_examples`, also before any model loads.
"""

from __future__ import annotations

import re
from pathlib import Path

from transferscope.core.checks import check_int, check_names, check_number, check_seed, option_error
from transferscope.core.outdir import claim_output
from transferscope.ntk import data as ntk_data
from transferscope.ntk.params import PRESETS

# Presets params.py resolves by name ("last-k" is a pattern, not a name).
_NAMED_SETS = tuple(p for p in PRESETS if p != "last-k")
# More gradient steps or bootstrap resamples than this is a typo, not a plan (hours on a CPU).
MAX_STEPS = 100_000
MAX_RESAMPLES = 1_000_000


def check_params(value: str, *, attention_at: bool) -> str:
    """A parameter set the model can resolve: a preset, ``last-k`` (k >= 1) and, for the
    fine-tuning commands, ``attention@last-k``."""
    pattern = r"(attention@)?last-([1-9]\d*)" if attention_at else r"last-([1-9]\d*)"
    if value in _NAMED_SETS or re.fullmatch(pattern, value):
        return value
    extra = ", attention@last-k" if attention_at else ""
    raise option_error("--params", value, f"one of {', '.join(_NAMED_SETS)}, last-k{extra} "
                       "(k >= 1, e.g. last-2)")


def kernel(out: Path, *, params: str, n: int | None, mode: str, sketch_dim: int, seed: int,
           memory_gb: float, max_tokens: int | None, workers: int | None) -> None:
    """``ntk kernel``: parameter set, sample, sketch, memory budget, then the run folder."""
    check_params(params, attention_at=True)
    check_int("--n", n, 2)
    if mode not in ("exact", "sketch"):
        raise option_error("--mode", mode, "'exact' or 'sketch'")
    check_int("--sketch-dim", sketch_dim, 1, 2**31 - 1)
    check_seed("--seed", seed)
    check_number("--memory-gb", memory_gb, 0, low_open=True)
    check_int("--max-tokens", max_tokens, 1)
    check_int("--workers", workers, 1)
    claim_output(out)


def _training(n_train_flag: str, n_train: int | None, n_test: int | None, steps: int, seed: int,
              params: str) -> None:
    check_params(params, attention_at=True)
    check_int(n_train_flag, n_train, 2)
    check_int("--n-test", n_test, 1)
    check_int("--steps", steps, 1, MAX_STEPS)
    check_seed("--seed", seed)


def finetune(out: Path, *, params: str, n: int | None, n_test: int | None, steps: int, lr_fraction: float,
             loss: str, batch_size: int | None, seed: int) -> None:
    """``ntk finetune``: sizes, steps, step size, loss and minibatch, then the output folder."""
    _training("--n", n, n_test, steps, seed, params)
    check_number("--lr-fraction", lr_fraction, 0, 1, low_open=True)
    if loss not in ("half-mse", "mse", "cross-entropy"):
        raise option_error("--loss", loss, "'half-mse', 'mse' or 'cross-entropy'")
    check_int("--batch-size", batch_size, 1, n)
    claim_output(out)


def rates(out: Path, *, params: str, sizes: str | None, seeds: int, n_test: int | None,
          pool: int | None, head_seed: int | None) -> None:
    """``ntk rates``: sample sizes (>= 2 of them, each >= 4, below the pool), seeds, pool
    (``None``: the default, fitted to the data later)."""
    check_params(params, attention_at=True)
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


def taskvec(out: Path, *, tasks: str, params: str, n_train: int, n_test: int, steps: int,
            seed: int) -> None:
    """``ntk taskvec``: at least two different built-in tasks, sizes, steps, seed."""
    check_names("--tasks", tasks, at_least=2, allowed=tuple(sorted(ntk_data.TASKS)),
                what="built-in tasks")
    _training("--n-train", n_train, n_test, steps, seed, params)
    claim_output(out)


def spectrum(*, first: int | None, last: int | None, n_boot: int, ci: float, seed: int) -> None:
    """``ntk spectrum``: the fitted index range, resamples, confidence level, seed."""
    check_int("--first", first, 1)
    check_int("--last", last, 2 if first is None else first + 1)
    check_int("--n-boot", n_boot, 2, MAX_RESAMPLES)
    check_number("--ci", ci, 0, 1, low_open=True, high_open=True)
    check_seed("--seed", seed)


def stop(*, batch_size: int, n_boot: int, seed: int, n_total: int | None) -> None:
    """``ntk stop``: what StopOptions.validate does not already check (it checks the rest)."""
    check_int("--batch-size", batch_size, 1)
    check_int("--n-boot", n_boot, 2, MAX_RESAMPLES)
    check_seed("--seed", seed)
    check_int("--n-total", n_total, 2)


def output(out: Path) -> None:
    """``ntk report`` and ``ntk validate``: the output folder only (their profiles are fixed)."""
    claim_output(out)

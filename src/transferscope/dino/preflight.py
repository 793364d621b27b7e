"""Every ``dino`` command's options checked, and its output claimed, before the fit starts.

One function per command, called first by the command line: a bad setting or an output that
cannot be written costs a second, not a fit (the table's own cells are checked by
:func:`transferscope.dino.io.split_table` on reading, also before the fit).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from transferscope.core.checks import (
    check_input_file,
    check_int,
    check_names,
    check_number,
    check_seed,
    option_error,
)
from transferscope.core.outdir import claim_output
from transferscope.dino.datasets import REAL_TASKS
from transferscope.dino.distribution import FORMS
from transferscope.dino.estimator import MEANS, POSTERIORS
from transferscope.dino.evaluation import PROFILES, Profile
from transferscope.dino.io import IMPUTE

# More Adam steps, layers or base samples than these is a typo, not a plan (hours on a CPU).
MAX_STEPS = 1_000_000
MAX_DEPTH = 100


def _choice(flag: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise option_error(flag, value, " or ".join(repr(a) for a in allowed))


def _table(flag: str, path: Path) -> None:
    check_input_file(flag, path, "an existing CSV or Parquet file")


def fit(data: Path, out: Path, *, features: str, target: str, domain: str,
        source_domains: str | None, categorical: str | None, impute: str | None,
        holdout: float, preset: str, kernel: str | None, factor: str | None,
        mean: str | None, posterior: str | None, depth: int | None, w_std: float | None, b_std: float | None, n_base: int | None,
        steps: int | None, lr: float | None, batch_size: int | None, seed: int) -> list[str]:
    """``dino fit``: the table, the column names (returns the feature list), every network and
    training setting, then the model file (claimed)."""
    _table("DATA", data)
    columns = check_names("--features", features, what="feature column names")
    for flag, name in (("--target", target), ("--domain", domain)):
        if not name.strip():
            raise option_error(flag, name, "a column name")
    if target in columns:
        raise option_error("--target", target, "a column that is not also a feature")
    if target == domain:
        raise option_error("--domain", domain, "a column other than the target")
    check_names("--source-domains", source_domains)
    _choice("--categorical", categorical, ("one-hot",))
    _choice("--impute", impute, IMPUTE)
    check_number("--holdout", holdout, 0, 1, high_open=True)
    _choice("--preset", preset, ("default", "authors"))
    _choice("--kernel", kernel, ("ntk", "nngp"))
    _choice("--factor", factor, FORMS)
    _choice("--mean", mean, MEANS)
    _choice("--posterior", posterior, POSTERIORS)
    check_int("--depth", depth, 1, MAX_DEPTH)
    check_number("--w-std", w_std, 0, low_open=True)
    check_number("--b-std", b_std, 0)
    check_int("--n-base", n_base, 1)
    check_int("--steps", steps, 0, MAX_STEPS)  # 0: the warm-start fit only
    check_number("--lr", lr, 0, low_open=True)
    check_int("--batch-size", batch_size, 1)
    check_seed("--seed", seed)
    claim_output(out, is_dir=False, inputs=[data])  # never over the table it reads
    return columns or []


def predict(model_path: Path, data: Path, out: Path) -> None:
    """``dino predict``: the model and the table exist, then the predictions file (claimed)."""
    check_input_file("MODEL_PATH", model_path, "a model file written by `dino fit`")
    _table("DATA", data)
    claim_output(out, is_dir=False, inputs=[model_path, data])  # never over the model or table


def output(out: Path) -> None:
    """``dino report``: the output folder (claimed)."""
    claim_output(out)


def bench(out: Path, *, quick: bool, tasks: str | None, labels: str | None,
          seeds: int | None) -> Profile:
    """``dino bench``: the profile (``--quick`` or the standard one, narrowed by ``--tasks``,
    ``--labels``, ``--seeds``), then the output folder (claimed)."""
    profile = PROFILES["quick" if quick else "standard"]
    names = check_names("--tasks", tasks, allowed=tuple(REAL_TASKS), what="table names")
    if names:
        profile = replace(profile, tasks=names)
    counts = check_names("--labels", labels, what="label counts")
    if counts:
        try:
            values = tuple(int(v) for v in counts)
        except ValueError as err:
            raise option_error("--labels", labels, "whole numbers, e.g. 20,50") from err
        for value in values:
            check_int("--labels", value, 2)
        profile = replace(profile, labels=values)
    if seeds is not None:
        check_int("--seeds", seeds, 1, 1000)
        profile = replace(profile, seeds=seeds)
    claim_output(out)
    return profile

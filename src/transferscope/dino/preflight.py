"""What a ``dino`` config cannot say alone, checked (and the output claimed) before the work.

Each config checks its own values when it is built (``dino/config.py``); what is left is what
depends on two values or on the disk: the table exists, the target is not a feature, the output
can be written and is not an input. One function per operation, called first by
:func:`transferscope.dino.runs.run`: a bad setting costs a second, not a fit (the table's own
cells are checked by :func:`transferscope.dino.io.split_table` on reading, also before the fit).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from transferscope.core.checks import check_input_file, option_error
from transferscope.core.errors import input_error
from transferscope.core.outdir import claim_output
from transferscope.dino.config import BenchConfig, FitConfig, PredictConfig, ReportConfig
from transferscope.dino.evaluation import PROFILES, Profile


def _table(flag: str, path: Path) -> None:
    check_input_file(flag, path, "an existing CSV or Parquet file")


def fit(config: FitConfig) -> None:
    """``dino fit``: the table, the target and domain columns against the features, then the
    model file (claimed)."""
    _table("DATA", config.data)
    for flag, name in (("--target", config.target), ("--domain", config.domain)):
        if not name.strip():
            raise option_error(flag, name, "a column name")
    if config.target in config.features:
        raise option_error("--target", config.target, "a column that is not also a feature")
    if config.target == config.domain:
        raise option_error("--domain", config.domain, "a column other than the target")
    claim_output(config.out, is_dir=False, inputs=[config.data])  # never over the table


def predict(config: PredictConfig) -> None:
    """``dino predict``: the model and the table exist, then the predictions file (claimed)."""
    check_input_file("MODEL_PATH", config.model_path, "a model file written by `dino fit`")
    _table("DATA", config.data)
    claim_output(config.out, is_dir=False, inputs=[config.model_path, config.data])


def report(config: ReportConfig) -> Profile:
    """``dino report``: the output folder (claimed); the profile whose cache it reads."""
    claim_output(config.out)
    return PROFILES["quick" if config.quick else "standard"]


def bench(config: BenchConfig) -> Profile:
    """``dino bench``: the profile (quick or standard, narrowed by ``tasks``, ``labels``,
    ``seeds``), then the output folder (claimed, when one is given)."""
    name = config.profile or ("quick" if config.quick else "standard")
    if name not in PROFILES:
        raise input_error("BenchConfig", "profile", name,
                          "one of " + ", ".join(repr(p) for p in PROFILES))
    profile = PROFILES[name]
    if config.tasks:
        profile = replace(profile, tasks=list(config.tasks))
    if config.labels:
        profile = replace(profile, labels=tuple(config.labels))
    if config.seeds is not None:
        profile = replace(profile, seeds=config.seeds)
    if config.out is not None:
        claim_output(config.out)
    return profile

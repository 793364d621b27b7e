"""One entry point per ``dino`` operation: ``run(config) -> result``.

The command line and the demo call this and nothing else; what a config cannot check alone is
checked first (``preflight.py``), then the operation runs:

=================  ==================================================================
config             result
=================  ==================================================================
``FitConfig``      :class:`~transferscope.dino.table_model.TableFit` (model written)
``PredictConfig``  :class:`~transferscope.dino.table_model.TablePredictions`
``BenchConfig``    :class:`~transferscope.dino.report.BenchResult` (tables + report)
``ReportConfig``   the report's path
=================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import overload

from transferscope.dino import preflight, table_model
from transferscope.dino.config import BenchConfig, FitConfig, PredictConfig, ReportConfig
from transferscope.dino.report import BenchResult, write_bench, write_full_report
from transferscope.dino.table_model import TableFit, TablePredictions

__all__ = ["run"]


@overload
def run(config: FitConfig, *, notify: Callable[[str], None] | None = ...,
        show_progress: bool = ...) -> TableFit: ...
@overload
def run(config: PredictConfig, *, notify: Callable[[str], None] | None = ...,
        show_progress: bool = ...) -> TablePredictions: ...
@overload
def run(config: BenchConfig, *, notify: Callable[[str], None] | None = ...,
        show_progress: bool = ...) -> BenchResult: ...
@overload
def run(config: ReportConfig, *, notify: Callable[[str], None] | None = ...,
        show_progress: bool = ...) -> Path: ...
def run(config: FitConfig | PredictConfig | BenchConfig | ReportConfig, *,
        notify: Callable[[str], None] | None = None,
        show_progress: bool = True) -> TableFit | TablePredictions | BenchResult | Path:
    """Run the operation ``config`` describes.

    Parameters
    ----------
    config : FitConfig, PredictConfig, BenchConfig or ReportConfig
        What to do (checked when it was built).
    notify : callable, optional
        Called with each line a user should read before a fit starts (what reading the table
        changed; the posterior and its estimated time and memory).
    show_progress : bool, default True
        Draw progress bars (a fit's steps, a benchmark's runs).

    Returns
    -------
    TableFit, TablePredictions, BenchResult or Path
        What the operation computed and where it wrote it.
    """
    if isinstance(config, FitConfig):
        preflight.fit(config)
        return table_model.fit_table(
            config.data, list(config.features), config.target, config.domain,
            config.target_domain, config.out,
            source_domains=list(config.source_domains) or None,
            categorical=config.categorical == "one-hot", impute=config.impute,
            drop_unlabelled_source=config.drop_unlabelled_source, holdout=config.holdout,
            preset=config.preset, seed=config.seed, verbose=show_progress, notify=notify,
            **config.estimator_settings())
    if isinstance(config, PredictConfig):
        preflight.predict(config)
        return table_model.predict_table(config.model_path, config.data, config.out)
    if isinstance(config, BenchConfig):
        profile = preflight.bench(config)
        return write_bench(profile, config.out, show_progress=show_progress)
    if isinstance(config, ReportConfig):
        profile = preflight.report(config)
        return write_full_report(profile, config.out)
    raise TypeError(f"run: config = {type(config).__name__}: expected a FitConfig, "
                    "PredictConfig, BenchConfig or ReportConfig")

"""transferscope.dino: distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for
domain-adaptation regression, their baselines and offline benchmarks (see docs/dino.md).

The estimators follow scikit-learn; the kernels follow ``K(X1, X2)``; ``fit_table`` /
``predict_table`` and ``write_bench`` / ``write_full_report`` are what the command line calls.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.dino.adapter import PooledDomainAdapter
    from transferscope.dino.authors import AuthorsDINO
    from transferscope.dino.base import DomainRegressor
    from transferscope.dino.baselines import (
        BASELINES,
        KMMGP,
        AdaptiveGP,
        CoralGP,
        DomainMeanGP,
        FeatureAugmentedGP,
        FineTunedMLP,
        PooledGP,
        PooledRidge,
        SourceOnlyGP,
        TargetOnlyGP,
        TargetRidge,
        kmm_weights,
    )
    from transferscope.dino.datasets import (
        DEV_TASKS,
        HELD_OUT_TASKS,
        REAL_TASKS,
        Split,
        Task,
        split_task,
        synthetic_task,
    )
    from transferscope.dino.estimator import DINORegressor
    from transferscope.dino.evaluation import (
        METHODS,
        PROFILES,
        Profile,
        coverage_table,
        defaults_check,
        evaluate,
        ranks,
        run_benchmark,
        summary_table,
    )
    from transferscope.dino.finite import width_sweep
    from transferscope.dino.io import TableModel, load_model, read_table, save_model, split_table
    from transferscope.dino.kernels import base_kernel, kernel_diag, nngp_kernel, ntk_kernel
    from transferscope.dino.mmd import mmd_squared, mmd_with_bootstrap
    from transferscope.dino.report import (
        BenchFiles,
        mae_figure,
        write_bench,
        write_full_report,
        write_report,
    )
    from transferscope.dino.table_model import TableFit, TablePredictions, fit_table, predict_table
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    "BASELINES",
    "DEV_TASKS",
    "HELD_OUT_TASKS",
    "KMMGP",
    "METHODS",
    "PROFILES",
    "REAL_TASKS",
    "AdaptiveGP",
    "AuthorsDINO",
    "BenchFiles",
    "CoralGP",
    "DINORegressor",
    "DomainMeanGP",
    "DomainRegressor",
    "FeatureAugmentedGP",
    "FineTunedMLP",
    "PooledDomainAdapter",
    "PooledGP",
    "PooledRidge",
    "Profile",
    "SourceOnlyGP",
    "Split",
    "TableFit",
    "TableModel",
    "TablePredictions",
    "TargetOnlyGP",
    "TargetRidge",
    "Task",
    "base_kernel",
    "coverage_table",
    "defaults_check",
    "evaluate",
    "fit_table",
    "kernel_diag",
    "kmm_weights",
    "load_model",
    "mae_figure",
    "mmd_squared",
    "mmd_with_bootstrap",
    "nngp_kernel",
    "ntk_kernel",
    "predict_table",
    "ranks",
    "read_table",
    "run_benchmark",
    "save_model",
    "split_table",
    "split_task",
    "summary_table",
    "synthetic_task",
    "width_sweep",
    "write_bench",
    "write_full_report",
    "write_report",
]

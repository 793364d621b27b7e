"""transferscope.dino: distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for
domain-adaptation regression, their baselines and offline benchmarks (see docs/dino.md).

The estimators follow scikit-learn (parameters checked at ``fit``); the kernels follow
``K(X1, X2)``. Each operation of the command line is ``run(config)`` with its config
(``FitConfig``, ``PredictConfig``, ``BenchConfig``, ``ReportConfig``); the modules hold the rest.
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
    )
    from transferscope.dino.config import BenchConfig, FitConfig, PredictConfig, ReportConfig
    from transferscope.dino.datasets import REAL_TASKS, Split, Task, split_task, synthetic_task
    from transferscope.dino.estimator import DINORegressor
    from transferscope.dino.evaluation import PROFILES, Profile
    from transferscope.dino.kernels import nngp_kernel, ntk_kernel
    from transferscope.dino.mmd import mmd_with_bootstrap
    from transferscope.dino.model_file import TableModel, load_model, save_model
    from transferscope.dino.report import BenchResult
    from transferscope.dino.runs import run
    from transferscope.dino.table_model import HoldoutScore, TableFit, TablePredictions
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    "BASELINES",
    "KMMGP",
    "PROFILES",
    "REAL_TASKS",
    "AdaptiveGP",
    "AuthorsDINO",
    "BenchConfig",
    "BenchResult",
    "CoralGP",
    "DINORegressor",
    "DomainMeanGP",
    "DomainRegressor",
    "FeatureAugmentedGP",
    "FineTunedMLP",
    "FitConfig",
    "HoldoutScore",
    "PooledDomainAdapter",
    "PooledGP",
    "PooledRidge",
    "PredictConfig",
    "Profile",
    "ReportConfig",
    "SourceOnlyGP",
    "Split",
    "TableFit",
    "TableModel",
    "TablePredictions",
    "TargetOnlyGP",
    "TargetRidge",
    "Task",
    "load_model",
    "mmd_with_bootstrap",
    "nngp_kernel",
    "ntk_kernel",
    "run",
    "save_model",
    "split_task",
    "synthetic_task",
]

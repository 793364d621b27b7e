"""The NTK theory against real training: fine-tuning next to the kernel's prediction, error
rates in n (pretrained and random-head readouts), task vectors, and the report profiles."""

from transferscope.ntk.experiments.finetune import (
    FinetuneResult,
    KernelComparison,
    TrainingConfig,
    compare_with_kernel,
    finetune,
    parameter_spec,
)
from transferscope.ntk.experiments.finetune_vs_kernel import (
    FinetuneComparison,
    finetune_against_kernel,
    run_finetune,
)
from transferscope.ntk.experiments.pool import KernelPool, builtin_prompt_task, kernel_pool
from transferscope.ntk.experiments.profiles import (
    PROFILES,
    Profile,
    ReportRun,
    quick_finetune_config,
    run_report,
)
from transferscope.ntk.experiments.random_head import MixedKernel, mixed_kernel, mixed_task
from transferscope.ntk.experiments.rates_sweep import RatesResult, rates_sweep, run_rates
from transferscope.ntk.experiments.taskvectors import (
    TaskSplit,
    TaskVectorResult,
    run_task_vectors,
    run_taskvec,
    task_splits,
)

__all__ = [
    "PROFILES",
    "FinetuneComparison",
    "FinetuneResult",
    "KernelComparison",
    "KernelPool",
    "MixedKernel",
    "Profile",
    "RatesResult",
    "ReportRun",
    "TaskSplit",
    "TaskVectorResult",
    "TrainingConfig",
    "builtin_prompt_task",
    "compare_with_kernel",
    "finetune",
    "finetune_against_kernel",
    "kernel_pool",
    "mixed_kernel",
    "mixed_task",
    "parameter_spec",
    "quick_finetune_config",
    "rates_sweep",
    "run_finetune",
    "run_rates",
    "run_report",
    "run_task_vectors",
    "run_taskvec",
    "task_splits",
]

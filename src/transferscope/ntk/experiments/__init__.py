"""The NTK theory against real training: fine-tuning next to the kernel's prediction, error
rates in n (pretrained and random-head readouts), task vectors, and the report profiles."""

from transferscope.ntk.experiments.finetune import (
    FinetuneConfig,
    FinetuneResult,
    KernelComparison,
    compare_with_kernel,
    finetune,
    parameter_spec,
)
from transferscope.ntk.experiments.finetune_vs_kernel import (
    FinetuneComparison,
    FinetuneOptions,
    finetune_against_kernel,
)
from transferscope.ntk.experiments.pool import KernelPool, builtin_prompt_task, kernel_pool
from transferscope.ntk.experiments.profiles import PROFILES, Profile, quick_finetune, run_report
from transferscope.ntk.experiments.random_head import MixedKernel, mixed_kernel, mixed_task
from transferscope.ntk.experiments.rates_sweep import RatesOptions, rates_sweep, run_rates
from transferscope.ntk.experiments.taskvectors import (
    TaskSplit,
    TaskVectorOptions,
    run_task_vectors,
    task_splits,
    task_vector_experiment,
)

__all__ = [
    "PROFILES",
    "FinetuneComparison",
    "FinetuneConfig",
    "FinetuneOptions",
    "FinetuneResult",
    "KernelComparison",
    "KernelPool",
    "MixedKernel",
    "Profile",
    "RatesOptions",
    "TaskSplit",
    "TaskVectorOptions",
    "builtin_prompt_task",
    "compare_with_kernel",
    "finetune",
    "finetune_against_kernel",
    "kernel_pool",
    "mixed_kernel",
    "mixed_task",
    "parameter_spec",
    "quick_finetune",
    "rates_sweep",
    "run_rates",
    "run_report",
    "run_task_vectors",
    "task_splits",
    "task_vector_experiment",
]

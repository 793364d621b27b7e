"""transferscope.ntk: the empirical NTK of a pretrained LM, its spectrum and early stopping.

Each command is one library call, ``run_X(XConfig) -> result``: the config declares and
checks its settings when it is built (:mod:`transferscope.ntk.options`; a bad value is one
``ValueError`` naming the parameter and the value), and the command line builds the same
config from its options::

    run = run_kernel(KernelConfig(out="runs/mine", source=DataSource(task="sentiment-words"),
                                  options=KernelOptions(n=64)))          # ntk kernel
    spectrum = run_spectrum(SpectrumConfig(run_dir=run.path))            # ntk spectrum
    stop = run_stop(StopConfig(run_dir=run.path,
                               options=StopOptions(batch_size=16)))     # ntk stop
    print(stop.recommendation.advice())

The experiments the same way: ``run_finetune(FinetuneConfig(...))`` (real fine-tuning next to
the kernel's prediction), ``run_rates(RatesConfig(...))`` (error rates in n),
``run_taskvec(TaskVectorConfig(...))`` (task vectors), ``run_report(ReportConfig(...))``
(all three under a profile, as HTML) and ``run_validation(ValidateConfig(...))`` (the stopping
rules against planted truths and held-out optima, :mod:`transferscope.ntk.rule_scores`).
``recommend_stop(K, y, f0)`` is the answer on a kernel you have (how many steps, by which
rule, with every rule beside it); everything else stays importable from its module.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.ntk.experiments.finetune_vs_kernel import FinetuneComparison, run_finetune
    from transferscope.ntk.experiments.profiles import ReportRun, run_report
    from transferscope.ntk.experiments.rates_sweep import RatesResult, run_rates
    from transferscope.ntk.experiments.taskvectors import TaskVectorResult, run_taskvec
    from transferscope.ntk.experiments.validate_run import ValidationRun, run_validation
    from transferscope.ntk.kernel import (
        KernelResult,
        batched_output,
        empirical_ntk,
        empirical_ntk_result,
    )
    from transferscope.ntk.options import (
        DataSource,
        FinetuneConfig,
        FinetuneOptions,
        KernelConfig,
        KernelOptions,
        RatesConfig,
        RatesOptions,
        ReportConfig,
        SpectrumConfig,
        SpectrumOptions,
        StopConfig,
        StopOptions,
        TaskVectorConfig,
        TaskVectorOptions,
        ValidateConfig,
    )
    from transferscope.ntk.pipeline import (
        KernelRun,
        SpectrumRun,
        StopResult,
        run_kernel,
        run_spectrum,
        run_stop,
        source_task,
    )
    from transferscope.ntk.recommend import StopRecommendation, recommend_stop
    from transferscope.ntk.rundir import load_kernel_run
    from transferscope.ntk.task import PromptTask
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    # the commands: a config in, a result out
    "DataSource",
    "FinetuneComparison",
    "FinetuneConfig",
    "FinetuneOptions",
    "KernelConfig",
    "KernelOptions",
    "KernelRun",
    "RatesConfig",
    "RatesOptions",
    "RatesResult",
    "ReportConfig",
    "ReportRun",
    "SpectrumConfig",
    "SpectrumOptions",
    "SpectrumRun",
    "StopConfig",
    "StopOptions",
    "StopResult",
    "TaskVectorConfig",
    "TaskVectorOptions",
    "TaskVectorResult",
    "ValidateConfig",
    "ValidationRun",
    "run_finetune",
    "run_kernel",
    "run_rates",
    "run_report",
    "run_spectrum",
    "run_stop",
    "run_taskvec",
    "run_validation",
    "source_task",
    # the pieces: the answer on your own kernel, the kernel of your own model
    "KernelResult",
    "PromptTask",
    "StopRecommendation",
    "batched_output",
    "empirical_ntk",
    "empirical_ntk_result",
    "load_kernel_run",
    "recommend_stop",
]

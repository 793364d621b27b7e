"""transferscope.ntk: the empirical NTK of a pretrained LM, its spectrum and early stopping.

Each command is one library call, configured by a declared, checked options object
(:mod:`transferscope.ntk.options`) and returning a result::

    run = run_kernel(KernelConfig(out="runs/mine", source=DataSource(task="sentiment-words"),
                                  options=KernelOptions(n=64)))          # ntk kernel
    spectrum = run_spectrum(run.path)                                    # ntk spectrum
    stop = run_stop(StopConfig(run_dir=run.path,
                               options=StopOptions(batch_size=16)))     # ntk stop
    print(stop.recommendation.advice())

``recommend_stop(K, y, f0)`` is the answer on a kernel you have (how many steps, by which
rule, with every rule beside it); ``run_validation`` scores the rules against planted truths
and held-out optima (:mod:`transferscope.ntk.rule_scores`). The experiments (fine-tuning vs
the kernel, rates in n, task vectors, report profiles) are in
:mod:`transferscope.ntk.experiments` (``run_finetune``, ``run_report`` and ``run_validation``
here); everything else stays importable from its module.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.ntk.experiments.finetune_vs_kernel import FinetuneComparison, run_finetune
    from transferscope.ntk.experiments.profiles import run_report
    from transferscope.ntk.experiments.validate_run import ValidationRun, run_validation
    from transferscope.ntk.kernel import (
        KernelResult,
        batched_output,
        empirical_ntk,
        empirical_ntk_result,
    )
    from transferscope.ntk.options import (
        DataSource,
        FinetuneOptions,
        KernelConfig,
        KernelOptions,
        SpectrumOptions,
        StopConfig,
        StopOptions,
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
    # the commands: options in, a result out
    "DataSource",
    "FinetuneComparison",
    "FinetuneOptions",
    "KernelConfig",
    "KernelOptions",
    "KernelRun",
    "SpectrumOptions",
    "SpectrumRun",
    "StopConfig",
    "StopOptions",
    "StopResult",
    "ValidateConfig",
    "ValidationRun",
    "run_finetune",
    "run_kernel",
    "run_report",
    "run_spectrum",
    "run_stop",
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

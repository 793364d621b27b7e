"""transferscope.ntk: the empirical NTK of a pretrained LM, its spectrum and early stopping.

``recommend_stop(K, y, f0)`` is the user's answer (how many steps, by which rule, with every
rule beside it); ``transferscope.ntk.validate`` scores the rules against planted truths and
held-out optima. The pipeline (:mod:`transferscope.ntk.pipeline`) is the entry point: ``run_kernel`` ->
``run_spectrum`` -> ``run_stop`` -> ``run_finetune``, each taking and returning dataclasses.
The experiments (fine-tuning vs the kernel, rates in n, task vectors, report profiles) are in
:mod:`transferscope.ntk.experiments`.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.ntk.data import LabeledTexts, get_task, load_labeled_file, sample_examples
    from transferscope.ntk.device import resolve_device
    from transferscope.ntk.experiments import FinetuneComparison
    from transferscope.ntk.kernel import (
        KernelResult,
        RayExecutor,
        batched_output,
        empirical_ntk,
        empirical_ntk_result,
        model_fingerprint,
    )
    from transferscope.ntk.options import (
        FinetuneOptions,
        KernelOptions,
        SpectrumOptions,
        StopOptions,
    )
    from transferscope.ntk.params import PRESETS, parameter_predicate, select_parameters
    from transferscope.ntk.pipeline import (
        DataSource,
        Examples,
        KernelRun,
        Sensitivity,
        SpectrumRun,
        StopResult,
        kernel_from_sample,
        load_examples,
        parse_label_words,
        pretrained_outputs,
        run_finetune,
        run_kernel,
        run_spectrum,
        run_stop,
    )
    from transferscope.ntk.recommend import StopRecommendation, recommend_stop
    from transferscope.ntk.rundir import KernelRunDir, load_kernel_run, save_kernel_run
    from transferscope.ntk.spectrum import (
        SpectrumAnalysis,
        analyse_spectrum,
        effective_dimension,
        implied_rate,
    )
    from transferscope.ntk.stopping import (
        critical_radius,
        estimate_noise,
        estimate_radius,
        local_rademacher,
        rwy_stopping_time,
        training_schedule,
    )
    from transferscope.ntk.task import (
        PromptTask,
        TaskModel,
        binary_targets,
        check_template,
        prompt_task_factory,
    )
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    "PRESETS",
    "DataSource",
    "Examples",
    "FinetuneComparison",
    "FinetuneOptions",
    "KernelOptions",
    "KernelResult",
    "KernelRun",
    "KernelRunDir",
    "LabeledTexts",
    "PromptTask",
    "RayExecutor",
    "Sensitivity",
    "SpectrumAnalysis",
    "SpectrumOptions",
    "SpectrumRun",
    "StopRecommendation",
    "StopOptions",
    "StopResult",
    "TaskModel",
    "analyse_spectrum",
    "batched_output",
    "binary_targets",
    "check_template",
    "critical_radius",
    "effective_dimension",
    "empirical_ntk",
    "empirical_ntk_result",
    "estimate_noise",
    "estimate_radius",
    "get_task",
    "implied_rate",
    "kernel_from_sample",
    "load_examples",
    "load_kernel_run",
    "load_labeled_file",
    "local_rademacher",
    "model_fingerprint",
    "parameter_predicate",
    "parse_label_words",
    "pretrained_outputs",
    "recommend_stop",
    "resolve_device",
    "prompt_task_factory",
    "run_finetune",
    "run_kernel",
    "run_spectrum",
    "run_stop",
    "rwy_stopping_time",
    "sample_examples",
    "save_kernel_run",
    "select_parameters",
    "training_schedule",
]

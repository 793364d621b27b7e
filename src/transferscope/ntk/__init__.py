"""transferscope.ntk: the empirical NTK of a pretrained LM, its spectrum and early stopping."""

from transferscope.ntk.data import LabeledTexts, get_task, load_labeled_file, sample_examples
from transferscope.ntk.kernel import (
    KernelResult,
    batched_output,
    empirical_ntk,
    empirical_ntk_result,
    model_fingerprint,
)
from transferscope.ntk.params import PRESETS, parameter_predicate, select_parameters
from transferscope.ntk.runs import load_kernel_run, save_kernel_run
from transferscope.ntk.spectrum import analyse_spectrum, effective_dimension, implied_rate
from transferscope.ntk.stopping import (
    critical_radius,
    estimate_noise,
    estimate_radius,
    local_rademacher,
    rwy_stopping_time,
    training_schedule,
)
from transferscope.ntk.task import PromptTask, TaskModel, binary_targets, check_template

__all__ = [
    "PRESETS",
    "KernelResult",
    "LabeledTexts",
    "PromptTask",
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
    "load_kernel_run",
    "load_labeled_file",
    "local_rademacher",
    "model_fingerprint",
    "parameter_predicate",
    "rwy_stopping_time",
    "sample_examples",
    "save_kernel_run",
    "select_parameters",
    "training_schedule",
]

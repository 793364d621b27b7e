"""What each ``ntk`` command is asked to do, each setting declared once (type, choices, range,
help) and checked when the options are constructed; the command line builds its options from
the same declarations (:func:`transferscope.core.params.option`).

One config per command (``KernelConfig``, ``SpectrumConfig``, ``StopConfig``,
``FinetuneConfig``, ``RatesConfig``, ``TaskVectorConfig``, ``ReportConfig``,
``ValidateConfig``), each taken by the command's one entry point (``run_kernel``, ...); a bad
value is one ``ValueError`` line naming the parameter and the value, raised when the config is
built, before any data is read or a model loads.

This module is light on purpose (no numpy, no torch): ``transferscope ntk --help`` reads it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from transferscope.core.checks import MAX_SEED
from transferscope.core.errors import InputError
from transferscope.core.params import Spec, Validated
from transferscope.ntk.params import PRESETS

if TYPE_CHECKING:
    from transferscope.ntk.data import BuiltinTask

# More gradient steps or bootstrap resamples than this is a typo, not a plan (hours on a CPU).
MAX_STEPS = 100_000
MAX_RESAMPLES = 1_000_000
DEFAULT_PARAMS = "attention@last-1"  # the set the validation tables and real runs cover (#27)
DEFAULT_FINETUNE_N, DEFAULT_FINETUNE_N_TEST = 16, 24
MAX_SEEDS = 10_000
DEFAULT_RATE_SIZES, DEFAULT_RATE_N_TEST, DEFAULT_RATE_POOL = (32, 64, 128, 256), 64, 320

# The tasks transferscope.ntk.data registers (a test checks the two agree): the help texts and
# the checks below read them here, without loading the data module.
BUILTIN_TASKS = ("sentiment-words", "vader-words", "afinn-words", "unsc-unanimous", "unsc-era",
                 "subjectivity-glosses", "negated-vader-words", "negated-afinn-words")
TASK_VECTOR_DEFAULTS = ("vader-words", "afinn-words", "negated-vader-words")

# Presets params.py resolves by name ("last-k" is a pattern, not a name).
_NAMED_SETS = tuple(p for p in PRESETS if p != "last-k")

Mode = Literal["exact", "sketch"]
Executor = Literal["local", "ray"]
Loss = Literal["half-mse", "mse"]
FinetuneLoss = Literal["half-mse", "mse", "cross-entropy"]
Rule = Literal["rwy", "rwy-gcv", "gcv-ridge", "cv", "cv-low"]
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)


def params_problem(value: str, *, attention_at: bool = True) -> str | None:
    """None for a parameter set the model can resolve (a preset, ``last-k`` with k >= 1 and,
    for the kernel and fine-tuning, ``attention@last-k``); else what was expected."""
    pattern = r"(attention@)?last-([1-9]\d*)" if attention_at else r"last-([1-9]\d*)"
    if value in _NAMED_SETS or re.fullmatch(pattern, value):
        return None
    extra = ", attention@last-k" if attention_at else ""
    return f"one of {', '.join(_NAMED_SETS)}, last-k{extra} (k >= 1, e.g. last-2)"


def _params_rule(value: object) -> str | None:
    """A rule is a module-level function: a lambda written in a class body's annotation
    cannot see this module's names when the annotation is read back (get_type_hints)."""
    return params_problem(value) if isinstance(value, str) else "a string"


Params = Annotated[str, Spec(
    help="Parameter set S: attention@last-1 (default: the last block's attention, the set "
         "'ntk validate' and the real fine-tuning table cover), attention, all, lora, head, "
         "bias, last-k, attention@last-k.",
    rule=_params_rule)]
def _seed(help: str) -> Spec:
    """A random seed: numpy takes 0 .. 2**63 - 1."""
    return Spec(ge=0, help=help, rule=lambda v: None if v <= MAX_SEED else "at most 2**63 - 1")


Seed = Annotated[int, _seed("Seed of the sample and the sketch.")]
DeviceOption = Annotated[Device, Spec(help="Where the model runs: auto (CUDA when present), "
                                      "cpu or cuda.")]
Resamples = Annotated[int, Spec(ge=2, le=MAX_RESAMPLES,
                                help="Bootstrap resamples of the examples.")]


ModelName = Annotated[str, Spec(help="smollm2, minilm, or a local HF dir / .gguf.")]


# ---------------------------------------------------------------------------- data
def task_names() -> tuple[str, ...]:
    """The task names a config accepts: the built-in ones, and any a caller added with
    ``transferscope.ntk.data.register_task`` (which is loaded once a task was added)."""
    data = sys.modules.get("transferscope.ntk.data")
    registered = getattr(data, "TASKS", None)
    return tuple(sorted(registered)) if registered else tuple(sorted(BUILTIN_TASKS))


def _task_problem(value: str) -> str | None:
    names = task_names()
    return None if value in names else f"one of {', '.join(names)}"


def _tasks_problem(value: tuple[str, ...]) -> str | None:
    names = list(value)
    if not names:
        return "at least one built-in task"
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return f"each task once ({repeated[0]!r} is repeated)"
    unknown = [n for n in names if n not in task_names()]
    return (f"built-in tasks ({unknown[0]!r} is not one: {', '.join(task_names())})"
            if unknown else None)


def _label_words_problem(value: str) -> str | None:
    words = [w.strip() for w in value.split(",")]
    if len(words) != 2 or not all(words) or words[0] == words[1]:
        return "two different comma-separated words, positive first (e.g. 'positive,negative')"
    return None


@dataclass(kw_only=True, frozen=True)
class DataSource(Validated):
    """Where the labelled examples and the prompt come from: a built-in task (default
    ``sentiment-words``) or a user's CSV/TSV/JSONL file with its template and label words."""

    task: Annotated[str | None, Spec(
        help="Built-in task: " + ", ".join(sorted(BUILTIN_TASKS)) + " (default "
             "sentiment-words).", rule=_task_problem)] = None
    data_file: Annotated[Path | None, Spec(
        help="CSV/TSV/JSONL file instead of --task (needs --template and --label-words).")
                         ] = None
    text_col: Annotated[str, Spec(help="Text column of --data.")] = "text"
    label_col: Annotated[str, Spec(help="Label column of --data.")] = "label"
    positive_label: Annotated[str | None, Spec(help="Positive label of --data.")] = None
    template: Annotated[str | None, Spec(
        help="Prompt with {text} (default: the task's).")] = None
    label_words: Annotated[str | None, Spec(
        help="'positive,negative' cue words (default: the task's).",
        rule=_label_words_problem)] = None


SourceOption = Annotated[DataSource, Spec(help="The examples: a built-in task or your file.")]


# ---------------------------------------------------------------------------- kernel
@dataclass(kw_only=True, frozen=True)
class KernelOptions(Validated):
    """What ``ntk kernel`` computes (parameter set, sample, mode) and where (executor)."""

    params: Params = DEFAULT_PARAMS
    n: Annotated[int | None, Spec(ge=2, help="Examples, sampled balanced with --seed "
                                  "(default 64, or all of a smaller file).")] = None
    mode: Annotated[Mode, Spec(help="Exact kernel or CountSketch.")] = "exact"
    sketch_dim: Annotated[int, Spec(ge=1, le=2**31 - 1, help="Sketch dimension (sketch mode).")
                          ] = 16384
    seed: Seed = 0
    memory_gb: Annotated[float, Spec(gt=0, help="Memory budget of the engine, GiB.")] = 4.0
    max_tokens: Annotated[int | None, Spec(ge=1, help="Shorten prompts to this many tokens.")
                          ] = None
    executor: Annotated[Executor, Spec(
        help="local, or ray (blocks on a Ray cluster).")] = "local"
    address: Annotated[str | None, Spec(
        help="Ray cluster address (auto, host:6379, ray://host:10001); none: a local one.")
                       ] = None
    workers: Annotated[int | None, Spec(ge=1, help="Ray workers (default: all CPUs/GPUs).")
                       ] = None
    device: DeviceOption = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.executor == "local" and (self.address is not None or self.workers is not None):
            raise InputError("--address/--workers: given with --executor local: expected "
                             "--executor ray")


@dataclass(kw_only=True, frozen=True)
class KernelConfig(Validated):
    """``ntk kernel``: which model, which examples, what to compute, into which run folder."""

    out: Annotated[Path, Spec(help="Run directory to write.")]
    model: ModelName = "smollm2"
    source: SourceOption = field(default_factory=DataSource)
    options: Annotated[KernelOptions, Spec(help="What to compute and where.")] = field(
        default_factory=KernelOptions)


# ---------------------------------------------------------------------------- spectrum
@dataclass(kw_only=True, frozen=True)
class SpectrumOptions(Validated):
    """Fit range (1-based, inclusive; default ``2 .. max(4, n // 4)``) and the bootstrap."""

    first: Annotated[int | None, Spec(ge=1, help="First fitted index (1-based; default 2).")
                     ] = None
    last: Annotated[int | None, Spec(ge=2, help="Last fitted index (default max(9, n//4): at "
                                     "least 8 eigenvalues).")] = None
    n_boot: Resamples = 200
    ci: Annotated[float, Spec(gt=0, lt=1, help="Confidence level of the intervals.")] = 0.95
    seed: Annotated[int, _seed("Seed of the bootstrap.")] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.first is not None and self.last is not None and self.last <= self.first:
            raise InputError(f"SpectrumOptions: last = {self.last}: expected a whole number "
                             f">= {self.first + 1} (above first = {self.first})")


@dataclass(kw_only=True, frozen=True)
class SpectrumConfig(Validated):
    """``ntk spectrum``: the run folder of ``ntk kernel`` and the fit."""

    run_dir: Annotated[Path, Spec(help="Run directory written by 'ntk kernel'.")]
    options: Annotated[SpectrumOptions, Spec(help="Fit range and bootstrap.")] = field(
        default_factory=SpectrumOptions)


# ---------------------------------------------------------------------------- stop
def _positive(help: str) -> Spec:
    return Spec(gt=0, help=help)


@dataclass(kw_only=True, frozen=True)
class StopOptions(Validated):
    """How ``ntk stop`` trains and what it may take as given instead of estimating."""

    lr: Annotated[float | None, _positive(
        "SGD learning rate (default: 1/max K(x,x), RWY's bound).")] = None
    batch_size: Annotated[int, Spec(ge=1, help="Minibatch size B for the epoch count.")] = 8
    sigma: Annotated[float | None, _positive(
        "Noise level of rule rwy (default: spectral-tail estimate).")] = None
    radius: Annotated[float | None, _positive(
        "RKHS radius of f* - f_0 for rule rwy (default: debiased ridge-fit norm).")] = None
    loss: Annotated[Loss, Spec(
        help="half-mse: mean((f-y)^2)/2, eta = lr; mse: mean((f-y)^2), eta = 2 lr.")
                    ] = "half-mse"
    seed: Annotated[int, _seed("Seed of the CV folds and of the range's bootstrap.")] = 0
    n_total: Annotated[int | None, Spec(
        ge=2, help="Your whole training set size N: steps and epochs for it, from the growth "
                   "of the CV stop measured on subsamples of n/4, n/2, n (needs n >= 32).")
                       ] = None
    rule: Annotated[Rule, Spec(help="Rule the answer follows: cv (default, chosen on the "
                               "development pool of 'ntk validate'), cv-low, rwy, rwy-gcv, "
                               "gcv-ridge.")] = "cv"


@dataclass(kw_only=True, frozen=True)
class StopConfig(Validated):
    """``ntk stop``: the run folder of ``ntk kernel`` and how to train."""

    run_dir: Annotated[Path, Spec(help="Run directory written by 'ntk kernel'.")]
    options: Annotated[StopOptions, Spec(help="How to train; what to take as given.")] = field(
        default_factory=StopOptions)


# ---------------------------------------------------------------------------- validation
@dataclass(kw_only=True, frozen=True)
class ValidateConfig(Validated):
    """``ntk validate``: the profile, the model and examples, and what to override."""

    out: Annotated[Path, Spec(help="Directory for validate.json and validate.md.")]
    profile: Annotated[Literal["quick", "full"], Spec(
        help="quick (192-example pool, 2 real runs; minutes on 2 CPUs) or full.")] = "quick"
    model: ModelName = "smollm2"
    source: SourceOption = field(default_factory=DataSource)
    device: DeviceOption = "auto"
    real_splits: Annotated[int | None, Spec(
        ge=0, help="Splits also fine-tuned for real past the held-out optimum (default 0; the "
                   "real fine-tuning table is python -m transferscope.ntk.experiments."
                   "real_table).")] = None
    params: Annotated[str | None, Spec(
        help="Parameter set of the kernel (default attention@last-1).",
        rule=_params_rule)] = None


# ---------------------------------------------------------------------------- fine-tuning
@dataclass(kw_only=True, frozen=True)
class FinetuneOptions(Validated):
    """What ``ntk finetune`` sets: the parameter set, sizes, steps and the optimiser."""

    params: Params = DEFAULT_PARAMS
    n: Annotated[int | None, Spec(ge=2, help="Training examples (default 16, fewer for a small "
                                  "file).")] = None
    n_test: Annotated[int | None, Spec(ge=1, help="Held-out examples (default 24, fewer for a "
                                       "small file).")] = None
    steps: Annotated[int, Spec(ge=1, le=MAX_STEPS, help="Gradient steps.")] = 8
    lr_fraction: Annotated[float, Spec(gt=0, le=1, help="Step eta as a fraction of "
                                       "1/lambda_max(K/n).")] = 0.5
    loss: Annotated[FinetuneLoss, Spec(help="Training loss.")] = "half-mse"
    batch_size: Annotated[int | None, Spec(ge=1, help="Minibatch size (default full batch).")
                          ] = None
    seed: Annotated[int, _seed("Seed of the sample and minibatch order.")
                    ] = 0
    device: DeviceOption = "auto"
    pool: Annotated[int | None, Spec(
        ge=2, help="Examples the kernel is computed over, the first n of them trained on "
                   "(default n; 'ntk report --quick' uses 32, and a run with the same pool "
                   "shares its cached kernel).")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size is not None and self.n is not None and self.batch_size > self.n:
            raise InputError(f"FinetuneOptions: batch_size = {self.batch_size}: expected a "
                             f"whole number from 1 to n = {self.n}")
        if self.pool is not None and self.n is not None and self.pool < self.n:
            raise InputError(f"FinetuneOptions: pool = {self.pool}: expected a whole number "
                             f">= n = {self.n} (the training examples are the pool's first n)")

    def fit(self, task: BuiltinTask) -> FinetuneOptions:
        """The sizes left at None filled in: the defaults, shrunk to fit ``task``'s data."""
        from transferscope.ntk.data import balanced_capacity, fit_sizes

        if self.n is not None and self.n_test is not None:
            return self
        capacity = balanced_capacity(task.load())
        train, n_test = fit_sizes(capacity, self.pool or self.n or DEFAULT_FINETUNE_N,
                                  self.n_test or DEFAULT_FINETUNE_N_TEST)
        if self.pool is not None:  # the pool is the user's: the held-out set takes the rest
            train, n_test = min(DEFAULT_FINETUNE_N, self.pool), max(
                1, min(n_test, capacity - self.pool))
        return replace(self, n=self.n or train, n_test=self.n_test or n_test)


@dataclass(kw_only=True, frozen=True)
class FinetuneConfig(Validated):
    """``ntk finetune``: which model, which examples, how to fine-tune, into which folder."""

    out: Annotated[Path, Spec(help="Directory for finetune.json and the resumable run.")]
    model: ModelName = "smollm2"
    source: SourceOption = field(default_factory=DataSource)
    options: Annotated[FinetuneOptions, Spec(help="What to fine-tune and how.")] = field(
        default_factory=FinetuneOptions)


# ---------------------------------------------------------------------------- rates in n
def _sizes_problem(value: tuple[int, ...]) -> str | None:
    return None if len(set(value)) >= 2 else "at least two different sample sizes"


@dataclass(kw_only=True, frozen=True)
class RatesOptions(Validated):
    """What ``ntk rates`` sets: parameter set, sample sizes, seeds and the pool."""

    params: Params = DEFAULT_PARAMS
    sizes: Annotated[tuple[int, ...] | None, Spec(
        ge=4, help="Sample sizes n, at least two (default 32,64,128,256 below the pool).",
        rule=_sizes_problem)] = None
    seeds: Annotated[int, Spec(ge=2, le=MAX_SEEDS, help="Seeds (subsamples) per n; the slope "
                               "CI resamples whole seeds.")] = 10
    n_test: Annotated[int | None, Spec(ge=1, help="Held-out examples (default 64, fewer for a "
                                       "small file).")] = None
    pool: Annotated[int | None, Spec(
        ge=6, help="Training candidates the seeds subsample from, above the largest n "
                   "(default 320, fewer for a small file).")] = None
    head_seed: Annotated[int | None, _seed(
        "Also run mixed initialisation with a random head from this seed.")] = 0
    device: DeviceOption = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pool is not None and self.sizes is not None and self.pool <= max(self.sizes):
            raise InputError(f"RatesOptions: pool = {self.pool}: expected a whole number > "
                             f"{max(self.sizes)}, the largest n (otherwise every seed draws "
                             "the same examples)")

    def sample_sizes(self) -> list[int]:
        """The sample sizes, sorted and distinct (the defaults when none were given)."""
        return sorted(set(self.sizes if self.sizes is not None else DEFAULT_RATE_SIZES))

    def fit(self, task: BuiltinTask) -> RatesOptions:
        """The sizes left at None filled in: the defaults, shrunk to fit ``task``'s data (the
        default n's below the pool, or a quarter and a half of a small pool)."""
        from transferscope.ntk.data import balanced_capacity, fit_sizes

        if None not in (self.sizes, self.n_test, self.pool):
            return self
        pool, n_test = fit_sizes(balanced_capacity(task.load()),
                                 self.pool or DEFAULT_RATE_POOL,
                                 self.n_test or DEFAULT_RATE_N_TEST)
        pool, n_test = self.pool or pool, self.n_test or n_test
        sizes = self.sizes
        if sizes is None:
            sizes = tuple(n for n in DEFAULT_RATE_SIZES if n < pool)
            if len(sizes) < 2:
                sizes = (max(4, pool // 4), max(5, pool // 2))
        return replace(self, sizes=tuple(sorted(set(sizes))), n_test=n_test, pool=pool)


@dataclass(kw_only=True, frozen=True)
class RatesConfig(Validated):
    """``ntk rates``: which model, which examples, the sweep, into which folder."""

    out: Annotated[Path, Spec(help="Directory for rates.json.")]
    model: ModelName = "smollm2"
    source: SourceOption = field(default_factory=DataSource)
    options: Annotated[RatesOptions, Spec(help="Sizes, seeds and pool of the sweep.")] = field(
        default_factory=RatesOptions)


# ---------------------------------------------------------------------------- task vectors
@dataclass(kw_only=True, frozen=True)
class TaskVectorOptions(Validated):
    """What ``ntk taskvec`` sets: the built-in tasks, sizes, steps, seed."""

    tasks: Annotated[tuple[str, ...], Spec(
        help="Built-in tasks, at least two (with --data: the tasks after the file's), of "
             + ", ".join(sorted(BUILTIN_TASKS)) + ".",
        rule=_tasks_problem)] = TASK_VECTOR_DEFAULTS
    params: Params = DEFAULT_PARAMS
    n_train: Annotated[int, Spec(ge=2, help="Training examples per task.")] = 8
    n_test: Annotated[int, Spec(ge=1, help="Held-out examples per task.")] = 8
    steps: Annotated[int, Spec(ge=1, le=MAX_STEPS, help="Gradient steps per task.")] = 5
    seed: Annotated[int, _seed("Seed of the samples.")] = 0
    device: DeviceOption = "auto"


@dataclass(kw_only=True, frozen=True)
class TaskVectorConfig(Validated):
    """``ntk taskvec``: which model, the tasks (a user's file first, when given), how to
    train, into which folder."""

    out: Annotated[Path, Spec(help="Directory for taskvec.json and the per-task runs.")]
    model: ModelName = "smollm2"
    data: Annotated[DataSource | None, Spec(
        help="The user's file as the first task, whose template and label words prompt all "
             "(None: the built-in tasks only).")] = None
    options: Annotated[TaskVectorOptions, Spec(help="Tasks, sizes, steps and seed.")] = field(
        default_factory=TaskVectorOptions)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.options.tasks) + (self.data is not None) < 2:
            raise InputError(f"TaskVectorConfig: tasks = {self.options.tasks!r}: expected at "
                             "least two tasks (--tasks; with a --data file: at least one "
                             "built-in task after it)")


# ---------------------------------------------------------------------------- report
@dataclass(kw_only=True, frozen=True)
class ReportConfig(Validated):
    """``ntk report``: finetune, rates (with mixed init) and taskvec under a profile."""

    out: Annotated[Path, Spec(help="Directory for the results and index.html.")]
    profile: Annotated[Literal["quick", "full"], Spec(
        help="quick (SmolLM2's last block, n <= 24) or full (last 4 blocks, n up to 256).")
                       ] = "quick"
    model: ModelName = "smollm2"
    source: Annotated[DataSource, Spec(
        help="The examples of finetune and rates (task vectors use the built-in tasks).")
                      ] = field(default_factory=DataSource)
    device: DeviceOption = "auto"

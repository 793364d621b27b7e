"""What each ``ntk`` command is asked to do, each setting declared once (type, choices, range,
help) and checked when the options are constructed; the command line builds its options from
the same declarations (:func:`transferscope.core.params.option`).

This module is light on purpose (no numpy, no torch): ``transferscope ntk --help`` reads it.
"""

from __future__ import annotations

import re
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


Params = Annotated[str, Spec(
    help="Parameter set S: attention@last-1 (default: the last block's attention, the set "
         "'ntk validate' and the real fine-tuning table cover), attention, all, lora, head, "
         "bias, last-k, attention@last-k.",
    rule=lambda v: params_problem(v) if isinstance(v, str) else "a string")]
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
@dataclass(kw_only=True, frozen=True)
class DataSource:
    """Where the labelled examples and the prompt come from: a built-in task (default
    ``sentiment-words``) or a user's CSV/TSV/JSONL file with its template and label words."""

    task: str | None = None
    data_file: Path | None = None
    text_col: str = "text"
    label_col: str = "label"
    positive_label: str | None = None
    template: str | None = None  # with {text}; default: the built-in task's
    label_words: str | None = None  # 'positive,negative'; default: the built-in task's


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


# ---------------------------------------------------------------------------- stop
def _positive(help: str) -> Spec:
    return Spec(gt=0, help=help)


@dataclass(kw_only=True, frozen=True)
class StopOptions(Validated):
    """How ``ntk stop`` trains and what it may take as given instead of estimating."""

    lr: Annotated[float | None, _positive(
        "SGD learning rate (default: 1/max K(x,x), RWY's bound).")] = None
    batch_size: Annotated[int, Spec(ge=1, help="Minibatch size B for the epoch count.")] = 8
    sigma: Annotated[float | None, _positive("Noise level (default: GCV estimate).")] = None
    radius: Annotated[float | None, _positive(
        "RKHS radius of f* - f_0 (default: ridge estimate).")] = None
    loss: Annotated[Loss, Spec(
        help="half-mse: mean((f-y)^2)/2, eta = lr; mse: mean((f-y)^2), eta = 2 lr.")
                    ] = "half-mse"
    n_boot: Annotated[int, Spec(ge=2, le=MAX_RESAMPLES,
                                help="Residual-bootstrap resamples for the CIs.")] = 200
    seed: Annotated[int, _seed("Seed of the bootstrap and the CV folds.")
                    ] = 0
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
        rule=lambda v: params_problem(v) if isinstance(v, str) else "a string")] = None


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size is not None and self.n is not None and self.batch_size > self.n:
            raise InputError(f"FinetuneOptions: batch_size = {self.batch_size}: expected a "
                             f"whole number from 1 to n = {self.n}")

    def fit(self, task: BuiltinTask) -> FinetuneOptions:
        """The sizes left at None filled in: the defaults, shrunk to fit ``task``'s data."""
        from transferscope.ntk.data import balanced_capacity, fit_sizes

        if self.n is not None and self.n_test is not None:
            return self
        n, n_test = fit_sizes(balanced_capacity(task.load()), self.n or DEFAULT_FINETUNE_N,
                              self.n_test or DEFAULT_FINETUNE_N_TEST)
        return replace(self, n=self.n or n, n_test=self.n_test or n_test)

"""The NTK pipeline a user calls: kernel -> spectrum -> stop.

Each step takes plain dataclasses and returns one, and writes its files into the run
directory (:mod:`transferscope.ntk.rundir`), so each can be rerun on its own and the command
line (``transferscope ntk kernel | spectrum | stop``) only parses and prints::

    run = run_kernel(KernelConfig(out="runs/mine", source=DataSource(task="sentiment-words"),
                                  options=KernelOptions(n=64)))
    spectrum = run_spectrum(SpectrumConfig(run_dir=run.path))
    stop = run_stop(StopConfig(run_dir=run.path, options=StopOptions(batch_size=16)))
    print(stop.recommendation.steps, stop.recommendation.steps_ci, stop.recommendation.advice())
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from transferscope.core.errors import InputError, input_error
from transferscope.core.io import write_json, write_png
from transferscope.core.outdir import claim_output
from transferscope.core.progress import step_progress
from transferscope.ntk import data as ntk_data
from transferscope.ntk import growth, recommend, rundir, stopping
from transferscope.ntk.data import LabeledTexts
from transferscope.ntk.device import resolve_device
from transferscope.ntk.figures import residual_spectrum_figure, spectrum_figure
from transferscope.ntk.kernel import RayExecutor
from transferscope.ntk.options import (
    DEFAULT_PARAMS as DEFAULT_PARAMS,
)
from transferscope.ntk.options import (
    DataSource,
    KernelConfig,
    KernelOptions,
    SpectrumConfig,
    SpectrumOptions,
    StopConfig,
    StopOptions,
)
from transferscope.ntk.spectrum import (
    SpectrumAnalysis,
    analyse_spectrum,
    default_index_range,
    effective_dimension,
    kernel_eigh,
)
from transferscope.ntk.task import PromptTask, check_template, parameter_spec, prompt_task_factory

DEFAULT_TASK = "sentiment-words"
DEFAULT_KERNEL_N = 64


# ---------------------------------------------------------------------------- data
@dataclass(kw_only=True, frozen=True)
class Examples:
    """The labelled texts, the prompt template and the (positive, negative) words."""

    data: LabeledTexts
    template: str
    label_words: tuple[str, str]


def source_task(source: DataSource) -> ntk_data.BuiltinTask:
    """``source`` as a task the experiments take: a built-in task (its template and words
    unless overridden) or the user's file with its template and label words."""
    examples = load_examples(source)
    check_template(examples.template)
    name = source.task or (str(source.data_file) if source.data_file else DEFAULT_TASK)
    return ntk_data.BuiltinTask(name=name, description=f"examples from {examples.data.source}",
                                template=examples.template, label_words=examples.label_words,
                                load=lambda: examples.data)


def parse_label_words(text: str) -> tuple[str, str]:
    """``'positive,negative'`` -> ``('positive', 'negative')``: two different words."""
    words = [w.strip() for w in text.split(",")]
    if len(words) != 2 or not all(words) or words[0] == words[1]:
        raise input_error("--label-words", "value", text,
                          "two different comma-separated words, positive first "
                          "(e.g. 'positive,negative')")
    return words[0], words[1]


def load_examples(source: DataSource) -> Examples:
    """The examples, template and words of ``source``; a conflicting or incomplete source is
    one InputError line."""
    if source.task is not None and source.data_file is not None:
        raise InputError("--task and --data: both given: expected one source of examples")
    if source.data_file is not None:
        if source.template is None or source.label_words is None:
            raise InputError("--data: needs --template (with {text}) and --label-words "
                             "'pos,neg' as well: expected both for a user data file")
        data = ntk_data.load_labeled_file(source.data_file, source.text_col, source.label_col,
                                          source.positive_label)
        return Examples(data=data, template=source.template,
                        label_words=parse_label_words(source.label_words))
    builtin = ntk_data.get_task(source.task or DEFAULT_TASK)
    words = (parse_label_words(source.label_words) if source.label_words is not None
             else builtin.label_words)
    return Examples(data=builtin.load(), template=source.template or builtin.template,
                    label_words=words)


# ---------------------------------------------------------------------------- kernel
@dataclass(kw_only=True, frozen=True)
class KernelRun:
    """A finished ``ntk kernel``: what it saved in ``path`` and what it cost."""

    path: Path
    kernel: np.ndarray
    f0: np.ndarray
    targets: np.ndarray
    texts: list[str]
    meta: dict
    summary: dict  # the engine's KernelResult without the matrix
    zero_shot_accuracy: float

    @property
    def n(self) -> int:
        return int(self.targets.size)

    @property
    def mean_diagonal(self) -> float:
        """``trace(K) / n``: the kernel's scale."""
        return float(np.trace(self.kernel)) / self.n


def pretrained_outputs(task: PromptTask, texts: list[str], batch_size: int = 16,
                       progress: bool = True) -> np.ndarray:
    """``f_0`` on ``texts``, in batches, with a progress bar."""
    parts = []
    with step_progress("f_0 (pretrained outputs)", len(texts), progress) as advance:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            parts.append(task.outputs(chunk, batch_size=batch_size))
            advance(len(chunk))
    return np.concatenate(parts).astype(np.float64)


def kernel_from_sample(task: PromptTask, sample: LabeledTexts, out: str | Path,
                       options: KernelOptions = KernelOptions(),
                       source: DataSource | None = None, progress: bool = True) -> KernelRun:
    """The eNTK of ``task`` over ``sample`` at the pretrained weights, ``f_0`` and the run
    directory ``out``. ``source`` only goes into ``meta.json`` (where the sample came from)."""
    resolve_device(options.device)
    source = source or DataSource()
    n = len(sample)
    texts = list(sample.texts)
    f0 = pretrained_outputs(task, texts, progress=progress)
    executor = ("local" if options.executor == "local" else
                RayExecutor(address=options.address, workers=options.workers,
                            model_factory=prompt_task_factory(task)))
    result = task.kernel(texts, parameter_spec(task, options.params), options.mode,
                         sketch_dim=options.sketch_dim,
                         seed=options.seed, memory_budget_gb=options.memory_gb,
                         progress=progress, executor=executor)
    if result.kernel.shape != (n, n):
        raise InputError(f"--label-words: the kernel has shape {result.kernel.shape}: expected "
                         f"({n}, {n}) for a binary task")
    zero_shot = float(np.mean(np.sign(f0) == sample.targets))
    from_file = source.data_file is not None
    word_pos, word_neg = task.label_words
    meta = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": task.model_name, "source": sample.source, "task": source.task,
        "data": source.data_file, "text_col": source.text_col if from_file else None,
        "label_col": source.label_col if from_file else None,
        "class_names": {"negative": sample.class_names[0], "positive": sample.class_names[1]},
        "template": task.template, "label_words": {"positive": word_pos, "negative": word_neg},
        "task_settings": task.settings(), "params": options.params, "n": n,
        "mode": options.mode, "seed": options.seed, "zero_shot_accuracy": zero_shot,
        "kernel": result.summary(),
    }
    path = rundir.save_kernel_run(out, result.kernel, f0, sample.targets, texts, meta)
    return KernelRun(path=path, kernel=result.kernel, f0=f0, targets=sample.targets, texts=texts,
                     meta=meta, summary=result.summary(), zero_shot_accuracy=zero_shot)


def run_kernel(config: KernelConfig, progress: bool = True) -> KernelRun:
    """``ntk kernel``: load the examples, draw a balanced sample, build the prompt task of
    ``config.model`` (a registry name, a local HF dir or a .gguf) and compute its eNTK into
    ``config.out``. Every check that can fail runs before the model is loaded or anything is
    written."""
    source, options = config.source, config.options
    examples = load_examples(source)
    check_template(examples.template)
    resolve_device(options.device)
    n = options.n if options.n is not None else min(
        DEFAULT_KERNEL_N, ntk_data.balanced_capacity(examples.data))
    sample = ntk_data.sample_examples(examples.data, n, options.seed)
    claim_output(config.out)
    task = PromptTask(examples.template, list(examples.label_words), model=config.model,
                      max_tokens=options.max_tokens, device=options.device)
    return kernel_from_sample(task, sample, config.out, options, source, progress)


# ---------------------------------------------------------------------------- spectrum
@dataclass(kw_only=True, frozen=True)
class SpectrumRun:
    """``ntk spectrum`` on one run: the analysis and the files it wrote."""

    run: Path
    options: SpectrumOptions
    index_range: tuple[int, int]
    analysis: SpectrumAnalysis
    json_path: Path
    figure_path: Path

    def to_dict(self) -> dict:
        """What ``spectrum.json`` holds."""
        return self.analysis.to_dict() | {"run": str(self.run),
                                          "bootstrap_seed": self.options.seed,
                                          "n_boot": self.options.n_boot}


def run_spectrum(config: SpectrumConfig, progress: bool = True) -> SpectrumRun:
    """``ntk spectrum``: eigenvalues of ``K/n``, both decay fits with bootstrap CIs; writes
    ``spectrum.json`` and ``spectrum.png`` next to the kernel."""
    options = config.options
    run = rundir.load_kernel_run(config.run_dir)
    first, last = options.first, options.last
    if first is None or last is None:
        lo, hi = default_index_range(run.n)
        first, last = (lo if first is None else first), (hi if last is None else last)
    index_range = (first, last)
    with step_progress("bootstrap over examples", options.n_boot, progress) as advance:
        analysis = analyse_spectrum(run.kernel, index_range, options.n_boot, options.ci,
                                    options.seed, progress=lambda done: advance())
    done = SpectrumRun(run=run.path, options=options, index_range=index_range, analysis=analysis,
                       json_path=run.path / rundir.SPECTRUM_FILE,
                       figure_path=run.path / rundir.SPECTRUM_FIGURE)
    write_json(done.json_path, done.to_dict())
    write_png(spectrum_figure(analysis), done.figure_path)
    return done


# ---------------------------------------------------------------------------- stop
@dataclass(kw_only=True, frozen=True)
class StopResult:
    """``ntk stop``: one answer, the recommendation of the rule ``options.rule`` (its steps,
    their range and the steps to use), with what explains it beside it: every rule's point
    value (``recommendation.rules``), the noise and radius estimates, the critical radius, and
    the training fit and schedule at the recommended steps."""

    run: Path
    n: int
    options: StopOptions
    lambda_max: float
    max_step_size: float
    learning_rate: float
    step_size: float
    recommendation: recommend.StopRecommendation  # the answer: steps, steps_ci, safe_steps
    schedule: stopping.Schedule  # the recommended steps in a trainer's terms
    critical_radius: float  # eps_n at the sigma and R of rule rwy
    equivalent_ridge: float | None  # 1 / (eta T) at the recommended T; None when T = 0
    effective_dimension_at_ridge: float | None
    fits: dict[str, dict[str, float]]  # train MSE / accuracy of f_0, GD at T, kernel ridge

    @property
    def json_path(self) -> Path:
        return self.run / rundir.STOP_FILE

    def epochs(self, steps: int) -> float:
        """``steps`` full-batch steps as epochs at the command's batch size (``steps * B / n``:
        one epoch is ``n / B`` minibatch steps)."""
        return steps * self.options.batch_size / self.n

    def to_dict(self) -> dict:
        """What ``stop.json`` holds."""
        o, a = self.options, self.recommendation
        factor = stopping.LOSS_STEP_FACTOR[o.loss]
        low, high = a.steps_ci
        return {
            "run": str(self.run), "n": self.n, "options": asdict(o),
            "lambda_max": self.lambda_max, "max_step_size": self.max_step_size,
            "step_size": self.step_size, "learning_rate": self.learning_rate, "loss": o.loss,
            "lr_to_eta": f"eta = {factor:g} * lr (loss {o.loss}; K/n scaling, f_t+1 = f_t - "
                         "eta K/n (f_t - y))",
            "recommendation": a.to_dict(),
            "schedule": {"full_batch_steps": self.schedule.full_batch_steps,
                         "minibatch_steps": self.schedule.minibatch_steps,
                         "batch_size": self.schedule.batch_size,
                         "epochs": self.schedule.epochs,
                         "epochs_range": [self.epochs(low), self.epochs(high)],
                         "safe_epochs": self.epochs(a.safe_steps),
                         "note": "one epoch = n/B minibatch steps ~ n/B full-batch steps of "
                                 "the same lr (SGD noise ignored)"},
            "critical_radius": self.critical_radius,
            "error_bound_scale": a.radius**2 * self.critical_radius**2,
            "equivalent_ridge": self.equivalent_ridge,
            "effective_dimension_at_ridge": self.effective_dimension_at_ridge,
            "fits": self.fits,
        }


def run_stop(config: StopConfig) -> StopResult:
    """``ntk stop``: one answer, the recommended steps of ``config.options.rule`` with their
    range (:func:`~transferscope.ntk.recommend.recommend_stop`), every other rule's point value
    beside it, the critical radius, and the training fits at the recommended steps; writes
    ``stop.json`` and ``residual_spectrum.png``."""
    options = config.options
    run = rundir.load_kernel_run(config.run_dir)
    if options.n_total is not None:  # before any work: the growth needs n >= 32 and N >= n
        if run.n < growth.MIN_N:
            raise input_error("--n-total", "n", run.n, f"at least {growth.MIN_N} examples in "
                              "the kernel run: the growth is measured on subsamples of n/4, "
                              "n/2 and n")
        if options.n_total < run.n:
            raise input_error("--n-total", "n_total", options.n_total, f"at least n = {run.n}")
    factor = stopping.LOSS_STEP_FACTOR[options.loss]
    # the one eigendecomposition of K/n: every estimate, rule, fit and the figure below use it
    raw_evals, evecs = kernel_eigh(run.kernel)
    eigs = raw_evals[::-1].copy()  # largest first, as kernel_eigenvalues
    eig = (np.clip(raw_evals, 0.0, None), evecs)  # as stopping.eig_kn
    max_eta = stopping.max_step_size(eigs)
    lr = options.lr
    if lr is None:  # RWY's bound for a kernel bounded by 1, rescaled (recommend.py)
        lr = 1.0 / float(np.max(np.diag(run.kernel))) / factor
    elif factor * lr > max_eta * (1 + 1e-9):
        raise input_error("--lr", "lr", lr, f"at most {max_eta / factor:.4g}: the step eta = "
                          f"{factor:g} * lr must not exceed 1/lambda_max(K/n) = {max_eta:.4g}")
    eta = factor * lr
    residual = run.residual
    if not np.any(residual) and (options.sigma is None or options.radius is None):
        raise InputError(f"{run.path / rundir.F0_FILE}: equals {rundir.LABELS_FILE} on every "
                         "example (residual y - f0 = 0): expected a run whose pretrained "
                         "outputs miss some targets; nothing is left for fine-tuning to learn, "
                         "so there is no stopping time to estimate")
    advice = recommend.recommend_stop(
        run.kernel, run.labels, run.f0, lr=eta, rule=options.rule, sigma=options.sigma,
        radius=options.radius, seed=options.seed, n_total=options.n_total,
        batch_size=options.batch_size if options.n_total is not None else None, eig=eig)
    steps = advice.steps
    fits = {"pretrained f_0": run.f0}
    ridge = None
    if steps > 0:
        ridge = 1.0 / (eta * steps)
        fits["gradient descent at the recommended steps"] = run.f0 + (
            stopping.gradient_descent_fit(run.kernel, residual, eta, steps, eig=eig))
        fits["kernel ridge, lam = 1/(eta steps)"] = run.f0 + stopping.kernel_ridge_fit(
            run.kernel, residual, ridge, eig=eig)
    fit_quality = {name: {"train_mse": float(np.mean((f - run.labels) ** 2)),
                          "train_accuracy": float(np.mean(np.sign(f) == run.labels))}
                   for name, f in fits.items()}
    result = StopResult(
        run=run.path, n=run.n, options=options, lambda_max=float(eigs[0]),
        max_step_size=max_eta, learning_rate=lr, step_size=eta, recommendation=advice,
        schedule=stopping.training_schedule(steps, run.n, options.batch_size, lr, options.loss),
        critical_radius=stopping.critical_radius(eigs, advice.sigma, advice.radius),
        equivalent_ridge=ridge,
        effective_dimension_at_ridge=float(effective_dimension(eigs, ridge)) if ridge else None,
        fits=fit_quality)
    write_json(run.path / rundir.STOP_FILE, result.to_dict())
    write_png(residual_spectrum_figure(raw_evals, evecs.T @ residual, advice.sigma, advice.steps,
                                       advice.lr), run.path / rundir.RESIDUAL_FIGURE)
    return result

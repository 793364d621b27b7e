"""``transferscope ntk finetune | rates | taskvec | report``: the theory against real training.

Each command writes JSON into ``--out``; ``report`` runs all of them under one profile and
assembles the HTML. Profiles (ours, sized for a shared 2-core CPU, see ``PROFILES``):
``--quick`` differentiates only the attention projections of SmolLM2's last block
(``attention@last-1``, 0.9M parameters) with n <= 24; the full profile uses the last 4 blocks'
attention (3.5M) with n up to 256 for the rates, but only 32 words x 12 full-batch steps for
real fine-tuning and 4 tasks x 12 words x 8 steps for task vectors: every real step costs a
forward and backward pass of the whole 135M model per example, which is what the 30-minute
budget buys. One kernel over a pool (training candidates + a fixed held-out set) serves
fine-tuning and the whole n-sweep, since the kernel of a subsample is a sub-matrix; the engine
caches it on disk and fine-tuning checkpoints every step, so a rerun resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from transferscope.core.errors import input_error
from transferscope.ntk import data as ntk_data
from transferscope.ntk import stopping
from transferscope.ntk.runs import write_json

app = typer.Typer(help="Fine-tuning against the kernel prediction.", no_args_is_help=True)
_err = Console(stderr=True)


@dataclass(frozen=True)
class Profile:
    params: str
    finetune_n: int
    test_n: int
    steps: int
    sizes: tuple[int, ...]
    pool: int  # training candidates the seeds subsample from (> max size, so seeds differ)
    seeds: int
    taskvec_train: int
    taskvec_test: int
    taskvec_steps: int
    taskvec_tasks: tuple[str, ...]


_TASKS_3 = ("vader-words", "afinn-words", "negated-vader-words")
PROFILES = {
    "quick": Profile("attention@last-1", 16, 24, 8, (8, 12, 16, 24), 32, 3, 8, 8, 5, _TASKS_3),
    "full": Profile("attention@last-4", 32, 64, 12, (32, 64, 128, 256), 320, 3, 12, 12, 8,
                    (*_TASKS_3, "negated-afinn-words")),
}


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=_err)


def _prompt_task(model: str, task_name: str):
    from transferscope.ntk.task import PromptTask

    builtin = ntk_data.get_task(task_name)
    word_pos, word_neg = builtin.label_words
    return builtin, PromptTask(builtin.template, [word_pos, word_neg], model=model)


def _pool(task, builtin, params: str, n_pool: int, n_test: int, seed: int):
    """A balanced sample: the first ``n_pool`` are training candidates, the rest held out."""
    from transferscope.ntk.finetune import parameter_spec

    sample = ntk_data.sample_examples(builtin.load(), n_pool + n_test, seed)
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, params), progress=True).kernel
    return sample, kernel, task.outputs(texts)


def _subset(sample, index):
    return ntk_data.LabeledTexts(tuple(sample.texts[i] for i in index), sample.targets[index],
                                 sample.class_names, sample.source)


def finetune_experiment(task, sample, kernel, f0, n: int, n_test: int, steps: int,
                        params: str, lr_fraction: float, loss: str, batch_size: int | None,
                        seed: int, out: Path) -> dict:
    """Real fine-tuning on the first n pool points, held-out = the pool's last n_test."""
    from transferscope.ntk.dynamics import kernel_gd
    from transferscope.ntk.finetune import FinetuneConfig, compare_with_kernel, finetune
    from transferscope.ntk.spectrum import kernel_eigenvalues

    pool = kernel.shape[0] - n_test
    train_idx, test_idx = np.arange(n), np.arange(pool, pool + n_test)
    train, test = _subset(sample, train_idx), _subset(sample, test_idx)
    k_train = kernel[np.ix_(train_idx, train_idx)]
    eigs = kernel_eigenvalues(k_train)
    residual = train.targets - f0[train_idx]
    noise = stopping.estimate_noise(k_train, residual)
    radius = stopping.estimate_radius(k_train, residual, noise.ridge)
    factor = stopping.LOSS_STEP_FACTOR.get(loss, 1.0)
    lr = lr_fraction * stopping.max_step_size(eigs) / factor
    config = FinetuneConfig(params=params, steps=steps, learning_rate=lr, loss=loss,
                            batch_size=batch_size, seed=seed)
    eta = factor * lr
    t_hat = stopping.rwy_stopping_time(eigs, eta, noise.sigma, radius)
    with _progress() as bar:
        job = bar.add_task(f"fine-tuning {params} (n = {n})", total=steps)
        result = finetune(task, train, test, config, out / "finetune-run",
                          progress=lambda done, total: bar.update(job, completed=done))
    summary = {"n": n, "n_test": n_test, "params": params, "seed": seed, "loss": loss,
               "lr_fraction": lr_fraction, "learning_rate": lr, "step_size": eta, "lambda_max": float(eigs[0]),
               "sigma": noise.sigma, "radius": radius, "t_hat": t_hat,
               "best_step_real": result.best_step(), "history": result.history,
               "resumed_from": result.resumed_from, "seconds": result.seconds,
               "source": sample.source}
    if loss != "cross-entropy" and batch_size is None:
        gd = kernel_gd(k_train, residual, eta)
        comparison = compare_with_kernel(result, gd, kernel[np.ix_(test_idx, train_idx)],
                                         f0[test_idx], test.targets)
        summary |= {"best_step_linear": comparison.best_step_linear,
                    "regime_steps": comparison.regime_steps,
                    "regime_tolerance": comparison.tolerance,
                    "relative_distance": comparison.relative_distance,
                    "linear_test_loss": comparison.linear_test_loss,
                    "linear_train_loss": ((comparison.linear_train - train.targets) ** 2
                                          ).mean(axis=1) / 2}
    write_json(out / "finetune.json", summary)
    return summary


def quick_finetune_stage(run_dir: Path, model: str = "smollm2",
                         task: str = "sentiment-words") -> tuple[dict, object]:
    """The quick profile's fine-tuning-vs-kernel experiment on ``run_dir`` (for the main demo).

    Returns the summary ``finetune_experiment`` writes (T_hat, held-out-optimal step, how long
    the kernel regime held, every step's losses) and its matplotlib figure. Same pool as
    ``ntk report --quick``, so a report run before or after shares the cached kernel and the
    resumable fine-tuning checkpoint.
    """
    from transferscope.ntk.report import finetune_figure

    profile = PROFILES["quick"]
    builtin, lm_task = _prompt_task(model, task)
    sample, kernel, f0 = _pool(lm_task, builtin, profile.params, profile.pool, profile.test_n, 0)
    summary = finetune_experiment(lm_task, sample, kernel, f0, profile.finetune_n,
                                  profile.test_n, profile.steps, profile.params, 0.5,
                                  "half-mse", None, 0, Path(run_dir))
    return summary, finetune_figure(summary)


def rates_experiment(task, builtin, params: str, sizes, pool: int, seeds: int, n_test: int,
                     head_seed: int | None, out: Path, pool_data: tuple | None = None) -> dict:
    """The n-sweep on one pool kernel, pretrained readout and (optionally) mixed init.
    ``pool_data``: ``_pool``'s (sample, kernel, f0) when the caller has it already."""
    from transferscope.ntk import rates
    from transferscope.ntk.mixed import mixed_kernel, mixed_task

    if pool <= max(sizes):
        raise input_error("--pool", "pool", pool, f"more than the largest n = {max(sizes)} "
                          "(otherwise every seed draws the same examples)")
    sample, kernel, f0 = pool_data or _pool(task, builtin, params, pool, n_test, 0)
    result = {"params": params, "sizes": list(sizes), "seeds": list(range(seeds)),
              "n_test": n_test, "pool": pool, "source": sample.source}
    for label, k, f in _readouts(task, sample, kernel, f0, params, head_seed,
                                 mixed_task, mixed_kernel, result):
        frame = rates.sweep(k, f, sample.targets, n_test, sizes, range(seeds))
        fit = rates.fit_slope(frame)
        result[label] = {"rows": frame.to_dict(orient="records"), "slope": fit.__dict__}
    write_json(out / "rates.json", result)
    return result


def _readouts(task, sample, kernel, f0, params, head_seed, mixed_task, mixed_kernel, result):
    yield "pretrained", kernel, f0
    if head_seed is None:
        return
    mixed = mixed_task(task, head_seed)
    parts = mixed_kernel(mixed, list(sample.texts), params)
    result["mixed_head_share"] = parts.head_share()
    result["mixed_head_seed"] = head_seed
    yield "mixed", parts.total, parts.outputs


# ---------------------------------------------------------------------------- commands
ModelOpt = Annotated[str, typer.Option(help="smollm2 or a local HF causal-LM dir / .gguf.")]
TaskOpt = Annotated[str, typer.Option(help="Built-in task (see 'ntk kernel --help').")]
ParamsOpt = Annotated[str, typer.Option(
    help="Parameter set S: attention, all, last-k, bias, ... or attention@last-k.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory for the results.")]


@app.command("finetune")
def finetune_command(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    task: TaskOpt = "sentiment-words",
    params: ParamsOpt = "attention@last-1",
    n: Annotated[int, typer.Option(help="Training examples.")] = 16,
    n_test: Annotated[int, typer.Option(help="Held-out examples.")] = 24,
    steps: Annotated[int, typer.Option(help="Gradient steps.")] = 8,
    lr_fraction: Annotated[float, typer.Option(
        help="Step eta as a fraction of 1/lambda_max(K/n).")] = 0.5,
    loss: Annotated[str, typer.Option(help="half-mse, mse or cross-entropy.")] = "half-mse",
    batch_size: Annotated[int | None, typer.Option(help="Minibatch size (default full batch).")
                          ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and minibatch order.")] = 0,
) -> None:
    """Fine-tune S for real; log train/held-out loss and accuracy every step next to the
    closed-form kernel trajectory, T_hat and the held-out-optimal step. Resumes from --out."""
    if not 0 < lr_fraction <= 1:
        raise input_error("--lr-fraction", "lr_fraction", lr_fraction, "a number in (0, 1]")
    builtin, lm_task = _prompt_task(model, task)
    sample, kernel, f0 = _pool(lm_task, builtin, params, n, n_test, seed)
    s = finetune_experiment(lm_task, sample, kernel, f0, n, n_test, steps, params, lr_fraction,
                            loss, batch_size, seed, out)
    _err.print(f"T_hat = {s['t_hat']}, held-out optimum (real) = {s['best_step_real']}, "
               f"kernel regime held for {s.get('regime_steps', 'n/a')} of {steps} steps; "
               f"wrote {out / 'finetune.json'}")


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        sizes = []
    if len(sizes) < 2 or sizes[0] < 4:
        raise input_error("--sizes", "sizes", text, "at least two comma-separated n >= 4")
    return sizes


@app.command("rates")
def rates_command(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    task: TaskOpt = "sentiment-words",
    params: ParamsOpt = "attention@last-1",
    sizes: Annotated[str, typer.Option(help="Comma-separated sample sizes n.")] = "32,64,128,256",
    seeds: Annotated[int, typer.Option(help="Seeds (subsamples) per n.")] = 3,
    n_test: Annotated[int, typer.Option(help="Held-out examples.")] = 64,
    pool: Annotated[int, typer.Option(help="Training candidates the seeds subsample from.")
                    ] = 320,
    head_seed: Annotated[int | None, typer.Option(
        help="Also run mixed initialisation with a random head from this seed.")] = 0,
) -> None:
    """Held-out error at T_hat and at the optimum against n, slope vs -alpha/(alpha+1)."""
    if seeds < 2:
        raise input_error("--seeds", "seeds", seeds, "at least 2 (a CI needs several)")
    builtin, lm_task = _prompt_task(model, task)
    result = rates_experiment(lm_task, builtin, params, _sizes(sizes), pool, seeds, n_test,
                              head_seed, out)
    slope = result["pretrained"]["slope"]
    _err.print(f"slope {slope['slope']:.3f} [{slope['ci_low']:.3f}, {slope['ci_high']:.3f}] vs "
               f"implied {slope['implied']:.3f}; wrote {out / 'rates.json'}")


@app.command("taskvec")
def taskvec_command(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    tasks: Annotated[str, typer.Option(help="Comma-separated built-in tasks (>= 2).")
                     ] = ",".join(_TASKS_3),
    params: ParamsOpt = "attention@last-1",
    n_train: Annotated[int, typer.Option(help="Training examples per task.")] = 8,
    n_test: Annotated[int, typer.Option(help="Held-out examples per task.")] = 8,
    steps: Annotated[int, typer.Option(help="Gradient steps per task.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the samples.")] = 0,
) -> None:
    """Task vectors from real fine-tuning; addition/negation, real vs linearised accuracy."""
    from transferscope.ntk.finetune import FinetuneConfig
    from transferscope.ntk.taskvectors import run_task_vectors, task_splits

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    splits = task_splits(names, n_train, n_test, seed)
    _, lm_task = _prompt_task(model, names[0])
    result = run_task_vectors(lm_task, splits, FinetuneConfig(params=params, steps=steps,
                                                              seed=seed), out)
    write_json(out / "taskvec.json", result)
    c = result["correlation"]
    _err.print(f"alignment vs interference: r = {c['r']:.3f} [{c['ci_low']:.3f}, "
               f"{c['ci_high']:.3f}] over {c['points']} pairs; wrote {out / 'taskvec.json'}")


@app.command("report")
def report_command(
    out: OutOpt,
    quick: Annotated[bool, typer.Option("--quick/--full", help="Profile (see module notes).")
                     ] = True,
    model: ModelOpt = "smollm2",
    task: TaskOpt = "sentiment-words",
) -> None:
    """Run finetune, rates (with mixed init) and taskvec under a profile; write index.html."""
    import time

    from transferscope.ntk.report import build_report

    profile = PROFILES["quick" if quick else "full"]
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    builtin, lm_task = _prompt_task(model, task)
    sample, kernel, f0 = _pool(lm_task, builtin, profile.params, profile.pool, profile.test_n,
                               0)
    rates_experiment(lm_task, builtin, profile.params, profile.sizes, profile.pool,
                     profile.seeds, profile.test_n, 0, out, (sample, kernel, f0))
    finetune_experiment(lm_task, sample, kernel, f0, profile.finetune_n, profile.test_n,
                        profile.steps, profile.params, 0.5, "half-mse", None, 0, out)
    taskvec_command(out, model, ",".join(profile.taskvec_tasks), profile.params,
                    profile.taskvec_train, profile.taskvec_test, profile.taskvec_steps, 0)
    profile_info = {"profile": "quick" if quick else "full", **profile.__dict__,
                    "model": model, "task": task,
                    "seconds": time.perf_counter() - started}
    (out / "profile.json").write_text(json.dumps(profile_info, indent=1))
    path = build_report(out)
    _err.print(f"wrote {path}")


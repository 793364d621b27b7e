"""``transferscope ntk kernel | spectrum | stop``: the empirical NTK, its decay, when to stop.

``kernel`` writes a run directory (see :mod:`transferscope.ntk.runs`); ``spectrum`` and ``stop``
read it and add their JSON (and figure) next to it, so each step can be rerun on its own.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from transferscope.core.errors import InputError, input_error
from transferscope.ntk import data as ntk_data
from transferscope.ntk import runs

app = typer.Typer(help="Empirical NTK of a pretrained LM at its pretrained weights, its "
                  "eigen-decay, and the data-dependent early-stopping time.",
                  no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)
SENSITIVITY_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=_err)


def _label_words(text: str) -> tuple[str, str]:
    words = [w.strip() for w in text.split(",")]
    if len(words) != 2 or not all(words) or words[0] == words[1]:
        raise input_error("--label-words", "value", text,
                          "two different comma-separated words, positive first "
                          "(e.g. 'positive,negative')")
    return words[0], words[1]


def _load_data(task: str | None, data_file: Path | None, text_col: str, label_col: str,
               positive_label: str | None, template: str | None, label_words: str | None):
    """The labelled texts, the template and (positive, negative) words to use."""
    if task is not None and data_file is not None:
        raise InputError("--task and --data: both given: expected one source of examples")
    if data_file is not None:
        if template is None or label_words is None:
            raise InputError("--data: needs --template (with {text}) and --label-words "
                             "'pos,neg' as well: expected both for a user data file")
        data = ntk_data.load_labeled_file(data_file, text_col, label_col, positive_label)
        return data, template, _label_words(label_words)
    builtin = ntk_data.get_task(task or "sentiment-words")
    words = _label_words(label_words) if label_words is not None else builtin.label_words
    return builtin.load(), template or builtin.template, words


_TASK_HELP = ("Built-in task: " + ", ".join(sorted(ntk_data.TASKS))
              + " (default sentiment-words).")
RunDirArg = Annotated[Path, typer.Argument(help="Run directory written by 'ntk kernel'.")]


@app.command()
def kernel(
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")],
    model: Annotated[str, typer.Option(help="smollm2, minilm, or a local HF dir / .gguf.")
                     ] = "smollm2",
    task: Annotated[str | None, typer.Option(help=_TASK_HELP)] = None,
    data_file: Annotated[Path | None, typer.Option("--data", help="CSV/TSV/JSONL file.")] = None,
    text_col: Annotated[str, typer.Option(help="Text column of --data.")] = "text",
    label_col: Annotated[str, typer.Option(help="Label column of --data.")] = "label",
    positive_label: Annotated[str | None, typer.Option(help="Positive label of --data.")
                              ] = None,
    template: Annotated[str | None, typer.Option(help="Prompt with {text} (default: the task's).")
                        ] = None,
    label_words: Annotated[str | None, typer.Option(help="'positive,negative' cue words.")
                           ] = None,
    params: Annotated[str, typer.Option(help="attention, all, lora, head, bias, last-k.")
                      ] = "attention",
    n: Annotated[int, typer.Option(help="Examples, sampled balanced with --seed.")] = 64,
    mode: Annotated[str, typer.Option(help="exact or sketch.")] = "exact",
    sketch_dim: Annotated[int, typer.Option(help="Sketch dimension (sketch mode).")] = 16384,
    seed: Annotated[int, typer.Option(help="Seed of the sample and the sketch.")] = 0,
    memory_gb: Annotated[float, typer.Option(help="Memory budget of the engine, GiB.")] = 4.0,
    max_tokens: Annotated[int | None, typer.Option(help="Shorten prompts to this many tokens.")
                          ] = None,
    executor: Annotated[str, typer.Option(help="local, or ray (blocks on a Ray cluster).")
                        ] = "local",
    address: Annotated[str | None, typer.Option(
        help="Ray cluster address (auto, host:6379, ray://host:10001); none: a local one.")
                       ] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: all CPUs/GPUs).")
                       ] = None,
) -> None:
    """Compute the eNTK of f = logit(word+) - logit(word-) at the pretrained weights."""
    from transferscope.ntk.task import PromptTask, check_template

    examples, prompt, (word_pos, word_neg) = _load_data(
        task, data_file, text_col, label_col, positive_label, template, label_words)
    check_template(prompt)
    if mode not in ("exact", "sketch"):
        raise input_error("--mode", "mode", mode, "'exact' or 'sketch'")
    _check_executor(executor, address, workers)
    sample = ntk_data.sample_examples(examples, n, seed)
    lm_task = PromptTask(prompt, [word_pos, word_neg], model=model, max_tokens=max_tokens)
    texts = list(sample.texts)
    f0 = _outputs_with_progress(lm_task, texts)
    result = lm_task.kernel(texts, params, mode, sketch_dim=sketch_dim, seed=seed,
                            memory_budget_gb=memory_gb, progress=True,
                            executor=_executor(executor, address, workers, lm_task))
    if result.kernel.shape != (n, n):
        raise InputError(f"--label-words: the kernel has shape {result.kernel.shape}: expected "
                         f"({n}, {n}) for a binary task")
    zero_shot = float(np.mean(np.sign(f0) == sample.targets))
    meta = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": model, "source": sample.source, "task": task, "data": data_file,
        "text_col": text_col if data_file else None, "label_col": label_col if data_file else None,
        "class_names": {"negative": sample.class_names[0], "positive": sample.class_names[1]},
        "template": prompt, "label_words": {"positive": word_pos, "negative": word_neg},
        "task_settings": lm_task.settings(), "params": params, "n": n, "mode": mode,
        "seed": seed, "zero_shot_accuracy": zero_shot,
        "kernel": result.summary(),
    }
    runs.save_kernel_run(out, result.kernel, f0, sample.targets, texts, meta)
    table = Table(title=f"eNTK run {out}")
    table.add_column("quantity")
    table.add_column("value")
    for key, value in (("model", model), ("examples", f"{n} from {sample.source}"),
                       ("parameters", f"{params} ({result.n_params:,})"),
                       ("mode", mode + (f" (rel. error <= {result.error_bound:.3g})"
                                        if result.error_bound is not None else "")),
                       ("seconds", f"{result.seconds:.1f}" + (" (cache)" if result.from_cache
                                                              else "")),
                       ("zero-shot accuracy of f_0", f"{zero_shot:.3f}"),
                       ("trace of K/n", f"{np.trace(result.kernel) / n:.4g}")):
        table.add_row(key, str(value))
    _out.print(table)


def _check_executor(kind: str, address: str | None, workers: int | None) -> None:
    if kind not in ("local", "ray"):
        raise input_error("--executor", "executor", kind, "'local' or 'ray'")
    if kind == "local" and (address is not None or workers is not None):
        raise InputError("--address/--workers: given with --executor local: expected "
                         "--executor ray")
    if workers is not None and workers < 1:
        raise input_error("--workers", "workers", workers, "a positive integer")


def _executor(kind: str, address: str | None, workers: int | None, lm_task):
    """'local', or a RayExecutor whose workers rebuild the task's model from its name."""
    if kind == "local":
        return "local"
    from transferscope.ntk.executor_ray import RayExecutor, prompt_task_factory

    return RayExecutor(address=address, workers=workers,
                       model_factory=prompt_task_factory(lm_task))


def _outputs_with_progress(lm_task, texts: list[str], batch_size: int = 16) -> np.ndarray:
    parts = []
    with _progress() as bar:
        job = bar.add_task("f_0 (pretrained outputs)", total=len(texts))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            parts.append(lm_task.outputs(chunk, batch_size=batch_size))
            bar.advance(job, len(chunk))
    return np.concatenate(parts).astype(np.float64)


@app.command()
def spectrum(
    run_dir: RunDirArg,
    first: Annotated[int | None, typer.Option(help="First fitted index (1-based; default 2).")
                     ] = None,
    last: Annotated[int | None, typer.Option(help="Last fitted index (default max(4, n//4)).")
                    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the examples.")] = 200,
    ci: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Eigenvalues of K/n, polynomial and exponential decay fits, implied rate, figure."""
    from transferscope.ntk.spectrum import analyse_spectrum, default_index_range

    run = runs.load_kernel_run(run_dir)
    lo, hi = default_index_range(run.n)
    index_range = (first if first is not None else lo, last if last is not None else hi)
    with _progress() as bar:
        job = bar.add_task("bootstrap over examples", total=n_boot)
        analysis = analyse_spectrum(run.kernel, index_range, n_boot, ci, seed,
                                    progress=lambda done: bar.update(job, completed=done))
    result = analysis.to_dict() | {"run": str(run.path), "bootstrap_seed": seed,
                                   "n_boot": n_boot}
    runs.write_json(run.path / runs.SPECTRUM_FILE, result)
    _spectrum_figure(analysis, run.path / runs.SPECTRUM_FIGURE)
    table = Table(title=f"spectrum of K/n, n = {run.n}, fit indices {index_range[0]}.."
                  f"{index_range[1]}")
    for col in ("model", "rate", f"{ci:.0%} CI", "R^2 (log)", "implied rate"):
        table.add_column(col)
    for fit in analysis.fits.values():
        table.add_row(fit.model + (" *" if fit is analysis.preferred else ""),
                      f"{fit.rate:.4g}", f"[{fit.ci_low:.4g}, {fit.ci_high:.4g}]",
                      f"{fit.r_squared:.4f}", fit.to_dict()["implied_rate"])
    _out.print(table)
    _out.print(f"wrote {run.path / runs.SPECTRUM_FILE} and {run.path / runs.SPECTRUM_FIGURE}")


def _spectrum_figure(analysis, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = analysis.eigenvalues
    positive = lam > 0
    index = np.arange(1, lam.size + 1)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.loglog(index[positive], lam[positive], ".", color="0.2", label="eigenvalues of K/n")
    styles = {"polynomial": "-", "exponential": "--"}
    for fit in analysis.fits.values():
        grid = np.arange(fit.index_range[0], fit.index_range[1] + 1)
        label = (f"{fit.model}: rate {fit.rate:.3g} [{fit.ci_low:.3g}, {fit.ci_high:.3g}], "
                 f"R^2 {fit.r_squared:.3f}")
        ax.loglog(grid, fit.predict(grid), styles[fit.model], label=label)
    ax.set_xlabel("index i")
    ax.set_ylabel("lambda_i")
    ax.set_title(f"eigen-decay of the empirical NTK (n = {analysis.n})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    from io import BytesIO

    from transferscope.core.cache import atomic_write_bytes

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


@app.command()
def stop(
    run_dir: RunDirArg,
    lr: Annotated[float | None, typer.Option(
        help="SGD learning rate (default: the largest stable one).")] = None,
    batch_size: Annotated[int, typer.Option(help="Minibatch size B for the epoch count.")] = 8,
    sigma: Annotated[float | None, typer.Option(help="Noise level (default: GCV estimate).")
                     ] = None,
    radius: Annotated[float | None, typer.Option(
        help="RKHS radius of f* - f_0 (default: ridge estimate).")] = None,
    loss: Annotated[str, typer.Option(
        help="half-mse: mean((f-y)^2)/2, eta = lr; mse: mean((f-y)^2), eta = 2 lr.")
                    ] = "half-mse",
    n_boot: Annotated[int, typer.Option(help="Residual-bootstrap resamples for the CIs.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """The warm-started RWY stopping time T_hat, its inputs, and what to set in a trainer."""
    from transferscope.ntk import stopping
    from transferscope.ntk.spectrum import effective_dimension, kernel_eigenvalues

    run = runs.load_kernel_run(run_dir)
    if loss not in stopping.LOSS_STEP_FACTOR:
        raise input_error("--loss", "loss", loss, " or ".join(stopping.LOSS_STEP_FACTOR))
    for flag, value in (("--sigma", sigma), ("--radius", radius), ("--lr", lr)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise input_error(flag, flag.strip("-"), value, "a finite number > 0")
    factor = stopping.LOSS_STEP_FACTOR[loss]
    eigs = kernel_eigenvalues(run.kernel)
    max_eta = stopping.max_step_size(eigs)
    if lr is None:
        lr = max_eta / factor
    elif factor * lr > max_eta * (1 + 1e-9):
        raise input_error("--lr", "lr", lr, f"at most {max_eta / factor:.4g}: the step eta = "
                          f"{factor:g} * lr must not exceed 1/lambda_max(K/n) = {max_eta:.4g}")
    eta = factor * lr
    residual = run.residual
    noise = stopping.estimate_noise(run.kernel, residual)
    radius_estimate = stopping.estimate_radius(run.kernel, residual, noise.ridge)
    sigma_used = sigma if sigma is not None else noise.sigma
    radius_used = radius if radius is not None else radius_estimate
    t_hat = stopping.rwy_stopping_time(eigs, eta, sigma_used, radius_used)
    eps_n = stopping.critical_radius(eigs, sigma_used, radius_used)
    schedule = stopping.training_schedule(t_hat, run.n, batch_size, lr, loss)

    if n_boot < 2:
        raise input_error("--n-boot", "n_boot", n_boot, "at least 2")
    with _progress() as bar:
        job = bar.add_task("residual bootstrap of T_hat", total=n_boot)
        boot = stopping.bootstrap_stopping_time(
            run.kernel, residual, eta, n_boot, seed, sigma, radius,
            progress=lambda done: bar.update(job, completed=done))
    t_low, t_high = boot.interval(0.95)

    sigmas = np.array(SENSITIVITY_FACTORS) * sigma_used
    radii = np.array(SENSITIVITY_FACTORS) * radius_used
    with _progress() as bar:
        job = bar.add_task("sensitivity of T_hat to sigma and R", total=sigmas.size)
        rows = []
        for s in sigmas:
            rows.append(stopping.sensitivity_table(eigs, eta, np.array([s]), radii)[0])
            bar.advance(job)
    table = np.array(rows)

    fits = {"pretrained f_0": run.f0}
    ridge = None
    if t_hat > 0:
        ridge = 1.0 / (eta * t_hat)
        fits["gradient descent at T_hat"] = run.f0 + stopping.gradient_descent_fit(
            run.kernel, residual, eta, t_hat)
        fits["kernel ridge, lam = 1/(eta T_hat)"] = run.f0 + stopping.kernel_ridge_fit(
            run.kernel, residual, ridge)
    fit_quality = {name: {"train_mse": float(np.mean((f - run.labels) ** 2)),
                          "train_accuracy": float(np.mean(np.sign(f) == run.labels))}
                   for name, f in fits.items()}
    result = {
        "run": str(run.path), "n": run.n,
        "lambda_max": float(eigs[0]), "max_step_size": max_eta,
        "step_size": eta, "learning_rate": lr, "loss": loss,
        "lr_to_eta": f"eta = {factor:g} * lr (loss {loss}; K/n scaling, f_t+1 = f_t - eta K/n "
                     "(f_t - y))",
        "sigma": {"used": sigma_used, "estimate": noise.sigma, "override": sigma,
                  "gcv_ridge": noise.ridge, "degrees_of_freedom": noise.degrees_of_freedom},
        "radius": {"used": radius_used, "estimate": radius_estimate, "override": radius,
                   "ridge": noise.ridge},
        "stopping_time": t_hat,
        "bootstrap": {"method": "residual bootstrap, design fixed", "n_boot": n_boot,
                      "seed": seed, "ci_level": 0.95,
                      "stopping_time_ci": [t_low, t_high],
                      "epochs_ci": [t_low * batch_size / run.n, t_high * batch_size / run.n],
                      "sigma_ci": np.quantile(boot.sigmas, [0.025, 0.975]),
                      "radius_ci": np.quantile(boot.radii, [0.025, 0.975])},
        "critical_radius": eps_n,
        "error_bound_scale": radius_used**2 * eps_n**2,
        "schedule": {"full_batch_steps": schedule.full_batch_steps,
                     "minibatch_steps": schedule.minibatch_steps,
                     "batch_size": schedule.batch_size, "epochs": schedule.epochs,
                     "note": "one epoch = n/B minibatch steps ~ n/B full-batch steps of the "
                             "same lr (SGD noise ignored)"},
        "equivalent_ridge": ridge,
        "effective_dimension_at_ridge": (float(effective_dimension(eigs, ridge))
                                         if ridge else None),
        "fits": fit_quality,
        "sensitivity": {"sigma_factors": list(SENSITIVITY_FACTORS),
                        "radius_factors": list(SENSITIVITY_FACTORS),
                        "sigmas": sigmas, "radii": radii, "stopping_time": table,
                        "epochs": table * batch_size / run.n},
    }
    runs.write_json(run.path / runs.STOP_FILE, result)
    _print_stop(result)


def _print_stop(result: dict) -> None:
    summary = Table(title=f"early stopping for {result['run']} (n = {result['n']})")
    summary.add_column("quantity")
    summary.add_column("value")
    boot = result["bootstrap"]
    rows = (
        ("step size eta (lr)", f"{result['step_size']:.4g} ({result['learning_rate']:.4g})"),
        ("sigma (estimate)", f"{result['sigma']['used']:.4g} ({result['sigma']['estimate']:.4g})"),
        ("radius R (estimate)",
         f"{result['radius']['used']:.4g} ({result['radius']['estimate']:.4g})"),
        ("T_hat full-batch steps (95% CI)",
         f"{result['stopping_time']} [{boot['stopping_time_ci'][0]:.0f}, "
         f"{boot['stopping_time_ci'][1]:.0f}]"),
        ("epochs at batch size " + str(result["schedule"]["batch_size"]),
         f"{result['schedule']['epochs']:.3g}"),
        ("critical radius eps_n", f"{result['critical_radius']:.4g}"),
        ("equivalent ridge 1/(eta T_hat)", f"{result['equivalent_ridge']:.4g}"
         if result["equivalent_ridge"] else "none (T_hat = 0: keep f_0)"),
    )
    for key, value in rows:
        summary.add_row(key, value)
    for name, quality in result["fits"].items():
        summary.add_row(f"train MSE / acc: {name}",
                        f"{quality['train_mse']:.4g} / {quality['train_accuracy']:.3f}")
    _out.print(summary)
    sens = result["sensitivity"]
    grid = Table(title="T_hat over sigma (rows) and R (columns), as factors of the values used")
    grid.add_column("sigma \\ R")
    for f in sens["radius_factors"]:
        grid.add_column(f"x{f:g}")
    for f, row in zip(sens["sigma_factors"], sens["stopping_time"], strict=True):
        grid.add_row(f"x{f:g}", *[str(int(v)) for v in row])
    _out.print(grid)
    _out.print(f"wrote {Path(result['run']) / runs.STOP_FILE}")


# finetune, rates, taskvec and report (NTK part 2) join this group from their own module
from transferscope.ntk.cli_experiments import app as _experiments  # noqa: E402

app.registered_commands += _experiments.registered_commands

"""``transferscope ntk ...``: parse the options, call one library function, print the result.

Each command builds its config (declared and checked in :mod:`transferscope.ntk.options`)
and calls its one entry point in the package's public API (``transferscope.ntk``, loaded
lazily): ``run_kernel``, ``run_spectrum``, ``run_stop``, ``run_finetune``, ``run_rates``,
``run_taskvec``, ``run_report``, ``run_validation``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import transferscope.ntk as ntk
from transferscope.core.command_group import CommandGroup
from transferscope.core.params import FROM_OPTIONS, OptionGroup, declarations, option, with_groups
from transferscope.ntk import (
    DataSource,
    FinetuneOptions,
    KernelOptions,
    RatesOptions,
    SpectrumOptions,
    StopOptions,
    TaskVectorOptions,
)
from transferscope.ntk.options import Device

app = typer.Typer(
    cls=CommandGroup,
    help="Empirical NTK of a pretrained LM at its pretrained weights, its "
    "eigen-decay, and the data-dependent early-stopping time.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

RunDirArg = Annotated[Path, typer.Argument(help="Run directory written by 'ntk kernel'.")]
ModelOpt = Annotated[str, typer.Option(help="smollm2, minilm, or a local HF dir / .gguf.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Directory for the results.")]


def _device() -> Any:
    return option(KernelOptions, "device")


# the data source's options (a built-in task or the user's file), composed into each command
_SOURCE = OptionGroup(owner=DataSource, flags={"data_file": "--data"})


def _table(title: str, rows) -> Table:
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, str(value))
    return table


@app.command()
@with_groups(source=_SOURCE, options=OptionGroup(owner=KernelOptions))
def kernel(
    out: Annotated[Path, typer.Option("--out", help="Run directory to write.")],
    model: Annotated[str, typer.Option(help="smollm2, minilm, or a local HF dir / .gguf.")
                     ] = "smollm2",
    source: DataSource = FROM_OPTIONS,
    options: KernelOptions = FROM_OPTIONS,
) -> None:
    """Compute the eNTK of f = logit(word+) - logit(word-) at the pretrained weights."""
    run = ntk.run_kernel(ntk.KernelConfig(out=out, model=model, source=source, options=options))
    s = run.summary
    _out.print(_table(f"eNTK run {out}", (
        ("model", model), ("examples", f"{run.n} from {run.meta['source']}"),
        ("parameters", f"{options.params} ({s['n_params']:,})"),
        ("mode", options.mode + (f" (rel. error <= {s['error_bound']:.3g})"
                         if s["error_bound"] is not None else "")),
        ("seconds", f"{s['seconds']:.1f}" + (" (cache)" if s["from_cache"] else "")),
        ("zero-shot accuracy of f_0", f"{run.zero_shot_accuracy:.3f}"),
        ("trace of K/n", f"{run.mean_diagonal:.4g}"))))


@app.command()
@with_groups(options=OptionGroup(owner=SpectrumOptions))
def spectrum(
    run_dir: RunDirArg,
    options: SpectrumOptions = FROM_OPTIONS,
) -> None:
    """Eigenvalues of K/n, polynomial and exponential decay fits, implied rate, figure."""
    done = ntk.run_spectrum(ntk.SpectrumConfig(run_dir=run_dir, options=options))
    ci = options.ci
    analysis, (lo, hi) = done.analysis, done.index_range
    table = Table(title=f"spectrum of K/n, n = {analysis.n}, fit indices {lo}..{hi}")
    for col in ("model", "rate", f"{ci:.0%} CI", "R^2 (log)", "eigenvalues used",
                "implied rate"):
        table.add_column(col)
    for fit in analysis.fits.values():
        table.add_row(fit.model + (" *" if fit is analysis.preferred else ""),
                      f"{fit.rate:.4g}", f"[{fit.ci_low:.4g}, {fit.ci_high:.4g}]",
                      f"{fit.r_squared:.4f}", str(fit.eigenvalues_used),
                      fit.to_dict()["implied_rate"])
    _out.print(table)
    _out.print(f"wrote {done.json_path} and {done.figure_path}")


@app.command()
@with_groups(options=OptionGroup(owner=StopOptions))
def stop(
    run_dir: RunDirArg,
    options: StopOptions = FROM_OPTIONS,
) -> None:
    """How many steps to fine-tune: the recommended rule's steps with their range, every
    other rule beside it, what to set."""
    r = ntk.run_stop(ntk.StopConfig(run_dir=run_dir, options=options))
    a, s = r.recommendation, r.schedule
    low, high = a.steps_ci
    rows = [
        (f"RECOMMENDED full-batch steps ({a.rule})",
         f"{a.steps} (epochs at batch size {s.batch_size}: {s.epochs:.3g})"),
        ("  range (steps_ci, from the CV curve)",
         f"{low} .. {high} ({a.range.decades:.1f} decades; epochs {r.epochs(low):.3g} .. "
         f"{r.epochs(high):.3g})"),
        ("  use", str(a.safe_steps) + ("" if a.decided else
                                        " (the low end: the range is too wide to decide)")),
        *[(f"  rule {name} (point value)", str(t)) for name, t in a.rules.items()
          if name != a.rule],
    ]
    if a.growth is not None:
        g = a.growth
        rows.append((f"steps for N = {g.n_total} ({g.level:.0%} interval)",
                     f"{g.steps} [{g.steps_ci[0]}, {g.steps_ci[1]}], epochs {g.epochs:.3g} "
                     f"[{g.epochs_ci[0]:.3g}, {g.epochs_ci[1]:.3g}]; growth exponent "
                     f"{g.exponent:.2f} [{g.exponent_ci[0]:.2f}, {g.exponent_ci[1]:.2f}] "
                     f"measured on subsamples {g.sizes}"))
    rows += [
        ("step size eta (lr)", f"{r.step_size:.4g} ({r.learning_rate:.4g})"),
        ("sigma: rule rwy / rwy-gcv (GCV)", f"{a.sigma:.4g}"
         + (" (given)" if options.sigma is not None else "") + f" / {a.sigma_gcv:.4g}"),
        ("radius R: rule rwy / rwy-gcv (ridge)", f"{a.radius:.4g}"
         + (" (given)" if options.radius is not None else "") + f" / {a.radius_ridge:.4g}"),
        ("critical radius eps_n (rule rwy's sigma, R)", f"{r.critical_radius:.4g}"),
        ("equivalent ridge 1/(eta steps)", f"{r.equivalent_ridge:.4g}"
         if r.equivalent_ridge else "none (0 steps: keep f_0)"),
    ]
    rows += [(f"train MSE / acc: {name}", f"{q['train_mse']:.4g} / {q['train_accuracy']:.3f}")
             for name, q in r.fits.items()]
    _out.print(_table(f"early stopping for {r.run} (n = {r.n})", rows))
    for warning in a.warnings:
        _err.print(f"warning: {warning}")
    _out.print(a.advice())
    _out.print(f"wrote {r.json_path} and {r.run / 'residual_spectrum.png'}")


@app.command("finetune")
@with_groups(source=_SOURCE, options=OptionGroup(owner=FinetuneOptions))
def finetune(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    source: DataSource = FROM_OPTIONS,
    options: FinetuneOptions = FROM_OPTIONS,
) -> None:
    """Fine-tune S for real; log train/held-out loss and accuracy every step next to the
    closed-form kernel trajectory, T_hat and the held-out-optimal step. Resumes from --out."""
    s = ntk.run_finetune(ntk.FinetuneConfig(out=out, model=model, source=source,
                                            options=options))
    regime = s.kernel.regime_steps if s.kernel is not None else "n/a"
    _err.print(f"T_hat = {s.t_hat}, held-out optimum (real) = {s.best_step_real}, "
               f"kernel regime held for {regime} of {options.steps} steps; "
               f"wrote {out / 'finetune.json'}")


@app.command("rates")
@with_groups(source=_SOURCE, options=OptionGroup(owner=RatesOptions))
def rates(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    source: DataSource = FROM_OPTIONS,
    options: RatesOptions = FROM_OPTIONS,
) -> None:
    """Held-out error at T_hat and at the optimum against n, slope vs -alpha/(alpha+1)."""
    result = ntk.run_rates(ntk.RatesConfig(out=out, model=model, source=source, options=options))
    slope, implied = result.slope, result.implied_slope
    _err.print(f"slope {slope['slope']:.3f} [{slope['ci_low']:.3f}, {slope['ci_high']:.3f}] vs "
               + (f"implied {implied:.3f}" if implied is not None else "no implied rate (n < 9)")
               + f"; wrote {result.json_path}")


@app.command("taskvec")
@with_groups(data=OptionGroup(
    owner=DataSource, names=tuple(n for n in declarations(DataSource) if n != "task"),
    flags=_SOURCE.flags, help={"data_file": "CSV/TSV/JSONL file: the first task, whose "
                               "--template and --label-words prompt all."}),
             options=OptionGroup(owner=TaskVectorOptions))
def taskvec(
    out: OutOpt,
    model: ModelOpt = "smollm2",
    data: DataSource = FROM_OPTIONS,
    options: TaskVectorOptions = FROM_OPTIONS,
) -> None:
    """Task vectors from real fine-tuning; addition/negation, real vs linearised accuracy."""
    result = ntk.run_taskvec(ntk.TaskVectorConfig(
        out=out, model=model, data=None if data.data_file is None else data, options=options))
    c = result.correlation
    _err.print(f"alignment vs interference: r = {c['r']:.3f} [{c['ci_low']:.3f}, "
               f"{c['ci_high']:.3f}] over {c['points']} pairs; wrote {result.json_path}")


@app.command("report")
@with_groups(source=_SOURCE)
def report(
    out: OutOpt,
    quick: Annotated[bool, typer.Option("--quick/--full", help="Profile (see "
                                        "transferscope.ntk.experiments.profiles).")] = True,
    model: ModelOpt = "smollm2",
    source: DataSource = FROM_OPTIONS,
    device: Device = _device(),
) -> None:
    """Run finetune, rates (with mixed init) and taskvec under a profile; write index.html.
    --data replaces the task of finetune and rates; task vectors use the built-in tasks."""
    done = ntk.run_report(ntk.ReportConfig(
        out=out, profile="quick" if quick else "full", model=model,
        source=source,
        device=device))
    _err.print(f"wrote {done.html_path}")


@app.command("validate")
@with_groups(source=_SOURCE)
def validate(
    out: OutOpt,
    quick: Annotated[bool, typer.Option("--quick/--full", help="Profile: quick (192-example "
                                        "pool, 2 real runs; minutes on 2 CPUs) or full.")] = True,
    model: ModelOpt = "smollm2",
    source: DataSource = FROM_OPTIONS,
    device: Device = _device(),
    real_splits: int | None = option(ntk.ValidateConfig, "real_splits"),
    params: str | None = option(ntk.ValidateConfig, "params"),
) -> None:
    """Every stopping rule and fixed-step baseline against planted truths and real held-out
    optima: excess risk, distance from the optimum, the range's coverage; the default rule is
    chosen on a development pool and reported on a separate evaluation pool."""
    config = ntk.ValidateConfig(
        out=out, profile="quick" if quick else "full", model=model,
        source=source,
        device=device, real_splits=real_splits, params=params)
    done = ntk.run_validation(config)
    result, chosen = done.summary, done.chosen_on_development
    _out.print(f"default rule {done.default_rule}; chosen on the development pool: "
               f"{chosen['rule']} ({chosen['why']})")
    for half in ("planted", "held_out"):
        table = Table(title=f"evaluation pool, {half}: excess risk (e(T) - e_opt)/(e_0 - e_opt)")
        for col in ("rule", "problems (T_opt=0)", "median [95% CI]", "90th pct",
                    "|log10 T/T_opt|", "within 2x", "range covers"):
            table.add_column(col)
        for row in result["evaluation"][half]["overall"]:
            lo, hi = row["median_excess_ci"]
            table.add_row(row["rule"], f"{row['problems']} ({row['t_opt_zero']})",
                          f"{row['median_excess']:.3f} [{lo:.3f}, {hi:.3f}]",
                          f"{row['p90_excess']:.3f}", f"{row['median_log10']:.2f}",
                          f"{row['within_2x']:.2f}",
                          "-" if row["coverage"] is None else f"{row['coverage']:.2f}")
        _out.print(table)
    _out.print(f"wrote {done.json_path} and {done.markdown_path}")

"""``ntk validate``: every stopping rule against planted truths and real held-out optima.

One real eNTK over a pool of labelled examples (a built-in task or the user's file, cached by
the engine) feeds both halves of :mod:`transferscope.ntk.rule_scores`: (a) planted targets on the
synthetic spectra and on this kernel, (b) random training splits of the pool with the rest held
out. Writes ``validate.json`` and ``validate.md`` (the share-captured tables).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from transferscope.core.errors import InputError, input_error
from transferscope.core.io import atomic_write_bytes, write_json
from transferscope.core.outdir import claim_output
from transferscope.core.progress import step_progress
from transferscope.ntk import data as ntk_data
from transferscope.ntk import rule_scores
from transferscope.ntk.device import resolve_device
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.experiments.tail_training import tail_gradient_descent, trained_blocks
from transferscope.ntk.options import ValidateConfig
from transferscope.ntk.pipeline import load_examples
from transferscope.ntk.recommend import DEFAULT_RULE, RULES, recommend_stop, trajectory_errors
from transferscope.ntk.task import PromptTask, check_template


@dataclass(kw_only=True, frozen=True)
class ValidationProfile:
    """Sizes of both halves: >= 100 planted problems, >= 10 splits per n."""

    params: str
    pool: int
    held_out_sizes: tuple[int, ...]
    splits: int
    planted_sizes: tuple[int, ...]
    repeats: int
    real_splits: int  # splits of the smallest n also fine-tuned for real
    real_max_steps: int  # the real run's horizon: 2 x the kernel's optimum, at most this
    seed: int = 0


VALIDATION_PROFILES = {
    "quick": ValidationProfile(params="attention@last-1", pool=128, held_out_sizes=(32, 64),
                               splits=10, planted_sizes=(64,), repeats=4, real_splits=0,
                               real_max_steps=1000),
    "full": ValidationProfile(params="attention@last-1", pool=256,
                              held_out_sizes=(32, 64, 128, 192), splits=20, planted_sizes=(64, 128),
                              repeats=4, real_splits=0, real_max_steps=3000),
}
HORIZON_FACTOR = 2  # a real run goes to 2x the kernel trajectory's held-out optimum
DEV_SEED = 100  # planted problems of the development pool (the evaluation pool: profile seed)
GROWTH_SEED = 200  # planted problems of the --n-total check (the level was set on seeds 0, 1)


def _fmt(x: float | None) -> str:
    return "-" if x is None else ("n/a" if not np.isfinite(x) else f"{x:.3f}")


def _markdown(title: str, rows: list[dict], group: str | None, default: str) -> list[str]:
    head = ([group] if group else []) + [
        "rule", "problems (T_opt = 0)", "median excess risk [95% CI]", "90th pct excess",
        "median abs log10(T/T_opt)", "within 2x", "range covers T_opt", "median share",
        "median steps", "median T_opt"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lo, hi = r["median_excess_ci"]
        name = r["rule"] + (" (default)" if r["rule"] == default else "")
        cells = ([str(r[group])] if group else []) + [
            name, f"{r['problems']} ({r['t_opt_zero']})",
            f"{_fmt(r['median_excess'])} [{_fmt(lo)}, {_fmt(hi)}]", _fmt(r["p90_excess"]),
            _fmt(r["median_log10"]), _fmt(r["within_2x"]),
            "-" if r["coverage"] is None else f"{r['coverage']:.3f} ({r['undecided']} wide)",
            _fmt(r["median_share"]), f"{r['median_steps']:.0f}", f"{r['median_t_opt']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def _pools(examples, pool_n: int, seed: int):
    """Development pool (the balanced sample of ``seed``) and a disjoint evaluation pool of the
    same size from the remaining examples (or as many as remain, balanced)."""
    dev = ntk_data.sample_examples(examples.data, pool_n, seed)
    taken = set(dev.texts)
    keep = [i for i, t in enumerate(examples.data.texts) if t not in taken]
    rest = ntk_data.LabeledTexts(texts=tuple(examples.data.texts[i] for i in keep),
                                 targets=examples.data.targets[keep],
                                 class_names=examples.data.class_names,
                                 source=examples.data.source)
    size = min(pool_n, ntk_data.balanced_capacity(rest))
    return dev, ntk_data.sample_examples(rest, size - size % 2, seed + 1)


@dataclass(kw_only=True, frozen=True)
class ValidationRun:
    """A finished ``ntk validate``: what ``validate.json`` holds and where it was written."""

    summary: dict  # the content of validate.json
    json_path: Path
    markdown_path: Path

    @property
    def default_rule(self) -> str:
        return self.summary["default_rule"]

    @property
    def chosen_on_development(self) -> dict:
        """The rule the development pool chose and why."""
        return self.summary["chosen_on_development"]


def run_validation(config: ValidateConfig, progress: bool = True) -> ValidationRun:
    """Both halves under ``config.profile`` with the model on ``config.device`` on a
    development pool and a separate evaluation pool; writes ``validate.json`` and
    ``validate.md`` into ``config.out``. The default rule is chosen on the development pool
    (planted seed ``DEV_SEED`` + held-out splits of the first sample) and reported on the
    evaluation pool. ``config.real_splits`` overrides the profile's number of splits
    fine-tuned for real (0: none, the slowest part); ``config.params`` the parameter set."""
    profile, model, source, device = config.profile, config.model, config.source, config.device
    params, real_splits = config.params, config.real_splits
    resolve_device(device)
    prof = VALIDATION_PROFILES[profile]
    if real_splits is not None:
        prof = replace(prof, real_splits=real_splits)
    if params is not None:
        prof = replace(prof, params=params)
    out = Path(config.out)
    started = time.time()
    examples = load_examples(source)
    check_template(examples.template)
    capacity = ntk_data.balanced_capacity(examples.data)
    pool_n = min(prof.pool, capacity // 2 - (capacity // 2) % 2)
    sizes = tuple(n for n in prof.held_out_sizes if n <= pool_n - 8)
    if not sizes and pool_n - 8 >= 8:  # a small file: the largest n that leaves 8 held out
        sizes = (pool_n - 8,)
    if not sizes:
        raise input_error("--data", "rows", len(examples.data),
                          "at least 32 labelled examples, balanced (a development and an "
                          "evaluation pool of 16, each with 8 held out)")
    dev_sample, eval_sample = _pools(examples, pool_n, prof.seed)
    claim_output(out)
    task = PromptTask(examples.template, list(examples.label_words), model=model,
                      device=device)
    halves = {}
    for role, sample, planted_seed in (("development", dev_sample, DEV_SEED),
                                       ("evaluation", eval_sample, prof.seed)):
        texts = list(sample.texts)
        kernel = task.kernel(texts, parameter_spec(task, prof.params), progress=progress).kernel
        f0 = task.outputs(texts).astype(np.float64)
        y = sample.targets.astype(np.float64)
        name = f"{model} eNTK"
        n_planted = (len(rule_scores.SPECTRA) + 1) * len(prof.planted_sizes) * 4 * prof.repeats
        with step_progress(f"planted truths ({role})", n_planted, progress) as advance:
            planted = rule_scores.planted_truths({name: kernel}, prof.planted_sizes,
                                              repeats=prof.repeats, seed=planted_seed,
                                              progress=advance)
        with step_progress(f"held-out splits ({role})", len(sizes) * prof.splits,
                           progress) as advance:
            held = rule_scores.held_out_truths(kernel, f0, y, sizes, prof.splits, planted_seed,
                                            progress=advance)
        halves[role] = {"sample": sample, "kernel": kernel, "f0": f0, "y": y,
                        "planted": planted, "held": held,
                        "pool": f"{len(sample)} examples of {sample.source} "
                                f"(balanced sample, seed {prof.seed if role == 'development' else prof.seed + 1}"
                                f"{'' if role == 'development' else ', disjoint from the development pool'}); "
                                f"planted problems seed {planted_seed}"}
    growth_sizes = {"quick": (), "full": ((32, 2), (64, 1))}[profile]  # quick: not run
    with step_progress("--n-total against planted truths at N = 4n",
                       sum(16 * r for _, r in growth_sizes), progress) as advance:
        growth_rows = [row for n_g, reps in growth_sizes
                       for row in rule_scores.growth_truths(n=n_g, repeats=reps,
                                                         seed=GROWTH_SEED + n_g,
                                                         progress=advance)]
    chosen, why = rule_scores.choose_default(halves["development"]["planted"]
                                          + halves["development"]["held"])
    ev = halves["evaluation"]
    real = real_finetuning_truths(task, prof, ev["sample"], ev["kernel"], ev["f0"], ev["y"],
                                  ev["held"], progress)
    command = f"transferscope ntk validate --{profile} --model {model}" + (
        f" --params {params}" if params is not None else "") + (
        f" --real-splits {real_splits}" if real_splits is not None else "") + (
        f" --data {source.data_file} --text-col {source.text_col} --label-col "
        f"{source.label_col} --template '{examples.template}' --label-words "
        f"'{','.join(examples.label_words)}'" if source.data_file is not None
        else f" --task {source.task or 'sentiment-words'}") + f" --out {out}"

    def tables(half: dict) -> dict:
        return {"planted": {"overall": rule_scores.share_table(half["planted"]),
                            "by_source": rule_scores.share_table(half["planted"], "source"),
                            "by_n": rule_scores.share_table(half["planted"], "n"),
                            "by_signal": rule_scores.share_table(half["planted"], "signal"),
                            "recovery": rule_scores.recovery_table(half["planted"]),
                            "problems": [asdict(o) for o in half["planted"]]},
                "held_out": {"overall": rule_scores.share_table(half["held"]),
                             "by_n": rule_scores.share_table(half["held"], "n"),
                             "splits": [asdict(o) for o in half["held"]]},
                "pool": half["pool"]}

    result = {
        "command": command,
        "profile": profile, "settings": asdict(prof), "model": model,
        "source": dev_sample.source, "template": examples.template,
        "label_words": list(examples.label_words), "pool": pool_n,
        "held_out_sizes": list(sizes), "rules": list(RULES), "default_rule": DEFAULT_RULE,
        "chosen_on_development": {"rule": chosen, "why": why,
                                  "agrees_with_default": chosen == DEFAULT_RULE},
        "metrics": "excess risk = (e(T) - e(T_opt)) / (e(0) - e(T_opt)), the gain floored at "
                   f"{rule_scores.GAIN_FLOOR:g} e(0) (problems with T_opt = 0 included); "
                   "abs log10((T+1)/(T_opt+1)); within 2x = that at most log10(2); range "
                   "covers T_opt = steps_ci contains T_opt; e = error of the kernel trajectory "
                   "(planted: against f* on the training points; real: held-out squared "
                   "error)",
        "development": tables(halves["development"]),
        "evaluation": tables(ev),
        "real_finetuning": real,
        "growth": {"rows": growth_rows, "by_n": [
            {"n": n_g, "problems": sum(r["n"] == n_g for r in growth_rows),
             "covered": sum(r["covered"] for r in growth_rows if r["n"] == n_g),
             "median_decades": float(np.median([r["decades"] for r in growth_rows
                                                if r["n"] == n_g]))}
            for n_g, _ in growth_sizes]},
        "seconds": time.time() - started,
    }
    # the evaluation pool's tables under the old keys (what the summaries read)
    result["planted"], result["held_out"] = result["evaluation"]["planted"], result[
        "evaluation"]["held_out"]
    write_json(out / "validate.json", result)
    atomic_write_bytes(out / "validate.md", validation_markdown(result).encode())
    return ValidationRun(summary=result, json_path=out / "validate.json",
                         markdown_path=out / "validate.md")


def real_finetuning_truths(task: PromptTask, prof: ValidationProfile, sample, kernel: np.ndarray,
                           f0: np.ndarray, y: np.ndarray, held: list[rule_scores.Outcome],
                           progress: bool = True) -> dict:
    """Part (b) with real fine-tuning: the first ``prof.real_splits`` splits of the smallest n,
    trained for real (full batch, the rules' lr, half squared loss) to ``HORIZON_FACTOR`` times
    the kernel trajectory's held-out optimum (at most ``prof.real_max_steps``); each rule's
    share of the real held-out improvement. A model whose trained set cannot be split off
    (tail_training) is reported as not run, with the reason."""
    if prof.real_splits == 0:
        return {"run": False, "reason": "--real-splits 0"}
    n = min(o.setting["n"] for o in held)
    chosen = [o for o in held if o.setting["n"] == n][:prof.real_splits]
    try:
        trained_blocks(task, prof.params)
    except InputError as exc:
        return {"run": False, "reason": str(exc)}
    outcomes = []
    for o in chosen:
        train = np.array(o.setting["train"])
        test = np.setdiff1d(np.arange(y.size), train)
        k_tr = kernel[np.ix_(train, train)]
        lr = recommend_stop(k_tr, y[train], f0[train], seed=o.setting["split"]).lr
        horizon = int(min(prof.real_max_steps, max(64, HORIZON_FACTOR * o.t_opt)))
        with step_progress(f"real fine-tuning, split {o.setting['split']} (n = {n})",
                           horizon, progress) as advance:
            run = tail_gradient_descent(task, prof.params, [sample.texts[i] for i in train],
                                        y[train], [sample.texts[i] for i in test], y[test], lr,
                                        horizon, progress=lambda done, total: advance())
        evals, evecs = np.linalg.eigh(0.5 * (k_tr + k_tr.T) / n)
        kernel_errors = trajectory_errors(np.clip(evals, 0, None), evecs, y[train] - f0[train],
                                          lr, run.steps, kernel[np.ix_(test, train)],
                                          y[test] - f0[test])
        outcomes.append(rule_scores.real_curve_outcome(o, run.steps, run.test_errors,
                                                    kernel_errors, run.seconds))
    return {"run": True, "n": n, "lr": "the rules' lr = 1/max K(x,x) of each split",
            "horizon": f"{HORIZON_FACTOR} x the kernel trajectory's held-out optimum, "
                       f"at least 64 and at most {prof.real_max_steps} steps",
            "method": "real full-batch gradient descent on the half squared loss over "
                      f"{prof.params}; the frozen blocks below run once (tail_training)",
            "reached": sum(o.setting["reached"] for o in outcomes),
            "overall": rule_scores.share_table(outcomes),
            "splits": [asdict(o) for o in outcomes]}


def validation_markdown(result: dict) -> str:
    """The tables of a validation result: development pool (where the default was chosen)
    first, evaluation pool (where it is reported) second."""
    p = result["settings"]
    d = result["default_rule"]
    c = result["chosen_on_development"]
    lines = [
        f"# Stopping rules against planted and held-out truths ({result['profile']} profile)",
        "", f"Metrics: {result['metrics']}.", "",
        f"Default rule: `{d}`. Chosen on the development pool: `{c['rule']}` ({c['why']})"
        + ("" if c["agrees_with_default"] else
           f" -- it DIFFERS from the default `{d}` on this data") + ".",
        "", f"Real kernel: {result['model']} eNTK over {p['params']}. Fixed-step baselines: "
        "fixed-100, fixed-1000, fixed-10000 at the same lr. `safe` = the stop a user is told to "
        "use (the recommended step, or the low end of its range when the range spans more than "
        "two decades). `rwy-oracle` = RWY with the planted sigma and R. Median CIs: 95% "
        "percentile bootstrap over problems/splits.", "",
        f"Made with: `{result['command']}`", ""]
    for role in ("development", "evaluation"):
        half = result[role]
        lines += [f"## {role.capitalize()} pool: {half['pool']}", "",
                  f"### (a) Planted truths: {len(half['planted']['problems'])} problems (n in "
                  f"{p['planted_sizes']}, sigma in (0.5, 2), R in (0.5, 2), {p['repeats']} "
                  "repeats)", ""]
        lines += _markdown("All planted problems", half["planted"]["overall"], None, d)
        if role == "evaluation":
            lines += _markdown("By kernel", half["planted"]["by_source"], "source", d)
            lines += _markdown("By n", half["planted"]["by_n"], "n", d)
        lines += [f"### (b) Real held-out truth: {p['splits']} random splits per n, rest held "
                  "out", ""]
        lines += _markdown("All splits", half["held_out"]["overall"], None, d)
        lines += _markdown("By n", half["held_out"]["by_n"], "n", d)
    ev = result["evaluation"]["planted"]
    lines += ["### Estimates over planted values, evaluation pool (median [10th, 90th pct])",
              "", "| source | estimate | median | 10th | 90th |", "|---|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['estimate']} | {r['median']:.3f} | {r['p10']:.3f} | "
              f"{r['p90']:.3f} |" for r in ev["recovery"]]
    lines += ["", "## --n-total against planted truths at N = 4n", "",
              "Not run in the quick profile (see the full profile's report)."
              if not result["growth"]["rows"] else "",
              "The user sees n of the N = 4n points of a planted problem (the four synthetic "
              "spectra, sigma and R in (0.5, 2)); the truth is the oracle step on all N at the "
              "user's lr; the interval is `estimate_growth`'s.", "",
              "| n | N | problems | interval covers the truth | median width (decades) |",
              "|---|---|---|---|---|"]
    lines += [f"| {g['n']} | {4 * g['n']} | {g['problems']} | {g['covered']} "
              f"({g['covered'] / max(g['problems'], 1):.0%}) | {g['median_decades']:.2f} |"
              for g in result["growth"]["by_n"]]
    lines += [""]
    lines += _real_markdown(result["real_finetuning"], d)
    lines += [f"Run time: {result['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _real_markdown(real: dict, default: str) -> list[str]:
    """Section (b, real): the shares on real fine-tuning curves and, per split, whether the
    run passed its held-out optimum within its horizon."""
    if not real.get("run"):
        return [f"Real fine-tuning: not run ({real.get('reason', 'no reason given')}); the "
                "held-out optimum above is that of the kernel trajectory.", ""]
    splits = real["splits"]
    lines = [f"## (b, real) Real fine-tuning: {len(splits)} splits of n = {real['n']}", "",
             f"Method: {real['method']}. Step size: {real['lr']}. Horizon: {real['horizon']}. "
             f"The real held-out optimum was passed (the error rose again before the horizon) "
             f"in {real['reached']} of {len(splits)} runs; where it was not, T_opt below is "
             "the horizon, the true optimum lies later and lower, so that run's shares are "
             "upper bounds. A rule's step past the horizon is scored with the error at the "
             "horizon.", ""]
    lines += _markdown("Real held-out curves", real["overall"], None, default)
    lines += ["| split | horizon | passed the optimum | real T_opt | kernel T_opt (same grid) "
              "| max gap real vs kernel error | rules past the horizon | seconds |",
              "|---|---|---|---|---|---|---|---|"]
    for o in splits:
        st = o["setting"]
        lines.append(f"| {st['split']} | {st['horizon']} | {'yes' if st['reached'] else 'NO'} "
                     f"| {o['t_opt']} | {st['kernel_t_opt_on_grid']} | "
                     f"{st['max_relative_gap']:.3f} | {', '.join(st['beyond_horizon']) or '-'} "
                     f"| {st['seconds']:.0f} |")
    return lines + [""]

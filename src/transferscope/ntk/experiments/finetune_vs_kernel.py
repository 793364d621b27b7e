"""Real fine-tuning next to what the kernel predicts: ``T_hat``, the closed-form trajectory,
and how long the network stays in the kernel regime.

The training set is the first ``n`` candidates of a :class:`KernelPool`, the held-out set its
fixed tail, so the kernel the prediction uses is a sub-matrix of the pool's. The step is a
fraction of ``1 / lambda_max(K/n)`` (the largest stable one); sigma and R are the usual
estimates (GCV ridge, ridge radius) on the training residual ``y - f_0``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from transferscope.core.io import write_json
from transferscope.core.outdir import claim_output
from transferscope.core.progress import progress_bar
from transferscope.ntk import stopping
from transferscope.ntk.device import resolve_device
from transferscope.ntk.dynamics import kernel_gd
from transferscope.ntk.experiments.finetune import (
    FinetuneResult,
    KernelComparison,
    TrainingConfig,
    compare_with_kernel,
    finetune,
)
from transferscope.ntk.experiments.pool import KernelPool, builtin_prompt_task, kernel_pool
from transferscope.ntk.options import DEFAULT_FINETUNE_N as DEFAULT_N
from transferscope.ntk.options import FinetuneConfig, FinetuneOptions
from transferscope.ntk.pipeline import source_task
from transferscope.ntk.recommend import recommend_stop, step_grid, trajectory_errors
from transferscope.ntk.rule_scores import share_captured
from transferscope.ntk.spectrum import kernel_eigenvalues
from transferscope.ntk.task import PromptTask

RESULT_FILE = "finetune.json"
RUN_SUBDIR = "finetune-run"


@dataclass(kw_only=True, frozen=True)
class FinetuneComparison:
    """One real fine-tuning run, the kernel's prediction for it, and their comparison.

    ``kernel`` is None for cross-entropy or minibatches, which have no closed-form trajectory.
    """

    options: FinetuneOptions
    n_test: int
    source: str
    learning_rate: float
    step_size: float
    lambda_max: float
    sigma: float
    radius: float
    t_hat: int
    rule: str
    rules: dict[str, int]
    run: FinetuneResult
    kernel: KernelComparison | None
    linear_train_loss: np.ndarray | None
    long_horizon: dict  # the kernel trajectory's held-out optimum over HORIZON steps

    @property
    def best_step_real(self) -> int:
        return self.run.best_step()

    def to_dict(self) -> dict:
        """What ``finetune.json`` holds (and the report and figures read)."""
        o = self.options
        out: dict[str, Any] = {"n": o.n, "n_test": self.n_test, "params": o.params, "seed": o.seed,
               "loss": o.loss, "lr_fraction": o.lr_fraction, "learning_rate": self.learning_rate,
               "step_size": self.step_size, "lambda_max": self.lambda_max, "sigma": self.sigma,
               "radius": self.radius, "t_hat": self.t_hat, "rule": self.rule,
               "rules": self.rules, "best_step_real": self.best_step_real,
               "history": self.run.history, "resumed_from": self.run.resumed_from,
               "seconds": self.run.seconds, "source": self.source,
               "long_horizon": self.long_horizon}
        if self.kernel is not None:
            c = self.kernel
            out |= {"best_step_linear": c.best_step_linear, "regime_steps": c.regime_steps,
                    "regime_tolerance": c.tolerance, "relative_distance": c.relative_distance,
                    "linear_test_loss": c.linear_test_loss,
                    "linear_train_loss": self.linear_train_loss}
        return out


def long_horizon(pool: KernelPool, train_idx: np.ndarray, test_idx: np.ndarray, eta: float,
                 rules: dict[str, int], *,
                 eig: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Where the real run's few steps cannot reach: the kernel trajectory's held-out error
    on a log grid up to ``HORIZON`` steps, its optimum, and each rule's share of the
    improvement that optimum achieves (rule_scores.share_captured)."""
    evals, evecs = eig if eig is not None else stopping.eig_kn(
        pool.kernel[np.ix_(train_idx, train_idx)])
    grid = step_grid()
    errors = trajectory_errors(evals, evecs,
                               pool.sample.targets[train_idx] - pool.f0[train_idx], eta, grid,
                               pool.kernel[np.ix_(test_idx, train_idx)],
                               pool.sample.targets[test_idx] - pool.f0[test_idx])
    best = int(np.argmin(errors))
    return {"horizon": int(grid[-1]), "step_size": eta, "held_out_optimum": int(grid[best]),
            "held_out_mse_at_0": float(errors[0]), "held_out_mse_at_optimum": float(errors[best]),
            "share": {name: share_captured(errors, grid, t) for name, t in rules.items()},
            "what": "kernel gradient descent f_t+1 = f_t - eta (K/n)(f_t - y) on the same "
                    "split, held-out mean squared error on a log grid of steps"}


def finetune_against_kernel(task: PromptTask, pool: KernelPool, options: FinetuneOptions,
                            out: str | Path, progress: bool = True) -> FinetuneComparison:
    """Fine-tune on the pool's first ``options.n`` points, held out: the pool's tail; writes
    ``finetune.json`` into ``out`` and the resumable run into ``out/finetune-run``."""
    resolve_device(options.device)
    if options.n is None or options.n_test is None:  # sizes left to the pool that was drawn
        options = replace(options, n=options.n or min(DEFAULT_N, pool.n_pool),
                          n_test=pool.n_test)
    out = Path(out)
    train_idx, test_idx = np.arange(cast(int, options.n)), pool.test_index  # filled above
    train, test = pool.subset(train_idx), pool.subset(test_idx)
    k_train = pool.kernel[np.ix_(train_idx, train_idx)]
    eigs = kernel_eigenvalues(k_train)
    residual = train.targets - pool.f0[train_idx]
    factor = stopping.LOSS_STEP_FACTOR.get(options.loss, 1.0)
    lr = options.lr_fraction * stopping.max_step_size(eigs) / factor
    config = TrainingConfig(params=options.params, steps=options.steps, learning_rate=lr,
                            loss=options.loss, batch_size=options.batch_size, seed=options.seed)
    eta = factor * lr
    eig = stopping.eig_kn(k_train)  # once: the rules, the kernel trajectory, the horizon
    advice = recommend_stop(k_train, train.targets, pool.f0[train_idx], lr=eta,
                            seed=options.seed, eig=eig)
    with progress_bar(disable=not progress) as bar:
        job = bar.add_task(f"fine-tuning {options.params} (n = {options.n})", total=options.steps)
        result = finetune(task, train, test, config, out / RUN_SUBDIR,
                          progress=lambda done, total: bar.update(job, completed=done))
    comparison, linear_train_loss = None, None
    if options.loss != "cross-entropy" and options.batch_size is None:
        gd = kernel_gd(k_train, residual, eta, eig=eig)
        comparison = compare_with_kernel(result, gd, pool.kernel[np.ix_(test_idx, train_idx)],
                                         pool.f0[test_idx], test.targets)
        linear_train_loss = ((comparison.linear_train - train.targets) ** 2).mean(axis=1) / 2
    summary = FinetuneComparison(options=options, n_test=pool.n_test, source=pool.sample.source,
                                 learning_rate=lr, step_size=eta,
                                 lambda_max=float(eigs[0]), sigma=advice.sigma,
                                 radius=advice.radius, t_hat=advice.steps,
                                 rule=advice.rule, rules=advice.rules, run=result,
                                 kernel=comparison,
                                 linear_train_loss=linear_train_loss,
                                 long_horizon=long_horizon(pool, train_idx, test_idx, eta,
                                                           advice.rules, eig=eig))
    write_json(out / RESULT_FILE, summary.to_dict())
    return summary


def run_finetune(config: FinetuneConfig, progress: bool = True) -> FinetuneComparison:
    """``ntk finetune``: fine-tune the parameter set for real on a balanced sample of the
    source's examples next to the closed-form kernel trajectory, ``T_hat`` and the held-out
    optimum; writes ``finetune.json`` into ``config.out`` and resumes from it. The examples
    and the device are checked, and the output claimed, before the model loads."""
    options = config.options
    resolve_device(options.device)
    builtin = source_task(config.source)
    options = options.fit(builtin)
    claim_output(config.out)
    builtin, lm_task = builtin_prompt_task(config.model, builtin, options.device)
    pool = kernel_pool(lm_task, builtin, options.params,
                       cast(int, options.pool or options.n),  # fit() filled n and n_test
                       cast(int, options.n_test), options.seed, progress)
    return finetune_against_kernel(lm_task, pool, options, config.out, progress)

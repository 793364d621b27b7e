"""How long a DINO fit will take and how much memory it needs, said before it starts.

A 0.1-0.3 s probe times this machine's base-kernel entries and float64 matrix products (torch,
its current thread count); the estimate counts the entries and floating-point operations of
each stage of ``DINORegressor.fit`` and ``predict`` (module ``estimator``) at the given sizes
and divides. It is an estimate, checked against measured runs in ``benchmarks/dino_scale.py``
(the benchmark prints both), not a bound: a loaded machine is slower.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch

from transferscope.dino.kernels import base_kernel

WARM_START_EVALS = 60  # L-BFGS, 50 iterations with strong-Wolfe line search
BACKWARD = 3.0  # a loss with its gradient costs about three forward passes
MEMORY_BOUND = 4.0  # the greedy pivoting's matrix-vector products run at about 1/4 of the rate
BLOCK_TEMPORARIES = 10  # 4096 x m arrays alive at once in a Nystrom row block (measured peak)
GIB = 2.0**30


@dataclass(kw_only=True)
class CostEstimate:
    """Estimated seconds and peak memory of one fit + predict."""

    method: str
    n_train: int
    fit_seconds: float
    posterior_seconds: float
    peak_gib: float
    exact_gib: float

    @property
    def seconds(self) -> float:
        """Fit and posterior together."""
        return self.fit_seconds + self.posterior_seconds

    def line(self) -> str:
        """One line for the user, before the fit starts."""
        text = (f"{self.n_train:,} training rows: {self.method} posterior; estimated "
                f"{_duration(self.seconds)} ({_duration(self.fit_seconds)} to fit, "
                f"{_duration(self.posterior_seconds)} for the posterior) and about "
                f"{self.peak_gib:.1f} GiB at peak")
        if self.method != "exact":
            text += f" (the exact posterior would need about {self.exact_gib:.0f} GiB)"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@functools.lru_cache(maxsize=8)
def probe(kernel: str, depth: int, n_features: int, threads: int) -> tuple[float, float]:
    """Seconds per base-kernel entry and per float64 flop (matrix product) on this machine."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(256, n_features, generator=gen, dtype=torch.float64)
    Y = torch.randn(1024, n_features, generator=gen, dtype=torch.float64)
    k = base_kernel(kernel, depth, 1.0, 1.0)
    k(X[:8], Y[:8])
    start = time.perf_counter()
    k(X, Y)
    per_entry = (time.perf_counter() - start) / (256 * 1024)
    A = torch.randn(512, 512, generator=gen, dtype=torch.float64)
    A @ A
    start = time.perf_counter()
    for _ in range(4):
        A @ A
    per_flop = (time.perf_counter() - start) / (4 * 2 * 512**3)
    return per_entry, per_flop


def estimate_cost(model, n_source: int, n_target: int, n_features: int) -> CostEstimate:
    """The cost of ``model.fit`` on ``n_source`` + ``n_target`` labelled rows and of predicting
    as many rows again (``model`` a ``DINORegressor``, its settings read, nothing fitted)."""
    entry, flop = probe(model.kernel, model.depth, n_features, torch.get_num_threads())
    n = n_source + n_target
    nb = min(model.batch_size, n_source) + n_target
    base = min(model.n_base, n_source) + min(model.n_base, n_target)  # rank of the base Gram
    factor_flops = 2 * nb * base * (model.hidden + base) + 2 * nb * nb * base
    step = BACKWARD * (nb * nb * entry + (nb**3 / 3 + factor_flops) * flop)
    steps = model.n_steps * ((model.cv_folds + 1) if model.cv_folds else 1)
    if model.cv_folds and n_target < max(model.min_train_labels, 2 * model.cv_folds):
        steps = 0  # the warm start is the fit
    fit = (base**3 / 3 * flop + WARM_START_EVALS * BACKWARD * (nb * nb * entry + nb**3 / 3 * flop)
           + steps * step + 2 * nb**3 * flop)
    method = model.posterior_method(n)
    exact_gib = 2 * 8.0 * n * n / GIB  # the kernel and its Cholesky factor
    m = min(model.n_inducing, n)
    if method == "exact":
        posterior = n * n * (entry + 2 * base * flop) + n**3 / 3 * flop
        peak = exact_gib
    elif method == "nystrom":
        pool = min(2 * model.n_inducing, n)
        pivots = (pool * m * entry + 2 * pool * base * (base + m) * flop
                  + pool * m * m * MEMORY_BOUND * flop)
        posterior = pivots + n * (m * entry + (2 * base * base + 2 * base * m + 2 * m * m) * flop)
        peak = 8.0 * (pool * (m + base) + 3 * m * m + BLOCK_TEMPORARIES * 4096 * max(m, base)
                      + n * (n_features + 4)) / GIB
    else:  # cg: the kernel once (cached while it fits), ~200 products
        pool = min(4 * model.n_inducing, n)
        setup = pool * pool * (entry + 2 * base * flop) + pool**3 / 3 * flop
        cached = 8.0 * n * n <= model.cache_gib * GIB
        build = n * n * (entry + 2 * base * flop)
        posterior = setup + build + 200 * (2 * n * n * flop if cached else build)
        peak = (min(8.0 * n * n, model.cache_gib * GIB) + 8.0 * n * (base + 2 * m)) / GIB
    return CostEstimate(method=method, n_train=n, fit_seconds=fit, posterior_seconds=posterior,
                        peak_gib=peak + 0.3, exact_gib=exact_gib)

"""The n-sweep experiment: held-out error at ``T_hat`` against n on one pool kernel, for the
pretrained readout and (optionally) the pretrained body under a random linear head.

The maths per (n, seed) lives in :mod:`transferscope.ntk.rates`; this module draws the pool,
adds the random-head kernel and writes ``rates.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from transferscope.core.errors import input_error
from transferscope.core.io import write_json
from transferscope.ntk import rates
from transferscope.ntk.data import BuiltinTask, balanced_capacity, fit_sizes, get_task
from transferscope.ntk.device import resolve_device
from transferscope.ntk.experiments.pool import KernelPool, builtin_prompt_task, kernel_pool
from transferscope.ntk.experiments.random_head import mixed_kernel, mixed_task
from transferscope.ntk.task import PromptTask

RESULT_FILE = "rates.json"
DEFAULT_SIZES, DEFAULT_N_TEST, DEFAULT_POOL = (32, 64, 128, 256), 64, 320


def parse_sizes(sizes: str | Sequence[int]) -> list[int]:
    """Sample sizes from ``'32,64,128'`` or a sequence: sorted, distinct, at least two >= 4."""
    if isinstance(sizes, str):
        try:
            values = sorted({int(v) for v in sizes.split(",") if v.strip()})
        except ValueError:
            values = []
    else:
        values = sorted({int(v) for v in sizes})
    if len(values) < 2 or values[0] < 4:
        raise input_error("--sizes", "sizes", sizes, "at least two comma-separated n >= 4")
    return values


@dataclass(kw_only=True, frozen=True)
class RatesOptions:
    """What ``ntk rates`` sets: parameter set, sample sizes, seeds and the pool."""

    params: str = "attention@last-1"
    sizes: str | Sequence[int] | None = None  # or '32,64,128,256'; None: DEFAULT_SIZES < pool
    seeds: int = 10  # >= 10: the slope CI resamples whole seeds
    n_test: int | None = None  # None: DEFAULT_N_TEST, shrunk with the pool to fit the data
    pool: int | None = None  # training candidates the seeds subsample from; None: DEFAULT_POOL
    head_seed: int | None = 0  # also the random-head readout, from this seed; None: not
    device: str = "auto"  # auto, cpu or cuda

    def sample_sizes(self) -> list[int]:
        return parse_sizes(self.sizes if self.sizes is not None else DEFAULT_SIZES)

    def fit(self, task: BuiltinTask) -> RatesOptions:
        """The sizes left at None filled in: the defaults, shrunk to fit ``task``'s data (the
        default n's below the pool, or a quarter and a half of a small pool)."""
        if None not in (self.sizes, self.n_test, self.pool):
            return self
        pool, n_test = fit_sizes(balanced_capacity(task.load()), self.pool or DEFAULT_POOL,
                                 self.n_test or DEFAULT_N_TEST)
        pool, n_test = self.pool or pool, self.n_test or n_test
        sizes = self.sizes
        if sizes is None:
            sizes = [n for n in DEFAULT_SIZES if n < pool]
            if len(sizes) < 2:
                sizes = [max(4, pool // 4), max(5, pool // 2)]
        return replace(self, sizes=tuple(parse_sizes(sizes)), n_test=n_test, pool=pool)

    def validate(self) -> RatesOptions:
        resolve_device(self.device)
        if self.seeds < 2:
            raise input_error("--seeds", "seeds", self.seeds, "at least 2 (a CI needs several)")
        sizes = self.sample_sizes()
        if self.pool is not None and self.pool <= max(sizes):
            raise input_error("--pool", "pool", self.pool, f"more than the largest n = "
                              f"{max(sizes)} (otherwise every seed draws the same examples)")
        return self


def rates_sweep(task: PromptTask, pool: KernelPool, options: RatesOptions, out: str | Path
                ) -> dict:
    """The n-sweep on ``pool`` (pretrained readout, and the random head unless
    ``options.head_seed`` is None); writes and returns ``rates.json``'s content."""
    options.validate()
    sizes = options.sample_sizes()
    sample = pool.sample
    result = {"params": options.params, "sizes": sizes, "seeds": list(range(options.seeds)),
              "n_test": pool.n_test, "pool": pool.n_pool, "source": sample.source}
    result["pretrained"] = _sweep(pool.kernel, pool.f0, pool, options)
    if options.head_seed is not None:
        parts = mixed_kernel(mixed_task(task, options.head_seed), list(sample.texts),
                             options.params)
        result["mixed_head_share"] = parts.head_share()
        result["mixed_head_seed"] = options.head_seed
        result["mixed"] = _sweep(parts.total, parts.outputs, pool, options)
    write_json(Path(out) / RESULT_FILE, result)
    return result


def _sweep(kernel, f0, pool: KernelPool, options: RatesOptions) -> dict:
    frame = rates.sweep(kernel, f0, pool.sample.targets, pool.n_test, options.sample_sizes(),
                        range(options.seeds))
    return {"rows": frame.to_dict(orient="records"), "slope": rates.fit_slope(frame).__dict__}


def run_rates(out: str | Path, model: str = "smollm2",
              task: str | BuiltinTask = "sentiment-words",
              options: RatesOptions = RatesOptions()) -> dict:
    """``ntk rates``: draw the pool of a built-in task, its kernel, then :func:`rates_sweep`."""
    builtin = get_task(task) if isinstance(task, str) else task
    options = options.validate().fit(builtin).validate()
    builtin, lm_task = builtin_prompt_task(model, builtin, options.device)
    # fit() filled the sizes
    pool = kernel_pool(lm_task, builtin, options.params, cast(int, options.pool),
                       cast(int, options.n_test), 0)
    return rates_sweep(lm_task, pool, options, out)

"""The n-sweep experiment: held-out error at ``T_hat`` against n on one pool kernel, for the
pretrained readout and (optionally) the pretrained body under a random linear head.

The maths per (n, seed) lives in :mod:`transferscope.ntk.rates`; this module draws the pool,
adds the random-head kernel and writes ``rates.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from transferscope.core.io import write_json
from transferscope.core.outdir import claim_output
from transferscope.ntk import rates
from transferscope.ntk.device import resolve_device
from transferscope.ntk.experiments.pool import KernelPool, builtin_prompt_task, kernel_pool
from transferscope.ntk.experiments.random_head import mixed_kernel, mixed_task
from transferscope.ntk.options import RatesConfig, RatesOptions
from transferscope.ntk.pipeline import source_task
from transferscope.ntk.task import PromptTask

RESULT_FILE = "rates.json"


@dataclass(kw_only=True, frozen=True)
class RatesResult:
    """``ntk rates``: what ``rates.json`` holds (``summary``) and where it was written."""

    summary: dict
    json_path: Path

    @property
    def slope(self) -> dict:
        """The pretrained readout's fitted slope of log error on log n, with its CI."""
        return self.summary["pretrained"]["slope"]

    @property
    def implied_slope(self) -> float | None:
        """``-alpha/(alpha+1)`` of the fitted decay rate; None when no rate was fitted."""
        implied = self.slope["implied"]
        return None if implied is None or math.isnan(implied) else float(implied)


def rates_sweep(task: PromptTask, pool: KernelPool, options: RatesOptions, out: str | Path
                ) -> dict:
    """The n-sweep on ``pool`` (pretrained readout, and the random head unless
    ``options.head_seed`` is None); writes and returns ``rates.json``'s content."""
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


def run_rates(config: RatesConfig, progress: bool = True) -> RatesResult:
    """``ntk rates``: the held-out error at ``T_hat`` and at the optimum against n on one
    pool kernel of the source's examples (:func:`rates_sweep`); writes ``rates.json`` into
    ``config.out``. The examples and the device are checked, and the output claimed, before
    the model loads."""
    options = config.options
    resolve_device(options.device)
    builtin = source_task(config.source)
    options = options.fit(builtin)
    claim_output(config.out)
    builtin, lm_task = builtin_prompt_task(config.model, builtin, options.device)
    pool = kernel_pool(lm_task, builtin, options.params, cast(int, options.pool),  # fit() filled
                       cast(int, options.n_test), 0, progress)
    summary = rates_sweep(lm_task, pool, options, config.out)
    return RatesResult(summary=summary, json_path=Path(config.out) / RESULT_FILE)

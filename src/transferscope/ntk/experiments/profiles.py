"""The ``ntk report`` profiles and the runs behind them: fine-tuning vs the kernel, rates in n
(with the random head) and task vectors under one profile, then the HTML report.

Profiles (ours, sized for a shared 2-core CPU, see ``PROFILES``): ``quick`` differentiates only
the attention projections of SmolLM2's last block (``attention@last-1``, 0.9M parameters) with
n <= 24; ``full`` uses the last 4 blocks' attention (3.5M) with n up to 256 for the rates, but
only 32 words x 12 full-batch steps for real fine-tuning and 4 tasks x 12 words x 8 steps for
task vectors: every real step costs a forward and backward pass of the whole 135M model per
example, which is what the 30-minute budget buys. One kernel over a pool (training candidates
+ a fixed held-out set) serves fine-tuning and the whole n-sweep, since the kernel of a
subsample is a sub-matrix; the engine caches it on disk and fine-tuning checkpoints every
step, so a rerun resumes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from transferscope.core.io import write_json
from transferscope.core.outdir import claim_output
from transferscope.ntk.data import BuiltinTask, balanced_capacity, fit_sizes
from transferscope.ntk.device import resolve_device
from transferscope.ntk.experiments.finetune_vs_kernel import (
    FinetuneOptions,
    finetune_against_kernel,
)
from transferscope.ntk.experiments.pool import builtin_prompt_task, kernel_pool
from transferscope.ntk.experiments.rates_sweep import rates_sweep
from transferscope.ntk.experiments.taskvectors import (
    DEFAULT_TASKS,
    NEGATED_AFINN_TASK,
    run_taskvec,
)
from transferscope.ntk.options import (
    DataSource,
    Device,
    FinetuneConfig,
    RatesOptions,
    ReportConfig,
    TaskVectorConfig,
    TaskVectorOptions,
)
from transferscope.ntk.pipeline import source_task
from transferscope.ntk.report import build_report

PROFILE_FILE = "profile.json"


@dataclass(kw_only=True, frozen=True)
class Profile:
    params: str
    finetune_n: int
    test_n: int
    steps: int
    sizes: tuple[int, ...]
    pool: int  # training candidates the seeds subsample from (> max size, so seeds differ)
    seeds: int
    taskvec_train: int
    taskvec_test: int
    taskvec_steps: int
    taskvec_tasks: tuple[str, ...]

    def finetune_options(self) -> FinetuneOptions:
        return FinetuneOptions(params=self.params, n=self.finetune_n, n_test=self.test_n,
                               steps=self.steps, lr_fraction=0.5, loss="half-mse",
                               batch_size=None, seed=0, pool=self.pool)

    def rates_options(self) -> RatesOptions:
        return RatesOptions(params=self.params, sizes=self.sizes, seeds=self.seeds,
                            n_test=self.test_n, pool=self.pool, head_seed=0)

    def task_vector_options(self) -> TaskVectorOptions:
        return TaskVectorOptions(tasks=self.taskvec_tasks, params=self.params,
                                 n_train=self.taskvec_train, n_test=self.taskvec_test,
                                 steps=self.taskvec_steps, seed=0)


PROFILES = {
    "quick": Profile(params="attention@last-1", finetune_n=16, test_n=24, steps=8,
                     sizes=(8, 12, 16, 24), pool=32, seeds=10, taskvec_train=8, taskvec_test=8,
                     taskvec_steps=5,
                     taskvec_tasks=DEFAULT_TASKS),
    "full": Profile(params="attention@last-4", finetune_n=32, test_n=64, steps=12,
                    sizes=(32, 64, 128, 256), pool=320, seeds=10, taskvec_train=12, taskvec_test=12,
                    taskvec_steps=8,
                    taskvec_tasks=(*DEFAULT_TASKS, NEGATED_AFINN_TASK)),
}


def quick_finetune_config(out: str | Path, model: str = "smollm2",
                          task: str = "sentiment-words", device: Device = "auto"
                          ) -> FinetuneConfig:
    """The quick profile's fine-tuning-vs-kernel run as ``ntk finetune``'s config (the main
    demo runs it with :func:`run_finetune`).

    Same pool as ``ntk report --quick``, so a report run before or after shares the cached
    kernel and the resumable fine-tuning checkpoint.
    """
    profile = PROFILES["quick"]
    return FinetuneConfig(out=Path(out), model=model, source=DataSource(task=task),
                          options=replace(profile.finetune_options(), device=device))


def fit_profile(profile: Profile, task: BuiltinTask) -> Profile:
    """``profile`` with its pool, held-out set, fine-tuning n and rate sizes shrunk in
    proportion when ``task``'s data (a small user file) cannot fill them."""
    pool, test_n = fit_sizes(balanced_capacity(task.load()), profile.pool, profile.test_n)
    if (pool, test_n) == (profile.pool, profile.test_n):
        return profile
    sizes = tuple(n for n in profile.sizes if n < pool)
    if len(sizes) < 2:
        sizes = (max(4, pool // 4), max(5, pool // 2))
    return replace(profile, pool=pool, test_n=test_n, sizes=sizes,
                   finetune_n=min(profile.finetune_n, pool))


@dataclass(kw_only=True, frozen=True)
class ReportRun:
    """``ntk report``: the profile it ran and the report it wrote."""

    out: Path
    profile: Profile
    html_path: Path


def run_report(config: ReportConfig, progress: bool = True) -> ReportRun:
    """``ntk report``: rates (with the random head), fine-tuning and task vectors under a
    profile into ``config.out``, then ``index.html``. The examples and the device are
    checked, and the output claimed, before the model loads."""
    resolve_device(config.device)
    builtin = source_task(config.source)
    profile = fit_profile(PROFILES[config.profile], builtin)
    started = time.perf_counter()
    out = Path(config.out)
    claim_output(out)
    builtin, lm_task = builtin_prompt_task(config.model, builtin, config.device)
    pool = kernel_pool(lm_task, builtin, profile.params, profile.pool, profile.test_n, 0,
                       progress)
    rates_sweep(lm_task, pool, profile.rates_options(), out)
    finetune_against_kernel(lm_task, pool, profile.finetune_options(), out, progress)
    run_taskvec(TaskVectorConfig(out=out, model=config.model, options=replace(
        profile.task_vector_options(), device=config.device)), progress)
    write_json(out / PROFILE_FILE, {"profile": config.profile, **asdict(profile),
                                    "model": config.model, "task": builtin.name,
                                    "seconds": time.perf_counter() - started})
    return ReportRun(out=out, profile=profile, html_path=build_report(out))

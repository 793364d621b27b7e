"""Ray scale-out on this machine: the same eNTK and the same bias run, local and on 1 and 2 workers.

1. eNTK of SmolLM2 (``sentiment-words`` prompt task, attention parameters, exact mode): the
   local engine in this process (baseline), then the Ray executor with 1 and 2 workers.
2. Bias ``association`` test on ``hf-local:smollm2`` (option log-likelihoods): local backend,
   then the Ray backend with 1 and 2 replicas; each run starts from an empty response cache.

Each Ray time includes what a user pays: workers loading their model copy and the transfers.
Every run must give the baseline's numbers (checked and printed). The ratio that matters is
1 worker / 2 workers; on a 2-core machine shared with other jobs expect little (the point is a
correct split and a measured overhead). Run under the shared lock:
``flock /tmp/heavy.lock python benchmarks/ray_scaling.py [--n 16] [--limit 1]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(label: str, run):
    started = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    print(f"  {label:34s} {seconds:8.1f} s", flush=True)
    return value, seconds


def kernel_part(n: int, block_size: int, max_tokens: int) -> dict[str, float]:
    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.kernel import EngineOptions, RayExecutor, stop_workers
    from transferscope.ntk.task import PromptTask, prompt_task_factory

    task_data = ntk_data.get_task("sentiment-words")
    sample = ntk_data.sample_examples(task_data.load(), n, 0)
    task = PromptTask(task_data.template, task_data.label_words, model="smollm2",
                      max_tokens=max_tokens)
    texts = list(sample.texts)
    print(f"eNTK: SmolLM2, {n} examples, block size {block_size} "
          f"({-(-n // block_size)} blocks), attention parameters, exact", flush=True)

    def kernel(executor):
        options = EngineOptions(block_size=block_size, cache_key=None, progress=False,
                                gram_dtype="float64", executor=executor)
        return task.kernel(texts, "attention", "exact", options=options).kernel

    base, times = None, {}
    for label, executor in (("local (this process)", "local"),
                            ("ray, 1 worker", RayExecutor(workers=1, model_factory=
                                                          prompt_task_factory(task))),
                            ("ray, 2 workers", RayExecutor(workers=2, model_factory=
                                                           prompt_task_factory(task)))):
        k, times[label] = timed(label, lambda executor=executor: kernel(executor))
        if base is None:
            base = k
        else:
            diff = float(np.abs(k - base).max() / np.abs(base).max())
            print(f"    max |K - K_local| / max |K_local| = {diff:.2e}", flush=True)
    stop_workers()  # kept kernel workers hold their CPUs: the bias workers need them
    return times


def bias_part() -> dict[str, float]:
    from transferscope.bias import RunConfig, make_backend, make_ray_backend, run_probes

    config = RunConfig(model="hf-local:smollm2", tests="association", n_boot=200)
    print("bias: association test (20 attribute pairs, 400 items; before issue #26 the "
          "recorded run asked 1 pair), hf-local:smollm2, empty caches", flush=True)
    base, times = None, {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = (("local (this process)", lambda c: make_backend(config.model, cache=c)),
                ("ray, 1 worker", lambda c: make_ray_backend(config.model, workers=1, cache=c)),
                ("ray, 2 workers", lambda c: make_ray_backend(config.model, workers=2, cache=c)))
        for k, (label, build) in enumerate(runs):
            def run(build=build, k=k):
                backend = build(Path(tmp) / f"cache-{k}.sqlite")
                try:
                    return run_probes(backend, config, Path(tmp) / f"run-{k}"), backend
                finally:
                    backend.close()

            (scores, backend), times[label] = timed(label, run)
            if base is None:
                base = scores
            print(f"    model calls {backend.stats.model_calls}; scores equal to local: "
                  f"{scores.equals(base)}", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16, help="eNTK examples")
    parser.add_argument("--block-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--parts", default="eNTK,bias", help="which parts to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads in this process {torch.get_num_threads()} (1 per Ray worker), "
          f"ray {ray.__version__}", flush=True)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    print(f"ray.init (local 2-CPU instance): {time.perf_counter() - started:.1f} s", flush=True)
    parts = {"eNTK": lambda: kernel_part(args.n, args.block_size, args.max_tokens),
             "bias": bias_part}
    results = {name: parts[name]() for name in args.parts.split(",")}
    print("\nsummary (seconds; speed-up = 1 worker / 2 workers; overhead = ray 1 / local)")
    for part, times in results.items():
        one, two = times["ray, 1 worker"], times["ray, 2 workers"]
        local = times["local (this process)"]
        print(f"  {part:5s} local {local:7.1f}  ray-1 {one:7.1f}  ray-2 {two:7.1f}  "
              f"speed-up {one / two:4.2f}x  overhead {one / local:4.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()

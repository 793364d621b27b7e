"""Ray scale-out on this machine: the same eNTK and the same bias run, local and on 1 and 2 workers.

Protocol (clean, so that the ratios mean what they say):

1. eNTK of SmolLM2 (``sentiment-words`` prompt task, attention parameters, exact mode) for each
   ``--n`` (default 64 and 128), block size ``--block-size`` (default 16):
   - the local engine's model load is timed apart from its kernel, and a one-block local kernel
     runs first (not counted) so that neither side pays first-call costs the other does not;
   - the same thread budget on both sides: the local engine with 1 torch thread is compared with
     1 Ray worker (each worker runs torch on its one CPU), and with 2 threads with 2 workers;
   - each Ray width first starts its workers on a one-block kernel (worker start, imports and a
     model load: the start-up, reported apart), then computes the full kernel; that time still
     includes one model load per worker (each kernel rebuilds its workers' engines), which the
     local load time bounds.
2. Bias ``association`` test on ``hf-local:smollm2`` (option log-likelihoods): local backend,
   then the Ray backend with 1 and 2 replicas; each run starts from an empty response cache.

Every run must give the baseline's numbers (checked and printed). Run alone, under the shared lock:
``flock /tmp/heavy.lock env OMP_WAIT_POLICY=PASSIVE python benchmarks/ray_scaling.py``.
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


def timed(label: str, run, *args):
    started = time.perf_counter()
    value = run(*args)
    seconds = time.perf_counter() - started
    print(f"  {label:40s} {seconds:8.1f} s", flush=True)
    return value, seconds


def kernel_part(sizes: list[int], block_size: int, max_tokens: int) -> dict[str, float]:
    from transferscope.ntk import data as ntk_data
    from transferscope.ntk.kernel import EngineOptions, RayExecutor, stop_workers
    from transferscope.ntk.task import PromptTask, prompt_task_factory

    task_data = ntk_data.get_task("sentiment-words")
    pool = task_data.load()
    task, load_seconds = timed("local model load (once)", lambda: PromptTask(
        task_data.template, task_data.label_words, model="smollm2", max_tokens=max_tokens))

    def kernel(texts, executor):
        options = EngineOptions(block_size=block_size, cache_key=None, progress=False,
                                gram_dtype="float64", executor=executor)
        return task.kernel(texts, "attention", "exact", options=options).kernel

    times: dict[str, float] = {"local model load": load_seconds}
    for n in sizes:
        texts = list(ntk_data.sample_examples(pool, n, 0).texts)
        print(f"eNTK: SmolLM2, n = {n}, block size {block_size} ({-(-n // block_size)} blocks), "
              "attention parameters, exact", flush=True)
        timed("local warm-up (one block, not counted)", kernel, texts[:block_size], "local")
        base = None
        for threads in (1, 2):
            torch.set_num_threads(threads)
            k, times[f"n={n} local {threads} thread(s)"] = timed(
                f"local, {threads} torch thread(s)", kernel, texts, "local")
            base = k if base is None else base
        torch.set_num_threads(2)
        for workers in (1, 2):
            executor = RayExecutor(workers=workers, model_factory=prompt_task_factory(task))
            _, times[f"n={n} ray {workers} start-up"] = timed(
                f"ray, {workers} worker(s): start-up", kernel, texts[:block_size], executor)
            k, times[f"n={n} ray {workers}"] = timed(
                f"ray, {workers} worker(s): kernel", kernel, texts, executor)
            diff = float(np.abs(k - base).max() / np.abs(base).max())
            print(f"    max |K - K_local| / max |K_local| = {diff:.2e}", flush=True)
        stop_workers()  # kept kernel workers hold their CPUs: the next width or part needs them
    return times


def bias_part() -> dict[str, float]:
    from transferscope.bias import RunConfig, make_backend, make_ray_backend, run_evaluation

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
                    return run_evaluation(config, Path(tmp) / f"run-{k}",
                                          backend=backend).scores, backend
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
    parser.add_argument("--n", default="64,128", help="eNTK examples, comma-separated")
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--parts", default="eNTK,bias", help="which parts to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"ray {ray.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    print(f"ray.init (local 2-CPU instance): {time.perf_counter() - started:.1f} s", flush=True)
    sizes = [int(v) for v in args.n.split(",")]
    parts = {"eNTK": lambda: kernel_part(sizes, args.block_size, args.max_tokens),
             "bias": bias_part}
    results = {name: parts[name]() for name in args.parts.split(",")}
    print("\nsummary (seconds; kernel times exclude start-up; ratio = local / ray at the same "
          "thread budget, > 1 means Ray was faster)")
    if "eNTK" in results:
        times = results["eNTK"]
        for n in sizes:
            for w in (1, 2):
                local, ray_t = times[f"n={n} local {w} thread(s)"], times[f"n={n} ray {w}"]
                print(f"  eNTK n={n:<4d} {w} thread(s)/worker(s): local {local:7.1f}  "
                      f"ray {ray_t:7.1f} (+ start-up {times[f'n={n} ray {w} start-up']:.1f})  "
                      f"ratio {local / ray_t:4.2f}x")
    if "bias" in results:
        times = results["bias"]
        one, two = times["ray, 1 worker"], times["ray, 2 workers"]
        local = times["local (this process)"]
        print(f"  bias  local {local:7.1f}  ray-1 {one:7.1f}  ray-2 {two:7.1f}  "
              f"speed-up {one / two:4.2f}x  overhead {one / local:4.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()

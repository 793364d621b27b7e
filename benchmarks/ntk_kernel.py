"""eNTK engine against the straightforward baseline, on SmolLM2 and real prompts.

Baseline: one ``torch.autograd.grad`` per prompt (unpadded, alone), each gradient flattened into
a preallocated float32 Jacobian (n x P), then ``J @ J.T`` in float32. When that Jacobian cannot
fit in this machine's available memory the baseline is not started (it would be killed, or take
the shared machine down): the table prints the memory it would need instead, its OOM point.

Project: ``transferscope.ntk.empirical_ntk_result`` in ``exact`` mode (float64 Gram under a
memory budget) and ``sketch`` mode (CountSketch to d dims), no cache, same prompts, same process.
Peak RSS is sampled every 20 ms while each run is in progress (whole process, model included).
The Gram accumulation's speed is compared with this machine's measured float64 matmul peak.

Prompts: words of the human-rated VADER/AFINN lexicons in a question template, tokenised to at
most ``--max-tokens`` tokens. Run:
``python benchmarks/ntk_kernel.py --n 128 256 512 --params attention all`` (the full table;
hours on 2 shared cores) or e.g. ``--n 32 --params attention`` for a quick look.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import psutil
import torch

from transferscope.ntk import PromptTask, empirical_ntk_result
from transferscope.ntk.data import sample_examples, sentiment_words
from transferscope.ntk.params import parameter_count, select_parameters

TEMPLATE = ('Here is a word from a sentiment lexicon: "{text}". Question: is this word '
            'positive or negative? Answer:')


class PeakRSS:
    """Highest resident set size of this process while the context is open (sampled)."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._proc = psutil.Process(os.getpid())

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def measure(run: Callable[[], object]) -> tuple[object, float, float]:
    """(result, seconds, peak RSS in GiB)."""
    gc.collect()
    with PeakRSS() as rss:
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
    return result, seconds, rss.peak / 2**30


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 3) -> float:
    """Best-of-``repeats`` speed of one large square matmul: this machine's practical peak."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def baseline_kernel(task: PromptTask, texts: list[str], params: str) -> np.ndarray:
    """Per-example autograd, full float32 Jacobian, one float32 matmul."""
    chosen = [p for _, p in select_parameters(task.model, params)]
    saved = [(p, p.requires_grad) for p in task.model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    for p in chosen:
        p.requires_grad_(True)
    try:
        jac = torch.empty(len(texts), sum(p.numel() for p in chosen), dtype=torch.float32)
        for i, text in enumerate(texts):
            f = task.forward(task.model, task.encode([text]))[0]
            grads = torch.autograd.grad(f, chosen)
            jac[i] = torch.cat([g.reshape(-1) for g in grads])
        return (jac @ jac.T).double().numpy()
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--params", nargs="+", default=["attention", "all"])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--sketch-dim", type=int, default=16384)
    parser.add_argument("--budget-gb", type=float, default=6.0)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--gram-dtype", choices=["auto", "float64"], default="auto",
                        help="auto: float32 products summed in float64 (float32 models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-weights", metavar="CONFIG_DIR",
                        help="time a randomly initialised model built from this directory's "
                             "config.json and tokenizer (same shapes and cost as the real one; "
                             "for machines the real weights cannot reach)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = args.model
    if args.random_weights:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(args.random_weights)
        model = (AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval(),
                 AutoTokenizer.from_pretrained(args.random_weights))
        print(f"weights: RANDOM initialisation of {args.random_weights}/config.json")
    task = PromptTask(TEMPLATE, ("positive", "negative"), model, max_tokens=args.max_tokens)
    data = sentiment_words()
    peak64 = matmul_peak_gflops(torch.float64)
    peak32 = matmul_peak_gflops(torch.float32)
    print(f"machine: {psutil.cpu_count()} logical cores, torch threads {torch.get_num_threads()},"
          f" load average {os.getloadavg()[0]:.1f}; matmul peak float64 {peak64:.1f} GFLOP/s,"
          f" float32 {peak32:.1f} GFLOP/s")
    header = (f"{'params':>9} {'P':>7} {'n':>4} {'method':>16} {'seconds':>9} {'peak RSS':>9} "
              f"{'speed-up':>8} {'rel.err':>9} {'bound':>8} {'Gram %peak':>10}")
    rows = [header]
    print(header, flush=True)
    for params in args.params:
        n_params = parameter_count(select_parameters(task.model, params))
        for n in args.n:
            texts = list(sample_examples(data, n, seed=args.seed).texts)
            lengths = [len(x) for x in task.encode(texts)["input_ids"]]
            print(f"# n={n}: prompt lengths {min(lengths)}..{max(lengths)} tokens (padded batch)",
                  flush=True)
            base_seconds, exact_kernel = None, None
            need = n * n_params * 4 / 2**30
            available = psutil.virtual_memory().available / 2**30
            if args.no_baseline:
                line = f"{params:>9} {n_params / 1e6:6.1f}M {n:>4} {'baseline':>16}  skipped"
            elif need > 0.8 * available:
                line = (f"{params:>9} {n_params / 1e6:6.1f}M {n:>4} {'baseline':>16}  OOM: the "
                        f"Jacobian needs {need:.1f} GiB, {available:.1f} GiB available")
            else:
                base_kernel, base_seconds, base_rss = measure(
                    lambda texts=texts, params=params: baseline_kernel(task, texts, params))
                line = (f"{params:>9} {n_params / 1e6:6.1f}M {n:>4} {'baseline':>16} "
                        f"{base_seconds:9.1f} {base_rss:8.2f}G {1.0:8.2f}")
                exact_kernel = base_kernel
            print(line, flush=True)
            rows.append(line)
            for mode in ("exact", "sketch"):
                result, seconds, rss = measure(lambda texts=texts, params=params, mode=mode: empirical_ntk_result(
                    task.model, texts, task.output_fn, params, mode,
                    memory_budget_gb=args.budget_gb, sketch_dim=args.sketch_dim,
                    block_size=args.block_size, seed=args.seed, cache_key=None, progress=True,
                    gram_dtype=args.gram_dtype))
                speed = f"{base_seconds / seconds:8.2f}" if base_seconds else f"{'-':>8}"
                if mode == "exact":
                    err = ("-" if exact_kernel is None else
                           f"{np.linalg.norm(result.kernel - exact_kernel) / np.linalg.norm(result.kernel):.1e}")
                    exact_kernel = result.kernel
                    flops = result.details.get("materialized_flops", 0.0) + result.details.get(
                        "structured_flops", 0.0)
                    gram = flops / max(result.details["seconds_gram"], 1e-9) / 1e9
                    peak = peak64 if args.gram_dtype == "float64" else peak32
                    line = (f"{params:>9} {n_params / 1e6:6.1f}M {n:>4} {'exact':>16} "
                            f"{seconds:9.1f} {rss:8.2f}G {speed} {err:>9} {'':>8} "
                            f"{100 * gram / peak:9.0f}%")
                    detail = (f"#   exact: gradients {result.details['seconds_gradients']:.1f} s,"
                              f" Gram {result.details['seconds_gram']:.1f} s at {gram:.1f} "
                              f"GFLOP/s (gram_dtype {args.gram_dtype}, % of the "
                              f"{'float64' if peak is peak64 else 'float32'} peak), "
                              f"engine {result.details['engine']}")
                else:
                    err = np.linalg.norm(result.kernel - exact_kernel) / np.linalg.norm(exact_kernel)
                    line = (f"{params:>9} {n_params / 1e6:6.1f}M {n:>4} "
                            f"{'sketch d=' + str(args.sketch_dim):>16} {seconds:9.1f} "
                            f"{rss:8.2f}G {speed} {err:9.1e} {result.error_bound:8.1e}")
                    detail = f"#   sketch: stated RMS error {result.error_rms:.1e}"
                print(line, flush=True)
                print(detail, flush=True)
                rows.append(line)
    print("\n".join(["", "summary", *rows]))


if __name__ == "__main__":
    main()

"""eNTK engine against the straightforward baseline, on SmolLM2 and real prompts.

Baseline: one ``torch.autograd.grad`` per prompt (unpadded, alone), each gradient flattened into
a preallocated float32 Jacobian (n x P), then ``J @ J.T`` in float32. Its memory is predicted
before it starts (Jacobian + the model): above ``--max-gib`` it is not started (it would be
killed, or take the shared machine down) and the table prints what it would need, its OOM point.
Where the baseline cannot run at the requested n, it is measured at ``--baseline-n`` (it must
fit) and its time at larger n is predicted from its two measured parts: autograd (linear in n)
and the Jacobian product (quadratic in n); those ratios are labelled "pred.".

Project: ``transferscope.ntk.empirical_ntk_result`` in ``exact`` mode (float64 Gram under the
engine's default memory budget unless ``--budget-gb``) and ``sketch`` mode (CountSketch to d
dims), no cache, same prompts. Every configuration runs in a fresh subprocess (same script), so
its peak RSS (``ru_maxrss``, the model included) does not bleed into the next; the parent prints
the table and the ratios. The Gram accumulation's speed is compared with this machine's measured
float32 matmul peak (the engine multiplies float32 gradients in float32, sums in float64).

Prompts: words of the human-rated VADER/AFINN lexicons in a question template, tokenised to at
most ``--max-tokens`` tokens. Run alone (timings on 2 cores are easily disturbed), the full table
in about 35 min here: ``python benchmarks/ntk_kernel.py --n 128 256 512 --params attention all
--max-gib 20 --skip all:512:exact all:512:sketch``, or ``--n 32 --params attention`` for a quick
look. Results: ``benchmarks/results/ntk_kernel-<date>.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import torch

TEMPLATE = ('Here is a word from a sentiment lexicon: "{text}". Question: is this word '
            'positive or negative? Answer:')


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


def _task(spec: dict):
    from transferscope.ntk import PromptTask

    model = spec["model"]
    if spec.get("random_weights"):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(spec["random_weights"])
        torch.manual_seed(spec["seed"])
        model = (AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval(),
                 AutoTokenizer.from_pretrained(spec["random_weights"]))
    return PromptTask(TEMPLATE, ("positive", "negative"), model, max_tokens=spec["max_tokens"])


def _texts(spec: dict) -> list[str]:
    from transferscope.ntk.data import sample_examples, sentiment_words

    return list(sample_examples(sentiment_words(), spec["n"], seed=spec["seed"]).texts)


def baseline_kernel(task, texts: list[str], params: str) -> tuple[np.ndarray, float, float]:
    """Per-example autograd, full float32 Jacobian, one float32 matmul: (K, s autograd, s matmul)."""
    from transferscope.ntk.params import select_parameters

    chosen = [p for _, p in select_parameters(task.model, params)]
    saved = [(p, p.requires_grad) for p in task.model.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    for p in chosen:
        p.requires_grad_(True)
    try:
        started = time.perf_counter()
        jac = torch.empty(len(texts), sum(p.numel() for p in chosen), dtype=torch.float32)
        for i, text in enumerate(texts):
            f = task.forward(task.model, task.encode([text]))[0]
            grads = torch.autograd.grad(f, chosen)
            jac[i] = torch.cat([g.reshape(-1) for g in grads])
        grads_done = time.perf_counter()
        kernel = (jac @ jac.T).double().numpy()
        return kernel, grads_done - started, time.perf_counter() - grads_done
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def run_child(spec: dict) -> None:
    """One configuration in this (fresh) process; writes its JSON result and kernel."""
    from transferscope.ntk import empirical_ntk_result
    from transferscope.ntk.kernel import EngineOptions

    task = _task(spec)
    texts = _texts(spec)
    loaded_rss = psutil.Process().memory_info().rss
    out: dict = {"loaded_rss_gib": loaded_rss / 2**30}
    if spec["method"] == "baseline":
        kernel, t_grad, t_mm = baseline_kernel(task, texts, spec["params"])
        out.update(seconds=t_grad + t_mm, seconds_autograd=t_grad, seconds_matmul=t_mm)
    else:
        options = EngineOptions(sketch_dim=spec["sketch_dim"], block_size=spec["block_size"],
                                seed=spec["seed"], cache_key=None, progress=False)
        if spec["budget_gb"] is not None:
            options = replace(options, memory_budget_gb=spec["budget_gb"])
        started = time.perf_counter()
        result = empirical_ntk_result(task.model, texts, task.output_fn, spec["params"],
                                      spec["method"], options=options)
        out.update(seconds=time.perf_counter() - started, details=result.details,
                   error_bound=result.error_bound, error_rms=result.error_rms)
        kernel = result.kernel
    lengths = [len(x) for x in task.encode(texts)["input_ids"]]
    out.update(peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               prompt_tokens=[min(lengths), max(lengths)])
    np.save(spec["kernel_path"], kernel)
    Path(spec["result_path"]).write_text(json.dumps(out))


def measure(spec: dict, work: Path) -> dict:
    """Run one configuration in a subprocess; its result, with the kernel loaded."""
    tag = f"{spec['params']}-{spec['n']}-{spec['method']}"
    spec = {**spec, "kernel_path": str(work / f"{tag}.npy"),
            "result_path": str(work / f"{tag}.json")}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {tag} failed (exit {done.returncode}): "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(Path(spec["result_path"]).read_text())
    result["kernel"] = np.load(spec["kernel_path"])
    return result


def model_gib(spec: dict, params: str) -> tuple[float, int]:
    """(GiB the loaded model takes in this process, parameters in the set)."""
    from transferscope.ntk.params import parameter_count, select_parameters

    before = psutil.Process().memory_info().rss
    task = _task(spec)
    size = (psutil.Process().memory_info().rss - before) / 2**30
    return size, parameter_count(select_parameters(task.model, params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--params", nargs="+", default=["attention", "all"])
    parser.add_argument("--skip", nargs="*", default=[], metavar="PARAMS:N:METHOD",
                        help="cells not to run, e.g. all:512:exact (reported as skipped)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--sketch-dim", type=int, default=16384)
    parser.add_argument("--budget-gb", type=float, default=None,
                        help="engine memory budget (default: the engine's own default)")
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--baseline-n", type=int, default=64,
                        help="where the baseline is measured when it cannot run at --n")
    parser.add_argument("--max-gib", type=float, default=12.0,
                        help="never start a baseline predicted to need more than this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-weights", metavar="CONFIG_DIR",
                        help="time a randomly initialised model built from this directory's "
                             "config.json and tokenizer (same shapes and cost as the real one)")
    args = parser.parse_args()
    if args.child:
        run_child(json.loads(args.child))
        return

    base = {"model": args.model, "random_weights": args.random_weights, "seed": args.seed,
            "max_tokens": args.max_tokens, "sketch_dim": args.sketch_dim,
            "budget_gb": args.budget_gb, "block_size": args.block_size}
    peak32 = matmul_peak_gflops(torch.float32)
    weights = (f"RANDOM initialisation of {args.random_weights}" if args.random_weights
               else f"pretrained {args.model}")
    print(f"machine: {psutil.cpu_count()} logical cores, torch threads {torch.get_num_threads()},"
          f" load average {os.getloadavg()[0]:.1f}, {psutil.virtual_memory().total / 2**30:.0f}"
          f" GiB RAM; float32 matmul peak {peak32:.1f} GFLOP/s; weights: {weights}; engine"
          f" budget {'default' if args.budget_gb is None else args.budget_gb} GiB", flush=True)
    header = (f"{'params':>9} {'P':>7} {'n':>4} {'method':>16} {'seconds':>9} {'peak RSS':>9} "
              f"{'speed-up':>12} {'rel.err':>9} {'bound':>8} {'Gram %peak':>10}")
    rows = [header]

    def emit(line: str, keep: bool = True) -> None:
        print(line, flush=True)
        if keep:
            rows.append(line)

    print(header, flush=True)
    work = Path(tempfile.mkdtemp(prefix="ntk-bench-"))
    for params in args.params:
        loaded, n_params = model_gib(base, params)
        label = f"{params:>9} {n_params / 1e6:6.1f}M"
        baseline_fit = None  # (n, seconds autograd, seconds matmul) of a measured baseline

        def need_gib(n: int, n_params: int = n_params, loaded: float = loaded) -> float:
            return n * n_params * 4 / 2**30 + loaded

        sizes = list(dict.fromkeys(args.n))  # the order given: the most wanted cells first
        if (need_gib(min(sizes)) > args.max_gib and args.baseline_n not in sizes
                and need_gib(args.baseline_n) <= args.max_gib):
            sizes.insert(0, args.baseline_n)  # one point where the baseline fits
        for n in sizes:
            need = need_gib(n)
            exact_kernel, base_seconds, predicted = None, None, False
            if need > args.max_gib:
                emit(f"{label} {n:>4} {'baseline':>16}  baseline OOM: needs {need:.1f} GiB "
                     f"(Jacobian {n} x {n_params / 1e6:.1f}M float32 + model {loaded:.1f}), "
                     f"over the {args.max_gib:.0f} GiB cap; not started")
            elif f"{params}:{n}:baseline" in args.skip:
                emit(f"{label} {n:>4} {'baseline':>16}  skipped (--skip)")
            else:
                res = measure({**base, "params": params, "n": n, "method": "baseline"}, work)
                base_seconds, exact_kernel = res["seconds"], res["kernel"]
                baseline_fit = (n, res["seconds_autograd"], res["seconds_matmul"])
                emit(f"{label} {n:>4} {'baseline':>16} {base_seconds:9.1f} "
                     f"{res['peak_rss_gib']:8.2f}G {1.0:12.2f}")
                emit(f"#   baseline: autograd {res['seconds_autograd']:.1f} s, J J^T "
                     f"{res['seconds_matmul']:.1f} s; prompts {res['prompt_tokens'][0]}.."
                     f"{res['prompt_tokens'][1]} tokens", keep=False)
            if base_seconds is None and baseline_fit is not None:
                b, t_grad, t_mm = baseline_fit
                base_seconds, predicted = t_grad * n / b + t_mm * (n / b) ** 2, True
                emit(f"#   baseline predicted from n={b}: {base_seconds:.1f} s "
                     f"(autograd x{n / b:g}, J J^T x{(n / b) ** 2:g})", keep=False)
            for method in ("exact", "sketch"):
                name = "exact" if method == "exact" else f"sketch d={args.sketch_dim}"
                if f"{params}:{n}:{method}" in args.skip:
                    emit(f"{label} {n:>4} {name:>16}  skipped (--skip)")
                    continue
                res = measure({**base, "params": params, "n": n, "method": method}, work)
                seconds, kernel, details = res["seconds"], res["kernel"], res["details"]
                speed = (f"{base_seconds / seconds:7.2f}{' pred' if predicted else '     '}"
                         if base_seconds else f"{'-':>12}")
                head = (f"{label} {n:>4} {name:>16} {seconds:9.1f} {res['peak_rss_gib']:8.2f}G "
                        f"{speed}")
                if method == "exact":
                    err = ("-" if exact_kernel is None else f"{np.linalg.norm(kernel - exact_kernel) / np.linalg.norm(kernel):.1e}")
                    exact_kernel = kernel
                    flops = details.get("materialized_flops", 0.0) + details.get(
                        "structured_flops", 0.0)
                    gram = flops / max(details["seconds_gram"], 1e-9) / 1e9
                    emit(f"{head} {err:>9} {'':>8} {100 * gram / peak32:9.0f}%")
                    emit(f"#   exact: capture {details['seconds_capture']:.1f} s, factors "
                         f"stored {details['seconds_project_or_store']:.1f} s, Gram "
                         f"{details['seconds_gram']:.1f} s at {gram:.1f} GFLOP/s; engine "
                         f"{details['engine']}; model loaded {res['loaded_rss_gib']:.2f} GiB",
                         keep=False)
                else:
                    err = (np.linalg.norm(kernel - exact_kernel) / np.linalg.norm(exact_kernel)
                           if exact_kernel is not None else float("nan"))
                    emit(f"{head} {err:9.1e} {res['error_bound']:8.1e}")
                    emit(f"#   sketch: capture {details['seconds_capture']:.1f} s, projection "
                         f"{details['seconds_project_or_store']:.1f} s, S S^T "
                         f"{details['seconds_gram']:.1f} s; stated RMS error "
                         f"{res['error_rms']:.1e}", keep=False)
    print("\n".join(["", "summary", *rows]))


if __name__ == "__main__":
    main()

"""Paper scale: the exact eNTK of the GPT-Neo-1.3B architecture, time and peak memory.

The model is built from ``transformers.GPTNeoConfig()`` (its defaults are GPT-Neo-1.3B: 24
layers, hidden 2048, 16 heads, vocabulary 50257, tied embeddings) with RANDOM weights (seed 0):
nothing is downloaded, and the time and memory of the exact eNTK do not depend on the weights'
values, only on the shapes and the token counts. Parameter set: ``attention`` (every q/k/v/out
projection of the 24 blocks, 402.7M parameters), engine ``exact`` (per-example gradient factors
of each linear layer, float64 Gram), memory budget ``--budget-gb``. Prompts: the word-sentiment
template of the NTK part around human-rated lexicon words, tokenised with SmolLM2's byte-level
BPE tokenizer (the one shipped here; GPT-Neo's own GPT-2 tokenizer would need a download), so
token counts are close to but not exactly GPT-Neo's; f = logit(" positive") - logit(" negative").

Each n runs in a fresh subprocess (its ``ru_maxrss`` is its own peak: model + engine). A run
longer than one locked chunk resumes: ``--work DIR`` keeps the engine's block files and running
Gram in a private cache there, and every invocation appends its wall time and peak RSS to
``DIR/chunks.json``; the line printed at the end sums the chunks' wall time and takes the
largest peak. Usage (one n per call, under the shared lock)::

    python benchmarks/ntk_paper_scale.py --n 32 64 128 --budget-gb 8
    python benchmarks/ntk_paper_scale.py --n 512 --budget-gb 4 --work /tmp/neo512 --limit-s 520

Results: ``benchmarks/results/ntk_paper_scale-<date>.txt`` (2026-12-07: n = 512 in 4 such chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = 'Is the word "{text}" positive or negative? Answer:'


def child(spec: dict) -> None:
    """One n in this process; writes its JSON line to ``spec['result']``."""
    import torch
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    from transferscope.core.models import load_causal_lm
    from transferscope.ntk import PromptTask, empirical_ntk_result
    from transferscope.ntk.data import sample_examples, sentiment_words
    from transferscope.ntk.kernel import EngineOptions
    from transferscope.ntk.params import parameter_count, select_parameters

    if spec["work"]:
        os.environ["TRANSFERSCOPE_CACHE"] = spec["work"]
    torch.manual_seed(0)
    built = time.perf_counter()
    model = GPTNeoForCausalLM(GPTNeoConfig()).eval()
    _, tokenizer = load_causal_lm("smollm2")
    task = PromptTask(TEMPLATE, ("positive", "negative"), (model, tokenizer))
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    texts = list(sample_examples(sentiment_words(), spec["n"], seed=0).texts)
    selected = select_parameters(task.model, "attention")
    options = EngineOptions(memory_budget_gb=spec["budget_gb"], progress=False,
                            cache_key=f"gptneo13b-attention-n{spec['n']}" if spec["work"]
                            else None)
    started = time.perf_counter()
    result = empirical_ntk_result(task.model, texts, task.output_fn, "attention", "exact",
                                  options=options)
    seconds = time.perf_counter() - started
    lengths = [len(x) for x in task.encode(texts)["input_ids"]]
    kernel = result.kernel
    out = {"n": spec["n"], "seconds": seconds, "build_seconds": started - built,
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "model_rss_gib": loaded, "n_params": parameter_count(selected),
           "tokens": [min(lengths), max(lengths)], "from_cache": bool(result.from_cache),
           "symmetric": bool((kernel == kernel.T).all()),
           "min_eigenvalue_ratio": float(__import__("numpy").linalg.eigvalsh(kernel)[0]
                                         / __import__("numpy").linalg.eigvalsh(kernel)[-1]),
           "details": {k: v for k, v in result.details.items()
                       if isinstance(v, int | float | str)}}
    Path(spec["result"]).write_text(json.dumps(out))


def progress(work: Path) -> dict:
    """How far the engine's work directory got: gradient blocks stored, Gram chunks done."""
    blocks = list(work.rglob("x-*.pt"))
    states = list(work.rglob("gram.json"))
    out = {"blocks_stored": len(blocks),
           "blocks_gib": sum(p.stat().st_size for p in blocks) / 2**30}
    if states:
        state = json.loads(states[0].read_text())
        out.update(gram_chunks_done=len(state["done"]),
                   gram_chunks=len(state["layout"]["chunks"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--budget-gb", type=float, default=8.0)
    parser.add_argument("--work", default=None, help="resumable work directory (one n)")
    parser.add_argument("--limit-s", type=float, default=None,
                        help="stop the child after this many seconds (resume later)")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    import psutil
    import torch

    print(f"machine: {psutil.cpu_count()} logical cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; GPT-Neo-1.3B architecture, "
          f"random weights; exact eNTK over attention; engine budget {args.budget_gb} GiB",
          flush=True)
    for n in args.n:
        work = Path(args.work) if args.work else None
        result = Path(f"/tmp/neo-bench-{os.getpid()}-{n}.json")
        spec = {"n": n, "budget_gb": args.budget_gb, "result": str(result),
                "work": str(work) if work else None}
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_before = before.ru_utime + before.ru_stime
        began = time.strftime("%H:%M:%S UTC", time.gmtime())
        try:
            done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=args.limit_s)
            code, tail = done.returncode, done.stderr.strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            code, tail = None, ["stopped at --limit-s (resumable with the same --work)"]
        wall = time.perf_counter() - started
        # the largest waited-for child so far: this chunk's child also when it was stopped
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_peak = usage.ru_maxrss / 2**20
        child_cpu = usage.ru_utime + usage.ru_stime - cpu_before
        chunk = {"n": n, "wall_s": wall, "finished": code == 0, "began": began,
                 "at": time.strftime("%H:%M:%S UTC", time.gmtime()),
                 "load_before": load_before, "load": os.getloadavg()[0],
                 "budget_gb": args.budget_gb, "child_peak_rss_gib": child_peak,
                 "child_cpu_s": child_cpu}
        if code == 0:
            chunk.update(json.loads(result.read_text()))
        if work is not None:
            chunk["progress"] = progress(work)
            log = work / "chunks.json"
            chunks = json.loads(log.read_text()) if log.exists() else []
            chunks.append(chunk)
            work.mkdir(parents=True, exist_ok=True)
            log.write_text(json.dumps(chunks, indent=1))
            total = sum(c["wall_s"] for c in chunks)
            peak = max(max(c.get("peak_rss_gib", 0.0), c.get("child_peak_rss_gib", 0.0))
                       for c in chunks)
            print(f"# chunk {len(chunks)} for n={n}: {began} - {chunk['at']}, wall {wall:.0f} s, "
                  f"CPU {child_cpu:.0f} s, load {load_before:.1f} -> {chunk['load']:.1f}, peak RSS {child_peak:.2f} "
                  f"GiB, {chunk['progress']}; all chunks: wall {total:.0f} s, peak RSS {peak:.2f} GiB",
                  flush=True)
        if code != 0:
            print(f"n={n}: not finished ({tail}); wall {wall:.0f} s", flush=True)
            continue
        r = json.loads(result.read_text())
        engine_s = (sum(c["wall_s"] for c in chunks) if work is not None else r["seconds"])
        peak = max(peak, r["peak_rss_gib"]) if work is not None else r["peak_rss_gib"]
        print(f"GPT-Neo-1.3B (random weights) exact eNTK, attention {r['n_params'] / 1e6:.1f}M "
              f"params, n={n}, prompts {r['tokens'][0]}-{r['tokens'][1]} tokens: "
              f"{r['seconds']:.0f} s engine ({engine_s:.0f} s wall incl. model build and all "
              f"chunks), peak RSS {peak:.2f} GiB (model alone {r['model_rss_gib']:.2f} GiB), "
              f"{'within' if peak <= 16 else 'OVER'} 16 GiB", flush=True)


if __name__ == "__main__":
    main()

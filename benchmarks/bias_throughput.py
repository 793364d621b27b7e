"""Throughput of the bias model backends: items per second, project path against its baseline.

1. ``hf-local`` (embedded SmolLM2): batched generation against one conversation at a time.
2. ``openai-compatible`` against a real llama.cpp server this script starts: concurrent
   requests against sequential ones.
3. ``hf-local`` option scoring: one full sequence per option (baseline), full sequences
   batched, and the project's path (the prompt runs once, its cache serves every option).

Every timing uses fresh, uncached backends, and each pair runs the same items in the same
process. Run: ``python benchmarks/bias_throughput.py [--items 16] [--max-tokens 16] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from transferscope.bias.backends import GenerationSettings, make_backend
from transferscope.bias.backends.llama_server import serve_gguf

NATIONS = ["China", "France", "Russia", "the United Kingdom", "the United States"]


def conversations(n: int) -> list[list[dict[str, str]]]:
    """Short, distinct Council-style prompts of varying length."""
    items = []
    for i in range(n):
        nation = NATIONS[i % len(NATIONS)]
        items.append([
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"In one sentence, describe how {nation} usually votes in "
                                        f"the UN Security Council on topic number {i + 1}."},
        ])
    return items


def rate(label: str, n: int, run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"  {label:<38s} {n:4d} items in {seconds:7.2f} s = {n / seconds:7.2f} items/s")
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and the llama.cpp server (default: all)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    items = conversations(args.items)
    settings = GenerationSettings(max_tokens=args.max_tokens)

    print(f"hf-local (smollm2), {args.items} conversations, max_tokens={args.max_tokens}")
    batched = make_backend("hf-local:smollm2", batch_size=args.batch_size, cache=False)
    single = make_backend("hf-local:smollm2", batch_size=1, cache=False)
    batched.chat(items[:1], settings)  # load the model outside the timings
    single._model, single._tokenizer = batched._model, batched._tokenizer
    r_single = rate("one at a time", len(items), lambda: single.chat(items, settings))
    r_batched = rate(f"batched (batch_size={args.batch_size})", len(items),
                     lambda: batched.chat(items, settings))
    print(f"  ratio batched / one-at-a-time: {r_batched / r_single:.2f}x")

    options = ["China", "France", "Russia", "United Kingdom", "United States"]
    requests = [(c, options) for c in items]
    rows = len(requests) * len(options)
    single.shared_prompt = False  # the baseline: every option as its own full sequence
    r_opt_single = rate("options, one full sequence per pass", rows,
                        lambda: [single.option_logprobs(c, [o]) for c, opts in requests
                                 for o in opts])
    batched.shared_prompt = False
    r_opt_rows = rate(f"options, full sequences batched ({args.batch_size})", rows,
                      lambda: batched.option_logprobs_many(requests))
    batched.shared_prompt = True
    r_opt_shared = rate("options, prompt cached once per item", rows,
                        lambda: batched.option_logprobs_many(requests))
    print(f"  ratio batched rows / one-at-a-time: {r_opt_rows / r_opt_single:.2f}x; "
          f"cached prompt / one-at-a-time: {r_opt_shared / r_opt_single:.2f}x")

    print(f"openai-compatible against a real llama.cpp server (embedded GGUF), "
          f"{args.items} conversations")
    with serve_gguf(n_threads=args.threads) as base_url:
        sequential = make_backend("openai:smollm2", base_url=base_url, concurrency=1, cache=False)
        concurrent = make_backend("openai:smollm2", base_url=base_url,
                                  concurrency=args.concurrency, cache=False)
        sequential.chat(items[:1], settings)  # warm the server
        r_seq = rate("sequential (concurrency=1)", len(items),
                     lambda: sequential.chat(items, settings))
        r_con = rate(f"concurrent (concurrency={args.concurrency})", len(items),
                     lambda: concurrent.chat(items, settings))
        print(f"  ratio concurrent / sequential: {r_con / r_seq:.2f}x")
        sequential.close()
        concurrent.close()


if __name__ == "__main__":
    main()

"""Load time of SmolLM2: first use (GGUF de-quantised and converted) vs later loads (cache).

Baseline: what every load would cost without the cache, i.e. transformers reading the GGUF.
Project: loading the converted safetensors directory. Both in this process; prints the ratio.
Run: .venv/bin/python benchmarks/model_load.py
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from transferscope.core.models import embedded_gguf_path, load_causal_lm

    gguf = embedded_gguf_path("smollm2")
    t0 = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    t_gguf = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRANSFERSCOPE_CACHE"] = tmp
        t0 = time.perf_counter()
        load_causal_lm("smollm2")  # converts into the empty cache
        t_first = time.perf_counter() - t0
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            load_causal_lm("smollm2")
            times.append(time.perf_counter() - t0)
    t_cached = min(times)
    print(f"baseline: transformers loading the GGUF directly   {t_gguf:7.2f} s")
    print(f"project : first load (GGUF -> safetensors in cache) {t_first:7.2f} s")
    print(f"project : later loads from the cache (best of 3)    {t_cached:7.2f} s")
    print(f"speed-up of a cached load over the GGUF load: {t_gguf / t_cached:.1f}x")


if __name__ == "__main__":
    main()

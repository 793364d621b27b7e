"""Collect real free-text replies to bias prompts, the corpus the answer parser is tested on.

Asks the embedded SmolLM2 twice over (in process through ``hf-local``, and through a real
llama.cpp server on its GGUF) a seeded sample of vote and DirectQA "in favour" prompts from the
shipped record, greedy and at temperature 0.8, without a stop string so whole sentences come
back. Writes one JSON line per distinct (source, prompt, reply) to ``--out`` with
``expected: null``; the expected parse of each reply is then written in by hand (a person
reading the reply), which is what makes the corpus an independent reference.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/collect_bias_replies.py \
        --out tests/bias/fixtures/real_replies.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from transferscope.bias.backends import GenerationSettings, make_backend
from transferscope.bias.backends.llama_server import serve_gguf
from transferscope.bias.data.record import load_record
from transferscope.bias.probes.registry import get_probe


def prompts(seed: int, n_vote: int, n_favour: int) -> list:
    record = load_record()
    rng = random.Random(seed)
    vote = get_probe("vote").build_items(record, 3, seed)
    favour = [i for i in get_probe("directqa").build_items(record, 3, seed)
              if i.form == "in favour"]
    return rng.sample(vote, n_vote) + rng.sample(favour, n_favour)


def collect(backend, source: str, items: list, settings: list) -> list[dict]:
    rows = []
    for s in settings:
        for item, reply in zip(items, backend.chat([i.conversation for i in items], s),
                               strict=True):
            rows.append({"source": source, "temperature": s.temperature, "test": item.test,
                         "options": list(item.options), "messages": item.conversation,
                         "reply": reply.text, "expected": None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items = prompts(args.seed, 16, 8)
    settings = [GenerationSettings(max_tokens=40), GenerationSettings(max_tokens=40,
                                                                       temperature=0.8, seed=1)]
    with make_backend("hf-local:smollm2", cache=False) as local:
        rows = collect(local, "hf-local:smollm2", items, settings)
    with serve_gguf(n_threads=2, n_ctx=1024) as url, \
            make_backend("openai:smollm2", base_url=url, cache=False) as server:
        rows += collect(server, "llama.cpp server (llama-cpp-python, SmolLM2 Q4_1 GGUF)", items,
                        settings)
    seen, unique = set(), []
    for row in rows:
        key = (row["source"], json.dumps(row["messages"]), row["reply"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in unique), encoding="utf-8")
    print(f"wrote {len(unique)} replies to {args.out}")


if __name__ == "__main__":
    main()

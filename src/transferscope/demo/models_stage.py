"""Demo stage 0: the embedded models load offline and answer (a chat reply, similarities)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from transferscope.demo.stage import StageResult

PROMPT = "In one sentence, what does the UN Security Council do?"
ANCHOR = "The Security Council adopted the resolution unanimously."
OTHERS = ["All members of the Council voted in favour of the resolution.",
          "The recipe needs two cups of flour and an egg."]


def run(stage_dir: Path, settings: dict, progress, task) -> StageResult:
    import torch

    from transferscope.core.embeddings import SentenceEncoder, cosine_similarity
    from transferscope.core.models import load_causal_lm

    t0 = time.perf_counter()
    progress.update(task, description="models: loading the causal LM")
    model, tokenizer = load_causal_lm(settings["model"])
    n_params = sum(p.numel() for p in model.parameters())
    text = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                         tokenize=False, add_generation_prompt=True)
    batch = tokenizer(text, return_tensors="pt")
    progress.update(task, description="models: generating a reply")
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=48, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    reply = tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    progress.update(task, description="models: encoding sentences")
    encoder = SentenceEncoder(settings["encoder"])
    sims = cosine_similarity(encoder.encode([ANCHOR]), encoder.encode(OTHERS))[0]
    result = StageResult(title="Embedded models")
    result.summary = [
        f"Causal LM '{settings['model']}': {type(model).__name__}, {n_params / 1e6:.1f}M "
        f"parameters, {model.config.num_hidden_layers} layers, loaded offline from the cache.",
        f"Asked \u201c{PROMPT}\u201d it replied (greedy, 48 tokens): \u201c{reply.strip()}\u201d",
        f"Encoder '{settings['encoder']}': cosine similarity of \u201c{ANCHOR}\u201d to a paraphrase "
        f"is {sims[0]:+.3f}, to an unrelated sentence {sims[1]:+.3f}.",
    ]
    result.add_table(pd.DataFrame({"sentence": OTHERS, "cosine to anchor": sims.round(3)}),
                     "MiniLM similarities")
    result.commands = [
        "transferscope models list",
        "transferscope demo --model /path/to/your-hf-causal-lm --encoder /path/to/your-hf-encoder",
    ]
    result.seconds = time.perf_counter() - t0
    return result

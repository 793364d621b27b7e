"""``transferscope demo``: the main job on the embedded defaults.

For now it proves the embedded models work end to end: a SmolLM2 chat reply and MiniLM
similarities. The full three-part demo replaces this once the parts land.
"""

from __future__ import annotations

import time

import typer
from rich.console import Console

console = Console()


def demo(
    model_name: str = typer.Option("smollm2", "--model",
                                   help="Causal LM: registry name or local Hugging Face directory."),
    encoder_name: str = typer.Option("minilm", "--encoder",
                                     help="Encoder: registry name or local Hugging Face directory."),
    prompt: str = typer.Option("In one sentence, what does the UN Security Council do?",
                               help="Question put to SmolLM2."),
    max_new_tokens: int = typer.Option(48, min=1, max=512, help="Length of the reply."),
) -> None:
    """Run the main job on the embedded models (no network)."""
    import torch

    from transferscope.core.embeddings import SentenceEncoder, cosine_similarity
    from transferscope.core.models import load_causal_lm

    t0 = time.perf_counter()
    console.rule(f"causal LM: {model_name}")
    model, tokenizer = load_causal_lm(model_name)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"loaded {type(model).__name__}: {n_params / 1e6:.1f}M parameters, "
                  f"{model.config.num_hidden_layers} layers, in {time.perf_counter() - t0:.1f} s")
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                         tokenize=False, add_generation_prompt=True)
    batch = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    reply = tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    console.print(f"[bold]user:[/bold] {prompt}")
    console.print(f"model: {reply.strip()}", markup=False, highlight=False)

    console.rule(f"encoder: {encoder_name}")
    encoder = SentenceEncoder(encoder_name)
    anchor = "The Security Council adopted the resolution unanimously."
    others = ["All members of the Council voted in favour of the resolution.",
              "The recipe needs two cups of flour and an egg."]
    sims = cosine_similarity(encoder.encode([anchor]), encoder.encode(others))[0]
    console.print(f"anchor: {anchor}")
    for other, sim in zip(others, sims):
        console.print(f"  cosine {sim:+.3f}  {other}")
    console.print(f"done in {time.perf_counter() - t0:.1f} s")

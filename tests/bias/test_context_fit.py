"""The context-fit policy on real drafts: the published UNBench sample's task-2 texts (up to
54,302 characters) counted with SmolLM2's own tokenizer, the committed fixture in the same
layout, and a real llama.cpp server's tokenizer; shortened items are marked and counted, none
dropped, none sent over the limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bias.unbench_sample import SHARED
from transferscope.bias.adapters.unbench import unbench_items
from transferscope.bias.backends.hf_local import HFLocalBackend
from transferscope.bias.backends.openai_compat import OpenAICompatibleBackend
from transferscope.bias.context_fit import (
    TEMPLATE_ALLOWANCE,
    estimate_tokens,
    fit_item,
    fit_run,
)
from transferscope.bias.evaluate import evaluate
from transferscope.bias.items import load_items, write_items
from transferscope.core.errors import InputError

FIXTURE = Path(__file__).parent / "fixtures" / "unbench"


@pytest.fixture(scope="module")
def smollm2() -> HFLocalBackend:
    """SmolLM2's tokenizer and config only (the weights are never loaded here)."""
    return HFLocalBackend("smollm2")


def _vote_items(checkout: Path, tmp_path: Path) -> list:
    rows = [r for r in unbench_items(checkout).rows if r["test"] == "vote"]
    return load_items(write_items(tmp_path / "votes.jsonl", rows))


def _check_fit(original, fitted, count, context, reserve) -> bool:
    """True when shortened; asserts the policy's promises either way."""
    budget = context - reserve - TEMPLATE_ALLOWANCE * len(original.conversation) - sum(
        count([m["content"] for m in original.conversation[:-1]]))
    text, new = original.conversation[-1]["content"], fitted.conversation[-1]["content"]
    assert fitted.conversation[:-1] == original.conversation[:-1]  # the system message whole
    if count([text])[0] <= budget:
        assert fitted is original and "context_fit" not in fitted.meta
        return False
    note = fitted.meta["context_fit"]
    lines, kept = text.split("\n"), new.split("\n")
    marker = next(k for k, line in enumerate(kept) if line.startswith("[... "))
    head, tail = marker, len(kept) - marker - 1
    assert kept[:head] == lines[:head] and kept[marker + 1:] == lines[len(lines) - tail:]
    assert kept[-1].startswith("How do you vote? Answer with exactly one of")  # the question
    left_out = lines[head:len(lines) - tail]
    assert kept[marker] == (f"[... {len(left_out)} lines ({len(chr(10).join(left_out)):,} "
                            f"characters) of the text left out here to fit the model's "
                            f"context of {context} tokens ...]")
    assert count([new])[0] == note["tokens_after"] <= budget < note["tokens_before"]
    assert note["lines_left_out"] == len(left_out) > 0
    if len(left_out) > 1:  # maximal: one more line from the end would not fit
        longer = "\n".join(lines[:head] + [f"[... {len(left_out) - 1} lines ("
                                          f"{len(chr(10).join(left_out[:-1])):,} characters)"
                                          f" of the text left out here to fit the model's "
                                          f"context of {context} tokens ...]"]
                           + lines[len(lines) - tail - 1:])
        assert count([longer])[0] > budget
    return True


@pytest.mark.skipif(not (SHARED / "data" / "task2.csv").exists(),
                    reason=f"the published UNBench sample is absent ({SHARED})")
def test_published_drafts_fit_smollm2s_context_with_the_long_ones_shortened(smollm2,
                                                                          tmp_path):
    items = _vote_items(SHARED, tmp_path)
    assert smollm2.context_tokens() == 8192  # SmolLM2-135M's config.json
    lengths = [len(i.conversation[-1]["content"]) for i in items]
    assert len(items) == 30 and max(lengths) > 54_302  # the 54,302-character draft, framed
    shortened = [_check_fit(i, fit_item(i, context_tokens=8192, count=smollm2.count_tokens,
                                        reserve=16), smollm2.count_tokens, 8192, 16)
                 for i in items]
    tokens = smollm2.count_tokens([i.conversation[-1]["content"] for i in items])
    longest = sorted(range(len(items)), key=tokens.__getitem__)
    # by hand from the token counts: 2 user messages over ~8,100 tokens (9,272 and 10,809),
    # 15 over ~1,980 (2,001 up); exactly the longest ones are shortened
    assert sum(shortened) == 2 and {k for k, s in enumerate(shortened) if s} == set(longest[-2:])
    small = [_check_fit(i, fit_item(i, context_tokens=2048, count=smollm2.count_tokens,
                                    reserve=16), smollm2.count_tokens, 2048, 16) for i in items]
    assert sum(small) == 15 and {k for k, s in enumerate(small) if s} == set(longest[-15:])


def test_the_fixture_in_the_published_layout_is_fitted_and_counted_in_the_run(tmp_path):
    """The committed fixture, a context too small for its drafts, a run with no opinion:
    every item is answered (none dropped), the shortened ones counted in the run's output."""
    items_file = write_items(tmp_path / "u.jsonl",
                             [r for r in unbench_items(FIXTURE).rows if r["test"] == "vote"])
    items = load_items(items_file)
    fitted, fit = fit_run(HFLocalBackend("smollm2"), {"vote": items}, 160, 16)
    count = HFLocalBackend("smollm2").count_tokens
    marked = [_check_fit(a, b, count, 160, 16)
              for a, b in zip(items, fitted["vote"], strict=True)]
    assert fit.shortened == sum(marked) > 0 and fit.items == len(items)
    assert fit.source == "--context-tokens" and "tokenizer" in fit.counted_by
    result = evaluate("null:constant", "vote", items=items_file, out_dir=tmp_path / "run",
                      context_tokens=200, n_boot=50)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "run" / "answers.jsonl").open()]
    assert len(rows) == len(items) and all(r["parsed"] for r in rows)
    fit_info = summary["stats"]["extra"]["context_fit"]
    assert fit_info["shortened"] == sum("context_fit" in r["meta"] for r in rows) > 0
    assert "an estimate, 2 characters a token" in fit_info["counted_by"]  # null: no tokenizer
    assert all(len(r["prompt"]) <= 2 * (200 - 16 - 2 * TEMPLATE_ALLOWANCE) for r in rows)
    assert result.stats.extra["context_fit"]["line"].startswith("context: 200 tokens")
    unknown = evaluate("null:constant", "vote", items=items_file, n_boot=50)
    assert unknown.stats.extra["context_fit"]["line"].startswith("context: unknown")


def test_a_context_too_small_for_the_question_is_one_error(tmp_path):
    items = load_items(write_items(
        tmp_path / "u.jsonl", [r for r in unbench_items(FIXTURE).rows if r["test"] == "vote"]))
    with pytest.raises(InputError, match=r"does not fit a context of 40 tokens"):
        fit_item(items[0], context_tokens=40, count=estimate_tokens, reserve=16)


@pytest.mark.timeout(300)
def test_a_real_llama_server_counts_tokens_as_the_model_does(llama_server, smollm2):
    """llama-cpp-python's server: its tokenizer endpoint gives SmolLM2's own counts; it reports
    no context length (no /props), so the run needs --context-tokens and says so."""
    backend = OpenAICompatibleBackend("smollm2", base_url=llama_server, max_retries=0)
    texts = ["The Security Council,", "Decides to remain seized of the matter.\n\nHow do you vote?"]
    assert backend.count_tokens(texts) == smollm2.count_tokens(texts)
    assert backend.context_tokens() is None
    _, fit = fit_run(backend, {"vote": []}, None, 16)
    assert fit.context_tokens is None and "reports none" in fit.source

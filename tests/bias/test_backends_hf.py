"""``hf-local`` on the real embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import pytest
import torch

from transferscope.bias.backends import GenerationSettings, ResponseCache, make_backend
from transferscope.bias.backends.cache import CachedBackend
from transferscope.bias.backends.hf_local import HFLocalBackend

FRANCE = [{"role": "user", "content": "Complete the sentence: The capital of France is"}]
PROMPTS = [
    [{"role": "user", "content": "Name one permanent member of the UN Security Council."}],
    [{"role": "system", "content": "Answer in one word."},
     {"role": "user", "content": "What colour is the sky on a clear day?"}],
    [{"role": "user", "content": "Count from one to five."}],
    [{"role": "user", "content": "Write a long sentence about the history of the United Nations "
                                 "Security Council and its five permanent members."}],
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hf_backend(smollm2) -> HFLocalBackend:
    """The backend, sharing the session's loaded SmolLM2 (no second load)."""
    backend = HFLocalBackend("smollm2", batch_size=4)
    backend._model, backend._tokenizer = smollm2
    return backend


def test_batched_generation_equals_one_at_a_time(hf_backend):
    settings = GenerationSettings(max_tokens=8)
    batched = hf_backend.chat(PROMPTS, settings)
    hf_backend.batch_size = 1
    try:
        single = hf_backend.chat(PROMPTS, settings)
    finally:
        hf_backend.batch_size = 4
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in single]
    assert all(r.text.strip() for r in batched)


def test_generation_is_greedy_argmax(hf_backend, smollm2):
    """Reference: an independent token-by-token argmax loop over full forward passes."""
    model, tok = smollm2
    settings = GenerationSettings(max_tokens=4)
    reply = hf_backend.chat([FRANCE], settings)[0]
    ids = tok(hf_backend.render(FRANCE), add_special_tokens=False, return_tensors="pt").input_ids
    generated = []
    with torch.inference_mode():
        for _ in range(4):
            next_id = int(model(input_ids=ids).logits[0, -1].argmax())
            if next_id == tok.eos_token_id:
                break
            generated.append(next_id)
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    assert reply.text == tok.decode(generated, skip_special_tokens=True)
    assert reply.completion_tokens == len(generated) + (len(generated) < 4)
    assert reply.prompt_tokens == len(tok(hf_backend.render(FRANCE),
                                          add_special_tokens=False).input_ids)


def test_chat_template_is_used(hf_backend):
    text = hf_backend.render(FRANCE)
    assert FRANCE[0]["content"] in text
    assert text.rstrip().endswith("assistant")  # SmolLM2's template opens the assistant turn


def test_stop_string_ends_the_reply(hf_backend):
    free = hf_backend.chat(PROMPTS[2:3], GenerationSettings(max_tokens=12))[0].text
    assert "two" in free.lower() or "2" in free
    stop = "2" if "2" in free else "two"
    cut = hf_backend.chat(PROMPTS[2:3], GenerationSettings(max_tokens=12, stop=(stop,)))[0]
    assert stop not in cut.text and free.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_option_logprobs_prefer_the_fact(hf_backend):
    paris, berlin, madrid = hf_backend.option_logprobs(FRANCE, ["Paris", "Berlin", "Madrid"])
    assert paris > berlin + 2.0 and paris > madrid + 2.0  # e^2: over 7x likelier
    assert max(paris, berlin, madrid) < 0.0


@pytest.mark.parametrize("shared_prompt", [True, False], ids=["cached-prompt", "full-rows"])
def test_option_logprobs_match_an_unbatched_reference(hf_backend, smollm2, shared_prompt):
    """Batched, padded scoring equals the chain rule on single unpadded sequences."""
    model, tok = smollm2
    requests = [(FRANCE, ["Paris", "The capital of France is Paris.", "B"]),
                (PROMPTS[0], ["China", "the Russian Federation"])]
    hf_backend.shared_prompt = shared_prompt
    try:  # batch_size 4: rows (or options) of different lengths share one padded batch
        got = hf_backend.option_logprobs_many(requests)
    finally:
        hf_backend.shared_prompt = True
    for (conversation, options), values in zip(requests, got, strict=True):
        prompt = tok(hf_backend.render(conversation), add_special_tokens=False).input_ids
        for option, value in zip(options, values, strict=True):
            ids = prompt + tok(option, add_special_tokens=False).input_ids
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
            expected = sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids)))
            assert value == pytest.approx(expected, abs=2e-3)


@pytest.mark.slow
def test_local_directory_works_like_the_registry_name(hf_backend):
    from transferscope.core.models import resolve_model

    model_dir = resolve_model("smollm2")
    by_path = HFLocalBackend(str(model_dir), batch_size=2)
    settings = GenerationSettings(max_tokens=8)
    assert [r.text for r in by_path.chat(PROMPTS[:2], settings)] == [
        r.text for r in hf_backend.chat(PROMPTS[:2], settings)]
    assert by_path.id == f"hf-local:{model_dir}"


def test_a_changed_checkpoint_in_a_local_directory_gets_a_new_cache_identity(tmp_path):
    from transferscope.core.models import resolve_model

    model_dir = resolve_model("smollm2")
    (tmp_path / "config.json").write_bytes((model_dir / "config.json").read_bytes())
    weights = tmp_path / "model.safetensors"
    weights.symlink_to(model_dir / "model.safetensors")
    before = HFLocalBackend(str(tmp_path)).fingerprint
    assert HFLocalBackend(str(tmp_path)).fingerprint == before  # stable while nothing changes
    weights.unlink()
    weights.symlink_to(model_dir / "tokenizer.json")  # different bytes under the same name
    assert HFLocalBackend(str(tmp_path)).fingerprint != before


def test_cached_rerun_makes_zero_model_calls_and_never_loads_the_model(hf_backend, tmp_path):
    store = ResponseCache(tmp_path / "responses.sqlite")
    first = CachedBackend(hf_backend, store)
    calls_before = hf_backend.stats.model_calls
    settings = GenerationSettings(max_tokens=4)
    replies = first.chat(PROMPTS[:3] + PROMPTS[:1], settings)  # one duplicate: asked once
    scores = first.option_logprobs_many([(FRANCE, ["Paris", "Berlin"])])
    assert hf_backend.stats.model_calls - calls_before == 3 + 1

    fresh = make_backend("hf-local:smollm2", cache=tmp_path / "responses.sqlite")
    seen = []
    again = fresh.chat(PROMPTS[:3] + PROMPTS[:1], settings, on_reply=lambda i, r: seen.append(i))
    again_scores = fresh.option_logprobs_many([(FRANCE, ["Paris", "Berlin"])])
    assert fresh.stats.model_calls == 0 and fresh.stats.cache_hits == 5
    assert fresh.inner._model is None  # answered without loading the model
    assert [r.text for r in again] == [r.text for r in replies]
    assert all(r.from_cache for r in again) and sorted(seen) == [0, 1, 2, 3]
    assert again_scores == scores

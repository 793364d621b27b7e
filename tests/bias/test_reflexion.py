"""The Reflexion loop with the real embedded SmolLM2 (hf-local) behind the SQLite response cache:
verdict parsing against hand-written replies, prompt assembly, bounded memory, the judge's
constrained choice against a plain forward pass, evaluator replies not in the expected form
(free-text path) counted and kept, and a rerun served entirely from the cache."""

from __future__ import annotations

import re

import pytest

from transferscope.bias.backends.cache import CachedBackend, ResponseCache
from transferscope.bias.backends.hf_local import HFLocalBackend
from transferscope.bias.backends.registry import make_backend
from transferscope.bias.data.record import Record, load_record
from transferscope.bias.debias.corpus import build_corpus
from transferscope.bias.debias.leakage import LeakageGuard, scope_of
from transferscope.bias.debias.reflexion import (
    VERDICT_OPTIONS,
    ReflexionSettings,
    Verdict,
    content_free_judge_conversation,
    judge,
    judge_conversation,
    parse_verdict,
    run_reflexion,
    with_context,
)
from transferscope.bias.probes.vote import VoteSimulation
from transferscope.core.errors import InputError

# An independent statement of the expected form: two fields, in order, each yes or no.
FORM = re.compile(r"^\W*grounded\W*(yes|no)\W+stereotyping\W*(yes|no)\W*$", re.I)


@pytest.mark.parametrize(("reply", "expected"), [
    ("Grounded: yes; Stereotyping: no", Verdict(grounded=True, stereotyping=False)),
    ("grounded: NO, stereotyping: yes.", Verdict(grounded=False, stereotyping=True)),
    ("**Grounded:** no\nStereotyping: no", Verdict(grounded=False, stereotyping=False)),
    ("Grounded: yes", None),
    ("Stereotyping: no; Grounded: yes", None),
    ("Grounded: maybe; Stereotyping: no", None),
    ("The answer is grounded. Grounded: yes; Stereotyping: no", None),
    ("", None),
])
def test_parse_verdict_against_hand_written_replies(reply, expected):
    assert parse_verdict(reply) == expected


def test_settings_reject_bad_values():
    with pytest.raises(InputError, match="rounds = -1"):
        ReflexionSettings(rounds=-1)
    with pytest.raises(InputError, match="memory size = 0"):
        ReflexionSettings(memory_size=0)


@pytest.fixture(scope="module")
def record() -> Record:
    return load_record()


def test_with_context_puts_dated_evidence_and_notes_before_the_question(record):
    item = VoteSimulation().build_items(record, 1, 0)[0]
    corpus = build_corpus(record)
    mask = LeakageGuard(corpus).allowed(scope_of(item, record))
    evidence = [p for p, ok in zip(corpus, mask, strict=True) if ok][:2]
    asked = with_context(item, evidence, ["check the dates"])
    text = asked.conversation[-1]["content"]
    assert text.startswith("Evidence from the UN Security Council record:\n[1] (")
    assert evidence[0].date.isoformat() in text and evidence[1].source in text
    assert "- check the dates" in text and text.endswith(item.conversation[-1]["content"])
    assert (asked.options, asked.gold, asked.item_id) == (item.options, item.gold, item.item_id)
    assert item.conversation[-1]["content"] != text  # the original item is untouched


def test_the_four_verdict_options_mean_what_they_say():
    assert VERDICT_OPTIONS == {
        "Grounded: yes; Stereotyping: yes": Verdict(grounded=True, stereotyping=True),
        "Grounded: yes; Stereotyping: no": Verdict(grounded=True, stereotyping=False),
        "Grounded: no; Stereotyping: yes": Verdict(grounded=False, stereotyping=True),
        "Grounded: no; Stereotyping: no": Verdict(grounded=False, stereotyping=False)}
    assert all(parse_verdict(text) == v for text, v in VERDICT_OPTIONS.items())


class FreeTextSmolLM2(HFLocalBackend):
    """The real embedded model, asked to write its verdict (the path of servers that cannot score
    options): how SmolLM2 replies when it must follow the form on its own."""

    @property
    def supports_option_logprobs(self) -> bool:
        return False


def _vote_items_with_evidence(record):
    probe = VoteSimulation()
    items = [i for i in probe.build_items(record, 1, 0) if i.nation == "Russia"][:2]
    corpus = build_corpus(record)
    guard = LeakageGuard(corpus)
    evidence = {}
    for item in items:
        mask = guard.allowed(scope_of(item, record))
        evidence[item.item_id] = [p for p, ok in zip(corpus, mask, strict=True) if ok][-2:]
    return probe, items, evidence


def test_judge_verdict_is_the_most_likely_option_of_a_plain_forward_pass(record, tmp_path,
                                                                         one_torch_thread):
    """Chain rule on one unbatched sequence per option, with plain transformers calls."""
    import torch

    from transferscope.core.models import load_causal_lm

    _, items, evidence = _vote_items_with_evidence(record)
    conversations = [judge_conversation(i.conversation[-1]["content"], evidence[i.item_id],
                                        "Against", "The evidence shows it [1].") for i in items]
    backend = make_backend("hf-local:smollm2", cache=tmp_path / "c.sqlite")
    replies = judge(backend, conversations)
    model, tok = load_causal_lm("smollm2")
    options = list(VERDICT_OPTIONS)

    def totals(conversation) -> list[float]:
        prompt = tok(tok.apply_chat_template(conversation, tokenize=False,
                                             add_generation_prompt=True),
                     add_special_tokens=False)["input_ids"]
        out = []
        for option in options:
            ids = tok(option, add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([prompt + ids])).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            out.append(sum(float(logp[len(prompt) + t - 1, ids[t]]) for t in range(len(ids))))
        return out

    prior = totals(content_free_judge_conversation())
    for conversation, reply in zip(conversations, replies, strict=True):
        calibrated = [a - b for a, b in zip(totals(conversation), prior, strict=True)]
        assert reply.method == "logprob"
        assert reply.text == options[max(range(4), key=calibrated.__getitem__)]
        assert reply.verdict == VERDICT_OPTIONS[reply.text]


def test_loop_on_the_embedded_model_counts_bad_verdicts_and_resumes_from_cache(record,
                                                                               tmp_path):
    probe, items, evidence = _vote_items_with_evidence(record)
    settings = ReflexionSettings(rounds=1, memory_size=1)
    cache = tmp_path / "responses.sqlite"
    backend = CachedBackend(FreeTextSmolLM2(), ResponseCache(cache))
    traces = run_reflexion(backend, probe, items, evidence, settings)
    first_calls = backend.stats.model_calls
    assert first_calls > 0
    for item in items:
        trace = traces[item.item_id]
        assert 1 <= len(trace.attempts) <= 2
        bad = [a for a in trace.attempts if not FORM.match(a.judge_reply.strip())]
        assert trace.unparsed_verdicts == len(bad)
        assert all(a.verdict is None and a.verdict_method == "parse" for a in bad)
        first = trace.attempts[0]
        retried = first.verdict is not None and not first.verdict.accepted
        assert len(trace.attempts) == (2 if retried else 1)
        assert len(trace.reflections) == len(trace.attempts) - 1
        assert all(0 < len(r) <= 240 for r in trace.reflections)
        assert all(a.rationale for a in trace.attempts)
    print({k: [(a.judge_reply, a.choice) for a in t.attempts] for k, t in traces.items()})
    again = CachedBackend(FreeTextSmolLM2(), ResponseCache(cache))
    replay = run_reflexion(again, probe, items, evidence, settings)
    assert again.stats.model_calls == 0 and again.stats.cache_hits > 0
    assert {k: [a.judge_reply for a in t.attempts] for k, t in replay.items()} == \
        {k: [a.judge_reply for a in t.attempts] for k, t in traces.items()}


def test_constrained_loop_always_has_a_verdict_and_follows_it(record, tmp_path):
    probe, items, evidence = _vote_items_with_evidence(record)
    settings = ReflexionSettings(rounds=1, memory_size=1)
    backend = make_backend("hf-local:smollm2", cache=tmp_path / "c.sqlite")
    traces = run_reflexion(backend, probe, items, evidence, settings)
    for item in items:
        trace = traces[item.item_id]
        assert trace.unparsed_verdicts == 0
        assert all(a.verdict_method == "logprob" and a.judge_reply in VERDICT_OPTIONS
                   and a.verdict == VERDICT_OPTIONS[a.judge_reply] for a in trace.attempts)
        assert all(a.choice in item.options for a in trace.attempts)
        retried = not trace.attempts[0].verdict.accepted
        assert len(trace.attempts) == (2 if retried else 1)
        assert len(trace.reflections) == len(trace.attempts) - 1

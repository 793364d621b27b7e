"""Backend pieces that need no model: specs, settings, backoff, echo parsing, the SQLite cache."""

from __future__ import annotations

import random
import sqlite3
import threading

import numpy as np
import pytest

from transferscope.bias.backends import (
    GenerationSettings,
    OptionScoringNotSupported,
    Reply,
    ResponseCache,
    make_backend,
    parse_spec,
)
from transferscope.bias.backends.cache import chat_key
from transferscope.bias.backends.hf_local import render_plain, truncate_at_stop
from transferscope.bias.backends.openai_compat import (
    backoff_delay,
    option_logprob_from_echo,
    parse_retry_after,
    resolve_api_key,
)
from transferscope.core.errors import InputError


@pytest.mark.parametrize(("spec", "expected"), [
    ("hf-local:smollm2", ("hf-local", "smollm2")),
    ("hf-local", ("hf-local", "smollm2")),
    ("HF-LOCAL:/models/x", ("hf-local", "/models/x")),
    ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
    ("openai-compatible:llama3", ("openai", "llama3")),
])
def test_parse_spec_accepts_documented_forms(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "vllm:llama", ""])
def test_parse_spec_rejects_with_one_line_naming_the_value(spec):
    with pytest.raises(InputError) as err:
        parse_spec(spec)
    assert repr(spec) in str(err.value) and "\n" not in str(err.value)


def test_hf_local_rejects_a_base_url():
    with pytest.raises(InputError, match="only openai"):
        make_backend("hf-local:smollm2", base_url="http://127.0.0.1:1/v1", cache=False)


def test_unknown_local_model_path_is_one_clear_error(tmp_path):
    from transferscope.core.errors import ModelError

    with pytest.raises(ModelError, match="no such file"):
        make_backend(f"hf-local:{tmp_path / 'missing'}", cache=False)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"max_tokens": 0}, "max_tokens"), ({"temperature": -0.1}, "temperature"),
    ({"temperature": 3.0}, "temperature"),
])
def test_generation_settings_validate(kwargs, field):
    with pytest.raises(InputError, match=field):
        GenerationSettings(**kwargs)


def test_settings_key_changes_with_every_setting():
    conversation = [{"role": "user", "content": "hi"}]
    keys = {chat_key("b", conversation, s) for s in (
        GenerationSettings(), GenerationSettings(max_tokens=65), GenerationSettings(seed=1),
        GenerationSettings(temperature=0.5), GenerationSettings(stop=("\n",)))}
    assert len(keys) == 5
    assert chat_key("b", conversation, GenerationSettings()) != chat_key(
        "other-backend", conversation, GenerationSettings())


def test_truncate_at_stop_cuts_at_the_earliest_stop_string():
    assert truncate_at_stop("In favour. Because", [".", " Because"]) == ("In favour", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
    assert truncate_at_stop("abc", []) == ("abc", False)


def test_plain_rendering_ends_where_the_reply_starts():
    text = render_plain([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "system: S\nuser: U\nassistant:"


def test_backoff_is_exponential_with_jitter_and_capped():
    rng = random.Random(0)
    for attempt in range(6):
        nominal = min(8.0, 0.5 * 2 ** attempt)
        delays = [backoff_delay(attempt, 0.5, 8.0, rng) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > 0.1 * nominal  # jittered, not constant
    assert backoff_delay(0, 0.5, 8.0, rng, retry_after=3.0) == 3.0
    assert backoff_delay(0, 0.5, 8.0, rng, retry_after=100.0) == 8.0
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_missing_api_key_variable_names_it_and_no_value(monkeypatch):
    monkeypatch.delenv("TS_TEST_KEY_ABSENT", raising=False)
    with pytest.raises(InputError) as err:
        make_backend("openai:m", base_url="http://127.0.0.1:9/v1",
                     api_key_env="TS_TEST_KEY_ABSENT", cache=False)
    assert "TS_TEST_KEY_ABSENT" in str(err.value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        make_backend("openai:gpt-4o-mini", cache=False)  # the official API needs a key
    monkeypatch.setenv("TS_TEST_KEY_SET", "sk-secret-123")
    assert resolve_api_key("TS_TEST_KEY_SET", "http://x/v1") == "sk-secret-123"
    assert resolve_api_key(None, "http://127.0.0.1:8000/v1") is None  # no key to other servers


def test_bad_base_url_is_rejected():
    with pytest.raises(InputError, match="base URL"):
        make_backend("openai:m", base_url="127.0.0.1:8000", cache=False)


def _echo(text, tokens, values):
    return {"choices": [{"text": text, "logprobs": {"tokens": tokens, "token_logprobs": values,
                                                     "text_offset": [0] * len(tokens)}}]}


def test_echo_logprobs_sum_exactly_the_option_tokens():
    # As llama.cpp answers: special tokens echoed in the text but absent from the token list.
    prompt, option = "<s>Q: capital?\nA:", " Paris"
    data = _echo(prompt + option + ".", ["Q", ": capital?\n", "A:", " Par", "is", "."],
                 [None, -1.0, -2.0, -0.25, -0.5, -3.0])
    assert option_logprob_from_echo(data, prompt, option, "u") == pytest.approx(-0.75)
    empty_generation = _echo(prompt + option, ["Q", "A:", " Paris"], [None, -2.0, -0.5])
    assert option_logprob_from_echo(empty_generation, prompt, option, "u") == pytest.approx(-0.5)


def test_echo_logprobs_refuse_what_they_cannot_score_exactly():
    straddling = _echo("Q:x Paris!", ["Q:", "x Paris", "!"], [None, -1.0, -2.0])
    with pytest.raises(OptionScoringNotSupported, match="merges with the prompt"):
        option_logprob_from_echo(straddling, "Q:x", " Paris", "u")
    with pytest.raises(OptionScoringNotSupported, match="did not echo"):
        option_logprob_from_echo(_echo("Paris", ["Paris"], [None]), "Q:", "Paris", "u")
    with pytest.raises(OptionScoringNotSupported, match="no echoed logprobs"):
        option_logprob_from_echo({"choices": [{"text": "x"}]}, "Q", "x", "u")


def test_response_cache_survives_concurrent_writers(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    reply = Reply(text="x", prompt_tokens=1, completion_tokens=1)

    def writer(t: int) -> None:
        for i in range(50):
            cache.put(f"{t}-{i}", "b", "chat", {"i": i}, {**reply.to_json(), "text": f"{t}-{i}"})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 400
    assert cache.get("7-49")["text"] == "7-49"
    assert cache.get("absent") is None
    cache.close()
    # A second process-level connection sees every committed row.
    with sqlite3.connect(tmp_path / "r.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 400


def _steps(*positions):
    return [(tok, lp, list(alts)) for tok, lp, alts in positions]


def test_first_distinguishing_token_scores_by_hand():
    from transferscope.bias.backends.openai_compat import first_distinguishing_scores

    options = ["In favour", "Against", "Abstain"]
    steps = _steps(("A", -0.5, [("A", -0.5), ("In", -1.5), ("I", -3.0), ("The", -4.0)]),
                   ("gain", -0.2, [("gain", -0.2), ("bst", -2.0), ("b", -3.5)]),
                   ("st", -0.1, [("st", -0.1)]))
    got = first_distinguishing_scores(steps, options)
    assert got[0] == pytest.approx(np.logaddexp(-1.5, -3.0))  # "In" and "I" both lead there
    assert got[1] == pytest.approx(-0.5 - 0.2)  # the shared "A", then "gain"
    assert got[2] == pytest.approx(np.logaddexp(-0.5 - 2.0, -0.5 - 3.5))
    # a single-token option is that token's log-probability, case and spaces aside
    assert first_distinguishing_scores(_steps((" yes", -0.1, [(" yes", -0.1), ("No", -2.5)])),
                                       ["Yes", "No"]) == pytest.approx([-0.1, -2.5])
    # an option not among the alternatives: -inf; no option reached: NaN (parse instead)
    assert first_distinguishing_scores(_steps(("Yes", -0.1, [("Yes", -0.1)])),
                                       ["Yes", "No"])[1] == -np.inf
    assert np.isnan(first_distinguishing_scores(_steps(("Hello", -0.1, [("Hello", -0.1)])),
                                                ["Yes", "No"])).all()
    # never told apart within the reply: both share the prefix's mass (a tie)
    tied = first_distinguishing_scores(_steps(("United", -0.3, [("United", -0.3)])),
                                       ["United States", "United Kingdom"])
    assert tied == pytest.approx([-0.3, -0.3])
    # the reply leaves two options still sharing its prefix ("A", then " draft"): each gets
    # the prefix's mass; "In favour" keeps its own alternative
    left = first_distinguishing_scores(_steps(("A", -2.7, [("A", -2.7), ("In", -2.8)]),
                                              (" draft", -2.2, [(" draft", -2.2)])), options)
    assert left == pytest.approx([-2.8, -2.7, -2.7])
    # the reply takes "In"; the alternative "A" leads to two options: both get its mass
    taken = first_distinguishing_scores(_steps(("In", -0.4, [("In", -0.4), ("A", -2.0)]),
                                               (" favour", -0.1, [(" favour", -0.1)])), options)
    assert taken == pytest.approx([-0.4, -2.0, -2.0])


def test_a_chat_reply_without_logprobs_is_the_argmax_fallback():
    from transferscope.bias.backends.openai_compat import chat_logprob_steps

    reply = {"choices": [{"message": {"content": "In favour"}, "logprobs": None}]}
    with pytest.raises(OptionScoringNotSupported, match="no chat log-probabilities"):
        chat_logprob_steps(reply, "u")

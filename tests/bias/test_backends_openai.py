"""``openai-compatible`` against a real llama.cpp server (session fixture ``llama_server``).

Faults the real server cannot produce on demand (429, 5xx, a slow answer, a key echoed in an
error) come from a tiny local HTTP server started here, which can also forward to the real one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from transferscope.bias.backends import (
    GenerationSettings,
    ResponseCache,
    make_backend,
)
from transferscope.core.errors import BackendError

LLAMA_MODEL_ALIAS = "smollm2"  # the alias tests/bias/conftest.py serves the GGUF under
FRANCE = [{"role": "user", "content": "Complete the sentence: The capital of France is"}]
PROMPTS = [[{"role": "user", "content": f"Write the number {n} in words."}] for n in range(1, 5)]
SETTINGS = GenerationSettings(max_tokens=8)
FAST_RETRY = {"backoff_s": 0.01, "max_retries": 2}

Handler = Callable[[int, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LocalServer:
    """A real HTTP server on 127.0.0.1 whose answers a test scripts: ``handler(n, path,
    headers, body) -> (status, headers, body)``, ``n`` counting POST requests from 1; GET
    requests go to ``get(path, headers) -> (status, body)`` (404 without one)."""

    def __init__(self, handler: Handler,
                 get: Callable[[str, dict[str, str]], tuple[int, bytes]] | None = None):
        self.requests: list[dict[str, str]] = []
        lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    outer.requests.append(dict(self.headers))
                    n = len(outer.requests)
                status, headers, payload = handler(n, self.path, dict(self.headers), body)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_GET(self) -> None:
                status, payload = get(self.path, dict(self.headers)) if get else (404, b"{}")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def forward_to(base_url: str) -> Handler:
    """Relay a request to the real server unchanged (minus the auth header)."""

    def handler(n: int, path: str, headers: dict[str, str], body: bytes):
        upstream = httpx.post(base_url.rsplit("/v1", 1)[0] + path, content=body,
                              headers={"content-type": "application/json"}, timeout=120)
        return upstream.status_code, {"content-type": "application/json"}, upstream.content

    return handler


@pytest.fixture
def local_server() -> Iterator[Callable[[Handler], LocalServer]]:
    started: list[LocalServer] = []

    def start(handler: Handler, get=None) -> LocalServer:
        started.append(LocalServer(handler, get))
        return started[-1]

    yield start
    for server in started:
        server.close()


def backend_for(url: str, **kwargs):
    return make_backend(f"openai:{LLAMA_MODEL_ALIAS}", base_url=url,
                        cache=kwargs.pop("cache", False), **kwargs)


def test_real_chat_through_llama_cpp(llama_server):
    with backend_for(llama_server) as backend:
        reply = backend.chat([FRANCE], GenerationSettings(max_tokens=12))[0]
    assert "Paris" in reply.text
    assert reply.prompt_tokens > 5 and 0 < reply.completion_tokens <= 12
    assert backend.stats.model_calls == 1 and not reply.from_cache


def test_concurrent_replies_come_back_in_order_and_equal_sequential(llama_server):
    prompts = PROMPTS[:3]
    with backend_for(llama_server, concurrency=1) as sequential:
        expected = [r.text for r in sequential.chat(prompts, SETTINGS)]
    with backend_for(llama_server, concurrency=3) as concurrent:
        seen: list[int] = []
        got = concurrent.chat(prompts, SETTINGS, on_reply=lambda i, r: seen.append(i))
    assert [r.text for r in got] == expected
    assert sorted(seen) == list(range(len(prompts)))
    assert len(set(expected)) == len(prompts)  # distinct prompts, distinct answers


def test_cache_hit_sends_no_request_and_the_key_never_reaches_the_cache(
        llama_server, local_server, tmp_path, monkeypatch):
    secret = "sk-transferscope-test-7f3a9c"
    monkeypatch.setenv("TS_TEST_API_KEY", secret)
    proxy = local_server(forward_to(llama_server))
    cache_file = tmp_path / "responses.sqlite"
    first = backend_for(proxy.url, api_key_env="TS_TEST_API_KEY", cache=cache_file)
    replies = first.chat(PROMPTS[:3], SETTINGS)
    assert len(proxy.requests) == 3 and first.stats.model_calls == 3
    assert proxy.requests[0].get("Authorization") == f"Bearer {secret}"  # the key was sent

    second = backend_for(proxy.url, api_key_env="TS_TEST_API_KEY", cache=cache_file)
    again = second.chat(PROMPTS[:3], SETTINGS)
    assert len(proxy.requests) == 3  # no HTTP request at all
    assert second.stats.model_calls == 0 and second.stats.cache_hits == 3
    assert [r.text for r in again] == [r.text for r in replies] and all(r.from_cache for r in again)
    first.close()
    second.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in stored


def test_interrupted_run_keeps_every_finished_reply(llama_server, local_server, tmp_path):
    proxy = local_server(forward_to(llama_server))
    cache = ResponseCache(tmp_path / "r.sqlite")

    def ctrl_c_at_the_second_reply(i: int, reply: object) -> None:
        seen.append(i)
        if len(seen) == 2:
            raise KeyboardInterrupt

    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        backend_for(proxy.url, concurrency=1, cache=cache).chat(
            PROMPTS[:4], SETTINGS, on_reply=ctrl_c_at_the_second_reply)
    assert len(cache) == 2  # both answered replies were stored before the interrupt
    resumed = backend_for(proxy.url, concurrency=1, cache=cache)
    resumed.chat(PROMPTS[:4], SETTINGS)
    assert resumed.stats.cache_hits == 2 and resumed.stats.model_calls == 2


def test_dead_server_fails_after_the_retries_naming_the_url(closed_port):
    url = f"http://127.0.0.1:{closed_port}/v1"  # nothing listens there
    backend = backend_for(url, **FAST_RETRY)
    with pytest.raises(BackendError) as err:
        backend.chat([FRANCE], SETTINGS)
    message = str(err.value)
    assert f"{url}/chat/completions" in message and "3 attempts" in message
    assert "connection failed" in message
    assert backend.stats.retries == 2


def test_slow_server_times_out_is_retried_then_fails_clearly(local_server):
    def slow(n, path, headers, body):
        time.sleep(1.5)
        return 200, {"content-type": "application/json"}, b"{}"

    server = local_server(slow)
    backend = backend_for(server.url, timeout_s=0.3, **FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(BackendError, match="timed out after 0.3 s") as err:
        backend.chat([FRANCE], SETTINGS)
    assert server.url in str(err.value)
    assert len(server.requests) == 3 and backend.stats.retries == 2
    assert time.monotonic() - started < 1.5 * 3  # gave up on each request at its timeout


@pytest.mark.parametrize("status", [429, 503, 502])
def test_transient_errors_are_retried_until_the_real_answer(llama_server, local_server, status):
    relay = forward_to(llama_server)

    def flaky(n, path, headers, body):
        if n <= 2:
            return status, {"retry-after": "0"}, b'{"error": "busy"}'
        return relay(n, path, headers, body)

    server = local_server(flaky)
    reply = backend_for(server.url, **FAST_RETRY).chat([FRANCE], SETTINGS)[0]
    direct = backend_for(llama_server).chat([FRANCE], SETTINGS)[0]
    assert len(server.requests) == 3 and reply.text == direct.text


def test_client_errors_are_not_retried_and_never_show_the_key(local_server, monkeypatch):
    secret = "sk-transferscope-echo-55b1"
    monkeypatch.setenv("TS_TEST_API_KEY", secret)

    def unauthorised(n, path, headers, body):
        echoed = json.dumps({"error": f"bad key {headers.get('Authorization')}"}).encode()
        return 401, {"content-type": "application/json"}, echoed

    server = local_server(unauthorised)
    backend = backend_for(server.url, api_key_env="TS_TEST_API_KEY", **FAST_RETRY)
    with pytest.raises(BackendError, match="HTTP 401") as err:
        backend.chat([FRANCE], SETTINGS)
    assert secret not in str(err.value) and "***" in str(err.value)
    assert len(server.requests) == 1


def test_wrong_path_on_the_real_server_is_a_clear_error(llama_server):
    root = llama_server.rsplit("/v1", 1)[0] + "/no-such-api"
    with pytest.raises(BackendError, match="HTTP 404"):
        backend_for(root, **FAST_RETRY).chat([FRANCE], SETTINGS)


def test_chat_logprobs_without_a_template_on_the_real_server(llama_server):
    """No local tokenizer: options scored from the chat endpoint's top_logprobs, checked by
    hand against the server's own reply to the same request. llama-cpp-python's first answer
    to a prompt differs from its later (prompt-cached) ones by ~0.1 nats (observed -2.114 vs
    -2.014), so the prompt is asked once before the two compared requests."""
    backend = backend_for(llama_server)
    assert backend.option_logprob_kind == "first-token"
    vote = [{"role": "system", "content": "You are the representative of France on the "
             "United Nations Security Council."},
            {"role": "user", "content": "A draft resolution demands a ceasefire. How do you "
             "vote? Answer with exactly one of: In favour, Against, Abstain."}]
    options = ["In favour", "Against", "Abstain"]
    backend.option_logprobs(vote, options)
    raw = httpx.post(f"{llama_server}/chat/completions", json={
        "model": LLAMA_MODEL_ALIAS, "messages": vote, "max_tokens": 8, "temperature": 0.0,
        "logprobs": True, "top_logprobs": 20}, timeout=120).json()
    got = backend.option_logprobs(vote, options)
    steps = raw["choices"][0]["logprobs"]["content"]
    first = {a["token"]: a["logprob"] for a in steps[0]["top_logprobs"]}
    # "In favour": the first-position alternatives that lead to it alone ("In", "I", ...)
    alone = [v for t, v in first.items() if t.strip() and "in favour".startswith(
        t.strip().lower())]
    assert got[0] == pytest.approx(float(np.logaddexp.reduce(alone)), abs=1e-4)
    assert np.isfinite(got[0]) and all(v < 0 for v in got)
    if steps[0]["token"] == "A":  # the shared "A": Against/Abstain parted at the next token
        second = {a["token"]: a["logprob"] for a in steps[1]["top_logprobs"]}
        against = [steps[0]["logprob"] + v for t, v in second.items()
                   if t and "gainst".startswith(t.lower())]
        expected = (float(np.logaddexp.reduce(against)) if against
                    else steps[0]["logprob"])  # never parted: the shared prefix's mass
        assert got[1] == pytest.approx(expected, abs=1e-4)
    elif "A" in first:  # "A" not taken: Against and Abstain share its mass (a tie)
        assert got[1] == got[2] == pytest.approx(first["A"], abs=1e-4)


def test_chat_logprobs_pick_the_right_answer_of_a_fact(llama_server):
    got = backend_for(llama_server).option_logprobs(FRANCE, ["Paris", "Berlin"])
    assert got[0] > got[1]


def test_option_logprobs_through_llama_cpp_agree_with_hf_local(llama_server, smollm2):
    """Two independent implementations (llama.cpp on the Q4_1 GGUF, transformers on its
    de-quantised weights) must give nearly the same log-likelihoods."""
    from transferscope.bias.backends.hf_local import HFLocalBackend

    remote = backend_for(llama_server, template_model="smollm2")
    options = ["Paris", "Berlin"]
    got = remote.option_logprobs(FRANCE, options)
    local = HFLocalBackend("smollm2")
    local._model, local._tokenizer = smollm2
    expected = local.option_logprobs(FRANCE, options)
    assert got[0] > got[1] + 2.0
    assert got == pytest.approx(expected, abs=0.35)


def _without_logprobs(base_url: str) -> Handler:
    """The real server's replies with their log-probabilities removed (a server that
    ignores the request for them)."""
    relay = forward_to(base_url)

    def handler(n: int, path: str, headers: dict[str, str], body: bytes):
        status, head, payload = relay(n, path, headers, body)
        data = json.loads(payload)
        for choice in data.get("choices", []):
            choice["logprobs"] = None
        return status, head, json.dumps(data).encode()

    return handler


def test_vote_items_by_chat_logprobs_and_the_argmax_fallback(llama_server, local_server,
                                                             tmp_path):
    """Two UNBench-layout vote items: scored by chat log-probabilities on the real server;
    where the server gives none, parsed from generated text, and the method says so."""
    from tests.bias.unbench_sample import write_unbench_sample
    from transferscope.bias.adapters.unbench import unbench_items
    from transferscope.bias.evaluate import answer_items
    from transferscope.bias.items import load_items, write_items
    from transferscope.bias.probes.from_file import FileProbe

    rows = [r for r in unbench_items(write_unbench_sample(tmp_path / "ub")).rows
            if r["test"] == "vote"][:2]
    items = load_items(write_items(tmp_path / "items.jsonl", rows))
    probe = FileProbe("vote", items)
    scored = answer_items(backend_for(llama_server), probe, items)
    assert {a.method for a in scored.values()} == {"logprob-first-token"}
    for item in items:
        answer = scored[item.item_id]
        assert len(answer.logprobs) == 3 and answer.token_counts is None
        assert answer.choice == item.options[int(np.argmax(answer.logprobs))]
    plain = local_server(_without_logprobs(llama_server))
    parsed = answer_items(backend_for(plain.url), probe, items)
    assert {a.method for a in parsed.values()} == {"parse"}
    assert all(a.logprobs is None for a in parsed.values())

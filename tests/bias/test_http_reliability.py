"""``openai-compatible`` against hostile servers (#31): real local HTTP servers on 127.0.0.1
that drip bytes, answer too much, redirect, ask for odd back-offs, send escapes, infinities
and deep JSON. Each server is a bounded loop that stops itself; nothing here is mocked.

The slow-drip case is the one the issue asked to see: httpx's own timeout is per read, so a
server that sends one byte every 50 ms is never cut off by it; the backend's deadline is per
request (connect and every read together) and ends it at ``--timeout``.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from transferscope.bias.backends import GenerationSettings, ResponseCache, make_backend
from transferscope.bias.backends import http as http_module
from transferscope.bias.backends.base import Reply
from transferscope.bias.backends.cache import CachedBackend, chat_key
from transferscope.bias.backends.null import NullBackend
from transferscope.bias.backends.openai_compat import backoff_delay, parse_retry_after
from transferscope.core.errors import BackendError, InputError

CHAT = [{"role": "user", "content": "Say yes."}]
SETTINGS = GenerationSettings(max_tokens=4)
ANSWER = json.dumps({"choices": [{"message": {"content": "Yes"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()


def _reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}",
            "content-type: application/json", "connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class RawServer:
    """A TCP server on 127.0.0.1 whose ``respond(n, request_bytes, conn)`` writes the answer to
    the n-th connection itself (so it can drip, stall or send too much); stops at exit."""

    def __init__(self, respond: Callable[[int, bytes, socket.socket], None]):
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._respond = respond
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                self._respond(len(self.requests), head, conn)
            except OSError:
                pass  # the client gave up: what a deadline does

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@contextmanager
def serve(respond) -> Iterator[RawServer]:
    server = RawServer(respond)
    try:
        yield server
    finally:
        server.close()


def drip(payload: bytes, every_s: float = 0.05, limit: int = 400):
    """A responder that sends ``payload`` one byte every ``every_s`` seconds (at most
    ``limit`` bytes, so it stops itself even if nobody hangs up)."""
    def respond(n: int, head: bytes, conn: socket.socket) -> None:
        for byte in payload[:limit]:
            conn.sendall(bytes([byte]))
            time.sleep(every_s)
    return respond


def _backend(url: str, **kwargs):
    options = {"timeout_s": 1.0, "max_retries": 0, "cache": False} | kwargs
    return make_backend("openai:m", base_url=url, **options)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_slow_drip_server_is_cut_off_at_the_deadline(where):
    """One byte every 50 ms (a per-read timeout of 1 s never fires): cut off at the 1 s
    deadline, whether the drip is in the status line and headers or in the body."""
    whole = _reply(200, ANSWER + b" " * 300)
    head_end = whole.index(b"\r\n\r\n") + 4

    def respond(n, head, conn):
        if where == "body":
            conn.sendall(whole[:head_end])  # headers at once, then the body drips
        drip(whole if where == "headers" else whole[head_end:])(n, head, conn)

    with serve(respond) as server, _backend(server.url) as backend:
        started = time.monotonic()
        with pytest.raises(BackendError, match=r"timed out after 1 s \(no complete answer "
                                               r"within the --timeout deadline"):
            backend.chat([CHAT], SETTINGS)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5, elapsed


def test_httpx_alone_waits_out_the_drip():
    """The reference: the same 60-byte drip (3 s) with plain httpx and a 1 s timeout
    completes after 3 s without any error, which is why the deadline is needed."""
    body = b"x" * 60
    whole = _reply(200, body)
    head_end = whole.index(b"\r\n\r\n") + 4

    def respond(n, head, conn):
        conn.sendall(whole[:head_end])
        drip(body)(n, head, conn)

    with serve(respond) as server:
        started = time.monotonic()
        response = httpx.post(server.url + "/chat/completions", json={}, timeout=1.0)
        elapsed = time.monotonic() - started
    assert response.content == body and elapsed > 2.5


def test_a_reply_past_the_cap_is_refused_while_reading(monkeypatch):
    """Replies were read whole and kept three times; now a body past the cap stops the read
    (declared by Content-Length: before reading; streamed without one: at the cap)."""
    monkeypatch.setattr(http_module, "REPLY_CAP", 64 * 1024)
    big = b"[" + b"1," * 100_000 + b"1]"

    def declared(n, head, conn):
        conn.sendall(_reply(200, big))

    def streamed(n, head, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for start in range(0, len(big), 8192):
            piece = big[start:start + 8192]
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    for respond, fragment in ((declared, r"the reply declares 200,003 bytes: expected at "
                               r"most 64 KiB \(the cap on one reply\)"),
                              (streamed, r"the reply is longer than 64 KiB \(the cap on one "
                               r"reply\)")):
        with serve(respond) as server, _backend(server.url) as backend:
            with pytest.raises(BackendError, match=fragment):
                backend.chat([CHAT], SETTINGS)


def test_a_redirect_is_named_not_followed():
    where = "http://user:s3cret@elsewhere.example/v1/chat/completions"
    with serve(lambda n, h, c: c.sendall(_reply(301, b"", {"location": where}))) as server, \
            _backend(server.url) as backend:
        with pytest.raises(BackendError) as caught:
            backend.chat([CHAT], SETTINGS)
    text = str(caught.value)
    assert "the server redirects (HTTP 301) to http://elsewhere.example/v1/chat/completions" \
        in text and "s3cret" not in text and len(server.requests) == 1


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT",
                                   "soon"])
def test_an_unusable_retry_after_falls_back_to_our_backoff(value):
    """Retry-After -5 or nan gave no back-off at all: each unusable value now means our own
    exponential backoff (measured between the two requests a real server receives)."""
    assert parse_retry_after(value) is None
    times: list[float] = []

    def respond(n, head, conn):
        times.append(time.monotonic())
        conn.sendall(_reply(429, b"{}", {"retry-after": value}) if n == 1 else
                     _reply(200, ANSWER))

    with serve(respond) as server, _backend(server.url, max_retries=1,
                                            backoff_s=0.4) as backend:
        assert backend.chat([CHAT], SETTINGS)[0].text == "Yes"
    assert times[1] - times[0] >= 0.2  # full jitter: at least half of backoff_s


def test_a_usable_retry_after_is_honoured_and_capped():
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < parse_retry_after(future) <= 30
    assert parse_retry_after("2.5") == 2.5
    import random

    assert backoff_delay(0, 1.0, 8.0, random.Random(0), retry_after=100.0) == 8.0


def test_terminal_escapes_from_a_server_are_never_printed_raw():
    body = b"\x1b[2J\x1b]0;pwned\x07 \xe2\x80\xae bad request"

    with serve(lambda n, h, c: c.sendall(_reply(400, body))) as server, \
            _backend(server.url) as backend:
        with pytest.raises(BackendError) as caught:
            backend.chat([CHAT], SETTINGS)
    text = str(caught.value)
    assert "HTTP 400" in text and "\\x1b[2J" in text and "\\u202e" in text
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 or c == "\u202e" for c in text)


@pytest.mark.parametrize("body, fragment", [
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": Infinity}}',
     "Infinity is not a JSON number"),
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 1e999}}',
     "the number 1e999 is out of range"),
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -3}}',
     "usage.prompt_tokens = -3: expected a whole number of tokens"),
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"completion_tokens": 2.5}}',
     "usage.completion_tokens = 2.5"),
    (b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": '
     + b"9" * 5000 + b"}}", "Exceeds the limit (4300 digits)"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (b'{"choices": [{"message": {"content": 7}}]}', "unexpected answer shape"),
    (b"[1, 2]", "the answer is a JSON list: expected an object"),
    (b"<html>oops</html>", "not valid JSON"),
])
def test_a_hostile_answer_is_one_line(body, fragment):
    with serve(lambda n, h, c: c.sendall(_reply(200, body))) as server, \
            _backend(server.url) as backend:
        with pytest.raises(BackendError) as caught:
            backend.chat([CHAT], SETTINGS)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_credentials_in_the_url_are_sent_as_auth_and_stored_nowhere(tmp_path, monkeypatch):
    """`--base-url http://user:pass@host` stored the password in run.json, scores.csv and the
    cache: the request carries it as basic auth; the run folder and the cache file do not."""
    from transferscope.bias import RunConfig, run_evaluation
    from transferscope.bias.backends import BackendOptions

    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))
    with serve(lambda n, h, c: c.sendall(_reply(200, ANSWER))) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        run = tmp_path / "run"
        cache = tmp_path / "responses.sqlite"
        run_evaluation(RunConfig(model="openai:m", tests="directqa", drafts_per_nation=6,
                                 n_boot=10, base_url=url, option_scoring="generate"), run,
                       options=BackendOptions(cache=str(cache), max_retries=0, timeout_s=5.0))
    auth = b"authorization: basic " + base64.b64encode(b"alice:s3cret").lower()
    assert server.requests and all(auth in r.lower() for r in server.requests)
    stored = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    stored["cache"] = cache.read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("responses.sqlite*"))
    assert {"run.json", "scores.csv", "answers.jsonl"} <= set(stored)
    assert not [name for name, data in stored.items() if b"s3cret" in data]
    assert server.url.encode() in stored["run.json"]  # the address itself is kept


def test_a_malformed_ipv6_url_is_one_line():
    with pytest.raises(InputError, match=r"base URL = 'http://\[::1': not a valid URL"):
        make_backend("openai:m", base_url="http://alice:s3cret@[::1", cache=False)


def test_damaged_cache_rows_are_asked_again_and_replaced(tmp_path):
    """Rows that are not JSON, nest too deeply, lack the reply's fields or hold the wrong
    number of option scores were a traceback; each is now a miss: the model answers again,
    the entry is replaced, and the run counts it."""
    cache = ResponseCache(tmp_path / "r.sqlite")
    inner = NullBackend("constant")
    backend = CachedBackend(inner, cache)
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(4)]
    keys = [chat_key(backend.fingerprint, c, SETTINGS) for c in conversations]
    bad = ["{oops", "[" * 5000 + "]" * 5000, json.dumps({"text": "x"}),
           json.dumps({"text": 5, "prompt_tokens": "a", "completion_tokens": 1})]
    with sqlite3.connect(cache.path) as conn:
        for key, row in zip(keys, bad):
            conn.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                         (key, "x", "chat", "{}", row, 0.0))
    replies = backend.chat(conversations, SETTINGS)
    assert [r.text for r in replies] == ["None"] * 4 and not any(r.from_cache for r in replies)
    assert inner.stats.model_calls == 4
    assert all(isinstance(Reply.from_json(cache.get(k)), Reply) for k in keys)
    options = [(conversations[0], ["Yes", "No"])]
    from transferscope.bias.backends.cache import options_key

    with sqlite3.connect(cache.path) as conn:
        conn.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                     (options_key(backend.fingerprint, *options[0]), "x", "o", "{}", "[1.0]",
                      0.0))
    assert backend.option_logprobs_many(options) == [[-10.0, 0.0]]  # "No" sorts first
    assert inner.stats.extra["cache_damaged"] == 5
    cache.close()


def test_the_environment_proxy_is_kept(monkeypatch):
    """Our own transport still goes through the proxy the environment names (as httpx
    would), and not for a host NO_PROXY lists."""
    from transferscope.bias.backends.http import environment_proxy

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert environment_proxy("https://api.example.com/v1") == "http://proxy.example:3128"
    assert environment_proxy("https://internal.example/v1") is None
    assert environment_proxy("http://api.example.com/v1") is None

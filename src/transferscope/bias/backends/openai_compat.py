"""``openai-compatible``: any server that speaks the OpenAI chat API (OpenAI, vLLM, Ollama,
llama.cpp, ...).

Requests go out concurrently (at most ``concurrency`` at a time) with a per-request timeout;
429, 5xx, timeouts and connection failures are retried with exponential backoff and jitter
(a server's ``Retry-After`` is honoured, capped); after the last retry a ``BackendError`` names
the URL. The API key is read from the environment variable the user names and only ever sent
as the ``Authorization`` header: it is not part of the backend's id or fingerprint, so it never
reaches the cache, and it is masked (``***``) out of everything a server sends back: error
text, replies (a server that echoes the key inside a normal 200 answer included) and the
model metadata the fingerprint holds.

The fingerprint (what the response cache keys on) holds what the server reports about the
model: its ``/models`` entry (id and any metadata, less the volatile ``created``) and, on
llama.cpp's own server, ``/props`` (model path, chat template, build). A server that now reports
another model misses the cache instead of returning another model's answers. llama-cpp-python's
server reports only the alias: serve different models under different ``--model_alias`` names.

Option log-likelihoods need the prompt exactly as the model sees it, so they are offered only
when the user names a local tokenizer with the model's chat template (``template_model``): the
templated prompt plus each option is sent to ``/completions`` with ``echo`` and ``logprobs``,
and the option tokens' log-probabilities are summed. The server must return prompt
log-probabilities: llama-cpp-python's does when started with ``--logits_all true``
(``python -m llama_cpp.server --model M.gguf --model_alias NAME --logits_all true``).
Otherwise ``option_logprobs`` raises :class:`OptionScoringNotSupported` and the probes parse
generated text.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from transferscope.bias.backends.base import (
    Backend,
    Conversation,
    GenerationSettings,
    OnReply,
    OptionScoringNotSupported,
    Reply,
    validate_conversation,
    validate_options,
)
from transferscope.core.cache import content_key
from transferscope.core.errors import BackendError, InputError

OPENAI_BASE_URL = "https://api.openai.com/v1"
VOLATILE = frozenset({"created"})  # llama.cpp's server stamps /models with the current time
PROPS_KEPT = ("model_path", "chat_template", "build_info")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(520, 530))


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random,
                  retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [base * 2^attempt / 2, base * 2^attempt].

    A server's ``Retry-After`` (seconds) replaces the exponential term; both are capped.
    """
    target = retry_after if retry_after is not None else base_s * (2 ** attempt)
    target = min(cap_s, max(0.0, target))
    return target if retry_after is not None else target * (0.5 + 0.5 * rng.random())


def parse_retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def resolve_api_key(api_key_env: str | None, base_url: str) -> str | None:
    """The key from the named variable; the official API requires one, other servers may not."""
    if api_key_env is None and urlparse(base_url).hostname == "api.openai.com":
        api_key_env = "OPENAI_API_KEY"
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "")
    if not key.strip():
        raise InputError(f"API key: environment variable {api_key_env} is not set or empty: "
                         f"expected it to hold the key for {base_url}")
    return key.strip()


class OpenAICompatibleBackend(Backend):
    """A chat model behind an OpenAI-compatible HTTP API (see the module docstring)."""

    def __init__(self, model: str, base_url: str = OPENAI_BASE_URL, api_key_env: str | None = None,
                 concurrency: int = 4, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 template_model: str | Path | None = None, seed: int = 0):
        super().__init__()
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"base URL = {base_url!r}: expected http(s)://host[:port]/path, "
                             "e.g. http://127.0.0.1:8000/v1")
        for name, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if not isinstance(value, int) or value < low:
                raise InputError(f"openai-compatible: {name} = {value!r}: expected an integer >= {low}")
        if not timeout_s > 0:
            raise InputError(f"openai-compatible: timeout_s = {timeout_s!r}: expected seconds > 0")
        if not model:
            raise InputError("openai-compatible: model = '': expected a model name, e.g. gpt-4o-mini")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.id = f"openai:{model}@{self.base_url}"
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.template_model = template_model
        self._template_tokenizer: Any = None
        self._fingerprint: str | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # stats and the jitter source are shared by worker threads
        self._template_lock = threading.Lock()  # one thread loads the tokenizer (imports race)
        self._api_key = resolve_api_key(api_key_env, self.base_url)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers,
                                    limits=httpx.Limits(max_connections=concurrency))

    @property
    def fingerprint(self) -> str:
        """id, template model and a hash of what the server reports about the model (or
        ``server=unreachable``: the cache then decides, see :class:`.cache.CachedBackend`)."""
        if self._fingerprint is None:
            template = f"|template={self.template_model}" if self.template_model else ""
            report = self.server_report()
            server = "unreachable" if report is None else content_key(report)[:16]
            self._fingerprint = f"{self.id}{template}|server={server}"
        return self._fingerprint

    def server_report(self) -> dict[str, Any] | None:
        """What the server says about the model (secrets masked): its ``/models`` entry, the
        whole list where no entry has our model's id, and llama.cpp's ``/props`` where served;
        None when ``/models`` cannot be reached."""
        listed = self._get("models")
        if listed is None:
            return None
        entries = listed.get("data") if isinstance(listed, dict) else None
        mine = [e for e in entries or [] if isinstance(e, dict) and e.get("id") == self.model]
        models = mine[0] if mine else listed
        report: dict[str, Any] = {"models": _without(models, VOLATILE)}
        props = self._get("props", root=True)
        if isinstance(props, dict):
            report["props"] = {k: props[k] for k in PROPS_KEPT if k in props}
        return json.loads(self._masked(json.dumps(report, sort_keys=True)))

    def _get(self, path: str, root: bool = False) -> Any | None:
        base = self.base_url.rsplit("/v1", 1)[0] if root else self.base_url
        try:
            response = self._client.get(f"{base}/{path}")
        except httpx.HTTPError:
            return None
        if response.status_code >= 400:
            return {"status": response.status_code} if path == "models" else None
        try:
            return response.json()
        except ValueError:
            return None

    @property
    def supports_option_logprobs(self) -> bool:
        return self.template_model is not None

    def _masked(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the JSON answer, or a ``BackendError`` naming the URL."""
        url = f"{self.base_url}/{path}"
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = self._client.post(url, json=payload)
            except httpx.TimeoutException:
                last = f"timed out after {self._client.timeout.read:g} s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {self._masked(str(exc))})"
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise BackendError(f"{url}: the answer is not JSON: "
                                           f"{self._masked(response.text[:200])!r}") from None
                body = self._masked(" ".join(response.text.split())[:300])
                last = f"HTTP {response.status_code}: {body}"
                if response.status_code not in RETRY_STATUS:
                    raise BackendError(f"{url}: {last}")
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt < self.max_retries:
                with self._lock:
                    self.stats.retries += 1
                    delay = backoff_delay(attempt, self.backoff_s, self.max_backoff_s, self._rng,
                                          retry_after)
                time.sleep(delay)
        raise BackendError(f"{url}: no usable answer after {self.max_retries + 1} attempts "
                           f"(last: {last}); expected a reachable OpenAI-compatible server")

    def _chat_one(self, conversation: Conversation, settings: GenerationSettings) -> Reply:
        payload: dict[str, Any] = {
            "model": self.model, "messages": conversation, "max_tokens": settings.max_tokens,
            "temperature": settings.temperature, "seed": settings.seed,
        }
        if settings.stop:
            payload["stop"] = list(settings.stop)
        data = self.post("chat/completions", payload)
        try:
            choice = data["choices"][0]
            text = self._masked(choice["message"]["content"] or "")
            usage = data.get("usage") or {}
            reply = Reply(text=text, prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)),
                          finish_reason=choice.get("finish_reason") or "stop")
        except (KeyError, IndexError, TypeError, ValueError):
            raise BackendError(f"{self.base_url}/chat/completions: unexpected answer shape: "
                               f"{self._masked(str(data))[:200]!r}") from None
        return reply

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        replies: list[Reply | None] = [None] * len(conversations)
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures: dict[Future[Reply], int] = {
                pool.submit(self._chat_one, c, settings): i for i, c in enumerate(conversations)
            }
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    reply = future.result()  # re-raises BackendError from the worker
                    index = futures[future]
                    replies[index] = reply
                    self.stats.add_reply(reply)
                    if on_reply is not None:
                        on_reply(index, reply)
        finally:
            # On an error or Ctrl-C, drop queued requests instead of waiting for all of them.
            pool.shutdown(wait=False, cancel_futures=True)
            self.stats.seconds += time.perf_counter() - started
        return [r for r in replies if r is not None]

    def _template(self) -> Any:
        with self._template_lock:
            if self._template_tokenizer is None:
                from transformers import AutoTokenizer

                from transferscope.core.models import resolve_model

                model_dir = resolve_model(str(self.template_model))
                self._template_tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
                if not getattr(self._template_tokenizer, "chat_template", None):
                    raise InputError(f"template model = {self.template_model!r}: its tokenizer has no "
                                     "chat template: expected the served model's tokenizer directory")
        return self._template_tokenizer

    def _score_one(self, conversation: Conversation, option: str) -> float:
        prompt = self._template().apply_chat_template(conversation, tokenize=False,
                                                      add_generation_prompt=True)
        data = self.post("completions", {
            "model": self.model, "prompt": prompt + option, "echo": True, "logprobs": 1,
            "max_tokens": 1, "temperature": 0.0,
        })
        return option_logprob_from_echo(data, prompt, option, f"{self.base_url}/completions")

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        if self.template_model is None:
            return None
        tok = self._template()
        return [len(tok(o, add_special_tokens=False)["input_ids"]) for o in options]

    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        if self.template_model is None:
            raise OptionScoringNotSupported(
                f"{self.id}: option log-likelihoods need the served model's chat template; "
                "pass a local tokenizer as template_model, or parse generated answers"
            )
        for i, (conversation, options) in enumerate(requests):
            validate_conversation(conversation, f"request {i} conversation")
            validate_options(options, f"request {i} options")
        jobs = [(r, o, c, option) for r, (c, options) in enumerate(requests)
                for o, option in enumerate(options)]
        results = [[0.0] * len(options) for _, options in requests]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            values = list(pool.map(lambda job: self._score_one(job[2], job[3]), jobs))
        for (r, o, _, _), value in zip(jobs, values, strict=True):
            results[r][o] = value
        self.stats.seconds += time.perf_counter() - started
        self.stats.model_calls += len(requests)
        return results

    def close(self) -> None:
        self._client.close()


def option_logprob_from_echo(data: dict[str, Any], prompt: str, option: str, url: str) -> float:
    """Sum the echoed log-probabilities of the tokens that spell ``option`` after ``prompt``.

    The answer echoes ``prompt + option`` and then one generated token. Servers differ in how
    they count text offsets (llama.cpp leaves special tokens out), so the option's tokens are
    found from the end instead: drop the tokens that spell the generated text, then the tokens
    before them must spell the option exactly. A token straddling the prompt/option boundary
    would mix the two, so that case is refused rather than approximated.
    """
    try:
        choice = data["choices"][0]
        text, tokens, values = (choice["text"], choice["logprobs"]["tokens"],
                                choice["logprobs"]["token_logprobs"])
    except (KeyError, IndexError, TypeError):
        raise OptionScoringNotSupported(f"{url}: the server returned no echoed logprobs") from None
    if not isinstance(text, str) or not text.startswith(prompt + option):
        raise OptionScoringNotSupported(f"{url}: the server did not echo the prompt")
    generated = text[len(prompt) + len(option):]
    end, tail = len(tokens), ""
    while len(tail) < len(generated) and end > 0:
        end -= 1
        tail = tokens[end] + tail
    begin, piece = end, ""
    while len(piece) < len(option) and begin > 0:
        begin -= 1
        piece = tokens[begin] + piece
    if tail != generated or piece != option or any(v is None for v in values[begin:end]):
        raise OptionScoringNotSupported(
            f"{url}: the echoed tokens do not spell the option {option!r} on its own "
            "(it merges with the prompt); cannot score it exactly")
    return float(sum(values[begin:end]))


def _without(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with ``keys`` dropped from every dict in it."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value

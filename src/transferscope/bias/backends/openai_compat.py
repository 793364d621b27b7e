"""``openai-compatible``: any server that speaks the OpenAI chat API (OpenAI, vLLM, Ollama,
llama.cpp, ...).

Requests go out concurrently (at most ``concurrency`` at a time), each with a total deadline
(``timeout_s``: connect and every read together, so a server that drips bytes is cut off) and
a cap on its reply (:mod:`.http`); 429, 5xx, deadlines and connection failures are retried
with exponential backoff and jitter (a server's ``Retry-After``, seconds or an HTTP date, is
honoured, capped; a negative or non-numeric one falls back to our backoff); after the last
retry a ``BackendError`` names the URL. A redirect is not followed: the error names where the
server points. Replies are strict JSON (no ``NaN``/``Infinity``, nesting capped) and their
token counts whole numbers in range. The API key is read from the environment variable the
user names and only ever sent as the ``Authorization`` header; credentials written into the
URL (``http://user:pass@host``) are sent as HTTP basic auth and removed from the URL the
backend shows and stores (its id, fingerprint, run files, cache). Neither is part of the
backend's id or fingerprint, so they never reach the cache, and both are masked (``***``)
out of everything a server sends back: error text, replies (a server that echoes the key
inside a normal 200 answer included) and the model metadata the fingerprint holds.

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

Without a local tokenizer, options are scored from the chat endpoint itself (**chat
log-probabilities**, what hosted servers offer: vLLM, llama.cpp, commercial APIs): one chat
completion per item with ``logprobs`` and ``top_logprobs`` (:data:`TOP_LOGPROBS`), at most
:data:`CHAT_SCORE_TOKENS` tokens, temperature 0. An option that is one token is scored by
that token's log-probability; a multi-token option by its **first distinguishing token**
(ours): walking the greedy reply, the log-probability of the shared prefix generated so far
plus that of the alternative tokens at the first position where they lead to this option
alone (``In favour`` / ``Against`` / ``Abstain``: ``In`` at the first token; ``Against`` and
``Abstain`` share ``A``, so they are told apart by the token after it). Tokens are compared
as text, case-insensitively, leading spaces dropped; alternatives that lead to the same option
add up. Options the reply never tells apart each get the log-probability of their shared
prefix, an upper bound (a tie between them, broken at random by the caller): where the reply
ends on it or leaves it (``A`` then `` draft``), or where it is an alternative the reply does
not take (``In favour`` generated, ``A`` among the alternatives: ``Against`` and ``Abstain``
both get ``A``'s log-probability). An option reached by no alternative scores ``-inf``.
An item where no option is reached gets ``NaN`` scores: the caller parses generated text for
it. A server that returns no log-probabilities at all raises
:class:`OptionScoringNotSupported`: the run parses generated text (argmax of the parse) and
records the method ``parse`` per answer, so the fallback shows in ``run.json``.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

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
from transferscope.bias.backends.http import DeadlineExceeded, HTTPClient, HTTPReply, ReplyTooLarge
from transferscope.core.bounded import loads_json
from transferscope.core.cache import content_key
from transferscope.core.errors import BackendError, InputError
from transferscope.core.hygiene import redact_url

OPENAI_BASE_URL = "https://api.openai.com/v1"
VOLATILE = frozenset({"created"})  # llama.cpp's server stamps /models with the current time
PROPS_KEPT = ("model_path", "chat_template", "build_info")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(520, 530))
MAX_TOKENS_REPORTED = 10**9  # a usage count above this is not a count
TOP_LOGPROBS = 20  # alternatives per position (the OpenAI API's maximum)
CHAT_SCORE_TOKENS = 8  # reply tokens walked to find where the options part


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random,
                  retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [base * 2^attempt / 2, base * 2^attempt].

    A server's ``Retry-After`` (seconds) replaces the exponential term; both are capped.
    """
    target = retry_after if retry_after is not None else base_s * (2 ** attempt)
    target = min(cap_s, max(0.0, target))
    return target if retry_after is not None else target * (0.5 + 0.5 * rng.random())


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delay-seconds, or an HTTP date (RFC 9110)
    still ahead; ``None`` (use our own backoff) for a negative, non-finite, past or unreadable
    value."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
        return seconds if seconds > 0 else None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def split_credentials(base_url: str) -> tuple[str, httpx.BasicAuth | None]:
    """``base_url`` without the ``user:password@`` it may carry, and those as HTTP basic auth
    (what a browser does with them); a URL that does not parse is one InputError line, shown
    without its credentials."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises on a port that is not a number
        host = parts.hostname
    except ValueError as exc:
        raise InputError(f"base URL = {redact_url(base_url)!r}: not a valid URL ({exc}): "
                         "expected http(s)://host[:port]/path, e.g. http://127.0.0.1:8000/v1"
                         ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise InputError(f"base URL = {redact_url(base_url)!r}: expected "
                         "http(s)://host[:port]/path, e.g. http://127.0.0.1:8000/v1")
    if "@" not in parts.netloc:
        return base_url, None
    url = httpx.URL(base_url)
    plain = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query,
                        parts.fragment))
    return plain, httpx.BasicAuth(url.username, url.password)


def resolve_api_key(api_key_env: str | None, base_url: str) -> str | None:
    """The key from the named variable; the official API requires one, other servers may not."""
    if api_key_env is None and urlsplit(base_url).hostname == "api.openai.com":
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
        url, auth = split_credentials(base_url)
        for name, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if not isinstance(value, int) or value < low:
                raise InputError(f"openai-compatible: {name} = {value!r}: expected an integer >= {low}")
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
            raise InputError(f"openai-compatible: timeout_s = {timeout_s!r}: expected seconds > 0")
        if not model:
            raise InputError("openai-compatible: model = '': expected a model name, e.g. gpt-4o-mini")
        self.model = model
        self._url = url.rstrip("/")  # what requests go to (credentials, if any, in auth)
        self.base_url = redact_url(self._url)  # what is shown and stored
        self.id = f"openai:{model}@{self.base_url}"
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.template_model = template_model
        self._template_tokenizer: Any = None
        self._fingerprint: str | None = None
        self._context: int | None = None  # learned once: 0 where the server reports none
        self._tokenize_route: str | None = None  # the tokenizer endpoint that answered
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # stats and the jitter source are shared by worker threads
        self._template_lock = threading.Lock()  # one thread loads the tokenizer (imports race)
        self.timeout_s = float(timeout_s)
        self._api_key = resolve_api_key(api_key_env, self.base_url)
        password = httpx.URL(base_url).password if auth is not None else None
        self._secrets = [s for s in (self._api_key, password) if s]
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = HTTPClient(self._url, deadline_s=timeout_s, max_connections=concurrency,
                                  headers=headers, auth=auth)

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
        base = self._url.rsplit("/v1", 1)[0] if root else self._url
        try:
            reply = self._client.request("GET", f"{base}/{path}")
        except httpx.HTTPError:
            return None
        if reply.status >= 400:
            return {"status": reply.status} if path == "models" else None
        try:
            return loads_json(reply.body, f"{base}/{path}", "JSON")
        except InputError:
            return None

    def context_tokens(self) -> int | None:
        """The served context length: llama.cpp's ``/props`` (``n_ctx``, at the top or in
        ``default_generation_settings``) or vLLM's ``/models`` entry (``max_model_len``);
        ``None`` where the server reports neither (llama-cpp-python's server: give
        ``--context-tokens``, its ``--n_ctx``)."""
        if self._context is None:
            props = self._get("props", root=True)
            found: Any = None
            if isinstance(props, dict):
                settings = props.get("default_generation_settings")
                found = props.get("n_ctx") or (settings.get("n_ctx")
                                               if isinstance(settings, dict) else None)
            if not found:
                listed = self._get("models")
                entries = listed.get("data") if isinstance(listed, dict) else None
                found = next((e.get("max_model_len") for e in entries or []
                              if isinstance(e, dict) and e.get("id") == self.model), None)
            self._context = int(found) if isinstance(found, int) and found > 0 else 0
        return self._context or None

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in the served model's tokens: the template model's tokenizer,
        else the server's own tokenizer (llama.cpp's and vLLM's ``/tokenize``,
        llama-cpp-python's ``/extras/tokenize/count``); ``None`` where none answers."""
        if self.template_model is not None:
            tok = self._template()
            return [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
        root = self._url.rsplit("/v1", 1)[0]
        routes = ((f"{root}/tokenize", "content", "tokens"),
                  (f"{root}/extras/tokenize/count", "input", "count"))
        counts = []
        for text in texts:
            for url, field_in, field_out in routes:
                if self._tokenize_route not in (None, url):
                    continue
                payload = {field_in: text, "model": self.model}
                if field_in == "content":
                    payload["prompt"] = text  # vLLM's /tokenize reads prompt
                got = self._tokenize(url, payload, field_out)
                if got is not None:
                    self._tokenize_route = url
                    counts.append(got)
                    break
            else:
                return None
        return counts

    def _tokenize(self, url: str, payload: dict[str, Any], field_out: str) -> int | None:
        try:
            reply = self._client.request("POST", url, json=payload)
        except httpx.HTTPError:
            return None
        if reply.status >= 300:
            return None
        try:
            data = loads_json(reply.body, url, "JSON")
        except InputError:
            return None
        value = data.get(field_out) if isinstance(data, dict) else None
        if isinstance(value, list):
            return len(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def supports_option_logprobs(self) -> bool:
        return True  # exact with a template model, else by chat log-probabilities

    @property
    def option_logprob_kind(self) -> str:
        """``sequence`` (the whole option, through /completions with a template model) or
        ``first-token`` (chat log-probabilities, see the module docstring)."""
        return "sequence" if self.template_model is not None else "first-token"

    def _masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the JSON answer, or a ``BackendError`` naming the URL."""
        url = f"{self.base_url}/{path}"
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                reply = self._client.request("POST", f"{self._url}/{path}", json=payload)
            except DeadlineExceeded:
                last = (f"timed out after {self.timeout_s:g} s (no complete answer within the "
                        "--timeout deadline, connect and all reads together)")
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout_s:g} s"
            except ReplyTooLarge as exc:
                raise BackendError(f"{url}: {exc}") from None
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {self._masked(str(exc))})"
            else:
                if reply.status < 300:
                    return self._answer(url, reply)
                if 300 <= reply.status < 400:
                    where = redact_url(reply.headers.get("location", "nowhere"))
                    raise BackendError(f"{url}: the server redirects (HTTP {reply.status}) to "
                                       f"{where}: expected the API's base URL itself (pass the "
                                       "address it redirects to as --base-url)")
                body = self._masked(" ".join(reply.text(2000).split())[:300])
                last = f"HTTP {reply.status}: {body}"
                if reply.status not in RETRY_STATUS:
                    raise BackendError(f"{url}: {last}")
                retry_after = parse_retry_after(reply.headers.get("retry-after"))
            if attempt < self.max_retries:
                with self._lock:
                    self.stats.retries += 1
                    delay = backoff_delay(attempt, self.backoff_s, self.max_backoff_s, self._rng,
                                          retry_after)
                time.sleep(delay)
        raise BackendError(f"{url}: no usable answer after {self.max_retries + 1} attempts "
                           f"(last: {last}); expected a reachable OpenAI-compatible server")

    def _answer(self, url: str, reply: HTTPReply) -> dict[str, Any]:
        """A successful reply's JSON object (strict, nesting capped), else one BackendError."""
        try:
            data = loads_json(reply.body, url, "a JSON object from an OpenAI-compatible server")
        except InputError as exc:
            raise BackendError(f"the answer is not usable: {self._masked(str(exc))}; it began "
                               f"{self._masked(reply.text(200))!r}") from None
        if not isinstance(data, dict):
            raise BackendError(f"{url}: the answer is a JSON {type(data).__name__}: expected "
                               "an object")
        return data

    def _chat_one(self, conversation: Conversation, settings: GenerationSettings) -> Reply:
        payload: dict[str, Any] = {
            "model": self.model, "messages": conversation, "max_tokens": settings.max_tokens,
            "temperature": settings.temperature, "seed": settings.seed,
        }
        if settings.stop:
            payload["stop"] = list(settings.stop)
        return self.reply_from(self.post("chat/completions", payload))

    def reply_from(self, data: dict[str, Any]) -> Reply:
        """A chat completion's JSON as a :class:`Reply` (secrets masked, token counts whole
        numbers in range); any other shape is one BackendError line."""
        url = f"{self.base_url}/chat/completions"
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
            if not isinstance(text, str) or not isinstance(usage, dict):
                raise TypeError("content or usage")
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(f"{url}: unexpected answer shape: "
                               f"{self._masked(str(data))[:200]!r}") from None
        return Reply(text=self._masked(text), prompt_tokens=_token_count(usage, "prompt_tokens", url),
                     completion_tokens=_token_count(usage, "completion_tokens", url),
                     finish_reason=str(finish))

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

    def _chat_scores(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        data = self.post("chat/completions", {
            "model": self.model, "messages": conversation, "max_tokens": CHAT_SCORE_TOKENS,
            "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS})
        steps = chat_logprob_steps(data, f"{self.base_url}/chat/completions")
        return first_distinguishing_scores(steps, options)

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        if self.template_model is None:
            return None
        tok = self._template()
        return [len(tok(o, add_special_tokens=False)["input_ids"]) for o in options]

    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        for i, (conversation, options) in enumerate(requests):
            validate_conversation(conversation, f"request {i} conversation")
            validate_options(options, f"request {i} options")
        jobs = [(r, o, c, option) for r, (c, options) in enumerate(requests)
                for o, option in enumerate(options)]
        results = [[0.0] * len(options) for _, options in requests]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            if self.template_model is None:
                results = list(pool.map(lambda request: self._chat_scores(*request), requests))
            else:
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


Step = tuple[str, float, list[tuple[str, float]]]  # generated token, its logprob, alternatives


def chat_logprob_steps(data: dict[str, Any], url: str) -> list[Step]:
    """The reply's tokens with their log-probabilities and top alternatives, from a chat
    completion's ``choices[0].logprobs.content``; a reply without them raises
    :class:`OptionScoringNotSupported` (the server gives none)."""
    try:
        content = data["choices"][0]["logprobs"]["content"]
        steps = [(str(step["token"]), float(step["logprob"]),
                  [(str(alt["token"]), float(alt["logprob"]))
                   for alt in step.get("top_logprobs") or []]) for step in content]
    except (KeyError, IndexError, TypeError, ValueError):
        raise OptionScoringNotSupported(f"{url}: the server returned no chat log-probabilities "
                                        "(logprobs.content with top_logprobs)") from None
    if not steps or not any(alts for _, _, alts in steps):
        raise OptionScoringNotSupported(f"{url}: the server returned no top_logprobs")
    return steps


def first_distinguishing_scores(steps: Sequence[Step], options: Sequence[str]) -> list[float]:
    """Each option's log-probability by its first distinguishing token along a greedy reply
    (the module docstring states the rule); ``NaN`` for all when no option is reached."""
    keys = [" ".join(o.split()).lower() for o in options]
    scores = [-math.inf] * len(options)
    shared = [-math.inf] * len(options)  # alternatives leading to several options at once

    def reached(text: str, live: set[int]) -> list[int]:
        text = " ".join(text.split()).lower()
        return [i for i in sorted(live) if text and (keys[i].startswith(text)
                                                     or text.startswith(keys[i]))]

    live, prefix, path = set(range(len(options))), "", 0.0
    for token, logprob, alternatives in steps:
        for alt, alt_logprob in alternatives:
            match = reached(prefix + alt, live)
            if len(match) == 1:
                scores[match[0]] = float(np.logaddexp(scores[match[0]], path + alt_logprob))
            for i in match if len(match) > 1 and alt != token else ():
                shared[i] = float(np.logaddexp(shared[i], path + alt_logprob))
        following = set(reached(prefix + token, live)) if (prefix + token).strip() else live
        if len(following) == 1:
            break
        if not following:  # the reply leaves the options still sharing its prefix
            break
        prefix, path, live = prefix + token, path + logprob, following
    else:
        following = set()
    if prefix.strip() and len(live) > 1 and not following:
        for i in live:  # never told apart: they share the prefix's mass (an upper bound)
            scores[i] = float(np.logaddexp(scores[i], path))
    scores = [v if v > -math.inf else shared[i] for i, v in enumerate(scores)]
    if all(v == -math.inf for v in scores):
        return [math.nan] * len(options)
    return scores


def _token_count(usage: dict[str, Any], name: str, url: str) -> int:
    """A usage count as a whole number in ``[0, MAX_TOKENS_REPORTED]``; else one line."""
    value = usage.get(name, 0)
    if value is None:
        return 0
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 <= value <= MAX_TOKENS_REPORTED or value != int(value)):
        raise BackendError(f"{url}: usage.{name} = {str(value)[:40]}: expected a whole number "
                           f"of tokens from 0 to {MAX_TOKENS_REPORTED:,}")
    return int(value)


def _without(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with ``keys`` dropped from every dict in it."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value

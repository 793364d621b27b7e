"""A SQLite cache of every model request and response, and a backend wrapper that uses it.

Each entry is keyed by the sha256 of (backend fingerprint, request kind, messages, generation
settings or options). The API key is never part of a backend's fingerprint or of a request
record, so it can never reach the cache file. Every answer is committed as soon as it exists:
an interrupted run resumes where it stopped, and a finished run re-scores with zero model
calls. One connection behind a lock serves all threads; WAL mode and a busy timeout let
several processes share the file. A damaged entry (not JSON, nested past the cap, a reply
without its fields, the wrong number of option scores) is a miss: the model is asked again
and the entry replaced, and the run's stats count it (``extra["cache_damaged"]``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from transferscope.bias.backends.base import (
    Backend,
    Conversation,
    GenerationSettings,
    OnReply,
    Reply,
    validate_conversation,
    validate_options,
)
from transferscope.core.bounded import loads_json
from transferscope.core.cache import cache_root, content_key
from transferscope.core.errors import EnvironmentProblem, InputError

SCHEMA_VERSION = 1
OPTION_CHUNK = 32  # option requests stored per model batch, so Ctrl-C loses at most one chunk


def default_cache_path() -> Path:
    """``<cache root>/bias/responses.sqlite``."""
    return cache_root() / "bias" / "responses.sqlite"


def chat_key(fingerprint: str, conversation: Conversation, settings: GenerationSettings) -> str:
    return content_key("chat", SCHEMA_VERSION, fingerprint, conversation, settings.as_dict())


def options_key(fingerprint: str, conversation: Conversation, options: Sequence[str]) -> str:
    return content_key("option-logprobs", SCHEMA_VERSION, fingerprint, conversation, list(options))


class ResponseCache:
    """Key -> JSON response, with the request stored beside it for inspection (``--log_samples``)."""

    DAMAGED = object()  # what get() returns for an entry that is not (bounded, strict) JSON

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False,
                                         isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, backend TEXT NOT NULL,"
                " kind TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,"
                " created REAL NOT NULL)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS fingerprints (backend_id TEXT PRIMARY KEY,"
                " fingerprint TEXT NOT NULL, seen REAL NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            if path is not None:  # the user's own file: name it, the default root is moot
                raise InputError(f"--cache {self.path}: cannot open it as an SQLite response "
                                 f"cache ({exc}): expected a new file or one transferscope "
                                 "wrote") from exc
            raise EnvironmentProblem(
                f"response cache {self.path}: cannot open it ({exc}); set TRANSFERSCOPE_CACHE "
                "to a writable directory"
            ) from exc
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """The stored response; None when none is stored; :attr:`DAMAGED` for one that is
        not JSON (nested too deeply, cut short, another type)."""
        with self._lock, self._named_errors("read an answer from"):
            row = self._conn.execute("SELECT response FROM responses WHERE key = ?",
                                     (key,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], str | bytes):
            return self.DAMAGED
        try:
            return loads_json(row[0], f"{self.path}: entry {key[:12]}", "a cached response",
                              finite=False)
        except InputError:
            return self.DAMAGED

    def put(self, key: str, backend: str, kind: str, request: Any, response: Any) -> None:
        """Store one response (an existing entry with the same key is replaced: same inputs)."""
        with self._lock, self._named_errors("store an answer in"):
            self._conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (key, backend, kind, json.dumps(request), json.dumps(response), time.time()),
            )

    @contextlib.contextmanager
    def _named_errors(self, action: str) -> Iterator[None]:
        """A full disk or a damaged file mid-run: one line naming the database (the answers
        committed before it stay, so the same command resumes once it is fixed)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"response cache {self.path}: cannot {action} it ({exc}): "
                                     "expected free disk space and an undamaged file; answers "
                                     "stored so far are kept") from exc

    def last_fingerprint(self, backend_id: str) -> str | None:
        """The fingerprint ``backend_id`` had when it last answered through this cache."""
        with self._lock:
            row = self._conn.execute("SELECT fingerprint FROM fingerprints WHERE backend_id = ?",
                                     (backend_id,)).fetchone()
        return None if row is None else str(row[0])

    def remember_fingerprint(self, backend_id: str, fingerprint: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?)",
                               (backend_id, fingerprint, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachedBackend(Backend):
    """Answers from the cache where it can, asks the wrapped backend for the rest.

    ``stats`` is the wrapped backend's: ``model_calls`` counts only requests that reached the
    model, ``cache_hits`` the ones answered here. Repeated identical requests within one call are
    sent to the model once.
    """

    def __init__(self, inner: Backend, cache: ResponseCache):
        self.inner = inner
        self.cache = cache
        self.id = inner.id
        self.stats = inner.stats
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The inner backend's, checked against the one its cached answers were stored under:
        a changed one misses the cache and says so (``stats.extra["cache_notice"]``); a server
        that cannot be reached now (``server=unreachable``) reuses the last one, so a finished
        run re-scores from the cache with the server stopped, and says that too."""
        if self._fingerprint is None:
            current, last = self.inner.fingerprint, self.cache.last_fingerprint(self.id)
            if current.endswith("server=unreachable") and last is not None:
                self.stats.extra["cache_notice"] = (
                    f"{self.id}: the server cannot be reached; answers come from the cache as "
                    f"last reported by it ({last})")
                current = last
            elif last is not None and last != current:
                self.stats.extra["cache_notice"] = (
                    f"{self.id}: the server reports a different model or settings than when "
                    f"the cached answers were stored ({last} -> {current}); they are not used")
            if not current.endswith("server=unreachable"):
                self.cache.remember_fingerprint(self.id, current)
            self._fingerprint = current
        return self._fingerprint

    @property
    def supports_option_logprobs(self) -> bool:
        return self.inner.supports_option_logprobs

    @property
    def option_logprob_kind(self) -> str:
        return self.inner.option_logprob_kind

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        return self.inner.option_token_counts(conversation, options)

    def context_tokens(self) -> int | None:
        return self.inner.context_tokens()

    def count_tokens(self, texts: Sequence[str]) -> list[int] | None:
        return self.inner.count_tokens(texts)

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        keys = [chat_key(self.fingerprint, c, settings) for c in conversations]
        replies: list[Reply | None] = [None] * len(conversations)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self._usable_reply(self.cache.get(key), key)
            if hit is not None:
                replies[i] = hit
                self.stats.cache_hits += 1
                if on_reply is not None:
                    on_reply(i, hit)
            else:
                pending.setdefault(key, []).append(i)
        if pending:
            order = list(pending)
            to_ask = [conversations[pending[key][0]] for key in order]

            def store(j: int, reply: Reply) -> None:
                key = order[j]
                self.cache.put(key, self.fingerprint, "chat",
                               {"messages": to_ask[j], "settings": settings.as_dict()},
                               reply.to_json())
                for i in pending[key]:
                    replies[i] = reply
                    if on_reply is not None:
                        on_reply(i, reply)

            self.inner.chat(to_ask, settings, on_reply=store)
        return [r for r in replies if r is not None]

    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        for i, (conversation, options) in enumerate(requests):
            validate_conversation(conversation, f"request {i} conversation")
            validate_options(options, f"request {i} options")
        keys = [options_key(self.fingerprint, c, o) for c, o in requests]
        results: list[list[float] | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self._usable_scores(self.cache.get(key), len(requests[i][1]), key)
            if hit is not None:
                results[i] = hit
                self.stats.cache_hits += 1
            else:
                pending.setdefault(key, []).append(i)
        order = list(pending)
        for start in range(0, len(order), OPTION_CHUNK):
            chunk = order[start:start + OPTION_CHUNK]
            asked = [requests[pending[key][0]] for key in chunk]
            scores = self.inner.option_logprobs_many(asked)
            for key, (conversation, options), values in zip(chunk, asked, scores, strict=True):
                self.cache.put(key, self.fingerprint, "option-logprobs",
                               {"messages": conversation, "options": list(options)}, values)
                for i in pending[key]:
                    results[i] = list(values)
        return [r for r in results if r is not None]

    def _damaged(self, key: str) -> None:
        self.stats.extra["cache_damaged"] = self.stats.extra.get("cache_damaged", 0) + 1

    def _usable_reply(self, hit: Any, key: str) -> Reply | None:
        """A cached chat reply, or None (a miss) for an entry that is not one."""
        if hit is None:
            return None
        try:
            reply = Reply.from_json(hit, from_cache=True)
            if isinstance(reply.text, str) and reply.prompt_tokens >= 0 \
                    and reply.completion_tokens >= 0:
                return reply
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            pass
        self._damaged(key)
        return None

    def _usable_scores(self, hit: Any, count: int, key: str) -> list[float] | None:
        """Cached option scores (one number per option), or None (a miss) otherwise."""
        if hit is None:
            return None
        if isinstance(hit, list) and len(hit) == count and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in hit):
            return [float(v) for v in hit]
        self._damaged(key)
        return None

    def close(self) -> None:
        self.inner.close()

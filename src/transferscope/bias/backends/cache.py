"""A SQLite cache of every model request and response, and a backend wrapper that uses it.

Each entry is keyed by the sha256 of (backend fingerprint, request kind, messages, generation
settings or options). The API key is never part of a backend's fingerprint or of a request
record, so it can never reach the cache file. Every answer is committed as soon as it exists:
an interrupted run resumes where it stopped, and a finished run re-scores with zero model
calls. One connection behind a lock serves all threads; WAL mode and a busy timeout let
several processes share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
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
from transferscope.core.cache import cache_root, content_key
from transferscope.core.errors import EnvironmentProblem

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
        except (OSError, sqlite3.Error) as exc:
            raise EnvironmentProblem(
                f"response cache {self.path}: cannot open it ({exc}); set TRANSFERSCOPE_CACHE "
                "to a writable directory"
            ) from exc
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM responses WHERE key = ?",
                                     (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, backend: str, kind: str, request: Any, response: Any) -> None:
        """Store one response (an existing entry with the same key is replaced: same inputs)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (key, backend, kind, json.dumps(request), json.dumps(response), time.time()),
            )

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

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def supports_option_logprobs(self) -> bool:
        return self.inner.supports_option_logprobs

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        return self.inner.option_token_counts(conversation, options)

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        keys = [chat_key(self.fingerprint, c, settings) for c in conversations]
        replies: list[Reply | None] = [None] * len(conversations)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is not None:
                replies[i] = Reply.from_json(hit, from_cache=True)
                self.stats.cache_hits += 1
                if on_reply is not None:
                    on_reply(i, replies[i])
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
            hit = self.cache.get(key)
            if hit is not None:
                results[i] = [float(v) for v in hit]
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

    def close(self) -> None:
        self.inner.close()
